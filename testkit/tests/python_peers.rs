//! Two LiveKit Python SDK peers (tests/peers/caller.py in direct mode, no hub) in one
//! room of a testkit LiveKit: each must decode the other's H.264 video and Opus audio.

use std::time::{Duration, Instant};

use callbox_testkit::{LiveKit, LiveKitOptions, PyPeer};

#[test]
fn two_python_peers_exchange_h264_video_and_audio_on_loopback() {
    let lk = LiveKit::start(LiveKitOptions::default());
    let started = Instant::now();
    let mut peers: Vec<PyPeer> = ["alice", "bob"]
        .into_iter()
        .map(|who| {
            let token = lk.token("direct-room", who);
            PyPeer::spawn_named(
                who,
                "caller.py",
                [
                    "dial",
                    "--direct-url",
                    &lk.ws_url,
                    "--direct-token",
                    &token,
                    "--min-video-frames",
                    "60",
                    "--min-audio-energy-frames",
                    "20",
                    "--timeout",
                    "60",
                    "--no-hangup",
                ],
            )
        })
        .collect();

    for peer in &peers {
        let ok = peer.expect_event("media_ok", Duration::from_secs(90));
        eprintln!(
            "{} media_ok after {:?}: {ok}",
            peer.name(),
            started.elapsed()
        );
        assert!(ok["video_frames"].as_u64().unwrap() >= 60, "{ok}");
        assert!(
            ok["audio_frames_with_energy"].as_u64().unwrap() >= 20,
            "{ok}"
        );
        assert_eq!(ok["video_size"], "640x480", "{ok}");
    }
    for peer in &peers {
        let video = peer
            .wait_for(
                |v| v["event"] == "remote_track" && v["kind"] == "video",
                Duration::ZERO,
            )
            .expect("a remote_track event for video");
        assert_eq!(video["mime"], "video/H264", "{video}");
    }

    for peer in &mut peers {
        peer.send_line("hangup");
    }
    for peer in &mut peers {
        let status = peer
            .wait_exit(Duration::from_secs(30))
            .expect("the peer exits after hangup");
        let summary = peer.expect_event("summary", Duration::ZERO);
        assert!(
            status.success(),
            "{} exited with {status}: {summary}\n{}",
            peer.name(),
            peer.report()
        );
        assert_eq!(summary["outcome"], "hangup");
    }
}
