//! Buttons and LEDs: the GPIO hardware behind one small trait, with three backends
//! (`gpiocdev` for any Linux GPIO character device, `rppal` on Raspberry Pi boards with
//! the `rpi` feature, and an in-process simulation for tests and `callbox ctl`), the
//! debounce / short-vs-long press detector, and the LED pattern driver.
//!
//! No call logic lives here: buttons become [`ButtonEvent`]s for the call state
//! machine, and the supervisor tells the LEDs which [`LedPattern`] to show.

use std::time::Duration;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What an LED does. Times in ms.
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
