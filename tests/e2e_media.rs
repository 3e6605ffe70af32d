//! Issue #8 end to end: what the box publishes for each kind of call, with the real hub,
//! livekit-server, the `callbox` binary and a LiveKit Python SDK caller.

mod support;

use std::time::Duration;

use support::{World, caller_counts, hang_up};

/// `callType: "audio"`: the box answers without opening its camera. The caller receives
/// the box's microphone and no video track, the box hears the caller, and the privacy
/// LED stays dark for the whole call.
#[test]
fn an_audio_call_never_opens_the_camera() {
    let mut w = World::start();
    let cred = w.box_credential.clone();
    w.start_daemon(&cred);
    w.wait_status("online", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    let mut caller = w.dial(
        "box1",
        &[
            "--call-type",
            "audio",
            "--audio-only",
            "--min-remote-audio-frames",
            "100",
            "--min-audio-energy-frames",
            "20",
            "--timeout",
            "60",
            "--no-hangup",
            "--watch-hub",
        ],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    let s = w.wait_status("in call", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.audio_buffers_received >= 50
    });
    assert_eq!(s.video_frames_sent, 0, "the camera was never opened");
    assert_eq!(s.leds["privacy"]["pattern"], "off", "{:?}", s.leds);
    assert_eq!(s.leds["privacy"]["lit"], false);
    let counts = caller_counts(&mut caller);
    let video_tracks = caller
        .events()
        .into_iter()
        .filter(|e| e["event"] == "remote_track" && e["kind"] == "video")
        .count();
    assert_eq!(
        (counts["video_frames"].as_u64(), video_tracks),
        (Some(0), 0),
        "the caller got no video from the box: {counts}"
    );
    println!(
        "audio call: caller decoded {} audio frames ({} with sound), box received {} audio buffers, sent 0 video frames",
        counts["audio_frames"], counts["audio_frames_with_energy"], s.audio_buffers_received
    );
    hang_up(&w, caller);
}
