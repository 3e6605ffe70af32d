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

/// Where `pid`'s resident memory is, from `/proc/PID/smaps`, MiB: anonymous memory
/// (the heap, frame pools, thread stacks) in mappings of at least 1 MiB, in smaller
/// ones, and file-backed memory (the binary and its libraries: shared with any other
/// process using them, but counted in RSS), with the five largest files.
fn rss_breakdown(pid: u32) -> Option<Value> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut anon_large, mut anon_small, mut file) = (0u64, 0u64, 0u64);
    let mut by_file: std::collections::HashMap<String, u64> = Default::default();
    let mut path = String::new();
    let mut size_kib = 0u64;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range perms offset dev inode [path].
            path = f.nth(4).unwrap_or_default().to_owned();
        } else if first == "Size:" {
            size_kib = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if first == "Rss:" {
            let rss: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            if path.starts_with('/') {
                file += rss;
                *by_file.entry(path.clone()).or_default() += rss;
            } else if size_kib >= 1024 {
                anon_large += rss;
            } else {
                anon_small += rss;
            }
        }
    }
    let mut top: Vec<(String, u64)> = by_file.into_iter().collect();
    top.sort_by_key(|f| std::cmp::Reverse(f.1));
    let mib = |k: u64| (k as f64 / 1024.0 * 10.0).round() / 10.0;
    Some(json!({
        "anon_in_mappings_of_1_mib_or_more_mib": mib(anon_large),
        "anon_in_smaller_mappings_mib": mib(anon_small),
        "file_backed_mib": mib(file),
        "largest_files": top.iter().take(5).map(|(p, k)| json!({
            "file": p.rsplit('/').next().unwrap_or(p), "mib": mib(*k)
        })).collect::<Vec<_>>(),
    }))
}

/// One line of [`rss_breakdown`] for the console.
fn rss_line(who: &str, b: &Value) -> String {
    let files: Vec<String> = b["largest_files"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| format!("{} {}", f["file"].as_str().unwrap_or("?"), f["mib"]))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{who}: anonymous {} MiB in mappings of ≥ 1 MiB, {} MiB in smaller ones; files {} MiB ({})",
        b["anon_in_mappings_of_1_mib_or_more_mib"],
        b["anon_in_smaller_mappings_mib"],
        b["file_backed_mib"],
        files.join(", ")
    )
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/PID/stat`'s times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// The `unix_ms` of the caller's first event named `name`.
fn event_unix_ms(caller: &callbox_testkit::PyPeer, name: &str) -> Option<f64> {
    event_where(caller, name, "", "")
}

struct Setup {
    to_caller: Vec<f64>,
    to_box: Vec<f64>,
    /// Per call, ms from the start (invite or press) to what the caller saw: the box
    /// joined the room, its video track published, the caller subscribed to it, and its
    /// first frame decoded ([`STAGES`]).
    stages: Vec<[f64; 4]>,
    /// Per call, ms from the start to the caller's own `connected` (its room join done,
    /// its subscriber transport up); negative with the manual policy (it joined while
    /// the box rang).
    caller_connected: Vec<f64>,
}

/// The caller's events that split set-up into stages: (event, a field that must match,
/// its value, the stage's name in the report).
const STAGES: [(&str, &str, &str, &str); 4] = [
    (
        "participant_connected",
        "participant",
        "box1",
        "box_joined_room",
    ),
    ("track_published", "kind", "2", "box_video_published"),
    ("remote_track", "kind", "video", "caller_subscribed"),
    ("first_video_frame", "", "", "first_frame_decoded"),
];

/// The `unix_ms` of the caller's first event named `name` whose `field` is `value`
/// (compared as text; any when `field` is empty).
fn event_where(
    caller: &callbox_testkit::PyPeer,
    name: &str,
    field: &str,
    value: &str,
) -> Option<f64> {
    caller
        .events()
        .iter()
        .find(|e| {
            e["event"] == name
                && (field.is_empty()
                    || e[field]
                        .as_str()
                        .map_or_else(|| e[field].to_string(), str::to_owned)
                        == value)
        })
        .and_then(|e| e["unix_ms"].as_f64())
}

/// `n` calls. `manual = false`: answered by themselves, timed from the invite;
/// `true`: ringing until the call button, timed from the press. Each side's first frame.
fn setup(n: usize, manual: bool, keep_log: Option<&std::path::Path>) -> Setup {
    let extra = if manual {
        "[call]\nanswer = \"manual\"\n"
    } else {
        ""
    };
    let w = World::with_online_box("", extra);
    let mut s = Setup {
        to_caller: vec![],
        to_box: vec![],
        stages: vec![],
        caller_connected: vec![],
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
        let at =
            STAGES.map(|(e, f, v, _)| event_where(&caller, e, f, v).map_or(f64::NAN, |t| t - from));
        s.stages.push(at);
        s.caller_connected
            .push(event_unix_ms(&caller, "connected").map_or(f64::NAN, |t| t - from));
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
    if let Some(path) = keep_log {
        std::fs::write(path, w.daemon_log()).expect("write the box's log");
    }
    s
}

/// `n` calls placed from the hub's caller web app (`livekit-client` 2.23.0 in Debian's
/// headless chromium, [`support::browser::Browser`]) to the box, which answers by itself:
/// ms from the page's invite POST to the first frame of the box on the page's screen
/// (both on the page's clock: `callboxDebug.setup`). The web app uses one peer
/// connection for sending and receiving (the JS SDK's default), the Python SDK peer of
/// [`setup`] two, so the two set-ups meet livekit-server's negotiation differently
/// ([`caller_join`]). Per call: ms after the POST of each of [`WEB_STAGES`] (NaN when
/// the page did not see it). Keeps the box's and livekit-server's logs in `dir` as
/// `setup-web{,-livekit}.log`. `Err` says why the browser could not be used.
fn web_setup(n: usize, dir: &std::path::Path) -> Result<Vec<[f64; 5]>, String> {
    if !std::path::Path::new("/usr/bin/chromium").is_file() {
        return Err("no /usr/bin/chromium (make setup installs it)".into());
    }
    let w = World::with_online_box("", "");
    let db = w.dir.path().join("hub.sqlite3");
    let code = callbox_hub::signin_link_code(&db, "grandma", 1).map_err(|e| e.to_string())?;
    let mut page =
        support::browser::Browser::open(&w, "bench-page", &format!("/#signin={code}"), &[]);
    let secs = Duration::from_secs(30);
    page.run("presence box1 online 20", secs);
    let mut out = vec![];
    for _ in 0..n {
        page.run("call box1 video", secs);
        page.run("frames 1 20", secs);
        let d = page.run("debug", secs);
        let at = |k: &str| d["setup"][k].as_f64();
        let Some(placed) = at("placedUnixMs") else {
            return Err(format!("the page's debug has no set-up times: {d}"));
        };
        out.push(WEB_STAGES.map(|(k, _)| at(k).map_or(f64::NAN, |t| t - placed)));
        page.run("click hangup", secs);
        page.state("idle", 20);
        w.wait_status("idle", Duration::from_secs(20), |s| {
            s.state == "idle" && !s.media_active
        });
    }
    let _ = std::fs::write(dir.join("setup-web.log"), w.daemon_log());
    let _ = std::fs::copy(w.lk.log_path(), dir.join("setup-web-livekit.log"));
    Ok(out)
}

/// The web app's set-up stamps (`callboxDebug.setup`) and their names in the report.
const WEB_STAGES: [(&str, &str); 5] = [
    ("connectedUnixMs", "page_joined_room"),
    ("peerJoinedUnixMs", "box_joined_room"),
    ("videoPublishedUnixMs", "box_video_published"),
    ("videoSubscribedUnixMs", "page_subscribed"),
    ("firstFrameUnixMs", "first_frame_shown"),
];

/// Runs [`web_setup`] and prints it: invite → the page's first frame of the box (p50,
/// p95, each call) and the medians of its stages; the report's `setup_web`.
fn web_report(n: usize, dir: &std::path::Path) -> Value {
    if n == 0 {
        println!("bench: web app: not measured (CALL_BENCH_N=0)");
        return json!({"calls": 0});
    }
    let calls = match web_setup(n, dir) {
        Ok(calls) => calls,
        Err(why) => {
            println!("bench: web app: not measured: {why}");
            return json!({"not_measured": why});
        }
    };
    let first: Vec<f64> = calls.iter().map(|c| c[4]).collect();
    let (p50, p95) = p50_p95(&first);
    let mut stages = serde_json::Map::new();
    let mut text = vec![];
    for (k, (_, name)) in WEB_STAGES.iter().enumerate() {
        let xs: Vec<f64> = calls
            .iter()
            .map(|c| c[k])
            .filter(|x| x.is_finite())
            .collect();
        if !xs.is_empty() {
            let m = median(&xs);
            text.push(format!("{name} {m:.0}"));
            stages.insert(name.to_string(), json!({"p50_ms": m, "calls": xs.len()}));
        }
    }
    println!(
        "bench: web app (chromium): invite → its first frame of the box p50 {p50:.0} ms, \
         p95 {p95:.0} ms ({n} calls: {}); medians, ms after the invite: {}",
        first
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" "),
        text.join(", ")
    );
    for c in calls.iter().filter(|c| c[4] > p50 + 200.0) {
        println!(
            "bench: web app: a slow call, ms after the invite: {}",
            WEB_STAGES
                .iter()
                .zip(c)
                .map(|((_, name), t)| format!("{name} {t:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    json!({
        "invite_to_first_frame": {"p50_ms": p50, "p95_ms": p95, "samples_ms": first},
        "stages": stages,
    })
}

/// When the caller itself was in the room, against when the box's video was published
/// (ms; printed, and a `Value` for the report). livekit-server (v1.13.5, `pkg/rtc/transport.go`,
/// `negotiationFrequency`) offers a new track to a subscriber 10 ms after it appears
/// only when its last offer to that subscriber (sent as the caller joined) is 150 ms
/// old or more; otherwise 150 ms after it.
fn caller_join(name: &str, s: &Setup) -> Value {
    let finite = |xs: Vec<f64>| xs.into_iter().filter(|x| x.is_finite()).collect::<Vec<_>>();
    let joined = finite(s.caller_connected.clone());
    let gaps = finite(
        s.caller_connected
            .iter()
            .zip(&s.stages)
            .map(|(c, st)| st[1] - c)
            .collect(),
    );
    let (j50, g50) = (median(&joined), median(&gaps));
    let min = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let max = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    println!(
        "bench: {name}: the caller's own join (connected) at p50 {j50:.0} ms; the box's \
         video published {g50:.0} ms after it (p50; min {min:.0}, max {max:.0})"
    );
    json!({
        "caller_connected_p50_ms": j50,
        "to_box_video_published_p50_ms": g50,
        "to_box_video_published_min_ms": min,
        "to_box_video_published_max_ms": max,
        "to_box_video_published_samples_ms": gaps,
    })
}

/// The latencies (ms) in the caller's counts from index `from` on.
fn peer_latencies(counts: &Value, from: usize) -> Vec<f64> {
    counts["latency_ms"]
        .as_array()
        .map(|a| a.iter().skip(from).filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// The box's received stamps at `stage` (`<stage> <unix ms mod 2^32> <latency ms>`
/// lines, `media::stamp`) from the `from`th such line on.
fn box_latencies(file: &std::path::Path, stage: &str, from: usize) -> Vec<f64> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(stage) && l.as_bytes().get(stage.len()) == Some(&b' '))
        .skip(from)
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect()
}

/// A caller that stamps its frames, reads the stamps of what it receives, and stays in
/// the call until told to leave.
const STAMPED_CALLER: [&str; 6] = [
    "--latency-stamps",
    "--min-video-frames",
    "30",
    "--timeout",
    "300",
    "--no-hangup",
];

struct Cost {
    size: String,
    /// Glass-to-glass, ms: the box's camera → the caller's decoded frame.
    g2g_box_to_peer: Vec<f64>,
    /// The caller's capture → the frame the box's call screen composes.
    g2g_peer_to_box: Vec<f64>,
    /// The caller's capture → the box's decoder output (before the jitter buffer's
    /// sync and the screen).
    peer_to_box_decoded: Vec<f64>,
    /// The caller's libwebrtc receive stats of the box's video (`jitter_buffer_ms`,
    /// `decode_ms`, `processing_ms`: means per frame).
    peer_receiver: Value,
    box_cpu_s_per_min: f64,
    box_peak_rss_mib: f64,
    peer_cpu_s_per_min: f64,
    peer_peak_rss_mib: f64,
    box_fps_received: f64,
    peer_fps_received: f64,
    /// [`rss_breakdown`] of the box at the end of the sampled seconds.
    box_rss: Value,
}

/// A full-duplex call at `w`x`h`@30 for `secs` s: CPU and peak RSS of the box and of
/// the Python SDK caller; a CSV of the samples.
fn cost(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path) -> Cost {
    cost_with(w_px, h_px, secs, dir, &[])
}

/// [`cost`], with `env` added to the box's environment.
fn cost_with(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path, env: &[(&str, &str)]) -> Cost {
    let size = format!("{w_px}x{h_px}");
    let stamps = dir.join(format!("stamps-{size}.txt"));
    let _ = std::fs::remove_file(&stamps);
    let mut w = World::start();
    // CALL_BENCH_MEDIA: more `[media]` keys, to compare settings (e.g. jitter_buffer_ms).
    w.media_extra = format!(
        "width = {w_px}\nheight = {h_px}\n{}\n",
        std::env::var("CALL_BENCH_MEDIA").unwrap_or_default()
    );
    let cred = w.box_credential.clone();
    let mut box_env = vec![("CALLBOX_LATENCY_STAMPS", stamps.to_str().unwrap())];
    box_env.extend_from_slice(env);
    w.start_daemon_env(&cred, "", &box_env);
    w.wait_status("online", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    let mut args = vec!["--size", &size];
    args.extend(STAMPED_CALLER);
    let mut caller = w.dial("box1", &args);
    caller.expect_event("media_ok", Duration::from_secs(60));
    // Past the start-up (ICE, the first keyframes, bitrate ramp-up).
    std::thread::sleep(Duration::from_secs(3));
    let box_pid = w.daemon.as_ref().unwrap().id();
    let peer_pid = caller.pid().expect("the caller runs");
    let counts0 = support::caller_counts(&mut caller);
    let frames0 = (
        w.status().unwrap().video_frames_received,
        counts0["video_frames"].as_u64().unwrap_or(0),
    );
    let lat0 = (
        peer_latencies(&counts0, 0).len(),
        box_latencies(&stamps, "shown", 0).len(),
        box_latencies(&stamps, "decoded", 0).len(),
    );
    let s = sample(box_pid, peer_pid, secs);
    let box_rss = rss_breakdown(box_pid).unwrap_or(Value::Null);
    let t = s.secs;
    let counts1 = support::caller_counts(&mut caller);
    let frames1 = (
        w.status().unwrap().video_frames_received,
        counts1["video_frames"].as_u64().unwrap_or(0),
    );
    let g2g_box_to_peer = peer_latencies(&counts1, lat0.0);
    let g2g_peer_to_box = box_latencies(&stamps, "shown", lat0.1);
    let peer_to_box_decoded = box_latencies(&stamps, "decoded", lat0.2);
    // libwebrtc's per-frame means at the caller: its share of box → caller.
    let peer_receiver = counts1["video_receivers"]["box1"].clone();
    let csv = format!(
        "t_s,box_cpu_pct,box_rss_mib,peer_cpu_pct,peer_rss_mib\n{}",
        s.csv
    );
    std::fs::write(dir.join(format!("cost-{size}.csv")), csv).unwrap();
    support::hang_up(&w, caller);
    Cost {
        size,
        g2g_box_to_peer,
        g2g_peer_to_box,
        peer_to_box_decoded,
        peer_receiver,
        box_cpu_s_per_min: s.a_cpu_s_per_min,
        box_peak_rss_mib: s.a_peak_mib,
        peer_cpu_s_per_min: s.b_cpu_s_per_min,
        peer_peak_rss_mib: s.b_peak_mib,
        box_fps_received: (frames1.0 - frames0.0) as f64 / t,
        peer_fps_received: (frames1.1 - frames0.1) as f64 / t,
        box_rss,
    }
}

/// A stamped Python SDK caller (`size` `WxH`) that joins `room` as `identity` straight
/// on LiveKit, without the hub.
fn direct_peer(w: &World, room: &str, identity: &str, size: &str) -> callbox_testkit::PyPeer {
    let token = w.lk.token(room, identity);
    let mut args = vec![
        "dial",
        "--direct-url",
        &w.lk.ws_url,
        "--direct-token",
        &token,
        "--size",
        size,
    ];
    args.extend(STAMPED_CALLER);
    callbox_testkit::PyPeer::spawn("caller.py", args)
}

/// Glass-to-glass between two Python SDK peers in one room (no box) at `w`x`h`@30
/// over `secs` s: both directions pooled, ms. The anchor: what the SDK itself achieves.
fn peer_to_peer(w_px: u32, h_px: u32, secs: u64) -> Vec<f64> {
    let w = World::start();
    let size = format!("{w_px}x{h_px}");
    let room = format!("bench-p2p-{size}");
    let mut peers: Vec<_> = ["p2p-a", "p2p-b"]
        .into_iter()
        .map(|id| direct_peer(&w, &room, id, &size))
        .collect();
    for p in &peers {
        p.expect_event("media_ok", Duration::from_secs(60));
    }
    std::thread::sleep(Duration::from_secs(3));
    let from: Vec<usize> = peers
        .iter_mut()
        .map(|p| peer_latencies(&support::caller_counts(p), 0).len())
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    let mut all = vec![];
    for (p, from) in peers.iter_mut().zip(from) {
        all.extend(peer_latencies(&support::caller_counts(p), from));
        p.send_line("leave");
    }
    all
}

/// The floor child's first argument
/// (`call_bench --floor WxH URL PUB_ID PUB_TOKEN SUB_TOKEN COUNT_FILE`).
const FLOOR_ARG: &str = "--floor";

/// What a bare pipeline of the same media stack costs: this program re-run as a child
/// with [`FLOOR_ARG`] (see [`floor_child`]) publishing test sources at `w`x`h`@30 and
/// subscribing to a Python SDK peer that does the same job as in [`cost`], over `secs` s.
fn floor(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path) -> Floor {
    let w = World::start();
    let size = format!("{w_px}x{h_px}");
    let room = format!("bench-floor-{size}");
    let lk = callbox_hub::config::LiveKitConfig::new(&w.lk.ws_url, &w.lk.api_key, &w.lk.api_secret);
    let minter = callbox_hub::tokens::TokenMinter::new(&lk, Duration::from_secs(3600));
    let info = minter
        .join_info(
            "floor",
            &room,
            "floor",
            callbox_hub::auth::PrincipalKind::Device,
        )
        .expect("device tokens");
    let (publisher, subscriber) = (info.publisher.unwrap(), info.subscriber.unwrap());
    let count_file = dir.join(format!("floor-frames-{size}.txt"));
    let _ = std::fs::remove_file(&count_file);
    let received = || -> u64 {
        std::fs::read_to_string(&count_file)
            .ok()
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(0)
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([FLOOR_ARG, &size, &w.lk.ws_url, &publisher.identity])
        .args([&publisher.token, &subscriber.token])
        .arg(&count_file)
        .spawn()
        .expect("re-run the bench as the floor pipeline");
    let mut peer = direct_peer(&w, &room, "floor-peer", &size);
    peer.expect_event("media_ok", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    let peer_pid = peer.pid().expect("the peer runs");
    let frames = |peer: &mut callbox_testkit::PyPeer| {
        let c = support::caller_counts(peer);
        (received(), c["video_frames"].as_u64().unwrap_or(0))
    };
    let frames0 = frames(&mut peer);
    let s = sample(child.id(), peer_pid, secs);
    let rss = rss_breakdown(child.id()).unwrap_or(Value::Null);
    let frames1 = frames(&mut peer);
    let csv = format!(
        "t_s,floor_cpu_pct,floor_rss_mib,peer_cpu_pct,peer_rss_mib\n{}",
        s.csv
    );
    std::fs::write(dir.join(format!("floor-{size}.csv")), csv).unwrap();
    peer.send_line("leave");
    let _ = child.kill();
    let _ = child.wait();
    Floor {
        cpu_s_per_min: s.a_cpu_s_per_min,
        peak_rss_mib: s.a_peak_mib,
        fps_received: frames1.0.saturating_sub(frames0.0) as f64 / s.secs,
        peer_cpu_s_per_min: s.b_cpu_s_per_min,
        peer_fps_received: frames1.1.saturating_sub(frames0.1) as f64 / s.secs,
        rss,
    }
}

/// The floor's figures over the sampled seconds of its call.
struct Floor {
    cpu_s_per_min: f64,
    peak_rss_mib: f64,
    /// The peer's video as the floor's `fakesink` got it, fps.
    fps_received: f64,
    peer_cpu_s_per_min: f64,
    /// The floor's video as the Python SDK peer decoded it, fps.
    peer_fps_received: f64,
    /// [`rss_breakdown`] of the floor at the end of the sampled seconds.
    rss: Value,
}

/// The floor itself: the `gst-launch-1.0` line below, with GStreamer's own
/// `livekitwebrtcsink`/`livekitwebrtcsrc` (gst-plugins-rs, registered statically as in
/// the daemon) and nothing of ours: no call screen, echo canceller, mixer or stamps.
/// Each remote track goes to a `fakesink` that syncs to the clock. Runs until killed.
fn floor_child(args: &[String]) {
    use gst::prelude::*;
    let [size, url, publisher, pub_token, sub_token, count_file] = args else {
        panic!("usage: call_bench --floor WxH URL PUB_ID PUB_TOKEN SUB_TOKEN COUNT_FILE");
    };
    let (w, h) = size.split_once('x').expect("WxH");
    gst::init().expect("gst init");
    gstrswebrtc::plugin_register_static().expect("register gst-plugin-webrtc");
    // video-codecs is set below (an array property), shown here as gst-launch takes it.
    let line = format!(
        "livekitwebrtcsink name=pub video-caps=video/x-h264 audio-caps=audio/x-opus \
         videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate=30/1 ! pub. \
         audiotestsrc is-live=true ! pub. \
         livekitwebrtcsrc name=sub video-codecs=<H264>"
    );
    eprintln!("bench floor: gst-launch-1.0 {line}, each src pad ! queue ! fakesink sync=true");
    let pipeline = gst::parse::launch(&line.replace(" video-codecs=<H264>", ""))
        .expect("the floor's pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let signaller = |name: &str| {
        pipeline
            .by_name(name)
            .expect("element")
            .property::<gst::glib::Object>("signaller")
    };
    let (ps, ss) = (signaller("pub"), signaller("sub"));
    ps.set_property("ws-url", url);
    ps.set_property("auth-token", pub_token);
    ss.set_property("ws-url", url);
    ss.set_property("auth-token", sub_token);
    ss.set_property("excluded-producer-peer-ids", gst::Array::new([publisher]));
    // livekitwebrtcsrc 0.15 on GStreamer 1.22 answers with the first of its
    // `video-codecs` only (VP8); the Python SDK peer publishes H.264, as the box does.
    pipeline
        .by_name("sub")
        .unwrap()
        .set_property("video-codecs", gst::Array::new(["H264"]));
    // livekit-server listens on loopback only here; libnice leaves loopback out of its
    // candidates unless told (the daemon does the same with `media.ice_local_addresses`).
    let loopback = |webrtcbin: &gst::Element| {
        let agent = webrtcbin.property::<gst::glib::Object>("ice-agent");
        agent.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
    };
    pipeline.connect("deep-element-added", false, move |args| {
        let element = args[2].get::<gst::Element>().ok()?;
        if element.factory().is_some_and(|f| f.name() == "webrtcbin") {
            loopback(&element);
        }
        None
    });
    let pub_sink = pipeline.by_name("pub").unwrap();
    pub_sink.connect("consumer-added", false, move |args| {
        if let Some(webrtcbin) = args.get(2).and_then(|v| v.get::<gst::Element>().ok()) {
            loopback(&webrtcbin);
        }
        None
    });
    let weak = pipeline.downgrade();
    let video = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = video.clone();
    pipeline
        .by_name("sub")
        .unwrap()
        .connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let bin = gst::parse::bin_from_description("queue ! fakesink sync=true", true).unwrap();
            pipeline.add(&bin).unwrap();
            let sink = bin.static_pad("sink").unwrap();
            eprintln!(
                "bench floor: remote pad {} {:?}",
                pad.name(),
                pad.current_caps()
            );
            if pad.name().starts_with("video") {
                let n = counted.clone();
                sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    gst::PadProbeReturn::Ok
                });
            }
            pad.link(&sink).unwrap();
            bin.sync_state_with_parent().unwrap();
        });
    let file = count_file.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let n = video.load(std::sync::atomic::Ordering::Relaxed);
            let _ = std::fs::write(&file, format!("{n}\n"));
        }
    });
    pipeline.set_state(gst::State::Playing).expect("PLAYING");
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Latency(_) => {
                let _ = pipeline.recalculate_latency();
            }
            gst::MessageView::Error(e) => panic!("bench floor: {} ({:?})", e.error(), e.debug()),
            _ => {}
        }
    }
}

/// CPU and peak RSS of two processes over `secs` s, sampled every 500 ms.
struct Samples {
    a_cpu_s_per_min: f64,
    a_peak_mib: f64,
    b_cpu_s_per_min: f64,
    b_peak_mib: f64,
    secs: f64,
    /// `t_s,a_cpu_pct,a_rss_mib,b_cpu_pct,b_rss_mib` lines.
    csv: String,
}

fn sample(a: u32, b: u32, secs: u64) -> Samples {
    let (a0, _) = cpu_rss(a).unwrap();
    let (b0, _) = cpu_rss(b).unwrap();
    let mut csv = String::new();
    let (mut a_peak, mut b_peak) = (0u64, 0u64);
    let t0 = Instant::now();
    let (mut last_t, mut last_a, mut last_b) = (0.0, a0, b0);
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        let t = t0.elapsed().as_secs_f64();
        let (ac, ar) = cpu_rss(a).unwrap();
        let (bc, br) = cpu_rss(b).unwrap();
        a_peak = a_peak.max(ar);
        b_peak = b_peak.max(br);
        let dt = t - last_t;
        csv.push_str(&format!(
            "{t:.2},{:.1},{:.1},{:.1},{:.1}\n",
            (ac - last_a) / dt * 100.0,
            ar as f64 / 1024.0,
            (bc - last_b) / dt * 100.0,
            br as f64 / 1024.0
        ));
        (last_t, last_a, last_b) = (t, ac, bc);
    }
    let t = t0.elapsed().as_secs_f64();
    Samples {
        a_cpu_s_per_min: (last_a - a0) / t * 60.0,
        a_peak_mib: a_peak as f64 / 1024.0,
        b_cpu_s_per_min: (last_b - b0) / t * 60.0,
        b_peak_mib: b_peak as f64 / 1024.0,
        secs: t,
        csv,
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

/// Prints the recovery figure and returns it for the report.
fn recovery_report((to_box, to_caller, ended): &(Vec<f64>, Vec<f64>, usize)) -> Value {
    let runs = to_box.len() + ended;
    if runs == 0 {
        println!(
            "bench: recovery: not measured (CALL_BENCH_CUTS=0, or no network namespace: run as root with nftables)"
        );
        return json!({"cuts": 0});
    }
    if to_box.is_empty() {
        println!("bench: recovery: all {runs} network cuts of 5 s ended the call");
        return json!({"cut_s": 5, "cuts": runs, "calls_ended": ended});
    }
    let (b50, b95) = p50_p95(to_box);
    let (c50, c95) = p50_p95(to_caller);
    let worst = |xs: &[f64]| xs.iter().copied().fold(0.0, f64::max);
    println!(
        "bench: recovery after a 5 s network cut mid-call ({runs} cuts, {ended} ended the call): \
         media back at the box p50 {b50:.0} ms, max {:.0} ms; at the caller p50 {c50:.0} ms, max {:.0} ms",
        worst(to_box),
        worst(to_caller)
    );
    json!({
        "cut_s": 5, "cuts": runs, "calls_ended": ended,
        "network_return_to_box_media": {"p50_ms": b50, "p95_ms": b95, "samples_ms": to_box},
        "network_return_to_caller_media": {"p50_ms": c50, "p95_ms": c95, "samples_ms": to_caller},
    })
}

/// Recovery: `runs` 5 s cuts of the box's network mid-call (the fault matrix's
/// [`support::netfault::cut_mid_call`], the box in a network namespace of its own):
/// ms from the network's return to the box's first new frame of the caller (its status
/// polled every 20 ms) and to the caller's 5th new frame of the box (polled every
/// 50 ms). Empty where no namespace can be made (not root, no nftables).
fn recovery(runs: usize) -> (Vec<f64>, Vec<f64>, usize) {
    use support::netfault::{Outcome, cut_mid_call, world_in_netns};
    let (mut to_box, mut to_caller, mut ended) = (vec![], vec![], 0);
    if runs == 0 {
        return (to_box, to_caller, ended);
    }
    let Some(w) = world_in_netns("call_bench recovery") else {
        return (to_box, to_caller, ended);
    };
    for _ in 0..runs {
        let cut = cut_mid_call(&w, Duration::from_secs(5));
        // Both sides' logs, to read where the time goes (the last run's).
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
        let _ = std::fs::copy(w.lk.log_path(), dir.join("recovery-livekit.log"));
        let _ = std::fs::copy(&w.daemon_log, dir.join("recovery-box.log"));
        match cut {
            Outcome::MediaBack { box_ms, caller_ms } => {
                to_box.push(box_ms as f64);
                to_caller.push(caller_ms as f64);
            }
            Outcome::Ended { .. } => ended += 1,
        }
    }
    (to_box, to_caller, ended)
}

/// The value of `key=(type)value` in a GStreamer tracer record (`None`: not in it).
fn tracer_field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    let start = record.find(&format!(" {key}=("))? + key.len() + 3;
    let rest = &record[start..];
    let value = &rest[rest.find(')')? + 1..];
    Some(value.split([',', ';']).next()?.trim_matches('"'))
}

/// Median and count of each series, ms; those under `min_ms` or with fewer than 20
/// buffers are left out; largest first.
fn medians(
    series: std::collections::BTreeMap<String, Vec<f64>>,
    min_ms: f64,
) -> Vec<(String, f64, usize)> {
    let mut out: Vec<(String, f64, usize)> = series
        .into_iter()
        .filter(|(_, xs)| xs.len() >= 20)
        .map(|(k, xs)| {
            let (p50, _) = p50_p95(&xs);
            (k, p50, xs.len())
        })
        .filter(|(_, p50, _)| *p50 >= min_ms)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Where the box's latency goes, by GStreamer element: one stamped call at `w`x`h`
/// with GStreamer's latency tracer in the box (`GST_TRACERS=latency(flags=pipeline+
/// element)`, its records in `target/bench/trace-WxH.log`). `pipelines`: from each
/// source to each sink of a pipeline; `elements`: from a buffer entering an element
/// to it leaving (a queue's is the time buffers wait in it); medians, ms. The tracer
/// costs CPU, so this call is not one of the cost figures' calls.
fn latency_stages(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path) -> Value {
    let log = dir.join(format!("trace-{w_px}x{h_px}.log"));
    let _ = std::fs::remove_file(&log);
    let c = cost_with(
        w_px,
        h_px,
        secs,
        dir,
        &[
            ("GST_TRACERS", "latency(flags=pipeline+element)"),
            ("GST_DEBUG", "GST_TRACER:7"),
            ("GST_DEBUG_NO_COLOR", "1"),
            ("GST_DEBUG_FILE", log.to_str().unwrap()),
        ],
    );
    let mut pipelines = std::collections::BTreeMap::<String, Vec<f64>>::new();
    let mut elements = std::collections::BTreeMap::<String, Vec<f64>>::new();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for line in text.lines() {
        let ms = |r: &str| {
            tracer_field(r, "time")
                .and_then(|t| t.parse::<f64>().ok())
                .map(|ns| ns / 1e6)
        };
        if let Some(i) = line.find(":: latency, ") {
            let r = &line[i + 2..];
            if let (Some(from), Some(to), Some(ms)) = (
                tracer_field(r, "src-element"),
                tracer_field(r, "sink-element"),
                ms(r),
            ) {
                pipelines
                    .entry(format!("{from} → {to}"))
                    .or_default()
                    .push(ms);
            }
        } else if let Some(i) = line.find(":: element-latency, ") {
            let r = &line[i + 2..];
            if let (Some(element), Some(ms)) = (tracer_field(r, "element"), ms(r)) {
                elements.entry(element.to_owned()).or_default().push(ms);
            }
        }
    }
    let as_json = |rows: Vec<(String, f64, usize)>, what: &str| {
        for (k, p50, n) in &rows {
            println!(
                "bench: {w_px}x{h_px} latency tracer, {what} {k}: median {p50:.1} ms ({n} buffers)"
            );
        }
        rows.into_iter()
            .map(|(k, p50, n)| json!({"what": k, "median_ms": p50, "buffers": n}))
            .collect::<Vec<_>>()
    };
    let (g50, _, _) = percentiles(&c.g2g_box_to_peer);
    println!(
        "bench: {w_px}x{h_px} latency tracer call: box → Python SDK peer p50 {g50:.0} ms (with the tracer on)"
    );
    json!({
        "size": format!("{w_px}x{h_px}"),
        "pipelines": as_json(medians(pipelines, 0.0), "pipeline"),
        "elements": as_json(medians(elements, 0.3), "element"),
        "peer_receiver_of_box": c.peer_receiver,
    })
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
