//! Issue #8 end to end: what the box publishes for each kind of call, with the real hub,
//! livekit-server, the `callbox` binary and a LiveKit Python SDK caller.

mod support;

use std::time::Duration;

use support::{World, caller_counts, hang_up, is_caller_colour};

/// `callType: "audio"`: the box answers without opening its camera. The caller receives
/// the box's microphone and no video track, the box hears the caller, and the privacy
/// LED stays dark for the whole call.
#[test]
fn an_audio_call_never_opens_the_camera() {
    let w = World::with_online_box("", "");
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
    assert_eq!(s.video_encoder, None, "no video encoder was even built");
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
    // The screen names the caller, large, on the background: no video, no self-view.
    let screen = w.screenshot("audio-call");
    assert_eq!(screen.share((0.0, 0.0, 1.0, 1.0), is_caller_colour), 0.0);
    assert!(
        screen.share((0.2, 0.3, 0.8, 0.7), |p| p.iter().all(|&c| c >= 200)) > 0.02,
        "the caller's name is written in the middle"
    );
    let corner = screen.share((0.76, 0.67, 0.97, 0.87), |p| p.iter().all(|&c| c < 20));
    assert!(
        corner < 0.1,
        "no self-view in an audio call ({corner:.2} black)"
    );
    callbox_testkit::report!(
        "audio call: caller decoded {} audio frames ({} with sound), box received {} audio buffers, sent 0 video frames",
        counts["audio_frames"],
        counts["audio_frames_with_energy"],
        s.audio_buffers_received
    );
    hang_up(&w, caller);
}

/// A video call from a caller publishing `codec` (`--video-codec` of the SDK peer):
/// the box must decode the caller's video, having answered LiveKit's offer with that
/// codec (its log says so), and the hub lists the caller's track in that codec to the
/// call's participants only. Returns how many frames the box decoded.
fn box_decodes_a_caller_publishing(codec: &str, encoding: &str) -> u64 {
    let w = World::with_online_box("", "");
    let caller = w.dial(
        "box1",
        &[
            "--video-codec",
            codec,
            "--min-video-frames",
            "30",
            "--timeout",
            "60",
            "--no-hangup",
        ],
    );
    let ok = caller.expect_event("media_ok", Duration::from_secs(60));
    let call_id = ok["callId"]
        .as_str()
        .expect("media_ok names the call")
        .to_owned();
    let s = w.wait_status(
        &format!("30 {codec} frames decoded by the box"),
        Duration::from_secs(30),
        |s| s.state == "in_call" && s.video_frames_received >= 30,
    );
    let encoder = s
        .video_encoder
        .clone()
        .expect("callbox status names the video encoder");
    callbox_testkit::report!("the box encoded its camera with {encoder}");
    let log = w.daemon_log();
    assert!(
        log.contains("answering LiveKit's video offer")
            && log.contains(&format!("codec={encoding}")),
        "the box logs the codec it chose:\n{log}"
    );

    let path = format!("/api/calls/{call_id}/tracks");
    let (status, tracks) = w.get_as(&w.alice.clone(), &path);
    assert_eq!(status, 200, "{tracks}");
    let alice_video = tracks
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["identity"] == "alice" && t["kind"] == "video")
        .unwrap_or_else(|| panic!("the caller's video track is listed: {tracks}"));
    assert_eq!(
        alice_video["codecs"][0]
            .as_str()
            .map(str::to_ascii_uppercase),
        Some(format!("VIDEO/{encoding}")),
        "{tracks}"
    );
    let (status, body) = w.get_as(&w.bob.clone(), &path);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("not_a_participant")),
        "someone outside the call learns nothing about it"
    );
    hang_up(&w, caller);
    s.video_frames_received
}

/// Browsers and most SDKs publish VP8 unless told otherwise: the box shows it with no
/// configuration (its `media.receive_video_codec` preference stays `h264`).
#[test]
fn the_box_shows_a_vp8_caller() {
    let n = box_decodes_a_caller_publishing("vp8", "VP8");
    callbox_testkit::report!("vp8 caller: the box decoded {n} frames");
}

/// H.264 (what the box publishes, and what a caller asked for hardware decode sends).
#[test]
fn the_box_shows_an_h264_caller() {
    let n = box_decodes_a_caller_publishing("h264", "H264");
    callbox_testkit::report!("h264 caller: the box decoded {n} frames");
}
