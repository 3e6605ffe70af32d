//! [`GpioError`]: everything that can go wrong between the config file and a GPIO line,
//! with the chip, the line and what the installer should check.

use std::path::PathBuf;

/// Why a GPIO line, chip or the `[gpio]` config could not be used.
///
/// Messages name the chip path (or `rpi`/`sim`), the line offset or BCM pin, and what
/// to check, so they can be shown to an installer as they are.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// A `[gpio]` key has a value that parsed but is not usable.
    #[error("config key `{key}`: {message}")]
    Config {
        /// Dotted key, e.g. `gpio.buttons.call.line`.
        key: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The GPIO chip does not exist.
    #[error(
        "GPIO chip {chip} not found (available: {available}); check `gpio.chip` or the board profile, \
         and that the GPIO driver is loaded"
    )]
    ChipMissing {
        /// The path or label that was configured.
        chip: String,
        /// The chips that do exist, with their labels, or `none`.
        available: String,
    },
    /// The process may not open the chip (or `/dev/gpiomem`).
    #[error(
        "permission denied opening {chip}: add the service user to the gpio group \
         (e.g. `usermod -aG gpio callbox`; hardware/README.md has a udev rule for other distributions)"
    )]
    Permission {
        /// The device that could not be opened.
        chip: String,
    },
    /// Another process (or another role in this config) holds the line.
    #[error(
        "line {line} on {chip} is busy (used by {consumer}); stop the other user or pick another \
         line for `{role}`"
    )]
    Busy {
        /// The chip.
        chip: String,
        /// Line offset / BCM pin.
        line: u32,
        /// Who holds it (the kernel's consumer label), or `unknown`.
        consumer: String,
        /// Which role wanted it, e.g. `buttons.call`.
        role: String,
    },
    /// The chip has no such line.
    #[error("{chip} has no line {line} (it has {num_lines} lines); check `gpio.{role}.line`")]
    NoSuchLine {
        /// The chip.
        chip: String,
        /// Line offset / BCM pin asked for.
        line: u32,
        /// How many lines the chip has.
        num_lines: u32,
        /// Which role wanted it, e.g. `buttons.call`.
        role: String,
    },
    /// Any other failure while talking to the hardware.
    #[error("{chip}{}: {what}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Io {
        /// The chip (or `rpi`, `sim`).
        chip: String,
        /// The line, when one was involved.
        line: Option<u32>,
        /// What was being done, e.g. `requesting input`.
        what: &'static str,
        /// The underlying error.
        message: String,
    },
    /// A board profile in `hardware/` is malformed (a build-time bug, but reported, not a panic).
    #[error("board profile hardware/{board}.toml: {message}")]
    Profile {
        /// Board name.
        board: String,
        /// The parser's message.
        message: String,
    },
    /// `backend = "rpi"` on a build without the `rpi` feature.
    #[error(
        "gpio backend `rpi` is not compiled into this build; rebuild with `--features rpi` or set \
         `gpio.backend = \"cdev\"` (works on every Raspberry Pi with a current kernel)"
    )]
    RpiNotCompiled,
    /// The panel was started outside a tokio runtime.
    #[error("the GPIO panel must be started inside a tokio runtime")]
    NoRuntime,
    /// The simulated line asked for was never claimed.
    #[error("sim line {line} is not claimed by any button or LED")]
    SimLineUnclaimed {
        /// The line.
        line: u32,
    },
    /// The button has no line in the config and the backend is real hardware.
    #[error("button `{0}` is not wired (no `gpio.buttons.{0}` and no board profile entry)")]
    NotWired(&'static str),
    /// The receiver of button events was dropped (the daemon is shutting down).
    #[error("button events are no longer being received")]
    Closed,
}

impl GpioError {
    /// A config error for `key` with `message`.
    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Classify an I/O error from opening a device.
    pub(crate) fn open(chip: &std::path::Path, err: &std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::PermissionDenied => Self::Permission {
                chip: chip.display().to_string(),
            },
            std::io::ErrorKind::NotFound => Self::ChipMissing {
                chip: chip.display().to_string(),
                available: available_chips(),
            },
            _ => Self::Io {
                chip: chip.display().to_string(),
                line: None,
                what: "opening the chip",
                message: err.to_string(),
            },
        }
    }
}

/// `/dev/gpiochip*` with their labels, for error messages: `gpiochip0 [pinctrl-bcm2711]`.
pub(crate) fn available_chips() -> String {
    let chips = list_chips();
    if chips.is_empty() {
        "none".to_string()
    } else {
        chips
            .iter()
            .map(|(p, label)| format!("{} [{}]", p.display(), label))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every GPIO chip device this process can see, with its label (`?` when unreadable).
pub(crate) fn list_chips() -> Vec<(PathBuf, String)> {
    let Ok(paths) = gpiocdev::chip::chips() else {
        return Vec::new();
    };
    paths
        .into_iter()
        .map(|p| {
            let label = gpiocdev::Chip::from_path(&p)
                .and_then(|c| c.info())
                .map(|i| i.label)
                .unwrap_or_else(|_| "?".to_string());
            (p, label)
        })
        .collect()
}
