//! The ringtone: a small pipeline of its own that plays on the configured audio sink
//! while the box rings. Used only from the media thread; the supervisor switches it
//! with [`MediaCommand::Ringtone`](super::MediaCommand::Ringtone) and reads
//! [`RingtoneStatus`] from anywhere.
//!
//! Two sources (`[ringtone] file`):
//! - built in: two live sines (440 Hz + 480 Hz, the classic ring) mixed by `audiomixer`
//!   → `volume` → `audioconvert` → `audioresample` → sink. The media thread applies
//!   `cadence_ms` by toggling `volume.mute` at the step boundaries, measured from the
//!   ring's start instant ([`RingtoneStatus::started_at`]); it wakes up exactly at the
//!   next boundary (see [`Ringer::next_wake`]), so a step starts late by the thread's
//!   wake-up latency only (typically well under a millisecond);
//! - a file: `filesrc ! decodebin ! audioconvert ! audioresample ! volume ! sink`,
//!   played continuously and looped with a flushing seek to 0 on end-of-stream.
//!
//! A failure (missing element, undecodable file, sink error) is logged and stops the
//! ringtone; it never touches the call's media and never panics.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::pipeline::first_error;
use super::{MediaError, MediaPlan};
use crate::config::RingtoneConfig;

/// `MediaError::…{ which }` for the ringtone.
const W: &str = "ringtone";

/// The built-in tone's two frequencies, Hz (North-American ring: 440 + 480 Hz).
const TONE_HZ: [f64; 2] = [440.0, 480.0];
/// Amplitude of each sine, 0..=1; the sum peaks at 0.9 before `[ringtone] volume`.
const TONE_AMPLITUDE: f64 = 0.45;
/// Samples per source buffer: 10 ms at 44.1 kHz, so the live sources add little latency.
const TONE_SAMPLES_PER_BUFFER: i32 = 441;

/// Elements the ringtone may use, with the Debian package that provides each (those
/// not in the call's own table in `elements.rs`).
const PACKAGES: &[(&str, &str)] = &[
    ("audiotestsrc", "gstreamer1.0-plugins-base"),
    ("audiomixer", "gstreamer1.0-plugins-base"),
    ("volume", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("decodebin", "gstreamer1.0-plugins-base"),
    ("filesrc", "libgstreamer1.0-0"),
    ("fakesink", "libgstreamer1.0-0"),
    ("alsasink", "gstreamer1.0-alsa"),
    ("autoaudiosink", "gstreamer1.0-plugins-good"),
];

/// What the ringtone is doing. Shared between the media thread (writer) and the
/// supervisor, the status command, benchmarks and tests (readers); lock-free except
/// for the start instant.
#[derive(Debug, Default)]
pub struct RingtoneStatus {
    playing: AtomicBool,
    started_at: Mutex<Option<Instant>>,
    buffers: AtomicU64,
    audible_buffers: AtomicU64,
    cadence_steps: AtomicU64,
    max_step_lateness_us: AtomicU64,
    loops: AtomicU64,
}

impl RingtoneStatus {
    /// Whether the ringtone pipeline is running (from a successful start until
    /// `Ringtone(false)`, a call's `Start` or an error).
    pub fn is_playing(&self) -> bool {
        self.playing.load(Ordering::Acquire)
    }

    /// When the current ring started: the instant the pipeline was set to PLAYING,
    /// from which `cadence_ms` is counted (the ringing LED should count from it too).
    /// `None` when not ringing.
    pub fn started_at(&self) -> Option<Instant> {
        *self.started()
    }

    /// Buffers of the current ring that reached the sink (about 10 ms each for the
    /// built-in tone). Reset when a ring starts; frozen after it stops.
    pub fn buffers(&self) -> u64 {
        self.buffers.load(Ordering::Relaxed)
    }

    /// Of [`buffers`](Self::buffers), those carrying sound: not flagged as a gap and not
    /// all-zero samples. The built-in tone's silent cadence steps are not audible.
    pub fn audible_buffers(&self) -> u64 {
        self.audible_buffers.load(Ordering::Relaxed)
    }

    /// Cadence steps (mute/unmute toggles) applied during the current ring.
    pub fn cadence_steps(&self) -> u64 {
        self.cadence_steps.load(Ordering::Relaxed)
    }

    /// The latest the media thread applied a cadence step during the current ring,
    /// measured from the step's scheduled boundary to the `volume.mute` change.
    pub fn max_step_lateness(&self) -> Duration {
        Duration::from_micros(self.max_step_lateness_us.load(Ordering::Relaxed))
    }

    /// How many times a ringtone file reached its end and was restarted.
    pub fn loops(&self) -> u64 {
        self.loops.load(Ordering::Relaxed)
    }

    fn started(&self) -> MutexGuard<'_, Option<Instant>> {
        self.started_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset(&self, started: Instant) {
        for c in [
            &self.buffers,
            &self.audible_buffers,
            &self.cadence_steps,
            &self.max_step_lateness_us,
            &self.loops,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self.started() = Some(started);
        self.playing.store(true, Ordering::Release);
    }

    fn stopped(&self) {
        self.playing.store(false, Ordering::Release);
        *self.started() = None;
    }
}

/// Where a moment falls in a repeating sound/silence cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CadencePosition {
    /// Steps since the ring started (0 = the first sound step); even = sound.
    pub step: u64,
    /// Whether this step is a sound step.
    pub sounding: bool,
    /// From the ring's start to this step's start.
    pub step_start: Duration,
    /// From the ring's start to the next step's start.
    pub next_boundary: Duration,
}

/// Where `elapsed` (time since the ring started) falls in `cadence_ms`: alternating
/// sound/silence steps in milliseconds, starting with sound and repeating. `None` when
/// the cadence is empty or all zero (then: sound all the time).
pub fn cadence_position(cadence_ms: &[u32], elapsed: Duration) -> Option<CadencePosition> {
    const NS_PER_MS: u128 = 1_000_000;
    let cycle_ns: u128 = cadence_ms
        .iter()
        .map(|&ms| u128::from(ms) * NS_PER_MS)
        .sum();
    if cycle_ns == 0 {
        return None;
    }
    let elapsed_ns = elapsed.as_nanos();
    let cycles = elapsed_ns / cycle_ns;
    let mut start_ns = cycles * cycle_ns;
    let first_step = cycles * cadence_ms.len() as u128;
    for (step, &ms) in (first_step..).zip(cadence_ms) {
        let end_ns = start_ns + u128::from(ms) * NS_PER_MS;
        if elapsed_ns < end_ns {
            // A zero-length step is skipped: its end equals its start.
            let ns = |n: u128| Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX));
            return Some(CadencePosition {
                step: u64::try_from(step).unwrap_or(u64::MAX),
                sounding: step.is_multiple_of(2),
                step_start: ns(start_ns),
                next_boundary: ns(end_ns),
            });
        }
        start_ns = end_ns;
    }
    unreachable!("elapsed % cycle lies inside the cycle")
}

/// The ringtone's owner on the media thread: starts, stops, loops and cadences it.
pub(super) struct Ringer {
    config: RingtoneConfig,
    sink: &'static str,
    device: String,
    status: Arc<RingtoneStatus>,
    active: Option<Active>,
    /// The speaker volume's share, applied on top of `[ringtone] volume` (1.0 when an
    /// ALSA mixer control does the attenuation; see `media::speaker`).
    gain: f64,
}

/// A running ring.
struct Active {
    pipeline: super::OwnedPipeline,
    volume: gst::Element,
    started: Instant,
    /// Built-in tone: the cadence is applied. A file plays continuously.
    cadenced: bool,
    /// The step whose mute state is applied.
    step: u64,
}

impl Ringer {
    /// A stopped ringer playing `config` on `plan`'s audio sink. Logs (does not fail)
    /// when an element it needs is missing, so the installer sees it at boot and calls
    /// still work.
    pub(super) fn new(
        plan: &MediaPlan,
        config: RingtoneConfig,
        status: Arc<RingtoneStatus>,
    ) -> Self {
        let ringer = Self {
            config,
            sink: plan.audio_sink,
            device: plan.config.audio_output_device.clone(),
            status,
            active: None,
            gain: 1.0,
        };
        if gst::init().is_ok()
            && let Err(e) = require(&ringer.elements())
        {
            tracing::error!(error = %e, "the ringtone will not play");
        }
        ringer
    }

    /// Starts (`true`) or stops (`false`) the ringtone; repeating the current state
    /// does nothing (a second start keeps the cadence's start instant).
    pub(super) fn set(&mut self, on: bool) {
        match (on, self.active.is_some()) {
            (true, false) => self.start(),
            (false, true) => self.stop("stopped"),
            _ => {}
        }
    }

    /// Sets the speaker volume's gain (0.0–1.0), at once if ringing.
    pub(super) fn set_gain(&mut self, gain: f64) {
        self.gain = gain.clamp(0.0, 1.0);
        if let Some(a) = &self.active {
            a.volume.set_property("volume", self.level());
        }
    }

    /// The `volume` element's level: `[ringtone] volume` × the speaker volume's gain.
    fn level(&self) -> f64 {
        self.config.volume.clamp(0.0, 1.0) * self.gain
    }

    /// Whether the ringtone is playing.
    pub(super) fn is_on(&self) -> bool {
        self.active.is_some()
    }

    /// Stops the ringtone at once (pipeline to NULL); a no-op when silent. `why` is
    /// for the log.
    pub(super) fn stop(&mut self, why: &str) {
        let Some(a) = self.active.take() else { return };
        let _ = a.pipeline.set_state(gst::State::Null);
        self.status.stopped();
        tracing::info!(
            reason = why,
            rang_ms = a.started.elapsed().as_millis() as u64,
            buffers = self.status.buffers(),
            "ringtone off"
        );
    }

    /// When the media thread must next call [`poll`](Self::poll): the next cadence
    /// boundary of the built-in tone; `None` when nothing is scheduled.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        let a = self.active.as_ref().filter(|a| a.cadenced)?;
        let pos = cadence_position(&self.config.cadence_ms, a.started.elapsed())?;
        Some(a.started + pos.next_boundary)
    }

    /// Applies the cadence step due now, then drains the bus: loops a file on
    /// end-of-stream, stops on an error.
    pub(super) fn poll(&mut self) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        if a.cadenced {
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(a.started);
            if let Some(pos) = cadence_position(&self.config.cadence_ms, elapsed)
                && pos.step != a.step
            {
                let was_sounding = a.step.is_multiple_of(2);
                a.step = pos.step;
                if pos.sounding != was_sounding {
                    a.volume.set_property("mute", !pos.sounding);
                    let late = elapsed.saturating_sub(pos.step_start);
                    self.status.cadence_steps.fetch_add(1, Ordering::Relaxed);
                    self.status
                        .max_step_lateness_us
                        .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                    tracing::trace!(
                        step = pos.step,
                        sounding = pos.sounding,
                        late_us = late.as_micros() as u64,
                        "ringtone cadence"
                    );
                }
            }
        }
        let Some(bus) = a.pipeline.bus() else { return };
        let mut failure = None;
        while let Some(msg) = bus.pop() {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    // Only a file ends; the live tone never does.
                    match a
                        .pipeline
                        .seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
                    {
                        Ok(()) => {
                            self.status.loops.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!("ringtone file looped");
                        }
                        Err(e) => {
                            failure = Some(format!("cannot loop the file (seek to 0 failed: {e})"));
                            break;
                        }
                    }
                }
                gst::MessageView::Error(err) => {
                    let src = msg
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default();
                    failure = Some(format!(
                        "{src}: {} ({})",
                        err.error(),
                        err.debug().map(|d| d.to_string()).unwrap_or_default()
                    ));
                    break;
                }
                gst::MessageView::Warning(w) => {
                    tracing::warn!(warning = %w.error(), "ringtone warning");
                }
                _ => {}
            }
        }
        if let Some(error) = failure {
            tracing::error!(
                file = ?self.config.file,
                sink = self.sink,
                %error,
                "the ringtone failed and is stopped; calls are not affected"
            );
            self.stop("error");
        }
    }

    fn start(&mut self) {
        match self.build() {
            Ok((pipeline, volume, cadenced)) => {
                if let Err(e) = pipeline.set_state(gst::State::Playing) {
                    let detail = first_error(&pipeline).unwrap_or_else(|| e.to_string());
                    let _ = pipeline.set_state(gst::State::Null);
                    let e = MediaError::StateChange { which: W, detail };
                    tracing::error!(error = %e, "the ringtone did not start");
                    return;
                }
                let started = Instant::now();
                self.status.reset(started);
                self.active = Some(Active {
                    pipeline: super::OwnedPipeline::new(pipeline),
                    volume,
                    started,
                    cadenced,
                    step: 0,
                });
                let source = self
                    .config
                    .file
                    .as_deref()
                    .map_or_else(|| "built-in tone".to_owned(), |f| f.display().to_string());
                tracing::info!(
                    %source,
                    sink = self.sink,
                    volume = self.config.volume,
                    cadence_ms = ?self.config.cadence_ms,
                    "ringtone on"
                );
            }
            Err(e) => tracing::error!(error = %e, "the ringtone did not start"),
        }
    }

    /// Elements the configured ringtone uses.
    fn elements(&self) -> Vec<&'static str> {
        let mut v = match self.config.file {
            None => vec!["audiotestsrc", "audiomixer"],
            Some(_) => vec!["filesrc", "decodebin"],
        };
        v.extend(["volume", "audioconvert", "audioresample", self.sink]);
        v
    }

    /// Builds the pipeline (not started): `(pipeline, volume element, cadenced)`.
    fn build(&self) -> Result<(gst::Pipeline, gst::Element, bool), MediaError> {
        require(&self.elements())?;
        let pipeline = gst::Pipeline::with_name("ringtone");
        let volume = gst::ElementFactory::make("volume")
            .name("ringtone-volume")
            .property("volume", self.level())
            .build()
            .map_err(|e| build_err(format!("element volume: {e}")))?;
        let sink = self.make_sink()?;
        // Counts what reaches the speaker, and whether it is sound or silence.
        let status = self.status.clone();
        sink.static_pad("sink")
            .ok_or_else(|| build_err(format!("{} has no sink pad", self.sink)))?
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                super::guarded("ringtone-probe", gst::PadProbeReturn::Ok, || {
                    if let Some(buf) = info.buffer() {
                        status.buffers.fetch_add(1, Ordering::Relaxed);
                        if is_audible(buf) {
                            status.audible_buffers.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    gst::PadProbeReturn::Ok
                })
            });
        let convert = make("audioconvert")?;
        let resample = make("audioresample")?;
        match &self.config.file {
            None => {
                let mixer = make("audiomixer")?;
                pipeline.add(&mixer).map_err(|e| build_err(e.to_string()))?;
                for hz in TONE_HZ {
                    let src = gst::ElementFactory::make("audiotestsrc")
                        .property("is-live", true)
                        .property_from_str("wave", "sine")
                        .property("freq", hz)
                        .property("volume", TONE_AMPLITUDE)
                        .property("samplesperbuffer", TONE_SAMPLES_PER_BUFFER)
                        .build()
                        .map_err(|e| build_err(format!("element audiotestsrc: {e}")))?;
                    pipeline.add(&src).map_err(|e| build_err(e.to_string()))?;
                    src.link(&mixer).map_err(|e| build_err(e.to_string()))?;
                }
                let chain = [&mixer, &volume, &convert, &resample, &sink];
                pipeline
                    .add_many(&chain[1..])
                    .map_err(|e| build_err(e.to_string()))?;
                gst::Element::link_many(chain).map_err(|e| build_err(e.to_string()))?;
                Ok((pipeline, volume, true))
            }
            Some(path) => {
                let src = make("filesrc")?;
                src.set_property("location", path_str(path)?);
                let decode = make("decodebin")?;
                let chain = [&convert, &resample, &volume, &sink];
                pipeline
                    .add_many([&src, &decode])
                    .and_then(|()| pipeline.add_many(chain))
                    .map_err(|e| build_err(e.to_string()))?;
                src.link(&decode).map_err(|e| build_err(e.to_string()))?;
                gst::Element::link_many(chain).map_err(|e| build_err(e.to_string()))?;
                let convert_sink = convert
                    .static_pad("sink")
                    .expect("audioconvert has a sink pad");
                decode.connect_pad_added(move |_, pad| {
                    super::guarded("ringtone-pad-added", (), || {
                        let is_audio = pad
                            .current_caps()
                            .or_else(|| Some(pad.query_caps(None)))
                            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("audio/")))
                            .unwrap_or(false);
                        if !is_audio || convert_sink.is_linked() {
                            return;
                        }
                        if let Err(e) = pad.link(&convert_sink) {
                            tracing::error!(error = ?e, "cannot link the ringtone file's audio");
                        }
                    })
                });
                Ok((pipeline, volume, false))
            }
        }
    }

    fn make_sink(&self) -> Result<gst::Element, MediaError> {
        let sink = make(self.sink)?;
        match self.sink {
            "alsasink" if !self.device.is_empty() => sink.set_property("device", &self.device),
            // Real time even without a sound card, so the live tone does not race.
            "fakesink" => sink.set_property("sync", true),
            _ => {}
        }
        Ok(sink)
    }
}

/// Not a gap and not all-zero bytes (silence in every signed/float PCM format, which
/// is what `volume mute=true` produces).
fn is_audible(buf: &gst::BufferRef) -> bool {
    if buf.flags().contains(gst::BufferFlags::GAP) {
        return false;
    }
    buf.map_readable()
        .map(|m| m.as_slice().iter().any(|&b| b != 0))
        .unwrap_or(false)
}

fn build_err(detail: String) -> MediaError {
    MediaError::Build { which: W, detail }
}

fn make(factory: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| build_err(format!("element {factory}: {e}")))
}

fn path_str(path: &Path) -> Result<&str, MediaError> {
    path.to_str()
        .ok_or_else(|| build_err(format!("{} is not valid UTF-8", path.display())))
}

/// Checks that every element in `names` is registered.
///
/// Errors: [`MediaError::MissingElement`] for the first missing one, with its package.
fn require(names: &[&str]) -> Result<(), MediaError> {
    for name in names {
        if gst::ElementFactory::find(name).is_none() {
            return Err(MediaError::MissingElement {
                element: (*name).to_owned(),
                package: PACKAGES
                    .iter()
                    .find(|(e, _)| e == name)
                    .map(|(_, p)| *p)
                    .or_else(|| super::package_for(name))
                    .unwrap_or("unknown package"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "ringtone_tests.rs"]
mod tests;
