//! The daemon's configuration file (`/etc/callbox/callbox.toml`): its shape, defaults
//! and validation. `config/callbox.example.toml` documents every key.
//!
//! Unknown keys and bad values are errors that name the file, the key and what is
//! allowed; nothing here panics on input.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or a value of the wrong type. The message from
    /// the `toml` crate quotes the line, the key and the allowed values.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The `[gpio]` section does not resolve (bad pins, unknown board, …).
    #[error("config file {path}: {source}")]
    Gpio {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        source: crate::gpio::GpioError,
    },
    /// A value parsed but is not usable.
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key, e.g. `hub.url`.
        key: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[hub]`: where the call server is and how the box logs in.
    pub hub: HubConfig,
    /// `[call]`: how the box answers.
    #[serde(default)]
    pub call: CallConfig,
    /// `[media]`: sources, sinks and WebRTC options.
    #[serde(default)]
    pub media: MediaConfig,
    /// `[ringtone]`: what plays while the box rings.
    #[serde(default)]
    pub ringtone: RingtoneConfig,
    /// `[audio]`: the speaker's volumes and the ALSA mixer control that sets them.
    #[serde(default)]
    pub audio: crate::media::speaker::AudioConfig,
    /// `[gpio]`: buttons, LEDs, their pins and patterns.
    #[serde(default)]
    pub gpio: crate::gpio::GpioConfig,
    /// `[screen]`: the call screen on HDMI.
    #[serde(default)]
    pub screen: crate::screen::ScreenConfig,
    /// `[control]`: the local control socket.
    #[serde(default)]
    pub control: ControlConfig,
    /// `[log]`: logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// `[hub]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Base URL of the hub, `http://` or `https://`. The WebSocket is `<url>/ws`.
    pub url: String,
    /// Device credential printed by `callbox-hub add-device`. Either this or
    /// `credential_file`. Never printed (`Debug` shows `[REDACTED]`).
    #[serde(default)]
    pub credential: Option<SecretString>,
    /// A file holding the credential (first line), so the main file can be world-readable.
    #[serde(default)]
    pub credential_file: Option<PathBuf>,
    /// First reconnect delay after the hub drops, ms (doubles up to `reconnect_max_ms`,
    /// with ±25 % jitter). Default 500.
    #[serde(default = "default_reconnect_min_ms")]
    pub reconnect_min_ms: u64,
    /// Reconnect delay cap, ms. Default 30000.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// Timeout of one REST request to the hub, ms. Default 10000.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

/// How the box answers an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AnswerPolicy {
    /// Ring until someone presses answer, or until `ring_timeout_secs` (then reject as
    /// `no_answer`).
    Manual,
    /// Answer at once (the default: a box with no buttons wired still works).
    #[default]
    Auto,
    /// Ring for `answer_after_secs`, then answer.
    AutoAfter,
    /// Answer at once with the microphone muted until the mute button is pressed.
    Muted,
}

/// A daily do-not-disturb window in local time, `HH:MM-HH:MM`; may wrap midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DndSchedule {
    /// Start, minutes after midnight.
    pub start_min: u16,
    /// End (exclusive), minutes after midnight.
    pub end_min: u16,
}

impl DndSchedule {
    /// Parses `"22:00-07:00"`.
    pub fn parse(text: &str) -> Option<Self> {
        let (a, b) = text.trim().split_once('-')?;
        let hm = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (start_min, end_min) = (hm(a)?, hm(b)?);
        (start_min != end_min).then_some(Self { start_min, end_min })
    }

    /// Whether `minute_of_day` (0..1440, local time) falls inside the window.
    pub fn contains(&self, minute_of_day: u16) -> bool {
        if self.start_min < self.end_min {
            (self.start_min..self.end_min).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start_min || minute_of_day < self.end_min
        }
    }
}

/// `[call]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// Answer policy: `manual`, `auto`, `auto_after`, `muted`. Default `auto`.
    #[serde(default)]
    pub answer: AnswerPolicy,
    /// `auto_after`: seconds of ringing before answering. Default 5.
    #[serde(default = "default_answer_after_secs")]
    pub answer_after_secs: u64,
    /// Caller identities that `auto`, `auto_after` and `muted` may answer by themselves;
    /// others ring. Empty (the default): the callers the hub marks trusted for this box
    /// (`trusted` in the invitation), never everyone.
    #[serde(default)]
    pub auto_answer_from: Vec<String>,
    /// Seconds the box rings before rejecting as `no_answer`. Default 45 (below the
    /// hub's 60 s, so the box's answer wins).
    #[serde(default = "default_ring_timeout_secs")]
    pub ring_timeout_secs: u64,
    /// Identity the speed-dial button (and the call button when idle) calls. Default none.
    #[serde(default)]
    pub speed_dial: Option<String>,
    /// Seconds an outgoing call may ring before the box gives up. Default 60.
    #[serde(default = "default_dial_timeout_secs")]
    pub dial_timeout_secs: u64,
    /// Daily do-not-disturb window in local time, `"HH:MM-HH:MM"` (may wrap midnight),
    /// e.g. `"22:00-07:00"`. Default none.
    #[serde(default)]
    pub dnd_schedule: Option<String>,
}

impl Default for CallConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [call] key has a default")
    }
}

fn default_answer_after_secs() -> u64 {
    5
}
fn default_ring_timeout_secs() -> u64 {
    45
}
fn default_dial_timeout_secs() -> u64 {
    60
}

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

/// `[ringtone]`. Plays on `[media] audio_sink` / `audio_output_device`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingtoneConfig {
    /// A WAV (or any file GStreamer decodes), looped while ringing. Empty (the default):
    /// the built-in tone, switched on and off by `cadence_ms`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Loudness, 0.0 (silent) to 1.0. Default 0.8.
    #[serde(default = "default_ringtone_volume")]
    pub volume: f64,
    /// The built-in ring: alternating sound/silence steps in ms, starting with sound.
    /// The ringing LED pattern defaults to the same cadence. Default `[400, 200, 400, 2000]`.
    #[serde(default = "default_ring_cadence")]
    pub cadence_ms: Vec<u32>,
}

impl Default for RingtoneConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [ringtone] key has a default")
    }
}

fn default_ringtone_volume() -> f64 {
    0.8
}
fn default_ring_cadence() -> Vec<u32> {
    vec![400, 200, 400, 2000]
}

/// `[control]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Unix socket for `callbox status`. Default `/run/callbox/control.sock`.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            socket: default_socket(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `callbox=debug,info`. `RUST_LOG` wins when set.
    /// Default `info`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
        }
    }
}

fn default_reconnect_min_ms() -> u64 {
    500
}
fn default_reconnect_max_ms() -> u64 {
    30_000
}
fn default_request_timeout_ms() -> u64 {
    10_000
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
fn default_true() -> bool {
    true
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
fn default_socket() -> PathBuf {
    PathBuf::from("/run/callbox/control.sock")
}
fn default_log_level() -> String {
    "info".into()
}

impl Config {
    /// Reads, parses and validates `path`.
    ///
    /// Errors: [`ConfigError::Read`], [`ConfigError::Parse`] (unknown key, wrong type,
    /// unknown enum value: the message lists what is allowed), [`ConfigError::Invalid`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&mut self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            key,
            message,
        };
        let url = self.hub.url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                "hub.url",
                format!("`{url}` must start with http:// or https://"),
            ));
        }
        self.hub.url = url;
        if let Some(file) = &self.hub.credential_file {
            if self.hub.credential.is_some() {
                return Err(invalid(
                    "hub.credential_file",
                    "set either hub.credential or hub.credential_file, not both".into(),
                ));
            }
            let text = std::fs::read_to_string(file).map_err(|e| {
                invalid(
                    "hub.credential_file",
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            self.hub.credential = text.lines().next().map(|l| SecretString::from(l.trim()));
        }
        match self
            .hub
            .credential
            .as_ref()
            .map(|c| c.expose_secret().trim())
        {
            None | Some("") => {
                return Err(invalid(
                    "hub.credential",
                    "missing: set it to the device credential printed by \
                     `callbox-hub add-device --identity <name>`"
                        .into(),
                ));
            }
            // The example file's placeholder, as installed by the package: say what to do
            // instead of retrying a credential that cannot work.
            Some(c) if c.starts_with("replace-with-") => {
                return Err(invalid(
                    "hub.credential",
                    "still the example's placeholder: set it to the device credential \
                     printed by `callbox-hub add-device --identity <name>`, then \
                     `systemctl restart callbox`"
                        .into(),
                ));
            }
            Some(c) if c.chars().any(|ch| ch.is_whitespace() || ch.is_control()) => {
                return Err(invalid(
                    "hub.credential",
                    "must not contain spaces or control characters".into(),
                ));
            }
            Some(_) => {}
        }
        if self.hub.reconnect_min_ms == 0 || self.hub.reconnect_min_ms > self.hub.reconnect_max_ms {
            return Err(invalid(
                "hub.reconnect_min_ms",
                "must be at least 1 and not above hub.reconnect_max_ms".into(),
            ));
        }
        let c = &self.call;
        if !(1..=600).contains(&c.answer_after_secs) {
            return Err(invalid(
                "call.answer_after_secs",
                format!("{} s: allowed 1..=600", c.answer_after_secs),
            ));
        }
        if !(5..=600).contains(&c.ring_timeout_secs) {
            return Err(invalid(
                "call.ring_timeout_secs",
                format!("{} s: allowed 5..=600", c.ring_timeout_secs),
            ));
        }
        if !(5..=600).contains(&c.dial_timeout_secs) {
            return Err(invalid(
                "call.dial_timeout_secs",
                format!("{} s: allowed 5..=600", c.dial_timeout_secs),
            ));
        }
        if let Some(sched) = &c.dnd_schedule
            && DndSchedule::parse(sched).is_none()
        {
            return Err(invalid(
                "call.dnd_schedule",
                format!("`{sched}`: expected \"HH:MM-HH:MM\" in local time, e.g. \"22:00-07:00\""),
            ));
        }
        if c.speed_dial.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err(invalid(
                "call.speed_dial",
                "must be an identity known to the hub, or left out".into(),
            ));
        }
        let m = &self.media;
        if !(-60.0..=0.0).contains(&m.simulated_echo_gain_db) {
            return Err(invalid(
                "media.simulated_echo_gain_db",
                format!("{} dB: allowed -60 to 0", m.simulated_echo_gain_db),
            ));
        }
        if m.simulated_echo_delay_ms > 1000 {
            return Err(invalid(
                "media.simulated_echo_delay_ms",
                format!("{} ms: allowed 0 (off) to 1000", m.simulated_echo_delay_ms),
            ));
        }
        let sc = &self.screen;
        if !(1..=60).contains(&sc.framerate) {
            return Err(invalid(
                "screen.framerate",
                format!("{} fps: allowed 1..=60", sc.framerate),
            ));
        }
        let size_ok = |v: u32| (160..=7680).contains(&v) && v.is_multiple_of(2);
        if (sc.width, sc.height) != (0, 0) && !(size_ok(sc.width) && size_ok(sc.height)) {
            return Err(invalid(
                "screen.width",
                format!(
                    "{}x{}: set both screen.width and screen.height to even sizes from 160 \
                     to 7680, or both to 0 for the display's preferred mode",
                    sc.width, sc.height
                ),
            ));
        }
        if sc.name.trim().is_empty() || sc.name.chars().count() > 40 {
            return Err(invalid(
                "screen.name",
                "1 to 40 characters, shown on the idle screen".into(),
            ));
        }
        self.gpio.resolve().map_err(|source| ConfigError::Gpio {
            path: path.to_owned(),
            source,
        })?;
        if let Err((key, message)) = self.audio.validate() {
            return Err(invalid(key, message));
        }
        let r = &self.ringtone;
        if !(0.0..=1.0).contains(&r.volume) {
            return Err(invalid(
                "ringtone.volume",
                format!("{}: allowed 0.0 to 1.0", r.volume),
            ));
        }
        if r.cadence_ms.is_empty()
            || !r.cadence_ms.len().is_multiple_of(2)
            || r.cadence_ms.iter().any(|&ms| !(20..=10_000).contains(&ms))
        {
            return Err(invalid(
                "ringtone.cadence_ms",
                "an even number of sound/silence steps, each 20..=10000 ms".into(),
            ));
        }
        if let Some(f) = &r.file
            && !f.exists()
        {
            return Err(invalid(
                "ringtone.file",
                format!("{} does not exist", f.display()),
            ));
        }
        let m = &self.media;
        if !(16..=4096).contains(&m.width) {
            return Err(invalid(
                "media.width",
                format!("{} px: allowed 16..=4096", m.width),
            ));
        }
        if !(16..=4096).contains(&m.height) {
            return Err(invalid(
                "media.height",
                format!("{} px: allowed 16..=4096", m.height),
            ));
        }
        if !(1..=120).contains(&m.framerate) {
            return Err(invalid(
                "media.framerate",
                format!("{} fps: allowed 1..=120", m.framerate),
            ));
        }
        if !(100..=50_000).contains(&m.max_video_bitrate_kbps) {
            return Err(invalid(
                "media.max_video_bitrate_kbps",
                format!("{} kbit/s: allowed 100..=50000", m.max_video_bitrate_kbps),
            ));
        }
        if !m.stun_server.is_empty() && !m.stun_server.starts_with("stun://") {
            return Err(invalid(
                "media.stun_server",
                format!("`{}` must look like stun://host:port", m.stun_server),
            ));
        }
        if let Some(bad) = m
            .turn_servers
            .iter()
            .find(|t| !(t.starts_with("turn://") || t.starts_with("turns://")))
        {
            return Err(invalid(
                "media.turn_servers",
                format!("`{bad}` must look like turn://user:password@host:port"),
            ));
        }
        if let Some(bad) = m
            .ice_local_addresses
            .iter()
            .find(|a| a.parse::<std::net::IpAddr>().is_err())
        {
            return Err(invalid(
                "media.ice_local_addresses",
                format!("`{bad}` is not an IP address"),
            ));
        }
        if m.start_timeout_ms < 1000 {
            return Err(invalid(
                "media.start_timeout_ms",
                "must be at least 1000 ms".into(),
            ));
        }
        if m.watchdog_ms < 1000 {
            return Err(invalid(
                "media.watchdog_ms",
                "must be at least 1000 ms".into(),
            ));
        }
        if !(10..=2000).contains(&m.jitter_buffer_ms) {
            return Err(invalid(
                "media.jitter_buffer_ms",
                format!("{} is outside 10 to 2000 ms", m.jitter_buffer_ms),
            ));
        }
        Ok(())
    }

    /// The device credential (validated non-empty by [`Config::load`]).
    pub fn credential(&self) -> &str {
        self.hub
            .credential
            .as_ref()
            .map_or("", |c| c.expose_secret().trim())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
