//! Cost of a full-duplex call (CPU, peak RSS) and its glass-to-glass latency both
//! ways, the box against a Python SDK peer, and the peer-to-peer anchor.

use std::time::Duration;

use serde_json::Value;

use crate::proc::{rss_breakdown, sample};
use crate::support::{self, World};

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

pub(crate) struct Cost {
    pub(crate) size: String,
    /// Glass-to-glass, ms: the box's camera → the caller's decoded frame.
    pub(crate) g2g_box_to_peer: Vec<f64>,
    /// The caller's capture → the frame the box's call screen composes.
    pub(crate) g2g_peer_to_box: Vec<f64>,
    /// The caller's capture → the box's decoder output (before the jitter buffer's
    /// sync and the screen).
    pub(crate) peer_to_box_decoded: Vec<f64>,
    /// The caller's libwebrtc receive stats of the box's video (`jitter_buffer_ms`,
    /// `decode_ms`, `processing_ms`: means per frame).
    pub(crate) peer_receiver: Value,
    pub(crate) box_cpu_s_per_min: f64,
    pub(crate) box_peak_rss_mib: f64,
    pub(crate) peer_cpu_s_per_min: f64,
    pub(crate) peer_peak_rss_mib: f64,
    pub(crate) box_fps_received: f64,
    pub(crate) peer_fps_received: f64,
    /// [`rss_breakdown`] of the box at the end of the sampled seconds.
    pub(crate) box_rss: Value,
}

/// A full-duplex call at `w`x`h`@30 for `secs` s: CPU and peak RSS of the box and of
/// the Python SDK caller; a CSV of the samples.
pub(crate) fn cost(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path) -> Cost {
    cost_with(w_px, h_px, secs, dir, &[])
}

/// [`cost`], with `env` added to the box's environment.
pub(crate) fn cost_with(
    w_px: u32,
    h_px: u32,
    secs: u64,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> Cost {
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
pub(crate) fn direct_peer(
    w: &World,
    room: &str,
    identity: &str,
    size: &str,
) -> callbox_testkit::PyPeer {
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
pub(crate) fn peer_to_peer(w_px: u32, h_px: u32, secs: u64) -> Vec<f64> {
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
