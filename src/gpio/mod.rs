//! Buttons and LEDs: the GPIO hardware behind one small trait, with three backends
//! (`gpiocdev` for any Linux GPIO character device, `rppal` on Raspberry Pi boards with
//! the `rpi` feature, and an in-process simulation for tests and `callbox ctl`), the
//! debounce / short-vs-long press detector, and the LED pattern driver.
//!
//! No call logic lives here: buttons become [`ButtonEvent`]s for the call state
//! machine, and the supervisor tells the LEDs which [`LedPattern`] to show.
//!
//! - [`backend`]: the [`Backend`] trait; [`sim`], [`cdev`] and (feature `rpi`) `rpi`
//!   implement it.
//! - [`buttons`]: debounce and short/long press, one task per button.
//! - [`leds`]: one pattern driver task per LED.
//! - [`config`]: `[gpio]` and the board profiles in `hardware/`; [`pattern`]: patterns as text.
//! - [`Panel`]: all of it started from a [`GpioConfig`].

use std::time::Duration;

pub mod backend;
pub mod buttons;
pub mod cdev;
pub mod config;
mod error;
pub mod leds;
mod panel;
pub mod pattern;
#[cfg(feature = "rpi")]
pub mod rpi;
pub mod sim;

pub use backend::{Backend, Bias, Edge, InputLine, InputSpec, OutputLine, OutputSpec};
pub use buttons::Timing;
pub use cdev::CdevBackend;
pub use config::{BackendKind, Board, GpioConfig, GpioPlan};
pub use error::GpioError;
pub use leds::{LedState, PatternStart};
pub use panel::{Panel, SIM_LONG_EXTRA, SIM_SHORT_HOLD};
pub use pattern::{LedPatternError, LedPatterns};
#[cfg(feature = "rpi")]
pub use rpi::RpiBackend;
pub use sim::{SimBackend, SimOutput};

/// A physical button, by its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Button {
    /// Answer when ringing, hang up in a call, speed-dial when idle.
    Call,
    /// Separate hang-up / decline button.
    Hangup,
    /// Toggle the microphone.
    Mute,
    /// Toggle do-not-disturb.
    Dnd,
    /// Dial the configured contact.
    SpeedDial,
    /// The speaker louder by `audio.volume_step` (the ringtone's volume while ringing
    /// or idle, the call's in a call).
    VolumeUp,
    /// The speaker quieter by `audio.volume_step`.
    VolumeDown,
}

impl Button {
    /// Every button, in config order.
    pub const ALL: [Button; 7] = [
        Button::Call,
        Button::Hangup,
        Button::Mute,
        Button::Dnd,
        Button::SpeedDial,
        Button::VolumeUp,
        Button::VolumeDown,
    ];

    /// The config / command-line spelling: `call`, `hangup`, `mute`, `dnd`, `speed_dial`,
    /// `volume_up`, `volume_down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Button::Call => "call",
            Button::Hangup => "hangup",
            Button::Mute => "mute",
            Button::Dnd => "dnd",
            Button::SpeedDial => "speed_dial",
            Button::VolumeUp => "volume_up",
            Button::VolumeDown => "volume_down",
        }
    }
}

impl std::fmt::Display for Button {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Button {
    type Err = String;

    /// Parses the config spelling; `speed-dial` and `hang-up` are accepted too.
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Button::ALL
            .into_iter()
            .find(|b| b.as_str() == norm || (norm == "hang_up" && *b == Button::Hangup))
            .ok_or_else(|| {
                format!(
                    "unknown button `{s}`; allowed: call, hangup, mute, dnd, speed_dial, \
                     volume_up, volume_down"
                )
            })
    }
}

/// How long a button was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Press {
    /// Released before the long-press threshold.
    Short,
    /// Held for at least the long-press threshold (reported when the threshold is
    /// reached, not at release).
    Long,
}

/// A debounced press of a button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ButtonEvent {
    /// Which button.
    pub button: Button,
    /// Short or long.
    pub press: Press,
}

/// An LED, by its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Led {
    /// The main status LED (idle / offline / ringing / calling / in call / error).
    Status,
    /// Lit while the microphone is muted (when wired).
    Mute,
    /// Lit exactly while the camera is being published.
    Privacy,
}

impl Led {
    /// Every LED, in config order.
    pub const ALL: [Led; 3] = [Led::Status, Led::Mute, Led::Privacy];

    /// The config spelling: `status`, `mute`, `privacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Led::Status => "status",
            Led::Mute => "mute",
            Led::Privacy => "privacy",
        }
    }
}

impl std::fmt::Display for Led {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an LED does. Times in ms. As text (config, status): see [`pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedPattern {
    /// Dark.
    Off,
    /// Lit.
    On,
    /// `on_ms` lit, `off_ms` dark, repeated.
    Blink {
        /// Lit time, ms.
        on_ms: u32,
        /// Dark time, ms.
        off_ms: u32,
    },
    /// Alternating lit/dark steps starting lit, repeated: e.g. `[100, 100, 100, 700]`
    /// is a double flash per second (the ringing cadence).
    Cadence(Vec<u32>),
}

impl LedPattern {
    /// The steps of one period as (lit, ms) pairs; `Off`/`On` are one infinite step.
    pub fn steps(&self) -> Vec<(bool, Option<Duration>)> {
        match self {
            Self::Off => vec![(false, None)],
            Self::On => vec![(true, None)],
            Self::Blink { on_ms, off_ms } => vec![
                (true, Some(Duration::from_millis(u64::from(*on_ms)))),
                (false, Some(Duration::from_millis(u64::from(*off_ms)))),
            ],
            Self::Cadence(steps) => steps
                .iter()
                .enumerate()
                .map(|(i, ms)| (i % 2 == 0, Some(Duration::from_millis(u64::from(*ms)))))
                .collect(),
        }
    }
}
