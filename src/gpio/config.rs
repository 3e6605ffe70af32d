//! `[gpio]` in the daemon's config: which backend, which chip, which board profile, the
//! button timing, the pin of every button and LED, and the LED patterns per state.
//!
//! Resolution ([`GpioConfig::resolve`]): explicit `[gpio]` keys win over the board
//! profile (`hardware/<board>.toml`, compiled into the binary), which wins over the
//! built-in defaults. With no board, the `sim` backend wires every role on the Raspberry
//! Pi 4 layout (so `callbox ctl press <button>` works for all of them), while `cdev` and
//! `rpi` wire only the call button (line 17) and the status LED (line 27) unless told
//! more. A role can be switched off with `enabled = false`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backend::{Bias, InputSpec, OutputSpec};
use super::buttons::Timing;
use super::pattern::LedPatterns;
use super::{Button, GpioError, Led};

/// Which GPIO backend drives the lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// In-process simulation (default: a box without configured GPIO still runs).
    #[default]
    Sim,
    /// The Linux GPIO character device (`/dev/gpiochipN`), any board.
    Cdev,
    /// Raspberry Pi through rppal (needs a build with `--features rpi`).
    Rpi,
}

/// A board profile from `hardware/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Board {
    /// No profile (`board = ""`, the default).
    #[default]
    None,
    /// Raspberry Pi 4 Model B (`hardware/rpi4.toml`).
    Rpi4,
    /// Raspberry Pi 5 (`hardware/rpi5.toml`).
    Rpi5,
    /// Any board with a GPIO chip, lines 0–7 (`hardware/generic.toml`).
    Generic,
    /// The hardware lab's gpio-sim chip, label `callbox-lab` (`hardware/lab.toml`).
    Lab,
}

impl Board {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Rpi4 => "rpi4",
            Self::Rpi5 => "rpi5",
            Self::Generic => "generic",
            Self::Lab => "lab",
        }
    }

    fn source(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Rpi4 => Some(include_str!("../../hardware/rpi4.toml")),
            Self::Rpi5 => Some(include_str!("../../hardware/rpi5.toml")),
            Self::Generic => Some(include_str!("../../hardware/generic.toml")),
            Self::Lab => Some(include_str!("../../hardware/lab.toml")),
        }
    }

    /// The parsed profile (`None` for no board).
    pub fn profile(self) -> Result<Option<BoardProfile>, GpioError> {
        let Some(src) = self.source() else {
            return Ok(None);
        };
        toml::from_str(src)
            .map(Some)
            .map_err(|e| GpioError::Profile {
                board: self.as_str().to_string(),
                message: e.to_string(),
            })
    }
}

impl TryFrom<String> for Board {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.trim() {
            "" | "none" => Ok(Self::None),
            "rpi4" => Ok(Self::Rpi4),
            "rpi5" => Ok(Self::Rpi5),
            "generic" => Ok(Self::Generic),
            "lab" => Ok(Self::Lab),
            other => Err(format!(
                "unknown board `{other}`; allowed: `rpi4`, `rpi5`, `generic`, `lab` or \"\" (no profile)"
            )),
        }
    }
}

impl From<Board> for String {
    fn from(b: Board) -> String {
        b.as_str().to_string()
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[gpio.buttons] <role> = { line = 17, active_low = true, bias = "pull_up" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonPin {
    /// Line offset on the chip; on a Raspberry Pi the BCM GPIO number (not the header pin).
    pub line: Option<u32>,
    /// The line reads low while pressed (button to GND). Default `true`.
    pub active_low: Option<bool>,
    /// Internal pull resistor: `pull_up`, `pull_down` or `none`. Default `pull_up`.
    pub bias: Option<Bias>,
    /// `false` leaves the role unwired even if the board profile wires it. Default `true`.
    pub enabled: Option<bool>,
}

/// `[gpio.leds] <role> = { line = 27, active_low = false }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedPin {
    /// Line offset on the chip; on a Raspberry Pi the BCM GPIO number.
    pub line: Option<u32>,
    /// The LED lights when the line is low (LED to 3.3 V). Default `false`.
    pub active_low: Option<bool>,
    /// `false` leaves the role unwired even if the board profile wires it. Default `true`.
    pub enabled: Option<bool>,
}

/// `[gpio.buttons]`: every role optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ButtonPins {
    /// Answer / hang up / speed-dial when idle.
    pub call: Option<ButtonPin>,
    /// Separate hang-up / decline.
    pub hangup: Option<ButtonPin>,
    /// Microphone mute toggle.
    pub mute: Option<ButtonPin>,
    /// Do-not-disturb toggle.
    pub dnd: Option<ButtonPin>,
    /// Dial the configured contact.
    pub speed_dial: Option<ButtonPin>,
    /// Speaker louder (optional; board profiles leave it unset).
    pub volume_up: Option<ButtonPin>,
    /// Speaker quieter (optional).
    pub volume_down: Option<ButtonPin>,
}

impl ButtonPins {
    fn get(&self, b: Button) -> Option<&ButtonPin> {
        match b {
            Button::Call => self.call.as_ref(),
            Button::Hangup => self.hangup.as_ref(),
            Button::Mute => self.mute.as_ref(),
            Button::Dnd => self.dnd.as_ref(),
            Button::SpeedDial => self.speed_dial.as_ref(),
            Button::VolumeUp => self.volume_up.as_ref(),
            Button::VolumeDown => self.volume_down.as_ref(),
        }
    }
}

/// `[gpio.leds]`: every role optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedPins {
    /// The status LED.
    pub status: Option<LedPin>,
    /// Lit while muted.
    pub mute: Option<LedPin>,
    /// Lit exactly while the camera is published.
    pub privacy: Option<LedPin>,
}

impl LedPins {
    fn get(&self, l: Led) -> Option<&LedPin> {
        match l {
            Led::Status => self.status.as_ref(),
            Led::Mute => self.mute.as_ref(),
            Led::Privacy => self.privacy.as_ref(),
        }
    }
}

/// A board profile file (`hardware/<board>.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BoardProfile {
    /// Human name of the board.
    pub name: String,
    /// Backend to use unless `gpio.backend` is set.
    pub backend: Option<BackendKind>,
    /// Chip (path, `gpiochipN` name or label) unless `gpio.chip` is set.
    pub chip: Option<String>,
    /// Default button pins.
    pub buttons: ButtonPins,
    /// Default LED pins.
    pub leds: LedPins,
}

/// `[gpio]`. Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpioConfig {
    /// `sim`, `cdev` or `rpi`. Default: the board profile's, else `sim`.
    pub backend: Option<BackendKind>,
    /// GPIO chip for `cdev`: a path (`/dev/gpiochip0`), a name (`gpiochip4`) or a label
    /// (`pinctrl-rp1`). Default: the board profile's, else `/dev/gpiochip0`.
    pub chip: Option<String>,
    /// Board profile: `rpi4`, `rpi5`, `generic`, `lab` or `""` (none, the default).
    pub board: Board,
    /// Button debounce, ms (0..=1000). Default 30.
    pub debounce_ms: u64,
    /// Hold time for a long press, ms (100..=30000, more than `debounce_ms`). Default 1500.
    pub long_press_ms: u64,
    /// Button pins; override the profile field by field.
    pub buttons: ButtonPins,
    /// LED pins; override the profile field by field.
    pub leds: LedPins,
    /// LED pattern per state.
    pub patterns: LedPatterns,
}

impl Default for GpioConfig {
    fn default() -> Self {
        Self {
            backend: None,
            chip: None,
            board: Board::None,
            debounce_ms: 30,
            long_press_ms: 1500,
            buttons: ButtonPins::default(),
            leds: LedPins::default(),
            patterns: LedPatterns::default(),
        }
    }
}

/// The default chip for `cdev`.
pub const DEFAULT_CHIP: &str = "/dev/gpiochip0";

/// `[gpio]` after applying the profile and defaults: exactly what the panel claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioPlan {
    /// The backend.
    pub backend: BackendKind,
    /// The chip (used by `cdev`).
    pub chip: String,
    /// The board profile applied.
    pub board: Board,
    /// Debounce and long-press thresholds.
    pub timing: Timing,
    /// Wired buttons.
    pub buttons: Vec<(Button, InputSpec)>,
    /// Wired LEDs.
    pub leds: Vec<(Led, OutputSpec)>,
}

impl GpioConfig {
    /// Apply the board profile and defaults and check everything; errors name the key.
    pub fn resolve(&self) -> Result<GpioPlan, GpioError> {
        let profile = self.board.profile()?;
        let backend = self
            .backend
            .or(profile.as_ref().and_then(|p| p.backend))
            .unwrap_or_default();
        let chip = self
            .chip
            .clone()
            .or_else(|| profile.as_ref().and_then(|p| p.chip.clone()))
            .unwrap_or_else(|| DEFAULT_CHIP.to_string());
        if chip.trim().is_empty() {
            return Err(GpioError::config(
                "gpio.chip",
                "empty; give a path (`/dev/gpiochip0`), a name (`gpiochip4`) or a label (`pinctrl-rp1`)",
            ));
        }
        if backend == BackendKind::Rpi && !cfg!(feature = "rpi") {
            return Err(GpioError::RpiNotCompiled);
        }
        if self.debounce_ms > 1000 {
            return Err(GpioError::config(
                "gpio.debounce_ms",
                format!("{} ms is too long; allowed 0..=1000 ms", self.debounce_ms),
            ));
        }
        if !(100..=30_000).contains(&self.long_press_ms) || self.long_press_ms <= self.debounce_ms {
            return Err(GpioError::config(
                "gpio.long_press_ms",
                format!(
                    "{} ms is not allowed; allowed 100..=30000 ms and more than `gpio.debounce_ms` ({} ms)",
                    self.long_press_ms, self.debounce_ms
                ),
            ));
        }

        // What the explicit keys override: the profile; with no board, the sim gets the
        // whole Raspberry Pi 4 layout and real backends just call 17 / status 27.
        let base = match (&profile, backend) {
            (Some(p), _) => p.clone(),
            (None, BackendKind::Sim) => Board::Rpi4.profile()?.unwrap_or_default(),
            (None, _) => builtin_minimal(),
        };

        let mut buttons = Vec::new();
        for b in Button::ALL {
            let key = format!("gpio.buttons.{}", b.as_str());
            let Some(pin) = merge_button(base.buttons.get(b), self.buttons.get(b)) else {
                continue;
            };
            if pin.enabled == Some(false) {
                continue;
            }
            let line = pin.line.ok_or_else(|| missing_line(&key))?;
            let active_low = pin.active_low.unwrap_or(true);
            let bias = pin.bias.unwrap_or_default();
            if (active_low && bias == Bias::PullDown) || (!active_low && bias == Bias::PullUp) {
                tracing::warn!(
                    key,
                    active_low,
                    ?bias,
                    "unusual wiring: an active-low button normally uses `pull_up` (button to GND), \
                     an active-high one `pull_down` (button to 3.3 V)"
                );
            }
            buttons.push((
                b,
                InputSpec {
                    line,
                    active_low,
                    bias,
                    role: format!("buttons.{}", b.as_str()),
                },
            ));
        }
        let mut leds = Vec::new();
        for l in Led::ALL {
            let key = format!("gpio.leds.{}", l.as_str());
            let Some(pin) = merge_led(base.leds.get(l), self.leds.get(l)) else {
                continue;
            };
            if pin.enabled == Some(false) {
                continue;
            }
            let line = pin.line.ok_or_else(|| missing_line(&key))?;
            leds.push((
                l,
                OutputSpec {
                    line,
                    active_low: pin.active_low.unwrap_or(false),
                    role: format!("leds.{}", l.as_str()),
                },
            ));
        }

        // One role per line, and pins that the backend can address.
        let mut used: Vec<(u32, String)> = Vec::new();
        let lines = buttons
            .iter()
            .map(|(_, s)| (s.line, &s.role))
            .chain(leds.iter().map(|(_, s)| (s.line, &s.role)));
        for (line, role) in lines {
            if let Some((_, other)) = used.iter().find(|(l, _)| *l == line) {
                return Err(GpioError::config(
                    format!("gpio.{role}.line"),
                    format!(
                        "line {line} is already used by `gpio.{other}`; every button and LED needs its own line"
                    ),
                ));
            }
            if backend == BackendKind::Rpi && line > 53 {
                return Err(GpioError::config(
                    format!("gpio.{role}.line"),
                    format!("{line} is not a BCM GPIO number; allowed 0..=27 on the 40-pin header"),
                ));
            }
            used.push((line, role.clone()));
        }

        Ok(GpioPlan {
            backend,
            chip,
            board: self.board,
            timing: Timing {
                debounce: Duration::from_millis(self.debounce_ms),
                long_press: Duration::from_millis(self.long_press_ms),
            },
            buttons,
            leds,
        })
    }
}

fn missing_line(key: &str) -> GpioError {
    GpioError::config(
        format!("{key}.line"),
        "missing; give the line offset on the chip (the BCM GPIO number on a Raspberry Pi), \
         or `enabled = false`",
    )
}

fn merge_button(base: Option<&ButtonPin>, over: Option<&ButtonPin>) -> Option<ButtonPin> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b.clone()),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => Some(ButtonPin {
            line: o.line.or(b.line),
            active_low: o.active_low.or(b.active_low),
            bias: o.bias.or(b.bias),
            enabled: o.enabled.or(b.enabled),
        }),
    }
}

fn merge_led(base: Option<&LedPin>, over: Option<&LedPin>) -> Option<LedPin> {
    match (base, over) {
        (None, None) => None,
        (Some(b), None) => Some(b.clone()),
        (None, Some(o)) => Some(o.clone()),
        (Some(b), Some(o)) => Some(LedPin {
            line: o.line.or(b.line),
            active_low: o.active_low.or(b.active_low),
            enabled: o.enabled.or(b.enabled),
        }),
    }
}

/// Real backend, no board: the call button on line 17 and the status LED on line 27.
fn builtin_minimal() -> BoardProfile {
    BoardProfile {
        buttons: ButtonPins {
            call: Some(ButtonPin {
                line: Some(17),
                active_low: Some(true),
                bias: Some(Bias::PullUp),
                enabled: None,
            }),
            ..ButtonPins::default()
        },
        leds: LedPins {
            status: Some(LedPin {
                line: Some(27),
                active_low: Some(false),
                enabled: None,
            }),
            ..LedPins::default()
        },
        ..BoardProfile::default()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
