//! The box's media layer against a real livekit-server, without the hub: the daemon's
//! `MediaEngine` publishes test sources with a publish-only token and subscribes with a
//! hidden identity; a LiveKit Python SDK participant in the same room must decode the
//! box's video and audio, and the box must decode the participant's video.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use callbox::config::{AudioSink, AudioSource, MediaConfig, VideoSink, VideoSource};
use callbox::media::{self, MediaCommand, MediaEngine, MediaEvent, MediaPlan};
use callbox_protocol::{JoinInfo, ParticipantToken};
use callbox_testkit::{LiveKit, LiveKitOptions, PyPeer, peers_dir, python_path};

fn mint(lk: &LiveKit, room: &str, identity: &str, flags: &[&str]) -> String {
    let out = Command::new(python_path())
        .arg(peers_dir().join("mint_token.py"))
        .args(["--api-key", &lk.api_key, "--api-secret", &lk.api_secret])
        .args(["--room", room, "--identity", identity])
        .args(flags)
        .output()
        .expect("mint_token.py runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn test_plan() -> MediaPlan {
    let config = MediaConfig {
        video_source: VideoSource::Test,
        audio_source: AudioSource::Test,
        video_sink: VideoSink::Fakesink,
        audio_sink: AudioSink::Fakesink,
        video_device: PathBuf::from("/nonexistent"),
        ice_local_addresses: vec!["127.0.0.1".into()],
        ..MediaConfig::default()
    };
    MediaPlan::resolve(&config)
}

#[test]
fn box_media_reaches_a_python_participant_and_back() {
    let lk = LiveKit::start(LiveKitOptions::default());
    let room = "media-smoke";
    let join = JoinInfo {
        call_id: "c-smoke".into(),
        room_name: room.into(),
        url: lk.ws_url.clone(),
        token: None,
        publisher: Some(ParticipantToken {
            identity: "box1".into(),
            token: mint(&lk, room, "box1", &["--no-subscribe"]),
        }),
        subscriber: Some(ParticipantToken {
            identity: "box1~rx".into(),
            token: mint(&lk, room, "box1~rx", &["--no-publish", "--hidden"]),
        }),
    };

    let _ = tracing_subscriber::fmt()
        .with_env_filter("callbox=debug")
        .with_test_writer()
        .try_init();
    let plan = test_plan();
    media::init(&plan).expect("GStreamer elements present (make setup)");
    let (tx, mut rx) = tokio::sync::mpsc::channel(media::EVENT_CAPACITY);
    let engine = MediaEngine::spawn(
        plan,
        callbox::config::RingtoneConfig::default(),
        tx,
        std::sync::Arc::new(media::NoTrackCodecs),
    );
    engine.send(MediaCommand::Start {
        call_id: "c-smoke".into(),
        join,
        mic_muted: false,
        video: true,
    });

    let caller_token = lk.token(room, "caller");
    let caller = PyPeer::spawn(
        "caller.py",
        [
            "dial",
            "--direct-url",
            &lk.ws_url,
            "--direct-token",
            &caller_token,
            "--min-video-frames",
            "60",
            "--timeout",
            "60",
            "--no-hangup",
        ],
    );

    // The publisher's SFU session comes up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        match rx.try_recv() {
            Ok(ev) => break ev,
            Err(_) if Instant::now() > deadline => panic!("media never started"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert_eq!(
        started,
        MediaEvent::Started {
            call_id: "c-smoke".into()
        }
    );

    let ok = caller.expect_event("media_ok", Duration::from_secs(60));
    let video = ok["video_frames"].as_u64().unwrap();
    let audio = ok["audio_frames"].as_u64().unwrap();
    assert!(
        video >= 60,
        "caller decoded {video} video frames from the box"
    );
    assert!(audio > 0, "caller decoded no audio from the box");

    // The box decodes the caller's video.
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.counters().snapshot().1 < 30 {
        assert!(
            Instant::now() < deadline,
            "box decoded only {:?} (sent, received, audio) frames",
            engine.counters().snapshot()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (sent, received, audio_rx) = engine.counters().snapshot();
    assert!(sent >= 60, "box sent {sent} frames");
    assert!(audio_rx > 0, "box decoded no audio");
    callbox_testkit::report!(
        "media smoke: box sent {sent} video frames, received {received} video + {audio_rx} \
         audio buffers; caller decoded {video} video + {audio} audio frames"
    );
    assert!(rx.try_recv().is_err(), "no media failure was reported");
    engine.send(MediaCommand::Stop {
        call_id: "c-smoke".into(),
    });
    drop(engine);
}
