//! Call set-up: invite (or answer press) → first frames, by stage, from the Python
//! SDK caller's events and from the caller web app's own stamps in chromium.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, World};
use crate::{median, p50_p95, unix_ms};

/// The `unix_ms` of the caller's first event named `name`.
fn event_unix_ms(caller: &callbox_testkit::PyPeer, name: &str) -> Option<f64> {
    event_where(caller, name, "", "")
}

pub(crate) struct Setup {
    pub(crate) to_caller: Vec<f64>,
    pub(crate) to_box: Vec<f64>,
    /// Per call, ms from the start (invite or press) to what the caller saw: the box
    /// joined the room, its video track published, the caller subscribed to it, and its
    /// first frame decoded ([`STAGES`]).
    pub(crate) stages: Vec<[f64; 4]>,
    /// Per call, ms from the start to the caller's own `connected` (its room join done,
    /// its subscriber transport up); negative with the manual policy (it joined while
    /// the box rang).
    pub(crate) caller_connected: Vec<f64>,
}

/// The caller's events that split set-up into stages: (event, a field that must match,
/// its value, the stage's name in the report).
pub(crate) const STAGES: [(&str, &str, &str, &str); 4] = [
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
pub(crate) fn setup(n: usize, manual: bool, keep_log: Option<&std::path::Path>) -> Setup {
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
pub(crate) fn web_report(n: usize, dir: &std::path::Path) -> Value {
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
pub(crate) fn caller_join(name: &str, s: &Setup) -> Value {
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
