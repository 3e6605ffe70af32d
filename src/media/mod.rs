//! Call media: the GStreamer publish and subscribe pipelines, run on one dedicated media
//! thread.
//!
//! Every pipeline state change happens on that thread, never on a tokio worker: the
//! gst-plugins-rs WebRTC elements block on their own tokio runtime during state changes
//! (design §4). The supervisor sends [`MediaCommand`]s and receives [`MediaEvent`]s;
//! frame counters and the ringtone's [`RingtoneStatus`] are shared state it can read
//! any time. The ringtone is a small pipeline of its own on the same thread
//! ([`ringtone`]).

mod audio;
pub mod camera;
pub mod codecs;
pub mod display;
mod elements;
pub mod encoder;
mod engine;
mod keyframe;
mod keyframe_start;
mod nested;
mod pace;
mod pipeline;
pub mod quality;
pub mod ringtone;
pub mod screen;
pub mod speaker;
pub mod stamp;
mod stats;
mod tile;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use callbox_protocol::JoinInfo;

use crate::config::{self, MediaConfig};
use crate::screen::{Scene, ScreenConfig};

pub use codecs::{NoTrackCodecs, TrackCodecSource};
pub use elements::package_for;
pub use engine::{COMMAND_CAPACITY, EVENT_CAPACITY, Health, MediaEngine, MediaSender};
pub use ringtone::RingtoneStatus;

/// Why media could not be set up or failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// GStreamer itself could not start.
    #[error("GStreamer init failed: {0}")]
    Init(String),
    /// A required element is not installed.
    #[error("GStreamer element `{element}` is missing: install the Debian package {package}")]
    MissingElement {
        /// Element factory name.
        element: String,
        /// The package that provides it.
        package: &'static str,
    },
    /// The hub's join info lacks the device tokens (hub too old, or a user credential
    /// was configured on the box).
    #[error(
        "the hub sent no device tokens (publisher/subscriber) for call {call_id}: is \
         hub.credential a device credential (`callbox-hub add-device`)?"
    )]
    NoDeviceTokens {
        /// The call.
        call_id: String,
    },
    /// Building or linking a pipeline failed.
    #[error("building the {which} pipeline failed: {detail}")]
    Build {
        /// `publish`, `subscribe` or `ringtone`.
        which: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A pipeline refused to start.
    #[error("the {which} pipeline did not start: {detail}")]
    StateChange {
        /// `publish`, `subscribe` or `ringtone`.
        which: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// Concrete sources and sinks after resolving `auto` against the machine.
#[derive(Debug, Clone)]
pub struct MediaPlan {
    /// `v4l2src device=…`, `libcamerasrc` or `videotestsrc`.
    pub video_source: SourceKind,
    /// `alsasrc device=…` or `audiotestsrc`.
    pub audio_source: SourceKind,
    /// Element for remote video.
    pub video_sink: &'static str,
    /// Element for remote audio.
    pub audio_sink: &'static str,
    /// The `[media]` section.
    pub config: MediaConfig,
    /// The `[screen]` section (defaults unless the caller sets it).
    pub screen: ScreenConfig,
    /// The board (`gpio.board`), which chooses the video encoder ([`encoder`]).
    pub board: crate::gpio::Board,
    /// Where the speaker volume is applied (`[audio]`; software unless the caller sets
    /// a mixer).
    pub speaker: speaker::Speaker,
}

/// A capture source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// Real hardware.
    Device(String),
    /// The first camera libcamera finds (`libcamerasrc`).
    Libcamera,
    /// Test signal.
    Test,
}

impl MediaPlan {
    /// Resolves every `auto` against what this machine has: a camera at
    /// `video_device`, an ALSA capture/playback device, a desktop session, a DRM device.
    pub fn resolve(config: &MediaConfig) -> Self {
        let has_display =
            std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
        let alsa_pcm = |suffix: char| {
            std::fs::read_dir("/dev/snd")
                .map(|dir| {
                    dir.flatten().any(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with("pcmC") && n.ends_with(suffix)
                    })
                })
                .unwrap_or(false)
        };
        let video_source = match config.video_source {
            config::VideoSource::V4l2 => {
                SourceKind::Device(config.video_device.display().to_string())
            }
            config::VideoSource::Test => SourceKind::Test,
            config::VideoSource::Libcamera => SourceKind::Libcamera,
            config::VideoSource::Auto if config.video_device.exists() => {
                SourceKind::Device(config.video_device.display().to_string())
            }
            config::VideoSource::Auto => SourceKind::Test,
        };
        let audio_source = match config.audio_source {
            config::AudioSource::Alsa => SourceKind::Device(config.audio_device.clone()),
            config::AudioSource::Test => SourceKind::Test,
            config::AudioSource::Auto if alsa_pcm('c') => {
                SourceKind::Device(config.audio_device.clone())
            }
            config::AudioSource::Auto => SourceKind::Test,
        };
        let video_sink = match config.video_sink {
            config::VideoSink::Kmssink => "kmssink",
            config::VideoSink::Autovideosink => "autovideosink",
            config::VideoSink::Fakesink => "fakesink",
            config::VideoSink::Auto if has_display => "autovideosink",
            config::VideoSink::Auto if Path::new("/dev/dri/card0").exists() => "kmssink",
            config::VideoSink::Auto => "fakesink",
        };
        let audio_sink = match config.audio_sink {
            config::AudioSink::Alsasink => "alsasink",
            config::AudioSink::Autoaudiosink => "autoaudiosink",
            config::AudioSink::Fakesink => "fakesink",
            config::AudioSink::Auto if alsa_pcm('p') => "alsasink",
            config::AudioSink::Auto => "fakesink",
        };
        Self {
            video_source,
            audio_source,
            video_sink,
            audio_sink,
            config: config.clone(),
            screen: ScreenConfig::default(),
            board: crate::gpio::Board::None,
            speaker: speaker::Speaker::Software,
        }
    }

    /// The video encoder for this board and config ([`encoder::plan`]).
    pub fn encoder(&self) -> encoder::EncoderPlan {
        encoder::plan(self.board, &self.config, &encoder::available)
    }

    /// Every element this plan uses.
    pub fn elements(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = elements::CORE.to_vec();
        v.push(match self.video_source {
            SourceKind::Device(_) => "v4l2src",
            SourceKind::Libcamera => "libcamerasrc",
            SourceKind::Test => "videotestsrc",
        });
        if matches!(self.video_source, SourceKind::Device(_)) {
            // A USB camera's MJPEG (media::camera).
            v.push("jpegdec");
        }
        v.push(match self.audio_source {
            SourceKind::Device(_) | SourceKind::Libcamera => "alsasrc",
            SourceKind::Test => "audiotestsrc",
        });
        v.extend(["videoscale", "videorate", self.video_sink, self.audio_sink]);
        v.extend(elements::SCREEN);
        v
    }
}

/// Initialises GStreamer, registers the statically linked WebRTC plugin, raises the
/// configured hardware encoder's rank and checks that every element of `plan` exists.
///
/// Errors: [`MediaError::Init`], [`MediaError::MissingElement`] naming the package.
pub fn init(plan: &MediaPlan) -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Init(e.to_string()))?;
    // Register once per process; a second call reports "already registered".
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    let mut reg_err = None;
    REGISTERED.call_once(|| {
        if let Err(e) = gstrswebrtc::plugin_register_static() {
            reg_err = Some(e.to_string());
        }
    });
    if let Some(e) = reg_err {
        return Err(MediaError::Init(format!(
            "registering the WebRTC plugin: {e}"
        )));
    }
    elements::require(&plan.elements())?;
    elements::require_h264()?;
    let enc = plan.encoder();
    if let Some(element) = &enc.element {
        use gst::prelude::*;
        match gst::ElementFactory::find(element) {
            Some(factory) => {
                factory.set_rank(gst::Rank::PRIMARY + 100);
                tracing::info!(encoder = %element, reason = %enc.reason, "video encoder preferred");
            }
            None => {
                return Err(MediaError::MissingElement {
                    element: element.clone(),
                    package: package_for(element).unwrap_or("the board's GStreamer plugins"),
                });
            }
        }
    }
    Ok(())
}

/// Frame counters of the current call, reset when media starts.
#[derive(Debug, Default)]
pub struct Counters {
    /// Video frames handed to the publisher (`livekitwebrtcsink`).
    pub video_frames_sent: AtomicU64,
    /// Decoded video frames received from remote participants.
    pub video_frames_received: AtomicU64,
    /// When the call's first remote video frame reached the screen's branch, ms since
    /// the Unix epoch (0: none yet). For call set-up figures (`make bench`).
    pub first_video_received_unix_ms: AtomicU64,
    /// Decoded audio buffers received from remote participants.
    pub audio_buffers_received: AtomicU64,
    /// The element `livekitwebrtcsink` encodes the camera with (its `encoder-setup`).
    pub video_encoder: std::sync::Mutex<Option<String>>,
    /// The publisher's video encoders of this call (one per session of
    /// `livekitwebrtcsink`), to ask for a keyframe when the box's network returns
    /// ([`keyframe::force_keyframe`]).
    pub video_encoders: std::sync::Mutex<Vec<gst::glib::WeakRef<gst::Element>>>,
    /// The call's network over the last [`quality::INTERVAL`] (`None` outside a call).
    pub network: std::sync::Mutex<Option<quality::Link>>,
    /// A call's pipelines are running: set by the media thread once they started,
    /// cleared once they are torn down (after the call's state is already idle).
    pub media_active: std::sync::atomic::AtomicBool,
    /// Times memory was returned to the system after a call (two a call: at teardown
    /// and [`engine::LATE_TRIM`] later). Never reset.
    pub memory_trims: AtomicU64,
}

impl Counters {
    fn reset(&self) {
        for c in [
            &self.video_frames_sent,
            &self.video_frames_received,
            &self.first_video_received_unix_ms,
            &self.audio_buffers_received,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        if let Ok(mut e) = self.video_encoder.lock() {
            *e = None;
        }
        if let Ok(mut list) = self.video_encoders.lock() {
            list.clear();
        }
        self.set_network(None);
    }

    fn set_network(&self, link: Option<quality::Link>) {
        if let Ok(mut n) = self.network.lock() {
            *n = link;
        }
    }

    /// The current call's network (see `network`).
    pub fn network(&self) -> Option<quality::Link> {
        self.network.lock().ok().and_then(|n| *n)
    }

    /// The video encoder of the current or last call (see `video_encoder`).
    pub fn video_encoder(&self) -> Option<String> {
        self.video_encoder.lock().ok().and_then(|e| e.clone())
    }

    /// `(video sent, video received, audio received)`.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.video_frames_sent.load(Ordering::Relaxed),
            self.video_frames_received.load(Ordering::Relaxed),
            self.audio_buffers_received.load(Ordering::Relaxed),
        )
    }
}

/// Commands to the media thread.
#[derive(Debug)]
pub enum MediaCommand {
    /// Tear down whatever runs, then publish and subscribe in `join`'s room.
    Start {
        /// The call.
        call_id: String,
        /// URL and device tokens.
        join: JoinInfo,
        /// Start with the microphone muted.
        mic_muted: bool,
        /// Publish the camera; `false`: an audio-only call, the camera is not opened.
        video: bool,
    },
    /// Mute or unmute the published microphone of the running call.
    SetMicMuted(bool),
    /// Tear everything down.
    Stop {
        /// The call.
        call_id: String,
    },
    /// Start (`true`) or stop (`false`) the ringtone; repeating the current state is a
    /// no-op. A `Start` stops the ringtone too, so the call gets the speaker.
    Ringtone(bool),
    /// Set the speaker's volume, % (0–100): through the ALSA mixer control, or the
    /// pipelines' `volume` elements ([`speaker::Speaker`]).
    SpeakerVolume(u8),
    /// Show `scene` on the call screen; `since`: when the current call was answered.
    Screen {
        /// What to show.
        scene: Scene,
        /// For the call duration.
        since: Option<Instant>,
        /// A line shown instead of the scene's bottom line (the volume bar).
        banner: Option<String>,
    },
    /// Encode the screen's last frame as PNG and send it back.
    Snapshot(tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>),
}

impl MediaCommand {
    /// The command's name, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            MediaCommand::Start { .. } => "start",
            MediaCommand::SetMicMuted(_) => "set_mic_muted",
            MediaCommand::Stop { .. } => "stop",
            MediaCommand::Ringtone(_) => "ringtone",
            MediaCommand::SpeakerVolume(_) => "speaker_volume",
            MediaCommand::Screen { .. } => "screen",
            MediaCommand::Snapshot(_) => "snapshot",
        }
    }
}

/// Panics caught in GStreamer callbacks since the process started (see [`guarded`]).
pub static CALLBACK_PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs the body of a GStreamer callback (pad probe, `pad-added`, `deep-element-added`)
/// and turns a panic into an error line and `fallback`.
///
/// These closures are called from C through gstreamer-rs' `extern "C"` trampolines,
/// and a panic unwinding out of an `extern "C"` function aborts the process (Rust
/// reference, "Behavior considered undefined"/`panic-in-ffi`: since Rust 1.81 it
/// aborts). Caught here, a bug in one callback costs that callback's work (a track
/// not shown, a probe not counting), not the call or the daemon. `callback`: its name,
/// for the log.
pub(crate) fn guarded<R>(callback: &'static str, fallback: R, body: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(panic) => {
            CALLBACK_PANICS.fetch_add(1, Ordering::Relaxed);
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            tracing::error!(callback, panic = %what, "a media callback panicked; the call goes on without its work");
            fallback
        }
    }
}

/// Reports from the media thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// Pipelines are playing and the publisher has a LiveKit session.
    Started {
        /// The call.
        call_id: String,
    },
    /// Media failed; the pipelines are still there until a `Stop`.
    Failed {
        /// The call.
        call_id: String,
        /// For the log.
        error: String,
    },
}

/// A pipeline that is set to NULL when it is dropped, whatever drops it: a stop, an
/// error on the way to PLAYING, or a panic unwinding the media thread (the watchdog's
/// "died" case). Without it a panic drops pipelines in PLAYING: GStreamer logs
/// "Trying to dispose element …, but it is in PLAYING" and disposes elements while
/// their streaming threads still run, which can take the process down. Derefs to the
/// [`gst::Pipeline`].
pub(crate) struct OwnedPipeline(gst::Pipeline);

impl OwnedPipeline {
    pub(crate) fn new(pipeline: gst::Pipeline) -> Self {
        Self(pipeline)
    }
}

impl std::ops::Deref for OwnedPipeline {
    type Target = gst::Pipeline;
    fn deref(&self) -> &gst::Pipeline {
        &self.0
    }
}

impl Drop for OwnedPipeline {
    fn drop(&mut self) {
        use gst::prelude::*;
        // NULL is idempotent: a pipeline already stopped returns at once.
        let _ = self.0.set_state(gst::State::Null);
    }
}
