//! Hub configuration: the TOML file (`hub.example.toml` documents every key) and its validation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// What went wrong reading or checking a configuration. Every message names the file
/// (or `<in-memory config>` for a config built in code) and, where it applies, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config file: {source}")]
    Read {
        /// The config file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown, missing or mistyped keys.
    #[error("{path}: {message}")]
    Parse {
        /// The config file.
        path: String,
        /// What the TOML parser said (names the key and shows the line).
        message: String,
    },
    /// A key has a value outside its allowed range.
    #[error("{path}: `{key}` {message}")]
    Invalid {
        /// The config file.
        path: String,
        /// Dotted key, e.g. `livekit.api_key`.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// The `[livekit]` table: where the SFU is and the key pair the hub signs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveKitConfig {
    /// Signalling URL handed to clients in `JoinInfo.url` (`ws://` or `wss://`).
    #[serde(default = "default_livekit_url")]
    pub url: String,
    /// RoomService base URL (`http://` or `https://`); empty = derived from `url`
    /// (`ws` → `http`, `wss` → `https`).
    #[serde(default)]
    pub api_url: String,
    /// LiveKit API key (the JWT issuer).
    pub api_key: String,
    /// LiveKit API secret (HS256 signing key).
    /// Never printed (`Debug` shows `[REDACTED]`); read it with `expose_secret()`.
    pub api_secret: SecretString,
}

impl LiveKitConfig {
    /// A LiveKit section with the default URL and the given key pair.
    pub fn new(
        url: impl Into<String>,
        api_key: impl Into<String>,
        api_secret: impl Into<String>,
    ) -> Self {
        Self {
            url: url.into(),
            api_url: String::new(),
            api_key: api_key.into(),
            api_secret: SecretString::from(api_secret.into()),
        }
    }

    /// The RoomService base URL: `api_url` when set, otherwise `url` with `ws`→`http`
    /// and `wss`→`https`.
    pub fn effective_api_url(&self) -> String {
        if !self.api_url.is_empty() {
            return self.api_url.clone();
        }
        if let Some(rest) = self.url.strip_prefix("wss://") {
            format!("https://{rest}")
        } else if let Some(rest) = self.url.strip_prefix("ws://") {
            format!("http://{rest}")
        } else {
            self.url.clone()
        }
    }
}

/// The whole hub configuration.
///
/// Load it from a file with [`HubConfig::load`] or build it in code with
/// [`HubConfig::new`] and adjust the public fields (tests use a 1–2 s
/// `ring_timeout_secs` and `listen = 127.0.0.1:0`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// HTTP + WebSocket listen address; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// SQLite database file (created if missing).
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// How long invitations ring before the call is `missed`, in seconds. Fractions are
    /// allowed (`1.5`), which tests use.
    #[serde(default = "default_ring_timeout_secs")]
    pub ring_timeout_secs: f64,
    /// When a participant leaves a connected call and fewer than two parties remain,
    /// wait this long (seconds) for someone to rejoin before ending the call as
    /// `participant_left`. A box rebuilding its media after a fault leaves the room for
    /// a moment; this keeps the call alive. 0 ends at once.
    #[serde(default = "default_rejoin_grace_secs")]
    pub rejoin_grace_secs: f64,
    /// Most participants in one call, inviter included.
    #[serde(default = "default_max_participants")]
    pub max_participants: u32,
    /// Lifetime of the LiveKit tokens the hub mints, in seconds.
    #[serde(default = "default_token_ttl_secs")]
    pub token_ttl_secs: u64,
    /// Most invitations one caller may send in any minute (1-1000); more get 429
    /// `too_many_invitations`, so an invite storm cannot make a box ring non-stop.
    #[serde(default = "default_max_invites_per_minute")]
    pub max_invites_per_minute: u32,
    /// Bearer token a scraper must send for `/metrics` (16+ characters). Empty: the
    /// endpoint is off (403), since call counts and connections say who is home.
    #[serde(default)]
    pub metrics_token: String,
    /// Where people open the caller app, e.g. `https://hub.example.org` (the base of
    /// the links `callbox-hub invite-link` prints). Empty: `http://<listen>`.
    #[serde(default)]
    pub public_url: String,
    /// The LiveKit server.
    pub livekit: LiveKitConfig,
    /// Where this config came from, for error messages (not a TOML key).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_database() -> PathBuf {
    PathBuf::from("/var/lib/callbox-hub/hub.sqlite3")
}
fn default_ring_timeout_secs() -> f64 {
    60.0
}
fn default_rejoin_grace_secs() -> f64 {
    10.0
}
fn default_max_participants() -> u32 {
    8
}
fn default_token_ttl_secs() -> u64 {
    600
}
fn default_max_invites_per_minute() -> u32 {
    10
}
fn default_livekit_url() -> String {
    "ws://127.0.0.1:7880".to_owned()
}

/// Shortest LiveKit API secret accepted, in characters (what livekit-server itself
/// asks for).
pub const MIN_API_SECRET_CHARS: usize = 32;

/// Longest ring timeout accepted, in seconds (one day).
const MAX_RING_TIMEOUT_SECS: f64 = 86_400.0;

impl HubConfig {
    /// Defaults for every key, with the given database file and LiveKit section.
    pub fn new(database: impl Into<PathBuf>, livekit: LiveKitConfig) -> Self {
        Self {
            listen: default_listen(),
            database: database.into(),
            ring_timeout_secs: default_ring_timeout_secs(),
            rejoin_grace_secs: default_rejoin_grace_secs(),
            max_participants: default_max_participants(),
            token_ttl_secs: default_token_ttl_secs(),
            max_invites_per_minute: default_max_invites_per_minute(),
            public_url: String::new(),
            metrics_token: String::new(),
            livekit,
            source: None,
        }
    }

    /// The caller app's address: `public_url` without a trailing `/`, else
    /// `http://<listen>`.
    pub fn app_url(&self) -> String {
        if self.public_url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            self.public_url.trim_end_matches('/').to_owned()
        }
    }

    /// Reads, parses and validates a TOML config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, Some(path))
    }

    /// Parses and validates TOML text; `path` is only used in error messages.
    pub fn from_toml(text: &str, path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config: HubConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: display_path(path),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.source = path.map(Path::to_path_buf);
        config.validate()?;
        Ok(config)
    }

    /// Checks value ranges (also done by [`crate::start`] for configs built in code).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, message: &str| ConfigError::Invalid {
            path: display_path(self.source.as_deref()),
            key,
            message: message.to_owned(),
        };
        if !(self.ring_timeout_secs.is_finite()
            && self.ring_timeout_secs > 0.0
            && self.ring_timeout_secs <= MAX_RING_TIMEOUT_SECS)
        {
            return Err(invalid(
                "ring_timeout_secs",
                "must be a number of seconds above 0 and at most 86400",
            ));
        }
        if !(self.rejoin_grace_secs.is_finite() && (0.0..=300.0).contains(&self.rejoin_grace_secs))
        {
            return Err(invalid(
                "rejoin_grace_secs",
                "must be a number of seconds from 0 to 300",
            ));
        }
        if self.max_participants < 2 {
            return Err(invalid("max_participants", "must be at least 2"));
        }
        if !(1..=1000).contains(&self.max_invites_per_minute) {
            return Err(invalid("max_invites_per_minute", "must be from 1 to 1000"));
        }
        if self.token_ttl_secs == 0 {
            return Err(invalid("token_ttl_secs", "must be at least 1"));
        }
        if !self.metrics_token.is_empty() && self.metrics_token.chars().count() < 16 {
            return Err(invalid(
                "metrics_token",
                "must be empty (no /metrics) or at least 16 characters",
            ));
        }
        let public_ok = self.public_url.is_empty()
            || self.public_url.starts_with("http://")
            || self.public_url.starts_with("https://");
        if !public_ok {
            return Err(invalid(
                "public_url",
                "must be empty or start with http:// or https://",
            ));
        }
        if self.database.as_os_str().is_empty() {
            return Err(invalid("database", "must not be empty"));
        }
        let lk = &self.livekit;
        if !(lk.url.starts_with("ws://") || lk.url.starts_with("wss://")) {
            return Err(invalid("livekit.url", "must start with ws:// or wss://"));
        }
        let api_url_ok = lk.api_url.is_empty()
            || lk.api_url.starts_with("http://")
            || lk.api_url.starts_with("https://");
        if !api_url_ok {
            return Err(invalid(
                "livekit.api_url",
                "must start with http:// or https:// (or be empty)",
            ));
        }
        if lk.api_key.is_empty() {
            return Err(invalid("livekit.api_key", "must not be empty"));
        }
        if lk.api_secret.expose_secret().is_empty() {
            return Err(invalid("livekit.api_secret", "must not be empty"));
        }
        Ok(())
    }

    /// Errors unless `[livekit]` holds a real key pair: the example file's
    /// `replace-with-…` placeholders, as the package installs it, are refused with what
    /// to do. Checked by `serve` only, so `add-device` works before LiveKit is set up.
    pub fn require_livekit_keys(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("livekit.api_key", self.livekit.api_key.as_str()),
            (
                "livekit.api_secret",
                self.livekit.api_secret.expose_secret(),
            ),
        ] {
            if value.starts_with("replace-with-") {
                return Err(ConfigError::Invalid {
                    path: display_path(self.source.as_deref()),
                    key,
                    message: "still the example's placeholder: set the key pair from \
                              livekit-server's `keys`, then `systemctl restart callbox-hub`"
                        .to_owned(),
                });
            }
        }
        if self.livekit.api_secret.expose_secret().chars().count() < MIN_API_SECRET_CHARS {
            return Err(ConfigError::Invalid {
                path: display_path(self.source.as_deref()),
                key: "livekit.api_secret",
                message: format!(
                    "too short: use at least {MIN_API_SECRET_CHARS} characters (anyone who \
                     guesses it can mint tokens for any room); livekit-server's `keys` \
                     must hold the same secret"
                ),
            });
        }
        Ok(())
    }

    /// The ring timeout as a [`Duration`].
    pub fn ring_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.ring_timeout_secs)
    }

    /// The rejoin grace as a [`Duration`].
    pub fn rejoin_grace(&self) -> Duration {
        Duration::from_secs_f64(self.rejoin_grace_secs)
    }

    /// The LiveKit token lifetime as a [`Duration`].
    pub fn token_ttl(&self) -> Duration {
        Duration::from_secs(self.token_ttl_secs)
    }
}

fn display_path(path: Option<&Path>) -> String {
    path.map_or_else(
        || "<in-memory config>".to_owned(),
        |p| p.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[livekit]\napi_key = \"k\"\napi_secret = \"0123456789abcdef0123456789abcdef\"\n";

    #[test]
    fn the_api_secret_never_prints() {
        let c = HubConfig::from_toml(MINIMAL, None).unwrap();
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn minimal_file_gets_every_default() {
        let c = HubConfig::from_toml(MINIMAL, None).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            c.database,
            PathBuf::from("/var/lib/callbox-hub/hub.sqlite3")
        );
        assert_eq!(c.ring_timeout(), Duration::from_secs(60));
        assert_eq!(c.max_participants, 8);
        assert_eq!(c.token_ttl_secs, 600);
        assert_eq!(c.livekit.url, "ws://127.0.0.1:7880");
        assert_eq!(c.livekit.effective_api_url(), "http://127.0.0.1:7880");
    }

    #[test]
    fn api_url_is_derived_from_the_signalling_url() {
        let mut lk = LiveKitConfig::new("wss://lk.example.com", "k", "s");
        assert_eq!(lk.effective_api_url(), "https://lk.example.com");
        lk.api_url = "http://10.0.0.1:7880".into();
        assert_eq!(lk.effective_api_url(), "http://10.0.0.1:7880");
    }

    #[test]
    fn fractional_and_integer_ring_timeouts_parse() {
        let c = HubConfig::from_toml(&format!("ring_timeout_secs = 1.5\n{MINIMAL}"), None).unwrap();
        assert_eq!(c.ring_timeout(), Duration::from_millis(1500));
        let c = HubConfig::from_toml(&format!("ring_timeout_secs = 30\n{MINIMAL}"), None).unwrap();
        assert_eq!(c.ring_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn unknown_key_names_the_file_and_the_key() {
        let path = Path::new("/etc/callbox-hub/hub.toml");
        let err = HubConfig::from_toml(&format!("ring_timeout = 5\n{MINIMAL}"), Some(path))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/callbox-hub/hub.toml"), "{err}");
        assert!(err.contains("ring_timeout"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn unknown_key_in_livekit_table_is_named() {
        let path = Path::new("hub.toml");
        let err = HubConfig::from_toml(&format!("{MINIMAL}apikey = \"x\"\n"), Some(path))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("hub.toml:"), "{err}");
        assert!(err.contains("apikey"), "{err}");
    }

    #[test]
    fn missing_and_invalid_values_name_the_key() {
        let err = HubConfig::from_toml("[livekit]\napi_key = \"k\"\n", Some(Path::new("a.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.toml") && err.contains("api_secret"),
            "{err}"
        );

        let err = HubConfig::from_toml(
            &format!("ring_timeout_secs = 0\n{MINIMAL}"),
            Some(Path::new("b.toml")),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("b.toml") && err.contains("`ring_timeout_secs`"),
            "{err}"
        );

        let err = HubConfig::from_toml(&format!("max_participants = 1\n{MINIMAL}"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("<in-memory config>") && err.contains("`max_participants`"),
            "{err}"
        );

        let err = HubConfig::from_toml(&format!("{MINIMAL}url = \"http://x\"\n"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`livekit.url`"), "{err}");
    }

    #[test]
    fn the_example_file_documents_every_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/hub.example.toml");
        let example = HubConfig::load(&path).unwrap();
        let defaults = HubConfig::from_toml(MINIMAL, None).unwrap();
        assert_eq!(example.listen, defaults.listen);
        assert_eq!(example.database, defaults.database);
        assert_eq!(example.ring_timeout_secs, defaults.ring_timeout_secs);
        assert_eq!(example.max_participants, defaults.max_participants);
        assert_eq!(example.token_ttl_secs, defaults.token_ttl_secs);
        assert_eq!(
            example.max_invites_per_minute,
            defaults.max_invites_per_minute
        );
        assert_eq!(example.public_url, defaults.public_url);
        assert_eq!(example.metrics_token, defaults.metrics_token);
        assert_eq!(example.livekit.url, defaults.livekit.url);
        assert_eq!(example.livekit.api_url, defaults.livekit.api_url);
        // As installed by the package: add-device works, serve says what to fill in.
        let err = example.require_livekit_keys().unwrap_err().to_string();
        assert!(
            err.contains("hub.example.toml")
                && err.contains("livekit.api_key")
                && err.contains("placeholder"),
            "{err}"
        );
        defaults.require_livekit_keys().unwrap();
        // A short secret is refused by name, with the rule.
        let short = HubConfig::from_toml(
            "[livekit]\napi_key = \"k\"\napi_secret = \"secret\"\n",
            Some(Path::new("/etc/callbox-hub/hub.toml")),
        )
        .unwrap();
        let err = short.require_livekit_keys().unwrap_err().to_string();
        assert!(
            err.contains("hub.toml") && err.contains("livekit.api_secret") && err.contains("32"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_file_names_the_file() {
        let err = HubConfig::load("/nonexistent/hub.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/hub.toml"), "{err}");
    }
}
