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

/// Waits (up to 10 s) until the screen's sink gets frames `1/fps` s apart, their caps
/// at `fps`; returns the caps.
fn wait_for_pace(screen: &Screen, fps: u32) -> gst::Caps {
    let pad = screen.sink.static_pad("sink").unwrap();
    let last = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = last.clone();
    let probe = pad
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(b) = info.buffer() {
                *seen.lock().unwrap() = b.duration();
            }
            gst::PadProbeReturn::Ok
        })
        .unwrap();
    let want = gst::ClockTime::SECOND / u64::from(fps);
    let t0 = Instant::now();
    let caps = loop {
        let caps = pad.current_caps();
        let rate = caps
            .as_ref()
            .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
            .map(|i| i.fps());
        let duration = *last.lock().unwrap();
        if rate == Some(gst::Fraction::new(fps as i32, 1)) && duration == Some(want) {
            break caps.unwrap();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the screen did not go to {fps} fps: caps {caps:?}, frames {duration:?} apart"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    pad.remove_probe(probe);
    caps
}

/// A video call on the screen (the self-view shows).
fn video_call() -> Scene {
    Scene::InCall {
        peer: "alice".into(),
        elapsed: Duration::ZERO,
        muted: false,
        video: true,
        connecting: false,
    }
}

/// The composed frames are BGRx (the display's XRGB8888, not the compositor's own
/// choice, which was 8-byte ABGR64): at `screen.framerate` while a video shows (not
/// the compositor's inputs' 30 fps), at [`STILL_FRAMERATE`] while nothing on the
/// screen moves, and back when the call ends.
#[test]
fn the_screen_composes_bgrx_at_the_configured_rate_only_while_video_shows() {
    let mut screen = idle_screen_on_fakesink("width = 320\nheight = 180\nframerate = 24");
    let caps = wait_for_pace(&screen, STILL_FRAMERATE);
    let info = gst_video::VideoInfo::from_caps(&caps).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::Bgrx, "{caps}");
    assert_eq!((info.width(), info.height()), (320, 180));
    screen.show(video_call(), Some(Instant::now()), None);
    assert!(screen.self_view, "a video call shows the self-view");
    wait_for_pace(&screen, 24);
    // The live compositor waits for a late source up to its latency: one frame of its
    // sources at the screen's rate (~83 ms here). Bands at 5 fps made it 200 ms more;
    // the tiles' intervideosrc made the query fail, so a change of sources or rate was
    // never applied.
    let mut q = gst::query::Latency::new();
    assert!(
        screen.mixer.static_pad("src").unwrap().query(&mut q),
        "the compositor's latency query failed"
    );
    let (_, latency, _) = q.result();
    assert!(
        latency >= gst::ClockTime::SECOND / 24 && latency < gst::ClockTime::from_mseconds(150),
        "the compositor's latency is {latency} in a call"
    );
    // The display shows each composed frame when it comes (the videos were synchronised
    // with the sound before the screen): a waiting sink put the picture behind the voice.
    assert!(!screen.sink.property::<bool>("sync"));
    screen.show(
        Scene::Ended(crate::screen::Ending::Ended {
            peer: "alice".into(),
            duration: Duration::from_secs(3),
        }),
        None,
        None,
    );
    wait_for_pace(&screen, STILL_FRAMERATE);
    screen.stop();

    // A configured rate under the still rate is kept throughout.
    let mut screen = idle_screen_on_fakesink("width = 320\nheight = 180\nframerate = 5");
    wait_for_pace(&screen, 5);
    screen.show(video_call(), Some(Instant::now()), None);
    wait_for_pace(&screen, 5);
    screen.stop();
}

/// Counts the buffers that pass `pad` from now on.
fn count_buffers(pad: &gst::Pad) -> std::sync::Arc<std::sync::atomic::AtomicU32> {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = n.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    })
    .expect("a buffer probe on a pad");
    n
}

/// The background and the bands are drawn once: their sources send one frame, which
/// the compositor keeps composing (`repeat-after-eos`), so the idle screen still shows
/// the background a second later, at its pace (a hidden live pad paces the compositor:
/// with every pad at EOS it composed as fast as it could). Drawn 30 times a second,
/// they held ~24 MiB of a 640x480 call's memory in frames, now ~10 (README, Performance).
#[test]
fn the_background_and_bands_are_drawn_once_and_stay_on_the_screen() {
    let screen = idle_screen_on_fakesink("width = 320\nheight = 180\nframerate = 30");
    wait_for_pace(&screen, STILL_FRAMERATE);
    let counts: Vec<_> = std::iter::once(&screen.background)
        .chain(&screen.bands)
        .map(count_buffers)
        .collect();
    let frames = count_buffers(&screen.sink.static_pad("sink").unwrap());
    // Ten composed frames (a second at the still rate) after the probes went in.
    let t0 = Instant::now();
    while frames.load(std::sync::atomic::Ordering::Relaxed) < 10 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the screen composed no frames"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // At its pace: 10 frames at 10 fps take ~0.9 s (with every pad at EOS the
    // compositor composed them in a few ms).
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "10 frames composed in {:?}: the screen is not paced",
        t0.elapsed()
    );
    for (what, n) in ["background", "top band", "bottom band"]
        .iter()
        .zip(&counts)
    {
        let n = n.load(std::sync::atomic::Ordering::Relaxed);
        assert!(n <= 1, "the {what} sent {n} frames while 10 were composed");
    }
    let sample = screen
        .sink
        .property::<Option<gst::Sample>>("last-sample")
        .expect("the sink keeps its last frame");
    let buffer = sample.buffer().unwrap().map_readable().unwrap();
    // Mid-height at the left edge, clear of the idle screen's texts.
    let edge = (90 * 320 + 4) * 4;
    let [_, r, g, b] = BACKGROUND.to_be_bytes();
    assert_eq!(
        &buffer[edge..edge + 3],
        &[b, g, r],
        "the idle screen's left edge is not the background colour (BGRx)"
    );
    drop(buffer);
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
    // The sink's streaming thread sleeps 700 ms on one frame: 7 frames' time at the
    // idle screen's 10 fps.
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
    screen.show(video_call(), Some(Instant::now()), None);
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
    assert_eq!(info.format(), gst_video::VideoFormat::Bgrx);
    // In the composed colorimetry: one that differs makes the compositor convert the
    // tile's every frame again.
    // (The compositor may not have negotiated its output yet on a busy machine.)
    let mixer_src = screen.mixer.static_pad("src").unwrap();
    let t0 = Instant::now();
    let composed = loop {
        if let Some(caps) = mixer_src.current_caps() {
            break caps;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the compositor has no output caps"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let composed = gst_video::VideoInfo::from_caps(&composed).unwrap();
    assert_eq!(info.colorimetry(), composed.colorimetry(), "{info:?}");
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
    // Ten frames (a third of a second at 30 fps; the wait is only a bound, not a rate:
    // rates belong to `make bench`).
    let t0 = Instant::now();
    while frames.load(std::sync::atomic::Ordering::SeqCst) < 10 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{} frames composed in 10 s with the caller shown",
            frames.load(std::sync::atomic::Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let renegotiated = renegotiations.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        renegotiated <= 1,
        "the tile renegotiated {renegotiated} times in 10 composed frames"
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
