//! The small trait every GPIO backend implements: claim an input line that reports
//! edges into a tokio channel, claim an output line that can be lit or dark.
//!
//! Levels are *logical*: an active-low button that pulls its line to GND reports
//! `active = true` when pressed; an active-low LED is `lit` when its line is low. The
//! backend (or the kernel, for gpiocdev) does the inversion. Debounce is *not* done by
//! the backends: [`crate::gpio::buttons`] does it in one place for all of them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::GpioError;

/// Internal pull resistor on an input line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bias {
    /// Pull up to 3.3 V: the usual wiring, button between the pin and GND (active-low).
    #[default]
    PullUp,
    /// Pull down to GND: button between the pin and 3.3 V (active-high).
    PullDown,
    /// No internal pull: the board has external resistors.
    None,
}

/// An input line to claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// Line offset on the chip (gpiocdev, sim) or BCM pin number (rppal).
    pub line: u32,
    /// `true` when the line reads low while the button is pressed.
    pub active_low: bool,
    /// Internal pull resistor.
    pub bias: Bias,
    /// Who claims it, for the kernel's consumer label and logs, e.g. `buttons.call`.
    pub role: String,
}

/// An output line to claim. It starts dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Line offset on the chip (gpiocdev, sim) or BCM pin number (rppal).
    pub line: u32,
    /// `true` when the LED is lit by driving the line low (LED to 3.3 V).
    pub active_low: bool,
    /// Who claims it, e.g. `leds.status`.
    pub role: String,
}

/// One edge on an input line, already in logical terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The new level: `true` = pressed.
    pub active: bool,
    /// When it happened, on tokio's clock (so tests with a paused clock see exact times).
    pub at: Instant,
}

/// A claimed input line. Dropping it releases the line and stops its events.
pub trait InputLine: Send {
    /// The line offset / BCM pin.
    fn line(&self) -> u32;
    /// The current logical level (`true` = pressed).
    fn is_active(&self) -> Result<bool, GpioError>;
}

/// A claimed output line. Dropping it releases the line.
pub trait OutputLine: Send {
    /// The line offset / BCM pin.
    fn line(&self) -> u32;
    /// Light (`true`) or darken (`false`) the LED.
    fn set(&mut self, lit: bool) -> Result<(), GpioError>;
}

/// A source of GPIO lines.
pub trait Backend: Send + Sync {
    /// Short description for logs and status, e.g. `cdev /dev/gpiochip0`.
    fn describe(&self) -> String;

    /// Claim `spec` as an input with edge detection on both edges; every edge is sent to
    /// `events` until the returned handle is dropped. Must be called inside a tokio
    /// runtime (the gpiocdev backend registers the line with the reactor).
    fn claim_input(
        &self,
        spec: &InputSpec,
        events: mpsc::UnboundedSender<Edge>,
    ) -> Result<Box<dyn InputLine>, GpioError>;

    /// Claim `spec` as an output, initially dark.
    fn claim_output(&self, spec: &OutputSpec) -> Result<Box<dyn OutputLine>, GpioError>;
}

/// Maps kernel edge timestamps (ns on `CLOCK_MONOTONIC`) onto tokio's clock.
///
/// Events are read in bursts after the reactor wakes us; stamping each with "now" would
/// squash a bounce storm into one instant. Instead each event keeps its kernel-measured
/// distance from the previous one, clamped so it is never in the future and never before
/// the previous event.
#[derive(Debug, Default)]
pub(crate) struct EdgeClock {
    last: Option<(u64, Instant)>,
}

impl EdgeClock {
    /// The tokio instant for an event with kernel timestamp `kernel_ns`, read at `now`.
    pub(crate) fn stamp(&mut self, kernel_ns: u64, now: Instant) -> Instant {
        let at = match self.last {
            Some((prev_ns, prev_at)) if kernel_ns >= prev_ns => {
                let since = Duration::from_nanos(kernel_ns - prev_ns);
                (prev_at + since).min(now).max(prev_at)
            }
            Some((_, prev_at)) => now.max(prev_at),
            None => now,
        };
        self.last = Some((kernel_ns, at));
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpio_edge_clock_keeps_burst_spacing() {
        let now = Instant::now();
        let mut clock = EdgeClock::default();
        let t0 = clock.stamp(1_000_000_000, now);
        assert_eq!(t0, now);
        // Two more events read 20 ms later, 2 ms and 5 ms after the first per the kernel.
        let later = now + Duration::from_millis(20);
        assert_eq!(
            clock.stamp(1_002_000_000, later),
            now + Duration::from_millis(2)
        );
        assert_eq!(
            clock.stamp(1_005_000_000, later),
            now + Duration::from_millis(5)
        );
        // Never in the future.
        assert_eq!(clock.stamp(9_000_000_000, later), later);
        // A timestamp going backwards does not go back in time.
        assert_eq!(clock.stamp(1, later), later);
    }
}
