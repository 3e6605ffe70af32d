//! `[media]` of the configuration file: where the box's video and audio come from and
//! go to, and how they are encoded and received. Re-exported by [`crate::config`].

use std::path::PathBuf;

use serde::Deserialize;

use super::default_true;

/// Where the published video comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VideoSource {
    /// `v4l2` when `video_device` exists, `test` otherwise.
    #[default]
    Auto,
    /// A V4L2 camera (`v4l2src`): USB webcams; raw or MJPEG chosen from what it offers.
    V4l2,
    /// A camera through libcamera (`libcamerasrc`, package gstreamer1.0-libcamera):
    /// the Raspberry Pi's CSI cameras, whose ISP libcamera drives.
    Libcamera,
    /// Moving test pattern (`videotestsrc`).
    Test,
}

/// The picture of `video_source = "test"` (`videotestsrc`'s `pattern`, same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TestPattern {
    /// A white ball moving on black: little to encode, a few hundred kbit/s at most.
    #[default]
    Ball,
    /// SMPTE colour bars: to check the colours on the far side.
    Smpte,
    /// White noise: every frame new, so the encoder uses every kbit/s it is given; for
    /// checking the bitrate cap and congestion control.
    Snow,
}

impl TestPattern {
    /// `videotestsrc`'s name for it.
    pub fn nick(self) -> &'static str {
        match self {
            TestPattern::Ball => "ball",
            TestPattern::Smpte => "smpte",
            TestPattern::Snow => "snow",
        }
    }
}

/// Where the published audio comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AudioSource {
    /// `alsa` when the machine has a capture device, `test` otherwise.
    #[default]
    Auto,
    /// ALSA capture (`alsasrc`).
    Alsa,
    /// Sine tone (`audiotestsrc`).
    Test,
}

/// Where the caller's video goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VideoSink {
    /// `autovideosink` with a desktop session, `kmssink` with a DRM device, else `fakesink`.
    #[default]
    Auto,
    /// Direct KMS output on the HDMI screen (no X/Wayland).
    Kmssink,
    /// A window on a desktop.
    Autovideosink,
    /// Discard (headless, tests).
    Fakesink,
}

/// Where the caller's audio goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AudioSink {
    /// `alsasink` when the machine has a playback device, else `fakesink`.
    #[default]
    Auto,
    /// ALSA playback.
    Alsasink,
    /// Whatever the desktop uses.
    Autoaudiosink,
    /// Discard.
    Fakesink,
}

/// Video codec the box accepts from remote participants.
///
/// GStreamer 1.22's webrtcbin answers a LiveKit offer with a single codec, so the box
/// receives exactly one codec; a caller publishing another one is not shown (LiveKit logs
/// "bind error for unsupported codec"). Callers should publish this codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReceiveVideoCodec {
    /// H.264 (hardware decode on a Raspberry Pi 4).
    #[default]
    H264,
    /// VP8 (what browsers publish unless told otherwise).
    Vp8,
}

impl ReceiveVideoCodec {
    /// The encoding name webrtcsrc's `video-codecs` expects.
    pub fn encoding_name(self) -> &'static str {
        match self {
            Self::H264 => "H264",
            Self::Vp8 => "VP8",
        }
    }
}

/// `[media]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Default `auto`.
    #[serde(default)]
    pub video_source: VideoSource,
    /// What `video_source = "test"` shows. Default `ball`.
    #[serde(default)]
    pub test_pattern: TestPattern,
    /// V4L2 capture device. Default `/dev/video0`.
    #[serde(default = "default_video_device")]
    pub video_device: PathBuf,
    /// Capture width, px. Default 640.
    #[serde(default = "default_width")]
    pub width: u32,
    /// Capture height, px. Default 480.
    #[serde(default = "default_height")]
    pub height: u32,
    /// Capture rate, fps. Default 30.
    #[serde(default = "default_framerate")]
    pub framerate: u32,
    /// Default `auto`.
    #[serde(default)]
    pub audio_source: AudioSource,
    /// ALSA capture device. Default `default`.
    #[serde(default = "default_alsa")]
    pub audio_device: String,
    /// Default `auto`.
    #[serde(default)]
    pub video_sink: VideoSink,
    /// Default `auto`.
    #[serde(default)]
    pub audio_sink: AudioSink,
    /// ALSA playback device (remote audio and the ringtone). Default `default`.
    #[serde(default = "default_alsa")]
    pub audio_output_device: String,
    /// The DRM driver `kmssink` opens (its `driver-name` property, e.g. `vc4` on a
    /// Raspberry Pi, `vkms` in the hardware lab). Empty: kmssink probes a built-in list
    /// of drivers, which in GStreamer 1.22 misses some (vkms: "Could not open DRM
    /// module (NULL)"). Default empty.
    #[serde(default)]
    pub kms_driver: String,
    /// The video codec the box answers LiveKit's offers with when the hub cannot say
    /// which codec the caller's track is in (see `media::codecs`). Default `h264`.
    #[serde(default)]
    pub receive_video_codec: ReceiveVideoCodec,
    /// Acoustic echo cancellation on the microphone: `webrtcdsp` (WebRTC audio
    /// processing) with a `webrtcechoprobe` on the speaker path, so the caller does not
    /// hear themselves through the box's speaker and microphone. Default true.
    #[serde(default = "default_true")]
    pub echo_cancellation: bool,
    /// How the echo canceller lines the speaker's output up with the microphone.
    /// false (default): by the buffers' running times and the speaker pipeline's
    /// latency (`webrtcdsp` `delay-agnostic=false`), which does not depend on when the
    /// two pipelines' threads get the CPU. true: WebRTC estimates the delay from the
    /// signals themselves, for a sound card that reports a wrong latency; on a busy CPU
    /// it cancelled as little as 10-18 dB where the default kept 35-39 dB
    /// (tests/e2e_echo.rs with both cores busy).
    #[serde(default)]
    pub echo_delay_agnostic: bool,
    /// Noise suppression on the microphone (`webrtcdsp`). Default true.
    #[serde(default = "default_true")]
    pub noise_suppression: bool,
    /// Test hook for machines without a speaker and microphone: with
    /// `audio_source = "test"`, the box's speaker output is fed back into its
    /// microphone after this delay, ms, as a room would. 0 (default): off.
    #[serde(default)]
    pub simulated_echo_delay_ms: u32,
    /// Gain of that simulated echo path, dB (−60 to 0). Default −6.
    #[serde(default = "default_simulated_echo_gain_db")]
    pub simulated_echo_gain_db: f64,
    /// Upper bound of the published video bitrate, kbit/s. Default 1500. Congestion
    /// control moves the rate between 100 and this (`media::pipeline::rate_control`).
    #[serde(default = "default_max_bitrate_kbps")]
    pub max_video_bitrate_kbps: u32,
    /// The H.264 encoder element (e.g. `v4l2h264enc`), overriding the board's choice
    /// (`media::encoder`); its rank is raised so `webrtcsink` picks it. Empty (default):
    /// the board's.
    #[serde(default)]
    pub hardware_encoder: String,
    /// STUN server, `stun://host:port`. Empty: none. Default empty.
    #[serde(default)]
    pub stun_server: String,
    /// TURN servers, `turn://user:password@host:port`. Default none.
    #[serde(default)]
    pub turn_servers: Vec<String>,
    /// Local IP addresses ICE may gather host candidates on, e.g. `["127.0.0.1"]` when
    /// the LiveKit server runs on the same machine (tests, demo). Empty: every interface
    /// but loopback (libnice's default). Default empty.
    #[serde(default)]
    pub ice_local_addresses: Vec<String>,
    /// How long media may take to come up before the call is given up, ms. Default 20000.
    #[serde(default = "default_start_timeout_ms")]
    pub start_timeout_ms: u64,
    /// How long the media thread may go without answering before the watchdog declares
    /// it wedged, rebuilds media on a fresh thread and fails the call's media over (the
    /// call then rejoins), ms. Default 30000; at least 1000.
    #[serde(default = "default_watchdog_ms")]
    pub watchdog_ms: u64,
    /// How long the receiving jitter buffers hold packets before they are decoded, ms:
    /// the delay the box adds to the caller's picture and sound to smooth out network
    /// jitter and to wait for retransmissions (NACK) of lost packets. webrtcbin's
    /// `latency` property. Default 100 (GStreamer's is 200); 10 to 2000. At 100 a
    /// retransmission still arrives in time on a path with up to ~80 ms of RTT, and 40 ms
    /// of jitter or 10 % loss with 200 ms of RTT showed no fewer frames than at 200
    /// (`tests/e2e_netfaults.rs`, 2026-11-24). A CPU-starved box needs more: the QEMU
    /// lab's lost 35 % of its packets at 80 and 17 % at 200 (one run each) and runs
    /// with 1000.
    #[serde(default = "default_jitter_buffer_ms")]
    pub jitter_buffer_ms: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [media] key has a default")
    }
}

fn default_video_device() -> PathBuf {
    PathBuf::from("/dev/video0")
}
fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_framerate() -> u32 {
    30
}
fn default_alsa() -> String {
    "default".into()
}
fn default_max_bitrate_kbps() -> u32 {
    1500
}
fn default_simulated_echo_gain_db() -> f64 {
    -6.0
}
fn default_start_timeout_ms() -> u64 {
    20_000
}
fn default_watchdog_ms() -> u64 {
    30_000
}
fn default_jitter_buffer_ms() -> u32 {
    100
}
