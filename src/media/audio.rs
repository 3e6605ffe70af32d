//! The call's audio processing: echo cancellation and noise suppression on the
//! microphone (`webrtcdsp`), the speaker path that mixes every remote participant and
//! feeds the echo canceller's reference (`webrtcechoprobe`), and, for machines without
//! a speaker and microphone, a simulated acoustic echo from one to the other.
//!
//! ```text
//! microphone ─ convert ─ 48 kHz mono ─┬─ audiomixer ─ webrtcdsp ─ volume (mute) ─ queue ─▶ publisher
//!   simulated echo: interaudiosrc ─ delay ─ gain ─┘        ▲ reference
//! remote audio ─┐                                                   │
//! remote audio ─┴─ audiomixer ─ 48 kHz mono ─ volume ─ webrtcechoprobe ─ tee ─ <audio sink>
//!                                                                       └─ interaudiosink (simulated echo)
//! ```
//!
//! `webrtcdsp` looks its probe up by name when its caps are set, so the subscriber (with
//! the probe) is built before the publisher; both run at 48 kHz (they must share a
//! rate). The probe lines the speaker's output up with the microphone by running time:
//! both pipelines share one clock and base time, and the speaker pipeline's latency says
//! when a sample is played. `media.echo_delay_agnostic` lets WebRTC estimate the delay
//! from the signals instead (for a sound card that reports a wrong latency).

use gst::prelude::*;

use super::MediaError;
use crate::config::MediaConfig;

/// The speaker path's `volume` element's name (the software speaker volume).
pub const SPEAKER_VOLUME: &str = "speaker-volume";

/// The `webrtcechoprobe`'s name, which `webrtcdsp`'s `probe` property refers to.
pub const ECHO_PROBE: &str = "callbox-echo-probe";
/// The `interaudiosink`/`interaudiosrc` channel of the simulated echo.
pub const ECHO_CHANNEL: &str = "callbox-echo";
/// Processing rate of the DSP and the probe, Hz.
pub const RATE: i32 = 48_000;

/// What to build for `config` with a test (`true`) or real microphone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioPlan {
    /// A `webrtcdsp` on the microphone (either feature on).
    pub dsp: bool,
    /// Its `echo-cancel`, and a probe on the speaker path.
    pub echo_cancel: bool,
    /// Its `noise-suppression`.
    pub noise_suppression: bool,
    /// Its `delay-agnostic` (`media.echo_delay_agnostic`).
    pub delay_agnostic: bool,
    /// The simulated echo: delay, ms, and gain, dB.
    pub simulated_echo: Option<(u32, f64)>,
}

impl AudioPlan {
    /// From `[media]`; the simulated echo only with a test microphone.
    pub fn new(config: &MediaConfig, test_microphone: bool) -> Self {
        Self {
            dsp: config.echo_cancellation || config.noise_suppression,
            echo_cancel: config.echo_cancellation,
            noise_suppression: config.noise_suppression,
            delay_agnostic: config.echo_delay_agnostic,
            simulated_echo: (test_microphone && config.simulated_echo_delay_ms > 0).then_some((
                config.simulated_echo_delay_ms,
                config.simulated_echo_gain_db,
            )),
        }
    }
}

use super::pipeline::make;

fn err(which: &'static str) -> impl Fn(gst::glib::BoolError) -> MediaError {
    move |e| MediaError::Build {
        which,
        detail: e.to_string(),
    }
}

/// `factory` named `name` (the echo canceller and the volumes are looked up by name).
fn make_named(factory: &str, name: &str, which: &'static str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| MediaError::Build {
            which,
            detail: format!("element {factory}: {e}"),
        })
}

fn caps_48k_mono(which: &'static str) -> Result<gst::Element, MediaError> {
    let f = make("capsfilter", which)?;
    f.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("format", "S16LE")
            .field("layout", "interleaved")
            .field("rate", RATE)
            .field("channels", 1)
            .build(),
    );
    Ok(f)
}

/// The microphone chain after `source`, added to `pipeline` and linked: returns its
/// last element (a queue) for the publisher's audio pad. Contains the `volume` named
/// `mic-volume` (mute).
pub fn add_microphone(
    pipeline: &gst::Pipeline,
    source: gst::Element,
    plan: &AudioPlan,
) -> Result<gst::Element, MediaError> {
    const W: &str = "publish";
    let mut chain = vec![
        source,
        make("audioconvert", W)?,
        make("audioresample", W)?,
        caps_48k_mono(W)?,
    ];
    let mixer = if plan.simulated_echo.is_some() {
        let m = make("audiomixer", W)?;
        m.set_property_from_str("start-time-selection", "first");
        chain.push(m.clone());
        Some(m)
    } else {
        None
    };
    if plan.dsp {
        let dsp = make("webrtcdsp", W)?;
        dsp.set_property("probe", ECHO_PROBE);
        dsp.set_property("echo-cancel", plan.echo_cancel);
        dsp.set_property("noise-suppression", plan.noise_suppression);
        // Off by default: the probe then hands WebRTC the speaker's samples that match
        // each 10 ms of microphone by running time (speaker pipeline latency included).
        // On, gst-plugins-bad 1.22 drains whatever the probe holds at that moment, so the
        // alignment follows thread scheduling, and on a busy CPU the echo came back
        // (tests/e2e_echo.rs: 10-18 dB less instead of 35-39).
        dsp.set_property("delay-agnostic", plan.delay_agnostic);
        dsp.set_property("extended-filter", true);
        // WebRTC's default suppression ("moderate"). Measured with tests/e2e_echo.rs
        // under constant double talk, in delay-agnostic mode: "high" takes the echo down
        // 57 dB but the voice of the person at the box 31-37 dB too; "moderate" 26-53 dB
        // and 12-25 dB; "low" 19-20 dB and 8 dB. By timestamps "moderate": 35-39, 3 dB.
        dsp.set_property_from_str("echo-suppression-level", "moderate");
        // No automatic gain: it would raise whatever echo is left along with the voice.
        dsp.set_property("gain-control", false);
        chain.push(dsp);
    }
    let volume = make_named("volume", "mic-volume", W)?;
    chain.push(volume);
    let out = make_named("queue", "mic-queue", W)?;
    chain.push(out.clone());
    pipeline.add_many(&chain).map_err(err(W))?;
    gst::Element::link_many(&chain).map_err(err(W))?;

    if let (Some(mixer), Some((delay_ms, gain_db))) = (mixer, plan.simulated_echo) {
        let echo_src = make("interaudiosrc", W)?;
        echo_src.set_property("channel", ECHO_CHANNEL);
        // As little buffering as the inter elements allow: the delay is the queue's.
        echo_src.set_property("period-time", 10_000_000u64);
        echo_src.set_property("latency-time", 20_000_000u64);
        let delay = make("queue", W)?;
        // Held back until `delay_ms` is buffered, then passed on: a fixed delay.
        delay.set_property("min-threshold-time", delay_ms as u64 * 1_000_000);
        delay.set_property("max-size-time", (delay_ms as u64 + 1000) * 1_000_000);
        delay.set_property("max-size-buffers", 0u32);
        delay.set_property("max-size-bytes", 0u32);
        let gain = make("volume", W)?;
        gain.set_property("volume", 10f64.powf(gain_db / 20.0));
        let echo = [
            echo_src,
            make("audioconvert", W)?,
            make("audioresample", W)?,
            caps_48k_mono(W)?,
            delay,
            gain,
        ];
        pipeline.add_many(&echo).map_err(err(W))?;
        gst::Element::link_many(&echo).map_err(err(W))?;
        echo[5].link(&mixer).map_err(err(W))?;
        tracing::info!(
            delay_ms,
            gain_db,
            "simulated echo: speaker fed back into the microphone"
        );
    }
    Ok(out)
}

/// The speaker path, added to `pipeline`: returns the mixer every remote audio track
/// links to (`request_pad_simple("sink_%u")`). `sink` is the configured audio sink.
pub fn add_speaker(
    pipeline: &gst::Pipeline,
    sink: gst::Element,
    plan: &AudioPlan,
) -> Result<gst::Element, MediaError> {
    const W: &str = "subscribe";
    let mixer = make("audiomixer", W)?;
    mixer.set_property_from_str("start-time-selection", "first");
    // The speaker volume when no ALSA mixer control does it (media::speaker), before
    // the probe: the echo canceller must hear what the speaker plays.
    let volume = make_named("volume", SPEAKER_VOLUME, W)?;
    let mut chain = vec![
        mixer.clone(),
        make("audioconvert", W)?,
        make("audioresample", W)?,
        caps_48k_mono(W)?,
        volume,
    ];
    if plan.echo_cancel {
        let probe = make_named("webrtcechoprobe", ECHO_PROBE, W)?;
        chain.push(probe);
    }
    let tee = make("tee", W)?;
    chain.extend([
        tee.clone(),
        make_named("queue", "speaker-queue", W)?,
        make("audioconvert", W)?,
        make("audioresample", W)?,
        sink,
    ]);
    pipeline.add_many(&chain).map_err(err(W))?;
    gst::Element::link_many(&chain).map_err(err(W))?;
    if plan.simulated_echo.is_some() {
        let q = make("queue", W)?;
        let echo = make("interaudiosink", W)?;
        echo.set_property("channel", ECHO_CHANNEL);
        pipeline.add_many([&q, &echo]).map_err(err(W))?;
        gst::Element::link_many([&tee, &q, &echo]).map_err(err(W))?;
    }
    Ok(mixer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &gst::Pipeline) -> Vec<String> {
        let mut v: Vec<String> = p
            .iterate_elements()
            .into_iter()
            .flatten()
            .filter_map(|e| e.factory().map(|f| f.name().to_string()))
            .collect();
        v.sort();
        v
    }

    /// Echo cancellation on (the default): the microphone goes through `webrtcdsp`
    /// with the probe named as the speaker path's `webrtcechoprobe`, at 48 kHz.
    #[test]
    fn the_microphone_is_echo_cancelled_against_the_speaker() {
        gst::init().unwrap();
        let plan = AudioPlan::new(&MediaConfig::default(), false);
        assert!(plan.dsp && plan.echo_cancel && plan.noise_suppression);
        assert_eq!(plan.simulated_echo, None, "never without a test microphone");
        let p = gst::Pipeline::new();
        let src = gst::ElementFactory::make("audiotestsrc").build().unwrap();
        add_microphone(&p, src, &plan).unwrap();
        let dsp = p
            .iterate_elements()
            .into_iter()
            .flatten()
            .find(|e| e.factory().is_some_and(|f| f.name() == "webrtcdsp"))
            .expect("a webrtcdsp");
        assert_eq!(dsp.property::<String>("probe"), ECHO_PROBE);
        assert!(dsp.property::<bool>("echo-cancel") && !dsp.property::<bool>("delay-agnostic"));
        let s = gst::Pipeline::new();
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        add_speaker(&s, sink, &plan).unwrap();
        assert!(s.by_name(ECHO_PROBE).is_some(), "{:?}", names(&s));
        assert!(!names(&s).contains(&"interaudiosink".to_owned()));
    }

    #[test]
    fn no_processing_when_both_are_off_and_the_echo_only_with_a_test_microphone() {
        gst::init().unwrap();
        let config: MediaConfig = toml::from_str(
            "echo_cancellation = false\nnoise_suppression = false\nsimulated_echo_delay_ms = 50",
        )
        .unwrap();
        let real = AudioPlan::new(&config, false);
        assert!(!real.dsp && real.simulated_echo.is_none());
        let test = AudioPlan::new(&config, true);
        assert_eq!(test.simulated_echo, Some((50, -6.0)));
        let p = gst::Pipeline::new();
        let src = gst::ElementFactory::make("audiotestsrc").build().unwrap();
        add_microphone(&p, src, &test).unwrap();
        let n = names(&p);
        assert!(!n.contains(&"webrtcdsp".to_owned()), "{n:?}");
        assert!(
            n.contains(&"interaudiosrc".to_owned()) && n.contains(&"audiomixer".to_owned()),
            "{n:?}"
        );
        let s = gst::Pipeline::new();
        add_speaker(
            &s,
            gst::ElementFactory::make("fakesink").build().unwrap(),
            &test,
        )
        .unwrap();
        assert!(s.by_name(ECHO_PROBE).is_none());
        assert!(names(&s).contains(&"interaudiosink".to_owned()));
    }
}
