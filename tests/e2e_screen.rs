//! Issue #8, the call screen: what the person in front of the box sees in each state,
//! snapshotted from the running daemon (`callbox screenshot`) into
//! `target/screen/*.png` and checked by pixels, with the real hub, livekit-server and a
//! LiveKit Python SDK caller.

mod support;

use std::time::Duration;

use support::{Picture, World, caller_counts, is_caller_colour};

/// The screen's background (media::screen): slate blue.
fn is_background(p: [u8; 3]) -> bool {
    (p[0] as i32 - 40).abs() <= 12
        && (p[1] as i32 - 48).abs() <= 12
        && (p[2] as i32 - 96).abs() <= 12
}

/// Any of the caller's eight bars, white and near-black (16, 16, 16) included. The
/// bars scroll, and the main region holds about 2.7 of them: the six colours alone cover
/// from 25 % to all of it, depending on the frame the screenshot catches.
fn is_caller_bar(p: [u8; 3]) -> bool {
    is_caller_colour(p) || p.iter().all(|&c| c >= 215) || p.iter().all(|&c| c <= 56)
}

fn is_light(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c >= 200)
}

/// Whole screen, headline band, video band, self-view corner (bottom right), bottom line.
const WHOLE: (f64, f64, f64, f64) = (0.0, 0.0, 1.0, 1.0);
const MIDDLE: (f64, f64, f64, f64) = (0.2, 0.3, 0.7, 0.6);
const SELF_VIEW: (f64, f64, f64, f64) = (0.76, 0.67, 0.97, 0.87);
const HEADLINE: (f64, f64, f64, f64) = (0.04, 0.08, 0.24, 0.14);

fn report(name: &str, pic: &Picture) {
    callbox_testkit::report!(
        "{name}: background {:.2}, caller colours in the middle {:.2} (any of its bars {:.2}), in the self-view corner {:.2}, light pixels in the headline {:.2}",
        pic.share(WHOLE, is_background),
        pic.share(MIDDLE, is_caller_colour),
        pic.share(MIDDLE, is_caller_bar),
        pic.share(SELF_VIEW, is_caller_colour),
        pic.share(HEADLINE, is_light),
    );
}

/// The hardware lab's verdict on a call screen (lab/call_scenario.py judges its vkms
/// capture with `tests/peers/pictures.py --call-screen`): whether the caller's region
/// shows the test peers' eight bars in their colours, and what it found (JSON).
fn lab_verdict(pic: &Picture, name: &str) -> (bool, String) {
    let raw = support::screen_dir().join(format!("{name}.rgb"));
    std::fs::write(&raw, &pic.rgb).expect("write the raw screen");
    let out = std::process::Command::new(callbox_testkit::python_path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/pictures.py"
        ))
        .arg("--call-screen")
        .arg(&raw)
        .arg(pic.width.to_string())
        .arg(pic.height.to_string())
        .output()
        .expect("pictures.py runs");
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    (out.status.success(), verdict)
}

/// The picture checks the hardware lab relies on pass their own self-test (synthetic
/// frames: each pattern, SMPTE bars as none, and the call screen's caller region at
/// every phase of the peers' scrolling bars).
#[test]
fn the_labs_picture_checks_pass_their_self_test() {
    let out = std::process::Command::new(callbox_testkit::python_path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/pictures.py"
        ))
        .output()
        .expect("pictures.py runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const SCREEN: &str = r#"
[call]
answer = "manual"

[screen]
name = "Hallway"
width = 640
height = 360
ended_secs = 3
"#;

#[test]
fn the_screen_shows_each_state_of_a_call() {
    let w = World::with_online_box("", SCREEN);

    let idle = w.screenshot("idle");
    report("idle", &idle);
    assert_eq!((idle.width, idle.height), (640, 360), "screen.width/height");
    let (bars, verdict) = lab_verdict(&idle, "idle");
    assert!(!bars, "idle: the lab's check sees no caller: {verdict}");
    assert!(
        idle.share(WHOLE, is_background) > 0.6,
        "idle: mostly background"
    );
    assert!(
        idle.share((0.25, 0.3, 0.75, 0.7), is_light) > 0.01,
        "idle: the name and clock are written"
    );

    let mut caller = w.dial(
        "box1",
        &["--min-video-frames", "30", "--timeout", "60", "--no-hangup"],
    );
    w.wait_status("ringing", Duration::from_secs(20), |s| s.state == "ringing");
    let ringing = w.screenshot("ringing");
    report("ringing", &ringing);
    assert!(
        ringing.share((0.1, 0.25, 0.9, 0.75), is_light)
            > idle.share((0.1, 0.25, 0.9, 0.75), is_light),
        "ringing: more words than idle"
    );
    assert_eq!(
        ringing.share(WHOLE, is_caller_colour),
        0.0,
        "no video while ringing"
    );

    w.ctl(&["answer"]);
    w.wait_status(
        "in call, 30 frames, the network measured",
        Duration::from_secs(30),
        |s| s.state == "in_call" && s.video_frames_received >= 30 && s.network.is_some(),
    );
    let in_call = w.screenshot("in-call");
    report("in-call", &in_call);
    assert!(
        in_call.share(MIDDLE, is_caller_bar) > 0.8,
        "the caller's bars fill the main region"
    );
    assert!(
        in_call.share(SELF_VIEW, is_caller_colour) < 0.2,
        "the self-view corner shows the box's camera, not the caller"
    );
    assert!(
        in_call.share(HEADLINE, is_light) > 0.1,
        "the caller's name and the call's duration are written top left"
    );
    assert!(
        in_call.share(HEADLINE, is_caller_colour) < in_call.share(MIDDLE, is_caller_colour) / 2.0,
        "the headline is not the video"
    );
    let (ok, verdict) = lab_verdict(&in_call, "in-call");
    callbox_testkit::report!("in-call: the hardware lab's colour check says {verdict}");
    assert!(
        ok,
        "the hardware lab's check, on this screen, finds the caller's bars: {verdict}"
    );

    w.ctl(&["mute"]);
    w.wait_status("muted", Duration::from_secs(5), |s| s.mic_muted);
    let muted = w.screenshot("in-call-muted");
    assert!(
        muted.share((0.0, 0.9, 1.0, 1.0), is_light)
            > in_call.share((0.0, 0.9, 1.0, 1.0), is_light) * 0.9
    );

    let counts = caller_counts(&mut caller);
    callbox_testkit::report!(
        "caller decoded {} frames of the box",
        counts["video_frames"]
    );
    w.ctl(&["hangup"]);
    w.wait_status("idle", Duration::from_secs(15), |s| s.state == "idle");
    let ended = w.screenshot("ended");
    report("ended", &ended);
    assert_eq!(
        ended.share(WHOLE, is_caller_colour),
        0.0,
        "the call's video is gone"
    );
    assert!(ended.share(WHOLE, is_background) > 0.6);
    let _ = caller.wait_exit(Duration::from_secs(20));

    // The next call shows its caller in the same place: the screen's tiles outlive a
    // call (hidden, never removed), and the new call's video takes the first one again.
    let caller = w.dial(
        "box1",
        &["--min-video-frames", "30", "--timeout", "60", "--no-hangup"],
    );
    w.wait_status("ringing again", Duration::from_secs(20), |s| {
        s.state == "ringing"
    });
    w.ctl(&["answer"]);
    w.wait_status("second call, 30 frames", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 30
    });
    let second = w.screenshot("in-call-second");
    report("in-call-second", &second);
    assert!(
        second.share(MIDDLE, is_caller_bar) > 0.8,
        "the second call's caller fills the main region"
    );
    support::hang_up(&w, caller);
}

/// Three parties: alice (publishing VP8, as browsers do) calls the box and bob
/// (H.264) at once; the box answers each caller's video m-line with that caller's
/// codec, shows both callers side by side with its self-view in the corner, and names
/// both.
#[test]
fn two_callers_share_the_screen_as_a_grid() {
    let w = World::with_online_box("", "[screen]\nwidth = 640\nheight = 360\n");
    let mut bob = callbox_testkit::PyPeer::spawn(
        "callee.py",
        [
            "answer",
            "--hub",
            &w.hub_url,
            "--credential",
            &w.bob,
            "--min-video-frames",
            "30",
            "--timeout",
            "90",
        ],
    );
    bob.expect_event("hub_ws_connected", Duration::from_secs(20));
    let alice = w.dial(
        "box1",
        &[
            "--callee",
            "bob",
            "--video-codec",
            "vp8",
            "--min-video-frames",
            "30",
            "--timeout",
            "90",
            "--no-hangup",
        ],
    );
    bob.expect_event("media_ok", Duration::from_secs(60));
    w.wait_status("two callers' video", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received >= 90
    });
    // bob answered before the box: the hub tells the box he is in the call too.
    w.wait_status("both callers named", Duration::from_secs(5), |s| {
        s.caller.as_deref() == Some("alice") && s.participants == ["bob"]
    });
    // The second tile appears when the second video's first frame is decoded; the
    // frame count above may be reached on the first video alone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (left, right) = loop {
        let grid = w.screenshot("grid");
        let left = grid.share((0.08, 0.3, 0.42, 0.6), is_caller_bar);
        let right = grid.share((0.58, 0.3, 0.92, 0.6), is_caller_bar);
        if (left > 0.7 && right > 0.7) || std::time::Instant::now() > deadline {
            break (left, right);
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    callbox_testkit::report!(
        "grid: the callers' bars in the left tile {left:.2}, in the right tile {right:.2}"
    );
    let log = w.daemon_log();
    let answered: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("answering LiveKit's video offer")
                || l.contains("remote video playing")
                || l.contains("screen layout")
        })
        .collect();
    callbox_testkit::report!("{}", answered.join("\n"));
    assert!(
        left > 0.7 && right > 0.7,
        "both callers are on the screen: {left:.2} / {right:.2}"
    );
    assert!(
        log.contains("screen layout remote_videos=2"),
        "two tiles laid out"
    );
    assert!(
        answered
            .iter()
            .any(|l| l.contains("narrowed=true") && l.contains("codec=VP8"))
            && answered
                .iter()
                .any(|l| l.contains("narrowed=true") && l.contains("codec=H264")),
        "each m-line answered with its caller's codec"
    );
    support::hang_up(&w, alice);
    let _ = bob.wait_exit(Duration::from_secs(30));
}

/// A video call from a caller who publishes no camera: the screen names the caller
/// instead of showing a black picture; the box still shows its self-view.
#[test]
fn a_caller_without_a_camera_is_named_not_shown_black() {
    let w = World::with_online_box("", "[screen]\nwidth = 640\nheight = 360\n");
    let caller = w.dial(
        "box1",
        &[
            "--audio-only",
            "--min-remote-audio-frames",
            "50",
            "--timeout",
            "60",
            "--no-hangup",
        ],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    w.wait_status("in call", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_sent > 15 && s.audio_buffers_received > 50
    });
    let pic = w.screenshot("caller-without-camera");
    report("caller-without-camera", &pic);
    assert!(
        pic.share((0.25, 0.3, 0.75, 0.6), is_light) > 0.02,
        "the caller's name in the middle"
    );
    assert!(
        pic.share((0.0, 0.0, 0.7, 0.6), is_background) > 0.5,
        "on the background, not black"
    );
    assert!(
        pic.share(SELF_VIEW, is_background) < 0.3,
        "the self-view is shown (a video call)"
    );
    support::hang_up(&w, caller);
}

#[test]
fn the_idle_screen_blanks_and_a_button_wakes_it() {
    let w = World::with_online_box(
        "",
        "[screen]\nname = \"Hallway\"\nwidth = 640\nheight = 360\nblank_after_secs = 2\n",
    );
    let is_black = |p: [u8; 3]| p.iter().all(|&c| c <= 8);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let blank = loop {
        let pic = w.screenshot("blank");
        if pic.share(WHOLE, is_black) > 0.99 {
            break pic;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the idle screen goes black after blank_after_secs (2 s): {:.2} black",
            pic.share(WHOLE, is_black)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        blank.share(WHOLE, is_light),
        0.0,
        "no words on a blank screen"
    );
    let ack = w.ctl(&["press", "volume_up"]);
    assert_eq!(ack["ok"], true, "{ack}");
    w.wait_status("the press is taken", Duration::from_secs(5), |s| {
        s.volume.is_some_and(|v| v.ringtone == 90)
    });
    let woken = w.screenshot("woken");
    report("woken", &woken);
    assert!(
        woken.share(WHOLE, is_background) > 0.8,
        "a button brings the idle screen back"
    );
}
