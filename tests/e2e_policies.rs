//! Issue #3 end to end: answer policies, mute, do-not-disturb, busy and speed-dial, with
//! the real hub, livekit-server, the `callbox` binary and LiveKit Python SDK peers.
//! Buttons are pressed with `callbox ctl press`, which goes through the same path as a
//! button on the simulated GPIO backend.

mod support;

use std::time::{Duration, Instant};

use callbox_testkit::PyPeer;

use support::{World, caller_counts, hang_up};

fn world_with(call_section: &str) -> World {
    let mut w = World::start();
    let cred = w.box_credential.clone();
    w.start_daemon_with(&cred, call_section);
    w.wait_status("online", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    w
}

const KEEP: [&str; 6] = [
    "--min-video-frames",
    "30",
    "--timeout",
    "60",
    "--no-hangup",
    "--watch-hub",
];

#[test]
fn manual_policy_rings_until_the_call_button_is_pressed() {
    let w = world_with("[call]\nanswer = \"manual\"\n");
    let caller = w.dial("box1", &KEEP);
    let s = w.wait_status("ringing", Duration::from_secs(20), |s| s.state == "ringing");
    assert_eq!(s.status_light, "ringing");
    assert_eq!(s.caller.as_deref(), Some("alice"));
    assert_eq!(
        s.leds["status"]["pattern"], "cadence:400/200/400/2000",
        "the status LED rings in step with the ringtone's cadence: {:?}",
        s.leds
    );
    assert_eq!(
        s.leds["privacy"]["pattern"], "off",
        "camera not published while ringing"
    );
    w.wait_status("ringtone audible", Duration::from_secs(5), |s| {
        s.ringtone_playing && s.ringtone_audible_buffers > 10
    });

    // A person takes two seconds to get to the box.
    std::thread::sleep(Duration::from_secs(2));
    let s = w.status().unwrap();
    assert_eq!(s.state, "ringing", "manual never answers by itself");
    assert!(
        caller
            .wait_event("first_video_frame", Duration::ZERO)
            .is_none()
    );
    assert_eq!(w.ctl(&["press", "call"]), serde_json::json!({"ok": true}));

    let first = caller.expect_event("first_video_frame", Duration::from_secs(30));
    let since_invite = first["t_ms_since_invite"].as_u64().unwrap();
    assert!(
        since_invite >= 2000,
        "media only after the press ({since_invite} ms)"
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    let s = w.wait_status("in call", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 30
    });
    assert!(
        !s.ringtone && !s.ringtone_playing,
        "the ring stopped at the press"
    );
    assert_eq!(s.status_light, "in_call");
    assert_eq!(s.leds["status"]["pattern"], "on");
    assert_eq!(
        s.leds["privacy"]["pattern"], "on",
        "privacy LED on while publishing"
    );
    assert_eq!(s.leds["privacy"]["lit"], true);
    callbox_testkit::report!(
        "manual: invite → caller's first frame {since_invite} ms (press after ~2000 ms)"
    );
    hang_up(&w, caller);
    let s = w.status().unwrap();
    assert_eq!(
        s.leds["privacy"]["lit"], false,
        "privacy LED off after the call"
    );
}

#[test]
fn auto_after_answers_after_three_seconds_of_ringing() {
    let w = world_with("[call]\nanswer = \"auto_after\"\nanswer_after_secs = 3\n");
    let caller = w.dial("box1", &KEEP);
    w.wait_status("ringing", Duration::from_secs(20), |s| s.state == "ringing");
    let first = caller.expect_event("first_video_frame", Duration::from_secs(40));
    let since_invite = first["t_ms_since_invite"].as_u64().unwrap();
    assert!(
        (3000..20_000).contains(&since_invite),
        "answered after the 3 s of ringing, not before ({since_invite} ms)"
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    w.wait_status("in call", Duration::from_secs(30), |s| s.state == "in_call");
    callbox_testkit::report!("auto_after 3 s: invite → caller's first frame {since_invite} ms");
    hang_up(&w, caller);
}

#[test]
fn muted_auto_answer_sends_silence_until_the_mute_button_is_pressed() {
    let w = world_with("[call]\nanswer = \"muted\"\n");
    let mut caller = w.dial(
        "box1",
        &[
            "--min-video-frames",
            "30",
            "--min-remote-audio-frames",
            "50",
            "--timeout",
            "60",
            "--no-hangup",
        ],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    let s = w.wait_status("in call", Duration::from_secs(30), |s| s.state == "in_call");
    assert!(s.mic_muted);
    assert_eq!(s.status_light, "in_call_muted");
    let muted = caller_counts(&mut caller);
    assert!(muted["audio_frames"].as_u64().unwrap() >= 50, "{muted}");
    assert_eq!(
        muted["audio_frames_with_energy"].as_u64(),
        Some(0),
        "no audio energy reaches the caller while muted: {muted}"
    );

    assert_eq!(w.ctl(&["press", "mute"]), serde_json::json!({"ok": true}));
    w.wait_status("unmuted", Duration::from_secs(10), |s| !s.mic_muted);
    let deadline = Instant::now() + Duration::from_secs(20);
    let unmuted = loop {
        let c = caller_counts(&mut caller);
        if c["audio_frames_with_energy"].as_u64().unwrap_or(0) >= 20 {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no audio energy after unmute: {c}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    callbox_testkit::report!(
        "muted: {} audio frames with energy while muted, {} after the mute button",
        muted["audio_frames_with_energy"],
        unmuted["audio_frames_with_energy"]
    );
    hang_up(&w, caller);
}

#[test]
fn do_not_disturb_rejects_with_dnd_and_a_second_caller_hears_busy() {
    let w = world_with("[call]\nanswer = \"auto\"\n");
    assert_eq!(w.ctl(&["dnd", "on"]), serde_json::json!({"ok": true}));
    let s = w.wait_status("dnd", Duration::from_secs(5), |s| s.dnd);
    assert_eq!(s.status_light, "dnd");
    let mut caller = w.dial("box1", &["--watch-hub", "--timeout", "30"]);
    let rejected = caller.expect_event("rejected", Duration::from_secs(20));
    assert_eq!(rejected["reason"], "dnd", "{rejected}");
    assert_eq!(
        caller
            .wait_exit(Duration::from_secs(15))
            .and_then(|s| s.code()),
        Some(6)
    );
    assert_eq!(w.status().unwrap().state, "idle");

    // DND off: alice gets through; bob, calling during her call, hears busy.
    w.ctl(&["dnd", "off"]);
    w.wait_status("dnd off", Duration::from_secs(5), |s| !s.dnd);
    let alice = w.dial("box1", &KEEP);
    alice.expect_event("media_ok", Duration::from_secs(60));
    w.wait_status("in call", Duration::from_secs(30), |s| s.state == "in_call");
    let mut bob = w.dial_as(&w.bob, "box1", &["--watch-hub", "--timeout", "30"]);
    let rejected = bob.expect_event("rejected", Duration::from_secs(20));
    assert_eq!(rejected["reason"], "busy", "{rejected}");
    assert_eq!(
        bob.wait_exit(Duration::from_secs(15))
            .and_then(|s| s.code()),
        Some(6)
    );
    let s = w.status().unwrap();
    assert_eq!(
        (s.state.as_str(), s.caller.as_deref()),
        ("in_call", Some("alice"))
    );
    hang_up(&w, alice);
}

#[test]
fn speed_dial_calls_a_person_who_answers() {
    let w = world_with("[call]\nanswer = \"manual\"\nspeed_dial = \"grandma\"\n");
    let mut grandma = PyPeer::spawn(
        "callee.py",
        [
            "answer",
            "--hub",
            &w.hub_url,
            "--credential",
            &w.grandma,
            "--answer-delay",
            "1",
            "--min-video-frames",
            "30",
            "--timeout",
            "90",
        ],
    );
    grandma.expect_event("hub_ws_connected", Duration::from_secs(20));
    assert_eq!(
        w.ctl(&["press", "speed_dial"]),
        serde_json::json!({"ok": true})
    );
    let s = w.wait_status("calling", Duration::from_secs(10), |s| s.state == "calling");
    assert_eq!(s.status_light, "calling");
    assert_eq!(s.direction.as_deref(), Some("outgoing"));
    grandma.expect_event("invitation", Duration::from_secs(20));
    grandma.expect_event("media_ok", Duration::from_secs(60));
    let s = w.wait_status("in call", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 30
    });
    assert_eq!(s.caller.as_deref(), Some("grandma"));
    // The box hangs up; grandma's side sees the call end.
    w.ctl(&["hangup"]);
    grandma.expect_event("call_ended", Duration::from_secs(20));
    assert_eq!(
        grandma
            .wait_exit(Duration::from_secs(20))
            .and_then(|s| s.code()),
        Some(0)
    );
    w.wait_status("idle", Duration::from_secs(15), |s| s.state == "idle");
}

/// Nobody the owner did not allow makes the box ring: a caller off the box's contact
/// list gets 403 with a sentence and the box never hears of it; a contact the hub does
/// not mark trusted rings even though the box is on `answer = "auto"` (the default).
#[test]
fn only_allowed_callers_ring_and_only_trusted_ones_are_answered_by_themselves() {
    let w = world_with("[call]\nanswer = \"auto\"\n");
    let (status, body) = w.post_as(
        &w.stranger,
        "/api/calls/invite",
        serde_json::json!({"invitees": ["box1"]}),
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "not_allowed");
    callbox_testkit::report!("the stranger was told: {}", body["message"]);

    let caller = w.dial_as(&w.neighbour, "box1", &KEEP);
    let s = w.wait_status("the neighbour rings", Duration::from_secs(20), |s| {
        s.state == "ringing"
    });
    assert_eq!(s.caller.as_deref(), Some("neighbour"));
    assert_eq!(
        s.caller_name.as_deref(),
        Some("Mrs Jones next door"),
        "the hub sends the caller's display name for the screen"
    );
    let log = w.daemon_log();
    assert!(
        !log.contains("stranger"),
        "the box heard nothing of the stranger:\n{log}"
    );
    w.ctl(&["decline"]);
    w.wait_status("idle", Duration::from_secs(15), |s| s.state == "idle");
    drop(caller);
}

/// `callbox status` and the LEDs never disagree: status sampled as fast as the socket
/// answers through ringing, answering, a call and its end, twice. Every sample's status
/// light has one LED pattern (the same in every sample), and the privacy LED is lit
/// only in a call.
#[test]
fn status_and_leds_never_disagree_while_states_change() {
    use std::collections::{BTreeMap, BTreeSet};
    let w = world_with("[call]\nanswer = \"manual\"\n");
    let mut patterns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut samples = 0;
    for round in 1..=2 {
        let caller = w.dial("box1", &KEEP);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut pressed = false;
        let mut hung_up = false;
        let mut caller = Some(caller);
        loop {
            let s = w.status().expect("status");
            samples += 1;
            let pattern = s.leds["status"]["pattern"]
                .as_str()
                .unwrap_or("?")
                .to_owned();
            patterns
                .entry(s.status_light.clone())
                .or_default()
                .insert(pattern);
            if s.leds["privacy"]["lit"] == true {
                assert_eq!(
                    s.status_light, "in_call",
                    "privacy LED lit outside a call: {s:?}"
                );
            }
            if s.state == "ringing" && !pressed {
                w.ctl(&["press", "call"]);
                pressed = true;
            }
            if s.state == "in_call" && s.video_frames_received >= 15 && !hung_up {
                w.ctl(&["hangup"]);
                hung_up = true;
            }
            if hung_up && s.state == "idle" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round} did not finish: {s:?}"
            );
        }
        drop(caller.take());
    }
    callbox_testkit::report!("status/LED agreement: {samples} samples: {patterns:?}");
    for (light, seen) in &patterns {
        assert_eq!(
            seen.len(),
            1,
            "status light {light} was shown with LED patterns {seen:?}"
        );
    }
    for light in ["idle", "ringing", "in_call"] {
        assert!(
            patterns.contains_key(light),
            "{light} sampled: {patterns:?}"
        );
    }
}
