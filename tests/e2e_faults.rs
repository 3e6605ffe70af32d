//! The fault matrix, part 1: faults of the box's own parts and of the services it
//! talks to, with the real stack (livekit-server, the hub, the daemon binary, Python
//! SDK callers). Each case prints a `figure:` line with what it measured.
//! Network faults (cuts, loss, delay) are in `e2e_netfaults.rs`.

mod support;

use std::time::{Duration, Instant};

use callbox_testkit::{PyPeer, report};
use support::*;

/// Waits until the caller has decoded `more` frames beyond `from`; the wait.
fn caller_video_grows(caller: &mut PyPeer, from: u64, more: u64, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let now = caller_video(caller);
        if now >= from + more {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "the caller's video stayed at {now} frames (from {from}) for {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The media thread is wedged (it stops answering inside a `Start`), then, on the
/// rebuilt thread, dies (a panic). Each time the watchdog rebuilds media and the call
/// rejoins; the third thread carries the call, and a second call needs no restart.
#[test]
fn a_wedged_then_dead_media_thread_is_rebuilt_and_the_call_comes_back() {
    let mut w = World::start();
    w.media_extra = "watchdog_ms = 2000".into();
    let cred = w.box_credential.clone();
    w.start_daemon_env(
        &cred,
        "",
        &[("FAILPOINTS", "media-start=1*sleep(15000)->1*panic")],
    );
    w.wait_status("online", Duration::from_secs(20), |s| s.hub_online);
    let t0 = Instant::now();
    let caller = w.dial(
        "box1",
        &["--min-video-frames", "30", "--timeout", "90", "--no-hangup"],
    );
    let back = w.wait_status(
        "in call on the third media thread",
        Duration::from_secs(60),
        |s| s.state == "in_call" && s.media_restarts == 2 && s.video_frames_received >= 30,
    );
    let recovered = t0.elapsed();
    caller.expect_event("media_ok", Duration::from_secs(30));
    let log = w.daemon_log();
    assert!(
        log.contains("the media thread stopped answering for"),
        "the wedge is named in the log"
    );
    assert!(
        log.contains("the media thread died"),
        "the death is named in the log"
    );
    assert!(back.room.is_some(), "in the call's room");
    // The dead thread's pipelines (the screen, the ringtone) went to NULL as its
    // stack unwound; disposed in PLAYING, they once took the daemon down in CI.
    assert!(
        !log.contains("Trying to dispose element"),
        "a pipeline was dropped in PLAYING:\n{}",
        log.lines()
            .filter(|l| l.contains("Trying to dispose"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    report!(
        "faults: media thread wedged (watchdog 2 s) then dead: call on media again {} ms \
         after the invitation, media_restarts = {}",
        recovered.as_millis(),
        back.media_restarts
    );
    hang_up(&w, caller);

    let caller = call_box(&w);
    let s = w.status().unwrap();
    assert_eq!(s.media_restarts, 2, "the next call needs no rebuild");
    hang_up(&w, caller);
}

/// A panic in a GStreamer callback (the first remote track's `pad-added`) costs that
/// track, not the daemon: the call goes on, the panic is counted and logged, and the
/// daemon is still there after the call.
#[test]
fn a_panicking_gstreamer_callback_costs_its_track_not_the_daemon() {
    let mut w = World::start();
    let cred = w.box_credential.clone();
    w.start_daemon_env(&cred, "", &[("FAILPOINTS", "media-pad-added=1*panic")]);
    w.wait_status("online", Duration::from_secs(20), |s| s.hub_online);
    let caller = w.dial(
        "box1",
        &["--min-video-frames", "30", "--timeout", "90", "--no-hangup"],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    let s = w.wait_status(
        "in call with the other track playing",
        Duration::from_secs(30),
        |s| {
            s.state == "in_call"
                && s.media_callback_panics == 1
                && (s.video_frames_received > 0 || s.audio_buffers_received > 0)
        },
    );
    assert!(
        w.daemon_log().contains("a media callback panicked"),
        "the panic is logged with its callback"
    );
    report!(
        "faults: panic in pad-added: call went on (video frames {}, audio buffers {}), \
         panics caught {}",
        s.video_frames_received,
        s.audio_buffers_received,
        s.media_callback_panics
    );
    hang_up(&w, caller);
    let daemon = w.daemon.as_mut().unwrap();
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );
}

/// An edge that dies (the buttons' task panics on a press) makes the daemon exit
/// non-zero with a line naming it, so that systemd restarts it; it removes its
/// control socket on the way out.
#[test]
fn an_edge_that_dies_makes_the_daemon_exit_non_zero() {
    let mut w = World::start();
    let cred = w.box_credential.clone();
    w.start_daemon_env(&cred, "", &[("FAILPOINTS", "edge-buttons=panic")]);
    w.wait_status("online", Duration::from_secs(20), |s| s.hub_online);
    assert_eq!(w.ctl(&["press", "call"])["ok"], true);
    let t0 = Instant::now();
    let daemon = w.daemon.as_mut().unwrap();
    let status = loop {
        if let Some(st) = daemon.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the daemon did not exit after its buttons edge died"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "exit status {status}: must be non-zero");
    let log = w.daemon_log();
    assert!(
        log.contains("the buttons edge panicked"),
        "the log names the edge:\n{log}"
    );
    assert!(!w.socket.exists(), "the control socket is removed");
    report!(
        "faults: buttons edge panicked: daemon exited ({status}) {} ms after the press",
        t0.elapsed().as_millis()
    );
}

/// The daemon runs in-process as well as as a binary: `app::run` takes its shutdown
/// from the caller (mini-redis' shape). It answers a call, then stops when told, hangs
/// up first and removes its socket.
#[test]
fn the_daemon_runs_in_process_until_its_caller_shuts_it_down() {
    let w = World::start();
    let path = w.write_config(&w.box_credential, "");
    let config = callbox::config::Config::load(&path).expect("the test config loads");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Its own runtime, as `main` gives it.
    let daemon = std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(callbox::app::run(config, async {
                let _ = stopped.await;
            }))
    });
    w.wait_status("online", Duration::from_secs(20), |s| s.hub_online);
    let caller = call_box(&w);
    stop.send(()).unwrap();
    let t0 = Instant::now();
    while !daemon.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "run did not return within 20 s of the shutdown"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let result = daemon.join().expect("the daemon thread did not panic");
    assert!(result.is_ok(), "a clean shutdown: {result:?}");
    caller.expect_event("call_ended", Duration::from_secs(15));
    assert!(!w.socket.exists(), "the control socket is removed");
}

/// The daemon is SIGKILLed mid-call: the hub ends the call (no box left), and the
/// daemon started again comes back idle and takes the next call.
#[test]
fn a_daemon_killed_mid_call_leaves_no_call_behind_and_comes_back_idle() {
    let mut w = World::with_online_box("", "");
    let caller = call_box(&w);
    w.daemon.as_mut().unwrap().kill().unwrap();
    let t0 = Instant::now();
    let _ = w.daemon.as_mut().unwrap().wait();
    // The hub notices the box's WebSocket gone and LiveKit the participant gone.
    let ended = caller
        .wait_event("call_ended", Duration::from_secs(60))
        .is_some();
    let ended_after = t0.elapsed();
    let active = w.get("/api/calls/active");
    assert!(
        ended,
        "the caller was told the call ended; active calls: {active}"
    );
    assert_eq!(
        active.as_array().map_or(usize::MAX, |a| a.len()),
        0,
        "no call left on the hub: {active}"
    );
    let cred = w.box_credential.clone();
    let t1 = Instant::now();
    w.start_daemon(&cred);
    w.wait_status("idle and online", Duration::from_secs(20), |s| {
        s.state == "idle" && s.hub_online
    });
    let online_after = t1.elapsed();
    report!(
        "faults: daemon SIGKILLed mid-call: hub ended the call {} ms later; restarted \
         daemon idle and online in {} ms",
        ended_after.as_millis(),
        online_after.as_millis()
    );
    let caller = call_box(&w);
    hang_up(&w, caller);
}

/// The caller vanishes (SIGKILL: no hang-up, no leave): the box is idle again within
/// LiveKit's participant timeout.
#[test]
fn a_caller_that_vanishes_leaves_the_box_idle() {
    let w = World::with_online_box("", "");
    let mut caller = call_box(&w);
    caller.kill();
    let t0 = Instant::now();
    w.wait_status("idle", Duration::from_secs(60), |s| s.state == "idle");
    report!(
        "faults: caller vanished (SIGKILL): box idle {} ms later",
        t0.elapsed().as_millis()
    );
}

/// The hub stops mid-call (as systemd stops it) and comes back 3 s later: the call's
/// media flows all along, and the box is back online soon after the hub is.
#[test]
fn a_hub_restart_mid_call_keeps_the_media_and_the_box_reconnects() {
    let mut w = World::with_online_box("", "");
    let mut caller = call_box(&w);
    w.stop_hub();
    w.wait_status("offline", Duration::from_secs(15), |s| !s.hub_online);
    let box_before = w.status().unwrap().video_frames_received;
    let caller_before = caller_video(&mut caller);
    std::thread::sleep(Duration::from_secs(3));
    let during = w.status().unwrap();
    let caller_during = caller_video(&mut caller);
    assert_eq!(during.state, "in_call", "the call goes on without the hub");
    assert!(
        during.video_frames_received > box_before + 30,
        "the box keeps receiving video ({box_before} → {})",
        during.video_frames_received
    );
    assert!(
        caller_during > caller_before + 30,
        "the caller keeps receiving video ({caller_before} → {caller_during})"
    );
    w.restart_hub();
    let t0 = Instant::now();
    w.wait_status("online again", Duration::from_secs(15), |s| s.hub_online);
    let online_after = t0.elapsed();
    report!(
        "faults: hub stopped 3 s mid-call: media kept flowing (box +{} frames, caller +{}); \
         box online {} ms after the hub returned",
        during.video_frames_received - box_before,
        caller_during - caller_before,
        online_after.as_millis()
    );
    hang_up(&w, caller);
}

/// The hub stops while the box rings and returns 2 s later: the invitation still rings
/// and can be answered, or ends cleanly; no state is stuck.
#[test]
fn a_hub_restart_while_ringing_leaves_a_ringing_box_answerable() {
    let mut w = World::with_online_box("", "");
    // The neighbour may ring box1 but is not trusted: it rings for a person.
    let caller = w.dial_as(
        &w.neighbour.clone(),
        "box1",
        &["--min-video-frames", "30", "--timeout", "60", "--no-hangup"],
    );
    w.wait_status("ringing", Duration::from_secs(20), |s| s.state == "ringing");
    w.stop_hub();
    std::thread::sleep(Duration::from_secs(2));
    w.restart_hub();
    w.wait_status("online again", Duration::from_secs(15), |s| s.hub_online);
    let s = w.status().unwrap();
    assert_eq!(s.state, "ringing", "still ringing after the hub's return");
    assert_eq!(w.ctl(&["answer"])["ok"], true);
    caller.expect_event("media_ok", Duration::from_secs(60));
    w.wait_status("in call", Duration::from_secs(30), |s| s.state == "in_call");
    report!("faults: hub stopped 2 s while ringing: the box still rang and the answer worked");
    hang_up(&w, caller);
}

/// livekit-server is killed mid-call and started again (its rooms gone): the box
/// rejoins with fresh tokens and media flows again both ways.
#[test]
fn a_livekit_restart_mid_call_makes_the_box_rejoin() {
    let mut w = World::with_online_box("", "");
    let mut caller = call_box(&w);
    w.lk.kill();
    std::thread::sleep(Duration::from_secs(2));
    w.lk.restart();
    let t0 = Instant::now();
    let before = w.status().unwrap().video_frames_received;
    let s = w.wait_status("in call with frames again", Duration::from_secs(60), |s| {
        s.state == "in_call"
            && s.media_active
            && s.video_frames_received > 0
            && s.video_frames_received != before
    });
    let box_back = t0.elapsed();
    let from = caller_video(&mut caller);
    let caller_back = caller_video_grows(&mut caller, from, 30, Duration::from_secs(60));
    report!(
        "faults: livekit-server restarted mid-call: box receiving again {} ms after the \
         server was back (state {}), caller receiving again {} ms after that",
        box_back.as_millis(),
        s.state,
        caller_back.as_millis()
    );
    hang_up(&w, caller);
}

/// The hub flaps (up 1 s, down 1 s) for a minute: the box does not storm it. Its
/// reconnects are counted; once the hub stays up, the box is back online.
#[test]
fn a_flapping_hub_gets_no_reconnect_storm() {
    let mut w = World::with_online_box("", "");
    let log_before = w.daemon_log().len();
    let t0 = Instant::now();
    let mut cycles = 0;
    while t0.elapsed() < Duration::from_secs(60) {
        w.stop_hub();
        std::thread::sleep(Duration::from_secs(1));
        w.restart_hub();
        std::thread::sleep(Duration::from_secs(1));
        cycles += 1;
    }
    let t1 = Instant::now();
    w.wait_status("online", Duration::from_secs(15), |s| s.hub_online);
    let online_after = t1.elapsed();
    let log = w.daemon_log();
    let window = &log[log_before..];
    let connects = window.matches("connected to hub").count();
    let failures = window.matches("hub unreachable").count();
    let attempts = connects + failures;
    let secs = t0.elapsed().as_secs_f64();
    report!(
        "faults: hub flapping {cycles} cycles in {secs:.0} s: {attempts} connection attempts \
         ({connects} connected, {failures} refused), {:.2} a second; online {} ms after it \
         stayed up",
        attempts as f64 / secs,
        online_after.as_millis()
    );
    // Back-off from 200 ms to the test's 2 s cap, reset only after a 10 s connection:
    // at most about one attempt a second, where resetting on every connect would make
    // one every 200-400 ms while the hub is down.
    assert!(
        (attempts as f64) <= secs * 1.2,
        "{attempts} attempts in {secs:.0} s is a reconnect storm"
    );
}
