//! Tests of the call screen's pipeline (`media::screen`) on `fakesink`.

use super::*;
use crate::config::{MediaConfig, VideoSink};

/// The idle screen on a `fakesink`, with `[screen]` keys `screen_toml`.
fn idle_screen_on_fakesink(screen_toml: &str) -> Screen {
    gst::init().unwrap();
    let media = MediaConfig {
        video_sink: VideoSink::Fakesink,
        ..MediaConfig::default()
    };
    let plan = MediaPlan::resolve(&media);
    let config: ScreenConfig = toml::from_str(screen_toml).unwrap();
    let idle = Scene::Idle {
        name: "test".into(),
        hub_online: true,
        hub_url: String::new(),
        dnd: false,
    };
    Screen::start(&plan, &config, idle).expect("the screen starts on fakesink")
}

/// The composed frames are BGRA at `screen.framerate` (not the compositor's own
/// choice, which was 8-byte ABGR64 at its inputs' 30 fps).
#[test]
fn the_screen_composes_bgra_at_the_configured_rate() {
    let screen = idle_screen_on_fakesink("width = 320\nheight = 180\nframerate = 12");
    let pad = screen.sink.static_pad("sink").unwrap();
    let t0 = Instant::now();
    let caps = loop {
        if let Some(c) = pad.current_caps() {
            break c;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no caps on the sink"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::Bgra, "{caps}");
    assert_eq!(info.fps(), gst::Fraction::new(12, 1), "{caps}");
    assert_eq!((info.width(), info.height()), (320, 180));
    screen.stop();
}

/// A display that stalls for a while (a busy CPU) makes the screen drop composed
/// frames, not queue them: each queued frame is a buffer its pool keeps for good.
#[test]
fn a_stalled_display_drops_composed_frames_instead_of_queueing_them() {
    let screen = idle_screen_on_fakesink("width = 320\nheight = 180\nframerate = 30");
    let pad = screen.sink.static_pad("sink").unwrap();
    let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stalled.clone();
    // The sink's streaming thread sleeps 700 ms on one frame: 21 frames' time.
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        if !flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(700));
        }
        gst::PadProbeReturn::Ok
    });
    let queue = screen
        .pipeline
        .by_name(SCREEN_QUEUE)
        .expect("the screen's queue");
    let t0 = Instant::now();
    while !stalled.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no frame reached the sink"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut most = 0;
    let t1 = Instant::now();
    while t1.elapsed() < Duration::from_millis(500) {
        most = most.max(queue.property::<u32>("current-level-buffers"));
        std::thread::sleep(Duration::from_millis(10));
    }
    screen.stop();
    assert!(most >= 1, "the queue filled while the sink stalled");
    assert!(
        most <= SCREEN_QUEUE_FRAMES,
        "{most} composed frames queued for a stalled display"
    );
}

/// A caller's 640x480 I420 video reaches the compositor already in the composed
/// format at the size it is shown (960x720, pillarboxed at x 160 on 1280x720), so
/// the compositor only blends it; when the call ends, its hidden tile scales to
/// 2x2. Left to the compositor's own conversion, the pad got I420 640x480 and the
/// call screen cost ~40 % more CPU (`media::tile`). The bands behind the texts come
/// at their shown size as well.
#[test]
fn a_remote_video_reaches_the_compositor_at_its_shown_size() {
    let mut screen = idle_screen_on_fakesink("width = 1280\nheight = 720\nframerate = 30");
    let channel = remote_channel(0);
    let caller = gst::parse::launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 \
         ! intervideosink channel={channel} \
         videotestsrc is-live=true ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 \
         ! intervideosink channel={SELF_CHANNEL}"
    ))
    .unwrap();
    caller.set_state(gst::State::Playing).unwrap();
    let in_call = Scene::InCall {
        peer: "alice".into(),
        elapsed: Duration::ZERO,
        muted: false,
        video: true,
        connecting: false,
    };
    screen.show(in_call, Some(Instant::now()), None);
    screen.set_remotes(std::slice::from_ref(&channel));
    let pad = &screen.tiles[0].pad();
    let caps_now = |want: (u32, u32)| {
        let t0 = Instant::now();
        loop {
            let caps = pad.current_caps();
            let info = caps
                .as_ref()
                .and_then(|c| gst_video::VideoInfo::from_caps(c).ok());
            if let Some(i) = &info
                && (i.width(), i.height()) == want
            {
                break i.clone();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the compositor pad's caps stayed {caps:?}, wanted {want:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let info = caps_now((960, 720));
    assert_eq!(info.format(), gst_video::VideoFormat::Bgra);
    // The bands behind the texts come at their own size too (1/4 and 1/10 of the
    // height): nothing on the compositor is scaled.
    for (band, want) in screen.bands.iter().zip([(1280, 180), (1280, 72)]) {
        let caps = band.current_caps().expect("a band has caps");
        let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
        assert_eq!((info.width(), info.height()), want, "{caps}");
    }
    // Settled, the tile does not renegotiate (a caps event a frame would mean
    // converters and pools rebuilt 30 times a second).
    let renegotiations = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = renegotiations.clone();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if matches!(info.event().map(|e| e.type_()), Some(gst::EventType::Caps)) {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        gst::PadProbeReturn::Ok
    });
    // And the screen keeps composing with the tile shown.
    let frames = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = frames.clone();
    screen
        .sink
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    std::thread::sleep(Duration::from_millis(1000));
    let composed = frames.load(std::sync::atomic::Ordering::SeqCst);
    let renegotiated = renegotiations.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        renegotiated <= 1,
        "the tile renegotiated {renegotiated} times in 1 s"
    );
    assert!(
        composed >= 10,
        "{composed} frames composed in 1 s with the caller shown"
    );
    assert_eq!(pad.property::<i32>("xpos"), 160);
    assert_eq!(pad.property::<i32>("width"), 960);
    assert_eq!(pad.property::<f64>("alpha"), 1.0);
    screen.set_remotes(&[]);
    caps_now((2, 2));
    assert_eq!(pad.property::<f64>("alpha"), 0.0);
    caller.set_state(gst::State::Null).unwrap();
    screen.stop();
}
