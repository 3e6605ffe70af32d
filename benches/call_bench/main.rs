//! Benchmark (issue #11): what a call costs and how fast it starts, the box against a
//! LiveKit Python SDK peer doing the same job in the same run. Prints a table, writes
//! `target/bench/report.json` and `target/bench/cost-*.csv` (plotted by
//! `scripts/plot-bench.py`); asserts nothing.
//!
//! Real parts: livekit-server, the hub, the `callbox` binary (test sources, fake sinks),
//! Python SDK callers. Measured:
//! - idle: the box's CPU (% of one core) and RSS with no call, over 10 s
//!   (`CALL_BENCH_IDLE_ONLY=1` runs only that);
//! - call setup with `answer = "auto"`: invite → the caller's first frame of the box,
//!   invite → the box's first frame of the caller (`CALL_BENCH_N` calls, default 30);
//! - call setup with `answer = "manual"`: the answer press → the caller's first frame,
//!   and → the box's first frame (the same number of calls);
//! - call setup from the hub's caller web app in Debian's headless chromium (the
//!   product's own caller: `livekit-client`, one peer connection) to the box with
//!   `answer = "auto"`: invite → the page's first frame of the box (`setup_web`;
//!   `CALL_BENCH_SETUP_ONLY=2` runs only that, `=1` all set-up);
//! - cost of a full-duplex call at 640x480@30 and 1280x720@30 over `CALL_BENCH_SECS`
//!   (default 30) seconds in the call: CPU seconds per call-minute and peak RSS of the
//!   box and of the Python SDK caller, which publishes and subscribes the same;
//! - the floor of this media stack at both sizes: a bare pipeline of gst-plugins-rs'
//!   `livekitwebrtcsink` and `livekitwebrtcsrc` (this program re-run with `--floor`,
//!   test sources in, `fakesink`s out) in a call with a Python SDK peer: CPU and peak RSS;
//! - glass-to-glass latency in those calls, both ways, and between two Python SDK peers
//!   in a room of their own (the anchor): each sender draws its capture time into the
//!   frame (`media::stamp`, `tests/peers/stamp.py`), each receiver reads it from the
//!   decoded frame. On the box the stamp is read where the decoded remote video enters
//!   the call screen: the screen's compositor and the display add up to one frame
//!   interval (33 ms at 30 fps) that this does not see.
//!
//! - where the box's latency goes, by GStreamer element: one more 640x480 call with
//!   GStreamer's latency tracer in the box (`latency_stages`; `CALL_BENCH_STAGES_ONLY=1`
//!   runs only that);
//! - recovery: `CALL_BENCH_CUTS` (default 5) cuts of the box's network for 5 s mid-call,
//!   the fault matrix's harness (`tests/support/netfault.rs`; needs root and nftables):
//!   ms from the network's return to media at the box and at the caller.
//!
//! Times across processes use the wall clock (`unix_ms` in the caller's events, the
//! box's `first_video_received_unix_ms`): one machine, one clock.

#[path = "../../tests/support/mod.rs"]
mod support;

mod cost;
mod floor;
mod proc;
mod recovery;
mod setup;
mod stages;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use cost::{Cost, cost, peer_to_peer};
use floor::{FLOOR_ARG, floor, floor_child};
use proc::{idle, rss_line};
use recovery::{recovery, recovery_report};
use setup::{STAGES, caller_join, setup, web_report};
use stages::latency_stages;

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

/// The median of `xs`, nearest rank; NaN when empty.
fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        f64::NAN
    } else {
        p50_p95(xs).0
    }
}

/// `(p50, p95, p99)` of `xs`, nearest rank.
fn percentiles(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1];
    (at(0.50), at(0.95), at(0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(FLOOR_ARG) {
        return floor_child(&args[1..]);
    }
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

    // CALL_BENCH_FLOOR_ONLY=1: only the floor, at both sizes (to look at it alone).
    if env_or("CALL_BENCH_FLOOR_ONLY", 0) == 1 {
        for (w, h) in [(640, 480), (1280, 720)] {
            let f = floor(w, h, secs, &dir);
            println!(
                "bench: floor {w}x{h} ({secs} s): {:.1} CPU s/min, peak RSS {:.0} MiB, receives {:.1} fps | its Python SDK peer {:.1} CPU s/min, receives {:.1} fps",
                f.cpu_s_per_min,
                f.peak_rss_mib,
                f.fps_received,
                f.peer_cpu_s_per_min,
                f.peer_fps_received
            );
            println!(
                "bench: floor {w}x{h} RSS, {}",
                rss_line("the floor", &f.rss)
            );
        }
        return;
    }
    // CALL_BENCH_SETUP_ONLY=1: only set-up, both policies, keeping the box's logs
    // (target/bench/setup-{auto,manual}.log) to read its own timeline.
    if env_or("CALL_BENCH_SETUP_ONLY", 0) >= 1 {
        // CALL_BENCH_SETUP_ONLY=2: only the web app's calls.
        let policies: &[bool] = if env_or("CALL_BENCH_SETUP_ONLY", 0) == 2 {
            &[]
        } else {
            &[false, true]
        };
        for &manual in policies {
            let name = if manual { "manual" } else { "auto" };
            let log = dir.join(format!("setup-{name}.log"));
            let s = setup(n, manual, Some(&log));
            let (p50, p95) = p50_p95(&s.to_caller);
            let (b50, b95) = p50_p95(&s.to_box);
            println!(
                "bench: {name}: → caller's first frame p50 {p50:.0} ms, p95 {p95:.0} ms; \
                 → box's first frame p50 {b50:.0} ms, p95 {b95:.0} ms ({n} calls; log {})",
                log.display()
            );
            for (k, (_, _, _, stage)) in STAGES.iter().enumerate() {
                let xs: Vec<f64> = s
                    .stages
                    .iter()
                    .map(|c| c[k])
                    .filter(|x| x.is_finite())
                    .collect();
                let (a, b) = p50_p95(&xs);
                println!("bench: {name}:   {stage} at p50 {a:.0} ms, p95 {b:.0} ms");
            }
            caller_join(name, &s);
        }
        web_report(n, &dir);
        return;
    }
    // CALL_BENCH_COST_ONLY=640x480 (or 1280x720): only the box's call at that size, to
    // compare one setting against another (`CALL_BENCH_MEDIA`, or the environment,
    // which the box inherits) without the floor and the other calls: its cost and
    // glass-to-glass latency; writes no report.
    if let Ok(size) = std::env::var("CALL_BENCH_COST_ONLY") {
        let (w, h) = size
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .expect("CALL_BENCH_COST_ONLY is WxH, e.g. 640x480");
        let c = cost(w, h, secs, &dir);
        println!(
            "bench: call {} ({secs} s): box {:.1} CPU s/min, peak RSS {:.0} MiB, receives {:.1} fps | Python SDK peer {:.1} CPU s/min, receives {:.1} fps | box/peer CPU {:.2}",
            c.size,
            c.box_cpu_s_per_min,
            c.box_peak_rss_mib,
            c.box_fps_received,
            c.peer_cpu_s_per_min,
            c.peer_fps_received,
            c.box_cpu_s_per_min / c.peer_cpu_s_per_min
        );
        println!(
            "bench: call {} RSS, {}",
            c.size,
            rss_line("box", &c.box_rss)
        );
        println!(
            "bench: call {} at the Python SDK peer, the box's video: {}",
            c.size, c.peer_receiver
        );
        for (what, xs) in [
            ("box → Python SDK peer", &c.g2g_box_to_peer),
            ("Python SDK peer → box (screen)", &c.g2g_peer_to_box),
        ] {
            if !xs.is_empty() {
                let (p50, p95, p99) = percentiles(xs);
                println!(
                    "bench: call {} glass-to-glass {what}: p50 {p50:.0} ms, p95 {p95:.0} ms, p99 {p99:.0} ms ({} frames)",
                    c.size,
                    xs.len()
                );
            }
        }
        return;
    }
    // CALL_BENCH_STAGES_ONLY=1: only the latency tracer's call (640x480).
    if env_or("CALL_BENCH_STAGES_ONLY", 0) == 1 {
        latency_stages(640, 480, secs.min(10), &dir);
        return;
    }
    // CALL_BENCH_CUTS (default 5): network cuts for the recovery figure; 0 skips it.
    // CALL_BENCH_RECOVERY_ONLY=1: only those.
    if env_or("CALL_BENCH_RECOVERY_ONLY", 0) == 1 {
        recovery_report(&recovery(env_or("CALL_BENCH_CUTS", 5)));
        return;
    }
    let (idle_cpu, idle_rss) = idle(10);
    println!("bench: idle: box {idle_cpu:.1} % of a core, RSS {idle_rss:.0} MiB");
    // CALL_BENCH_IDLE_ONLY=1: only the idle figure.
    if env_or("CALL_BENCH_IDLE_ONLY", 0) == 1 {
        return;
    }
    let auto = setup(n, false, None);
    let manual = setup(n, true, None);
    let web = web_report(n, &dir);
    let cuts = recovery(env_or("CALL_BENCH_CUTS", 5));
    let stages_640 = latency_stages(640, 480, secs.min(10), &dir);
    let mut costs = vec![];
    let mut p2p = vec![];
    let mut floors = vec![];
    for (w, h) in [(640, 480), (1280, 720)] {
        costs.push(cost(w, h, secs, &dir));
        p2p.push(peer_to_peer(w, h, secs));
        floors.push(floor(w, h, secs, &dir));
    }

    let line = |what: &str, xs: &[f64]| {
        if xs.is_empty() {
            println!("bench: {what}: not measured (CALL_BENCH_N=0)");
            return json!({"calls": 0});
        }
        let (p50, p95) = p50_p95(xs);
        println!(
            "bench: {what}: p50 {p50:.0} ms, p95 {p95:.0} ms ({} calls)",
            xs.len()
        );
        json!({"p50_ms": p50, "p95_ms": p95, "samples_ms": xs})
    };
    // Where set-up's time goes, from the caller's events: the median of each stage's
    // increment over the previous one.
    let stages = |what: &str, calls: &[[f64; 4]]| {
        let mut out = serde_json::Map::new();
        let mut text = vec![];
        for (k, (_, _, _, name)) in STAGES.iter().enumerate() {
            let xs: Vec<f64> = calls
                .iter()
                .map(|c| if k == 0 { c[0] } else { c[k] - c[k - 1] })
                .filter(|x| x.is_finite())
                .collect();
            if xs.is_empty() {
                continue;
            }
            let (p50, p95) = p50_p95(&xs);
            text.push(format!("{name} +{p50:.0} (p95 +{p95:.0})"));
            out.insert(name.to_string(), json!({"p50_ms": p50, "p95_ms": p95}));
        }
        if !text.is_empty() {
            println!("bench: {what}, at the caller, ms: {}", text.join(", "));
        }
        Value::Object(out)
    };
    let g2g = |what: &str, xs: &[f64]| {
        if xs.is_empty() {
            println!("bench: glass-to-glass {what}: no stamped frame read");
            return json!({"frames": 0});
        }
        let (p50, p95, p99) = percentiles(xs);
        println!(
            "bench: glass-to-glass {what}: p50 {p50:.0} ms, p95 {p95:.0} ms, p99 {p99:.0} ms ({} frames)",
            xs.len()
        );
        json!({"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "frames": xs.len(), "samples_ms": xs})
    };
    let receiver = |c: &Cost| {
        let r = &c.peer_receiver;
        println!(
            "bench: {} at the Python SDK peer, the box's video: jitter buffer {} ms, decode {} ms, \
             first packet → decoded {} ms (means per frame)",
            c.size, r["jitter_buffer_ms"], r["decode_ms"], r["processing_ms"]
        );
        r.clone()
    };
    let glass_to_glass: Vec<Value> = costs
        .iter()
        .zip(&p2p)
        .map(|(c, p)| {
            json!({
                "size": c.size,
                "box_to_peer": g2g(&format!("{} box → Python SDK peer", c.size), &c.g2g_box_to_peer),
                "peer_to_box": g2g(&format!("{} Python SDK peer → box (screen)", c.size), &c.g2g_peer_to_box),
                "peer_to_box_decoded": g2g(&format!("{} Python SDK peer → box's decoder output", c.size), &c.peer_to_box_decoded),
                "peer_receiver_of_box": receiver(c),
                "peer_to_peer": g2g(&format!("{} Python SDK peer → Python SDK peer", c.size), p),
            })
        })
        .collect();
    let report = json!({
        "recovery": recovery_report(&cuts),
        "latency_stages": stages_640,
        "glass_to_glass": glass_to_glass,
        "machine": machine,
        "date": chrono::Utc::now().format("%F").to_string(),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "idle": {"box_cpu_pct": idle_cpu, "box_rss_mib": idle_rss},
        "setup_auto": {
            "invite_to_caller_first_frame": line("auto: invite → caller's first frame of the box", &auto.to_caller),
            "invite_to_box_first_frame": line("auto: invite → box's first frame of the caller", &auto.to_box),
            "stages": stages("auto: invite → caller's first frame by stage", &auto.stages),
            "caller_join": caller_join("auto", &auto),
        },
        "setup_manual": {
            "answer_to_caller_first_frame": line("manual: answer press → caller's first frame of the box", &manual.to_caller),
            "answer_to_box_first_frame": line("manual: answer press → box's first frame of the caller", &manual.to_box),
            "stages": stages("manual: answer press → caller's first frame by stage", &manual.stages),
        },
        "setup_web": web,
        "cost": costs.iter().zip(&floors).map(|(c, f)| {
            println!(
                "bench: call {} ({secs} s): box {:.1} CPU s/min, peak RSS {:.0} MiB, receives {:.1} fps | Python SDK peer {:.1} CPU s/min, peak RSS {:.0} MiB, receives {:.1} fps | box/peer CPU {:.2}",
                c.size, c.box_cpu_s_per_min, c.box_peak_rss_mib, c.box_fps_received,
                c.peer_cpu_s_per_min, c.peer_peak_rss_mib, c.peer_fps_received,
                c.box_cpu_s_per_min / c.peer_cpu_s_per_min
            );
            println!(
                "bench: call {} ({secs} s): the floor (bare livekitwebrtcsink + livekitwebrtcsrc) {:.1} CPU s/min, peak RSS {:.0} MiB, receives {:.1} fps | its Python SDK peer {:.1} CPU s/min, receives {:.1} fps | box/floor CPU {:.2}",
                c.size, f.cpu_s_per_min, f.peak_rss_mib, f.fps_received,
                f.peer_cpu_s_per_min, f.peer_fps_received,
                c.box_cpu_s_per_min / f.cpu_s_per_min
            );
            println!("bench: call {} RSS, {}", c.size, rss_line("box", &c.box_rss));
            println!("bench: call {} RSS, {}", c.size, rss_line("the floor", &f.rss));
            json!({
                "size": c.size, "seconds": secs,
                "rss_breakdown": {"box": c.box_rss, "gst_floor": f.rss},
                "box": {"cpu_s_per_min": c.box_cpu_s_per_min, "peak_rss_mib": c.box_peak_rss_mib, "fps_received": c.box_fps_received},
                "gst_floor": {"cpu_s_per_min": f.cpu_s_per_min, "peak_rss_mib": f.peak_rss_mib, "fps_received": f.fps_received,
                              "its_peer_cpu_s_per_min": f.peer_cpu_s_per_min, "its_peer_fps_received": f.peer_fps_received},
                "box_over_floor_cpu": c.box_cpu_s_per_min / f.cpu_s_per_min,
                "python_sdk_peer": {"cpu_s_per_min": c.peer_cpu_s_per_min, "peak_rss_mib": c.peer_peak_rss_mib, "fps_received": c.peer_fps_received},
                "box_over_peer_cpu": c.box_cpu_s_per_min / c.peer_cpu_s_per_min,
            })
        }).collect::<Vec<Value>>(),
    });
    let path = dir.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("bench: report in {}", path.display());
}
