//! The daemon's configuration file (`/etc/callbox/callbox.toml`): its shape, defaults
//! and validation. `config/callbox.example.toml` documents every key.
//!
//! Unknown keys and bad values are errors that name the file, the key and what is
//! allowed; nothing here panics on input.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

mod media;
pub use media::*;

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
pub(super) fn default_true() -> bool {
    true
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
mod tests;
