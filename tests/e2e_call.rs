//! End to end, with only real parts: livekit-server on loopback, the hub on a temporary
//! SQLite file, the `callbox` daemon binary with test sources, and a remote caller
//! written with the LiveKit Python SDK.

mod support;

use std::time::{Duration, Instant};

use support::{RING_TIMEOUT_SECS, World};

/// Numbers of one call, for the summary line.
struct CallNumbers {
    caller_video: u64,
    caller_audio: u64,
    box_video_rx: u64,
    invite_to_first_frame_ms: u64,
}

/// One call: dial, both ends get media, optionally poke the box with bad frames, hang
/// up, box idle again.
fn one_call(w: &World, poke_with_bad_frames: bool) -> CallNumbers {
    let mut caller = w.dial(
        "box1",
        &["--min-video-frames", "60", "--timeout", "60", "--no-hangup"],
    );
    let first = caller.expect_event("first_video_frame", Duration::from_secs(60));
    let ok = caller.expect_event("media_ok", Duration::from_secs(60));
    let caller_video = ok["video_frames"].as_u64().unwrap();
    let caller_audio = ok["audio_frames"].as_u64().unwrap();
    assert!(
        caller_video >= 60,
        "caller decoded {caller_video} frames of the box"
    );
    assert!(caller_audio > 0, "caller heard nothing from the box");
    let call_id = ok["callId"]
        .as_str()
        .expect("media_ok names the call")
        .to_owned();

    let s = w.wait_status("30 received video frames", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 30
    });
    assert_eq!(s.call_id.as_deref(), Some(call_id.as_str()));
    assert_eq!(s.caller.as_deref(), Some("alice"));
    assert!(s.hub_online);
    assert!(
        s.video_frames_sent > 0 && s.audio_buffers_received > 0,
        "{s:?}"
    );

    if poke_with_bad_frames {
        let hub = w.hub.as_ref().unwrap();
        for frame in [
            "{this is not json",
            r#"{"type":"call_ended"}"#,
            r#"{"type":"call_teleported","callId":"x"}"#,
            r#"[1,2,3]"#,
        ] {
            assert_eq!(hub.send_raw("box1", frame), 1, "box1 is connected");
        }
        let before = w.status().unwrap().video_frames_received;
        let after = w.wait_status(
            "video still flowing after malformed frames",
            Duration::from_secs(10),
            |s| s.video_frames_received > before + 15,
        );
        assert_eq!(
            after.state, "in_call",
            "malformed frames must not end the call"
        );
        assert_eq!(after.call_id.as_deref(), Some(call_id.as_str()));
        assert!(
            after.hub_online,
            "malformed frames must not drop the hub link"
        );
        let log = w.daemon_log();
        assert!(log.contains("ignoring malformed hub message"), "logged");
        assert!(log.contains("ignoring unknown hub event type"), "logged");
    }

    // The box's video starts with keyframes of its own (`media::keyframe_start`): 1.5 s
    // into the call the caller has decoded more than the one a stream starts with.
    w.wait_status("1.5 s of video", Duration::from_secs(30), |s| {
        s.video_frames_received >= 45
    });
    caller.send_line("status");
    let status = caller.expect_event("status", Duration::from_secs(10));
    let receiver = &status["video_receivers"]["box1"];
    assert!(
        receiver["key_frames_decoded"].as_u64().unwrap_or(0) >= 3,
        "the caller decoded the box's start keyframes: {receiver}"
    );

    let box_video_rx = w.status().unwrap().video_frames_received;
    caller.send_line("hangup");
    caller.expect_event("hung_up", Duration::from_secs(15));
    assert_eq!(
        caller
            .wait_exit(Duration::from_secs(20))
            .map(|s| s.success()),
        Some(true)
    );
    w.wait_status("idle after hangup", Duration::from_secs(15), |s| {
        s.state == "idle" && s.call_id.is_none()
    });
    CallNumbers {
        caller_video,
        caller_audio,
        box_video_rx,
        invite_to_first_frame_ms: first["t_ms_since_invite"].as_u64().unwrap_or(0),
    }
}

#[test]
fn the_box_answers_two_calls_end_to_end() {
    let mut w = World::start();
    w.start_daemon(&w.box_credential.clone());
    let s = w.wait_status("online and idle", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    assert_eq!(s.calls_answered, 0);

    let first = one_call(&w, true);
    let second = one_call(&w, false);
    let s = w.status().unwrap();
    assert_eq!(s.calls_answered, 2);

    // Both calls are in the caller's history as ended, newest first.
    let history = w.get("/api/calls/history?limit=10");
    let statuses: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ended", "ended"], "{history}");

    for (n, c) in [(1, &first), (2, &second)] {
        callbox_testkit::report!(
            "e2e summary: call {n}: caller decoded {} video + {} audio frames from the box; box \
             decoded {} video frames from the caller; invite → caller's first frame {} ms",
            c.caller_video,
            c.caller_audio,
            c.box_video_rx,
            c.invite_to_first_frame_ms
        );
    }
}

#[test]
fn calling_an_unknown_identity_fails_with_a_clear_4xx() {
    let w = World::start();
    let mut caller = w.dial("nobody-here", &["--timeout", "20"]);
    let failed = caller.expect_event("invite_failed", Duration::from_secs(20));
    assert_eq!(failed["status"].as_u64(), Some(404), "{failed}");
    let body = failed["body"].to_string();
    assert!(
        body.contains("unknown_invitee") && body.contains("nobody-here"),
        "the error names the identity: {body}"
    );
    assert_eq!(
        caller
            .wait_exit(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(3)
    );
}

#[test]
fn a_call_to_an_offline_box_ends_as_missed() {
    let w = World::start();
    let mut caller = w.dial(
        "ghost-box",
        &["--watch-hub", "--timeout", "30", "--min-video-frames", "1"],
    );
    let invited = caller.expect_event("invited", Duration::from_secs(20));
    let call_id = invited["callId"].as_str().unwrap().to_owned();
    let ended = caller.expect_event(
        "call_ended",
        Duration::from_secs(RING_TIMEOUT_SECS as u64 + 15),
    );
    assert!(ended.to_string().contains("missed"), "{ended}");
    let history = w.get("/api/calls/history?limit=1");
    let call = &history[0];
    assert_eq!(call["callId"].as_str(), Some(call_id.as_str()));
    assert_eq!(call["status"].as_str(), Some("missed"), "{call}");
    assert_eq!(
        call["invitees"][0]["status"].as_str(),
        Some("missed"),
        "{call}"
    );
    let _ = caller.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_wrong_device_credential_is_reported_and_retried() {
    let mut w = World::start();
    w.start_daemon("not-the-right-credential");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = w.daemon_log();
        let rejections = log
            .matches("rejected the device credential (HTTP 401)")
            .count();
        if rejections >= 2 {
            assert!(
                log.contains(&w.hub_url.replace("http://", "ws://")),
                "names the URL"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no repeated 401 report in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = w.status().expect("daemon still running and answering");
    assert!(!s.hub_online);
    assert_eq!(s.state, "idle");
}

#[test]
fn the_box_hangs_up_when_the_caller_leaves_without_ending_the_call() {
    let mut w = World::start();
    w.start_daemon(&w.box_credential.clone());
    w.wait_status("online", Duration::from_secs(20), |s| s.hub_online);
    let mut caller = w.dial(
        "box1",
        &["--min-video-frames", "30", "--timeout", "60", "--no-hangup"],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    w.wait_status("in call", Duration::from_secs(30), |s| s.state == "in_call");
    // Drop out of the room (a closed browser tab): no POST /api/calls/end.
    caller.send_line("leave");
    let _ = caller.wait_exit(Duration::from_secs(20));
    let s = w.wait_status("idle after the caller left", Duration::from_secs(30), |s| {
        s.state == "idle"
    });
    assert!(s.hub_online);
    let history = w.get("/api/calls/history?limit=1");
    assert_eq!(history[0]["status"].as_str(), Some("ended"), "{history}");
    assert_eq!(
        history[0]["endReason"].as_str(),
        Some("participant_left"),
        "{history}"
    );
}

#[test]
fn the_box_rejoins_with_fresh_tokens_when_livekit_drops_it() {
    let mut w = World::start();
    w.start_daemon(&w.box_credential.clone());
    w.wait_status("online", Duration::from_secs(20), |s| s.hub_online);
    let mut caller = w.dial(
        "box1",
        &["--min-video-frames", "30", "--timeout", "90", "--no-hangup"],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    let s = w.wait_status("in call", Duration::from_secs(30), |s| s.state == "in_call");
    let room = s.room.clone().unwrap();

    // The SFU throws the box's publisher out, as a server restart or a network fault
    // would: the GStreamer signaller does not reconnect by itself.
    let (url, key, secret) = w.lk_api.clone();
    w.rt.block_on(async {
        livekit_api::services::room::RoomClient::with_api_key(&url, &key, &secret)
            .remove_participant(&room, "box1")
            .await
            .expect("RoomService removes the participant")
    });
    w.wait_status("rejoining", Duration::from_secs(20), |s| {
        s.state == "rejoining" || s.state == "joining"
    });
    let back = w.wait_status("in call again", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 30
    });
    assert_eq!(
        back.room.as_deref(),
        Some(room.as_str()),
        "same call, same room"
    );
    let log = w.daemon_log();
    assert!(
        log.contains("asking the hub for fresh tokens to rejoin"),
        "rejoined via the hub"
    );

    // The caller sees the box again: new frames arrive after the rejoin.
    caller.send_line("status");
    let before = caller
        .wait_event("status", Duration::from_secs(10))
        .map(|e| e["video_frames"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        caller.send_line("status");
        std::thread::sleep(Duration::from_millis(500));
        let now = caller
            .events()
            .iter()
            .rev()
            .find(|e| e["event"] == "status")
            .and_then(|e| e["video_frames"].as_u64())
            .unwrap_or(0);
        if now > before + 30 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "caller stuck at {now} frames after the rejoin"
        );
    }
    caller.send_line("hangup");
    caller.expect_event("hung_up", Duration::from_secs(15));
    w.wait_status("idle", Duration::from_secs(15), |s| s.state == "idle");
}

/// A message bigger than the box takes from the hub (64 KiB) drops the connection, which
/// the box reports and re-opens: it is online again and still answers a call.
#[test]
fn an_oversized_hub_message_drops_the_link_and_the_box_reconnects() {
    let w = World::with_online_box("", "");
    let hub = w.hub.as_ref().unwrap();
    let big = format!(
        r#"{{"type":"call_cancelled","callId":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    assert_eq!(hub.send_raw("box1", &big), 1, "box1 is connected");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !w.daemon_log().contains("hub connection lost") {
        assert!(
            Instant::now() < deadline,
            "the box did not drop the link:\n{}",
            w.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = w.daemon_log();
    let line = log
        .lines()
        .find(|l| l.contains("hub connection lost"))
        .unwrap();
    assert!(line.contains("too long"), "says why: {line}");
    w.wait_status("online again", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    assert!(w.daemon_log().matches("connected to hub").count() >= 2);
    one_call(&w, false);
}
