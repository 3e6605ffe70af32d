//! Benchmark (issue #11): what a call costs and how fast it starts, the box against a
//! LiveKit Python SDK peer doing the same job in the same run. Prints a table, writes
//! `target/bench/report.json` and `target/bench/cost-*.csv` (plotted by
//! `scripts/plot-bench.py`); asserts nothing.
//!
//! Real parts: livekit-server, the hub, the `callbox` binary (test sources, fake sinks),
//! Python SDK callers. Measured:
//! - idle: the box's CPU (% of one core) and RSS with no call, over 10 s;
//! - call setup with `answer = "auto"`: invite → the caller's first frame of the box,
//!   invite → the box's first frame of the caller (`CALL_BENCH_N` calls, default 30);
//! - call setup with `answer = "manual"`: the answer press → the caller's first frame,
//!   and → the box's first frame (the same number of calls);
//! - cost of a full-duplex call at 640x480@30 and 1280x720@30 over `CALL_BENCH_SECS`
//!   (default 30) seconds in the call: CPU seconds per call-minute and peak RSS of the
//!   box and of the Python SDK caller, which publishes and subscribes the same.
//!
//! Times across processes use the wall clock (`unix_ms` in the caller's events, the
//! box's `first_video_received_unix_ms`): one machine, one clock.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::World;

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `(p50, p95)` of `xs`, nearest rank.
fn p50_p95(xs: &[f64]) -> (f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.50), at(0.95))
}

/// CPU time (user + system) of `pid` so far, s, and its resident set, KiB.
fn cpu_rss(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((ticks as f64 / clock_ticks(), rss))
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/PID/stat`'s times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The `unix_ms` of the caller's first event named `name`.
fn event_unix_ms(caller: &callbox_testkit::PyPeer, name: &str) -> Option<f64> {
    caller
        .events()
        .iter()
        .find(|e| e["event"] == name)
        .and_then(|e| e["unix_ms"].as_f64())
}

struct Setup {
    to_caller: Vec<f64>,
    to_box: Vec<f64>,
}

/// `n` calls. `manual = false`: answered by themselves, timed from the invite;
/// `true`: ringing until the call button, timed from the press. Each side's first frame.
fn setup(n: usize, manual: bool) -> Setup {
    let extra = if manual {
        "[call]\nanswer = \"manual\"\n"
    } else {
        ""
    };
    let w = World::with_online_box("", extra);
    let mut s = Setup {
        to_caller: vec![],
        to_box: vec![],
    };
    for _ in 0..n {
        let caller = w.dial(
            "box1",
            &["--min-video-frames", "1", "--timeout", "30", "--no-hangup"],
        );
        let from = if manual {
            w.wait_status("ringing", Duration::from_secs(20), |s| s.state == "ringing");
            // As long as a person would take: the box prepares what it may meanwhile.
            std::thread::sleep(Duration::from_millis(1500));
            let pressed = unix_ms();
            assert_eq!(w.ctl(&["press", "call"])["ok"], true);
            caller.expect_event("media_ok", Duration::from_secs(30));
            pressed
        } else {
            caller.expect_event("media_ok", Duration::from_secs(30));
            // The invite's POST went out `invite_ms` before its answer was printed.
            let invited = caller.expect_event("invited", Duration::from_secs(1));
            invited["unix_ms"].as_f64().expect("unix_ms")
                - invited["invite_ms"].as_f64().unwrap_or(0.0)
        };
        let first = event_unix_ms(&caller, "first_video_frame").expect("a first frame");
        s.to_caller.push(first - from);
        let st = w.wait_status("the box's first frame", Duration::from_secs(20), |s| {
            s.first_video_received_unix_ms.is_some()
        });
        s.to_box
            .push(st.first_video_received_unix_ms.unwrap() as f64 - from);
        // The caller stays until the box has its frame too.
        support::hang_up(&w, caller);
        w.wait_status("idle", Duration::from_secs(20), |s| {
            s.state == "idle" && !s.media_active
        });
    }
    s
}

struct Cost {
    size: String,
    box_cpu_s_per_min: f64,
    box_peak_rss_mib: f64,
    peer_cpu_s_per_min: f64,
    peer_peak_rss_mib: f64,
    box_fps_received: f64,
    peer_fps_received: f64,
}

/// A full-duplex call at `w`x`h`@30 for `secs` s: CPU and peak RSS of the box and of
/// the Python SDK caller; a CSV of the samples.
fn cost(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path) -> Cost {
    let size = format!("{w_px}x{h_px}");
    let w = World::with_online_box(&format!("width = {w_px}\nheight = {h_px}\n"), "");
    let mut caller = w.dial(
        "box1",
        &[
            "--size",
            &size,
            "--min-video-frames",
            "30",
            "--timeout",
            "300",
            "--no-hangup",
        ],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    // Past the start-up (ICE, the first keyframes, bitrate ramp-up).
    std::thread::sleep(Duration::from_secs(3));
    let box_pid = w.daemon.as_ref().unwrap().id();
    let peer_pid = caller.pid().expect("the caller runs");
    let (box0, _) = cpu_rss(box_pid).unwrap();
    let (peer0, _) = cpu_rss(peer_pid).unwrap();
    let frames0 = (
        w.status().unwrap().video_frames_received,
        support::caller_video(&mut caller),
    );
    let mut csv = String::from("t_s,box_cpu_pct,box_rss_mib,peer_cpu_pct,peer_rss_mib\n");
    let (mut box_peak, mut peer_peak) = (0u64, 0u64);
    let t0 = Instant::now();
    let (mut last_t, mut last_box, mut last_peer) = (0.0, box0, peer0);
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        let t = t0.elapsed().as_secs_f64();
        let (bc, br) = cpu_rss(box_pid).unwrap();
        let (pc, pr) = cpu_rss(peer_pid).unwrap();
        box_peak = box_peak.max(br);
        peer_peak = peer_peak.max(pr);
        let dt = t - last_t;
        csv.push_str(&format!(
            "{t:.2},{:.1},{:.1},{:.1},{:.1}\n",
            (bc - last_box) / dt * 100.0,
            br as f64 / 1024.0,
            (pc - last_peer) / dt * 100.0,
            pr as f64 / 1024.0
        ));
        (last_t, last_box, last_peer) = (t, bc, pc);
    }
    let t = t0.elapsed().as_secs_f64();
    let frames1 = (
        w.status().unwrap().video_frames_received,
        support::caller_video(&mut caller),
    );
    std::fs::write(dir.join(format!("cost-{size}.csv")), csv).unwrap();
    support::hang_up(&w, caller);
    Cost {
        size,
        box_cpu_s_per_min: (last_box - box0) / t * 60.0,
        box_peak_rss_mib: box_peak as f64 / 1024.0,
        peer_cpu_s_per_min: (last_peer - peer0) / t * 60.0,
        peer_peak_rss_mib: peer_peak as f64 / 1024.0,
        box_fps_received: (frames1.0 - frames0.0) as f64 / t,
        peer_fps_received: (frames1.1 - frames0.1) as f64 / t,
    }
}

/// The box idle for `secs` s: CPU % of one core and RSS, MiB.
fn idle(secs: u64) -> (f64, f64) {
    let w = World::with_online_box("", "");
    std::thread::sleep(Duration::from_secs(2));
    let pid = w.daemon.as_ref().unwrap().id();
    let (c0, _) = cpu_rss(pid).unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, rss) = cpu_rss(pid).unwrap();
    (
        (c1 - c0) / t0.elapsed().as_secs_f64() * 100.0,
        rss as f64 / 1024.0,
    )
}

fn main() {
    let n = env_or("CALL_BENCH_N", 30);
    let secs = env_or("CALL_BENCH_SECS", 30) as u64;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| c
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
            .unwrap_or_default()
    );

    let (idle_cpu, idle_rss) = idle(10);
    println!("bench: idle: box {idle_cpu:.1} % of a core, RSS {idle_rss:.0} MiB");
    let auto = setup(n, false);
    let manual = setup(n, true);
    let mut costs = vec![];
    for (w, h) in [(640, 480), (1280, 720)] {
        costs.push(cost(w, h, secs, &dir));
    }

    let line = |what: &str, xs: &[f64]| {
        let (p50, p95) = p50_p95(xs);
        println!(
            "bench: {what}: p50 {p50:.0} ms, p95 {p95:.0} ms ({} calls)",
            xs.len()
        );
        json!({"p50_ms": p50, "p95_ms": p95, "samples_ms": xs})
    };
    let report = json!({
        "machine": machine,
        "date": chrono::Utc::now().format("%F").to_string(),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "idle": {"box_cpu_pct": idle_cpu, "box_rss_mib": idle_rss},
        "setup_auto": {
            "invite_to_caller_first_frame": line("auto: invite → caller's first frame of the box", &auto.to_caller),
            "invite_to_box_first_frame": line("auto: invite → box's first frame of the caller", &auto.to_box),
        },
        "setup_manual": {
            "answer_to_caller_first_frame": line("manual: answer press → caller's first frame of the box", &manual.to_caller),
            "answer_to_box_first_frame": line("manual: answer press → box's first frame of the caller", &manual.to_box),
        },
        "cost": costs.iter().map(|c| {
            println!(
                "bench: call {} ({secs} s): box {:.1} CPU s/min, peak RSS {:.0} MiB, receives {:.1} fps | Python SDK peer {:.1} CPU s/min, peak RSS {:.0} MiB, receives {:.1} fps | box/peer CPU {:.2}",
                c.size, c.box_cpu_s_per_min, c.box_peak_rss_mib, c.box_fps_received,
                c.peer_cpu_s_per_min, c.peer_peak_rss_mib, c.peer_fps_received,
                c.box_cpu_s_per_min / c.peer_cpu_s_per_min
            );
            json!({
                "size": c.size, "seconds": secs,
                "box": {"cpu_s_per_min": c.box_cpu_s_per_min, "peak_rss_mib": c.box_peak_rss_mib, "fps_received": c.box_fps_received},
                "python_sdk_peer": {"cpu_s_per_min": c.peer_cpu_s_per_min, "peak_rss_mib": c.peer_peak_rss_mib, "fps_received": c.peer_fps_received},
                "box_over_peer_cpu": c.box_cpu_s_per_min / c.peer_cpu_s_per_min,
            })
        }).collect::<Vec<Value>>(),
    });
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("bench: report in {}", path.display());
}
