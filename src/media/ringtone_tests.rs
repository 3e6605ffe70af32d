//! Real GStreamer on `fakesink sync=true`, driven through [`MediaEngine`] like the
//! daemon does. The engine tests run one at a time so their timing is not skewed
//! by each other on a small machine.

use std::path::PathBuf;

use super::*;
use crate::config::{AudioSink, MediaConfig};
use crate::media::{MediaCommand, MediaEngine, MediaEvent};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn engine(config: RingtoneConfig) -> (MediaEngine, tokio::sync::mpsc::Receiver<MediaEvent>) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("callbox=debug")
        .with_test_writer()
        .try_init();
    gst::init().unwrap();
    let media = MediaConfig {
        audio_sink: AudioSink::Fakesink,
        ..MediaConfig::default()
    };
    let plan = MediaPlan::resolve(&media);
    assert_eq!(plan.audio_sink, "fakesink");
    let (tx, rx) = tokio::sync::mpsc::channel(crate::media::EVENT_CAPACITY);
    (
        MediaEngine::spawn(plan, config, tx, Arc::new(crate::media::NoTrackCodecs)),
        rx,
    )
}

/// Polls `cond` every millisecond until it holds or `limit` passes; returns the wait.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Asserts no buffer reaches the sink for 300 ms once the ringtone reports stopped.
fn assert_stops(engine: &MediaEngine) {
    let st = engine.ringtone();
    engine.send(MediaCommand::Ringtone(false));
    let took = wait_for(Duration::from_millis(500), || !st.is_playing())
        .expect("Ringtone(false) stops within 500 ms");
    let frozen = st.buffers();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(st.buffers(), frozen, "no buffer after the stop");
    assert_eq!(st.started_at(), None);
    eprintln!("stop acknowledged after {took:?}, {frozen} buffers in all");
}

fn tone(cadence_ms: Vec<u32>) -> RingtoneConfig {
    RingtoneConfig {
        file: None,
        volume: 0.8,
        cadence_ms,
    }
}

#[test]
fn cadence_position_walks_the_steps_and_repeats() {
    let c = [400, 200, 400, 2000];
    let at = |ms| cadence_position(&c, Duration::from_millis(ms)).unwrap();
    assert_eq!(
        at(0),
        CadencePosition {
            step: 0,
            sounding: true,
            step_start: Duration::ZERO,
            next_boundary: Duration::from_millis(400),
        }
    );
    assert_eq!((at(399).step, at(399).sounding), (0, true));
    assert_eq!((at(400).step, at(400).sounding), (1, false));
    assert_eq!(at(700).step_start, Duration::from_millis(600));
    assert_eq!((at(1000).step, at(1000).sounding), (3, false));
    // Second cycle: step 4 is sound again, boundaries keep counting from the start.
    let p = at(3000 + 450);
    assert_eq!((p.step, p.sounding), (5, false));
    assert_eq!(p.step_start, Duration::from_millis(3400));
    assert_eq!(p.next_boundary, Duration::from_millis(3600));
    assert_eq!(cadence_position(&[], Duration::from_secs(1)), None);
    assert_eq!(cadence_position(&[0, 0], Duration::from_secs(1)), None);
}

#[test]
fn the_builtin_tone_plays_at_once_and_stops_at_once() {
    let _serial = serial();
    let (engine, _events) = engine(tone(vec![400, 200, 400, 2000]));
    let st = engine.ringtone().clone();
    assert!(!st.is_playing());
    let sent = Instant::now();
    engine.send(MediaCommand::Ringtone(true));
    let latency = wait_for(Duration::from_millis(500), || st.buffers() > 0)
        .expect("ringtone buffers reach the sink within 500 ms");
    assert!(st.is_playing());
    let started = st.started_at().expect("a ring start instant");
    assert!(started >= sent && started <= Instant::now());
    eprintln!(
        "first ringtone buffer {latency:?} after Ringtone(true) (pipeline PLAYING after {:?})",
        started - sent
    );
    std::thread::sleep(Duration::from_millis(300));
    // The first 400 ms are sound: ~10 ms buffers, all audible.
    let (n, audible) = (st.buffers(), st.audible_buffers());
    assert!(n >= 20, "{n} buffers in ~300 ms of a real-time 10 ms tone");
    assert!(
        audible * 10 >= n * 8,
        "{audible} of {n} audible in the first sound step"
    );
    // A second start keeps the ring (and its cadence) going.
    engine.send(MediaCommand::Ringtone(true));
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(st.started_at(), Some(started));
    assert_stops(&engine);
}

#[test]
fn the_cadence_mutes_and_unmutes_on_its_boundaries() {
    let _serial = serial();
    // 100 ms sound, 100 ms silence, 50 ms sound, 250 ms silence: 500 ms cycle.
    let cadence = vec![100, 100, 50, 250];
    let (engine, _events) = engine(tone(cadence.clone()));
    let st = engine.ringtone().clone();
    engine.send(MediaCommand::Ringtone(true));
    wait_for(Duration::from_millis(500), || st.is_playing()).expect("ringing");
    std::thread::sleep(Duration::from_millis(2000));
    let started = st.started_at().unwrap();
    let (n, audible, steps, late) = (
        st.buffers(),
        st.audible_buffers(),
        st.cadence_steps(),
        st.max_step_lateness(),
    );
    let elapsed = started.elapsed();
    assert_stops(&engine);
    let expected_steps = cadence_position(&cadence, elapsed).unwrap().step;
    eprintln!(
        "{elapsed:?} of ringing: {n} buffers, {audible} audible, {} silent; \
         {steps} cadence steps (expected {expected_steps}), latest {late:?} after its boundary",
        n - audible
    );
    assert!(
        audible > 0 && n > audible,
        "both sound and silence reached the sink"
    );
    // 150 of every 500 ms sound: 30 %. Wide bounds: a busy machine delays wake-ups;
    // the timing itself is printed above, not asserted.
    let ratio = audible as f64 / n as f64;
    assert!(
        (0.1..=0.5).contains(&ratio),
        "audible share {ratio:.2}, cadence says 0.30"
    );
    assert!(
        steps + 3 >= expected_steps && steps <= expected_steps,
        "{steps} steps applied, {expected_steps} due"
    );
}

/// Writes `secs` of a 660 Hz sine as a WAV file (44.1 kHz, 10 ms buffers).
fn write_wav(path: &Path, secs: f64) {
    gst::init().unwrap();
    let buffers = (secs * 100.0).round() as u32;
    let p = gst::parse::launch(&format!(
        "audiotestsrc num-buffers={buffers} samplesperbuffer=441 freq=660 ! \
         audio/x-raw,rate=44100,channels=1 ! wavenc ! filesink location={}",
        path.display()
    ))
    .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let msg = p
        .bus()
        .unwrap()
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the WAV is written within 5 s");
    assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_wav_file_loops_past_its_length() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let wav: PathBuf = dir.path().join("ring.wav");
    write_wav(&wav, 0.3);
    let (engine, _events) = engine(RingtoneConfig {
        file: Some(wav),
        volume: 0.5,
        cadence_ms: vec![400, 200, 400, 2000],
    });
    let st = engine.ringtone().clone();
    let sent = Instant::now();
    engine.send(MediaCommand::Ringtone(true));
    let latency = wait_for(Duration::from_millis(500), || st.buffers() > 0)
        .expect("file buffers reach the sink within 500 ms");
    // Past three lengths of the file, it must still be playing.
    std::thread::sleep(Duration::from_millis(1000).saturating_sub(sent.elapsed()));
    let before = st.buffers();
    std::thread::sleep(Duration::from_millis(200));
    let (n, audible, loops) = (st.buffers(), st.audible_buffers(), st.loops());
    eprintln!(
        "file: first buffer after {latency:?}; {n} buffers, {audible} audible, \
         {loops} loops in 1.2 s"
    );
    assert!(st.is_playing());
    assert!(loops >= 2, "a 0.3 s file looped {loops} times in 1.2 s");
    assert!(n > before, "still flowing after 1 s: {before} → {n}");
    assert!(
        audible > 0 && st.cadence_steps() == 0,
        "a file plays without cadence"
    );
    assert_stops(&engine);
}

#[test]
fn stopping_a_silent_ringtone_is_a_noop() {
    let _serial = serial();
    let (engine, _events) = engine(tone(vec![400, 200, 400, 2000]));
    let st = engine.ringtone().clone();
    engine.send(MediaCommand::Ringtone(false));
    engine.send(MediaCommand::Ringtone(false));
    std::thread::sleep(Duration::from_millis(150));
    assert!(!st.is_playing());
    assert_eq!((st.buffers(), st.started_at()), (0, None));
    // The thread is alive and still rings on demand.
    engine.send(MediaCommand::Ringtone(true));
    wait_for(Duration::from_millis(500), || st.buffers() > 0).expect("rings after no-ops");
    assert_stops(&engine);
}

#[test]
fn a_broken_file_stops_the_ringtone_and_media_keeps_working() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.wav");
    std::fs::write(&bad, b"RIFF\x10\x00\x00\x00WAVEjunk, not audio at all").unwrap();
    let (engine, mut events) = engine(RingtoneConfig {
        file: Some(bad),
        volume: 0.8,
        cadence_ms: vec![400, 200, 400, 2000],
    });
    let st = engine.ringtone().clone();
    engine.send(MediaCommand::Ringtone(true));
    // It may or may not report "playing" briefly; it must end stopped, silently.
    std::thread::sleep(Duration::from_millis(100));
    wait_for(Duration::from_secs(2), || !st.is_playing()).expect("the bus error stops it");
    assert_eq!((st.audible_buffers(), st.started_at()), (0, None));
    assert!(
        events.try_recv().is_err(),
        "no call event for a ringtone error"
    );
    // The media thread still takes commands: a call's Start is processed.
    engine.send(MediaCommand::Start {
        call_id: "c1".into(),
        join: no_tokens("c1"),
        mic_muted: false,
        video: true,
    });
    let ev = events.blocking_recv().expect("media thread alive");
    assert!(
        matches!(ev, MediaEvent::Failed { ref call_id, .. } if call_id == "c1"),
        "{ev:?}"
    );
}

fn no_tokens(call_id: &str) -> callbox_protocol::JoinInfo {
    callbox_protocol::JoinInfo {
        call_id: call_id.into(),
        room_name: "r".into(),
        url: "ws://127.0.0.1:1".into(),
        token: None,
        publisher: None,
        subscriber: None,
    }
}

#[test]
fn a_call_start_silences_the_ringtone() {
    let _serial = serial();
    let (engine, mut events) = engine(tone(vec![400, 200, 400, 2000]));
    let st = engine.ringtone().clone();
    engine.send(MediaCommand::Ringtone(true));
    wait_for(Duration::from_millis(500), || st.buffers() > 0).expect("ringing");
    // No Ringtone(false) first: Start must still get the speaker.
    engine.send(MediaCommand::Start {
        call_id: "c2".into(),
        join: no_tokens("c2"),
        mic_muted: false,
        video: true,
    });
    let ev = events.blocking_recv().expect("Start was processed");
    assert!(matches!(ev, MediaEvent::Failed { .. }), "{ev:?}");
    assert!(!st.is_playing(), "Start stopped the ringtone");
    let frozen = st.buffers();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(st.buffers(), frozen);
}
