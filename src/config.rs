//! The daemon's configuration file (`/etc/callbox/callbox.toml`): its shape, defaults
//! and validation. `config/callbox.example.toml` documents every key.
//!
//! Unknown keys and bad values are errors that name the file, the key and what is
//! allowed; nothing here panics on input.

use std::path::{Path, PathBuf};

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
    /// `credential_file`.
    #[serde(default)]
    pub credential: Option<String>,
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
    /// Answer every invitation at once (the default).
    #[default]
    Auto,
}

/// `[call]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// Answer policy. Default `auto`.
    #[serde(default)]
    pub answer: AnswerPolicy,
}

/// Where the published video comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VideoSource {
    /// `v4l2` when `video_device` exists, `test` otherwise.
    #[default]
    Auto,
    /// A V4L2 camera (`v4l2src`).
    V4l2,
    /// Moving test pattern (`videotestsrc`).
    Test,
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
    /// ALSA playback device. Default `default`.
    #[serde(default = "default_alsa")]
    pub audio_output_device: String,
    /// Codec accepted from callers. Default `h264`.
    #[serde(default)]
    pub receive_video_codec: ReceiveVideoCodec,
    /// Upper bound of the published video bitrate, kbit/s. Default 1500.
    #[serde(default = "default_max_bitrate_kbps")]
    pub max_video_bitrate_kbps: u32,
    /// A hardware H.264 encoder element (e.g. `v4l2h264enc` on a Raspberry Pi 4) whose
    /// rank is raised so `webrtcsink` picks it. Empty: let GStreamer choose. Default empty.
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
}

impl Default for MediaConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [media] key has a default")
    }
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
fn default_start_timeout_ms() -> u64 {
    20_000
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
            self.hub.credential = text.lines().next().map(|l| l.trim().to_owned());
        }
        match self.hub.credential.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(invalid(
                    "hub.credential",
                    "missing: set it to the device credential printed by \
                     `callbox-hub add-device --identity <name>`"
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
        Ok(())
    }

    /// The device credential (validated non-empty by [`Config::load`]).
    pub fn credential(&self) -> &str {
        self.hub.credential.as_deref().unwrap_or_default().trim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/callbox/callbox.toml"))
    }

    const MINIMAL: &str = "[hub]\nurl = \"http://hub.local:8080/\"\ncredential = \"abc\"\n";

    #[test]
    fn minimal_file_gets_documented_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.hub.url, "http://hub.local:8080");
        assert_eq!(c.credential(), "abc");
        assert_eq!(c.call.answer, AnswerPolicy::Auto);
        assert_eq!(c.media.video_source, VideoSource::Auto);
        assert_eq!(
            (c.media.width, c.media.height, c.media.framerate),
            (640, 480, 30)
        );
        assert_eq!(c.media.max_video_bitrate_kbps, 1500);
        assert_eq!(c.control.socket, PathBuf::from("/run/callbox/control.sock"));
        assert_eq!(c.hub.reconnect_max_ms, 30_000);
    }

    #[test]
    fn unknown_key_names_file_key_and_allowed_keys() {
        let err = parse(&format!("{MINIMAL}[media]\nvidoe_source = \"test\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/callbox/callbox.toml"), "{err}");
        assert!(err.contains("vidoe_source"), "{err}");
        assert!(err.contains("video_source"), "lists allowed keys: {err}");
    }

    #[test]
    fn bad_enum_value_lists_allowed_values() {
        let err = parse(&format!("{MINIMAL}[media]\nvideo_sink = \"hdmi\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hdmi") && err.contains("kmssink"), "{err}");
        let err = parse(&format!("{MINIMAL}[call]\nanswer = \"maybe\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("maybe") && err.contains("auto"), "{err}");
    }

    #[test]
    fn missing_credential_says_how_to_get_one() {
        let err = parse("[hub]\nurl = \"http://h\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hub.credential") && err.contains("add-device"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (extra, key) in [
            ("[media]\nwidth = 0\n", "media.width"),
            ("[media]\nframerate = 500\n", "media.framerate"),
            (
                "[media]\nstun_server = \"stun.l.google.com:19302\"\n",
                "media.stun_server",
            ),
            (
                "[media]\nice_local_addresses = [\"lo\"]\n",
                "media.ice_local_addresses",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
            assert!(err.contains(key), "{extra}: {err}");
        }
        let err = parse("[hub]\nurl = \"hub:8080\"\ncredential = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("hub.url") && err.contains("http://"), "{err}");
    }

    #[test]
    fn credential_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let cred = dir.path().join("cred");
        std::fs::write(&cred, "s3cret\n").unwrap();
        let c = parse(&format!(
            "[hub]\nurl = \"http://h\"\ncredential_file = \"{}\"\n",
            cred.display()
        ))
        .unwrap();
        assert_eq!(c.credential(), "s3cret");
    }

    #[test]
    fn example_config_parses() {
        let text = include_str!("../config/callbox.example.toml");
        let c = parse(text).unwrap();
        assert_eq!(c.call.answer, AnswerPolicy::Auto);
    }
}
