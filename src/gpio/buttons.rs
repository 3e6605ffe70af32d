//! Buttons: debounce and short-vs-long press detection, one task per button.
//!
//! The detector ([`PressDetector`]) is plain data driven by the edges' timestamps and by
//! deadlines it asks for, so it is exact on tokio's paused clock:
//!
//! - **Debounce** (leading edge): the first edge that changes the level is taken at
//!   once; edges within `debounce` of that change are ignored. At the end of the window
//!   the line's last seen level wins, so a tap shorter than the window still counts and
//!   a bounce that ends in the opposite level is not lost.
//! - **Long press**: reported as soon as the button has been held for `long_press`
//!   (a hold of exactly `long_press` is long). The release after a long press reports
//!   nothing more; a release before it reports [`Press::Short`].
//! - A button already held when the line is claimed reports nothing until it has been
//!   released and pressed again (a stuck button at boot does not dial).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::backend::{Backend, Edge, InputLine, InputSpec};
use super::{Button, ButtonEvent, GpioError, Press};

/// Debounce and long-press thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Edges within this long after an accepted change are ignored.
    pub debounce: Duration,
    /// Holding at least this long is a long press.
    pub long_press: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(30),
            long_press: Duration::from_millis(1500),
        }
    }
}

/// Debounce + press classification for one button. See the module docs.
#[derive(Debug, Clone)]
pub struct PressDetector {
    timing: Timing,
    /// Debounced level (`true` = pressed).
    level: bool,
    /// Last raw level seen on the line.
    raw: bool,
    /// When `level` last changed.
    changed_at: Option<Instant>,
    /// When the current press started, if it counts (not a button held since boot).
    pressed_at: Option<Instant>,
    /// The current press has already been reported as long.
    long_sent: bool,
    /// Latest instant processed, so late or reordered timestamps never go back in time.
    clock: Option<Instant>,
}

impl PressDetector {
    /// A detector for a line whose level is `initially_active` when claimed.
    pub fn new(timing: Timing, initially_active: bool) -> Self {
        Self {
            timing,
            level: initially_active,
            raw: initially_active,
            changed_at: None,
            pressed_at: None,
            long_sent: initially_active,
            clock: None,
        }
    }

    /// Whether the debounced level is "pressed".
    pub fn is_pressed(&self) -> bool {
        self.level
    }

    /// The next instant at which [`advance`](Self::advance) has something to do: the end
    /// of a debounce window whose line level differs, or the long-press threshold.
    pub fn next_deadline(&self) -> Option<Instant> {
        let settle = match self.changed_at {
            Some(c) if self.raw != self.level => Some(c + self.timing.debounce),
            _ => None,
        };
        let long = match self.pressed_at {
            Some(p) if self.level && !self.long_sent => Some(p + self.timing.long_press),
            _ => None,
        };
        match (settle, long) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Process every deadline up to and including `now`, pushing presses to `out`.
    pub fn advance(&mut self, now: Instant, out: &mut Vec<Press>) {
        let now = self.clock.map_or(now, |c| now.max(c));
        while let Some(d) = self.next_deadline() {
            if d > now {
                break;
            }
            let long_due = self.level
                && !self.long_sent
                && self
                    .pressed_at
                    .is_some_and(|p| p + self.timing.long_press <= d);
            if long_due {
                self.long_sent = true;
                out.push(Press::Long);
            } else {
                // Debounce window over and the line ended elsewhere: follow it.
                self.accept(self.raw, d, out);
            }
        }
        self.clock = Some(now);
    }

    /// An edge: the line went to `active` at `at`. Presses are pushed to `out`.
    pub fn on_edge(&mut self, active: bool, at: Instant, out: &mut Vec<Press>) {
        self.advance(at, out);
        let at = self.clock.map_or(at, |c| at.max(c));
        self.raw = active;
        let in_window = self
            .changed_at
            .is_some_and(|c| at < c + self.timing.debounce);
        if !in_window && active != self.level {
            self.accept(active, at, out);
        }
    }

    fn accept(&mut self, active: bool, at: Instant, out: &mut Vec<Press>) {
        self.level = active;
        self.changed_at = Some(at);
        if active {
            self.pressed_at = Some(at);
            self.long_sent = false;
        } else if let Some(p) = self.pressed_at.take() {
            if !self.long_sent {
                // `advance` reports a long press at its threshold before any later release.
                out.push(if at - p >= self.timing.long_press {
                    Press::Long
                } else {
                    Press::Short
                });
            }
            self.long_sent = false;
        }
    }
}

/// The running button tasks. Dropping it stops them and releases the lines.
#[derive(Debug, Default)]
pub struct Buttons {
    tasks: Vec<(Button, u32, JoinHandle<()>)>,
}

impl Buttons {
    /// Claim every `(button, line)` on `backend` and start one detector task each; presses
    /// go to `out`. Must run inside a tokio runtime.
    pub fn start(
        backend: &dyn Backend,
        wiring: &[(Button, InputSpec)],
        timing: Timing,
        out: mpsc::Sender<ButtonEvent>,
    ) -> Result<Self, GpioError> {
        let mut buttons = Self::default();
        for (button, spec) in wiring {
            let (tx, rx) = mpsc::unbounded_channel();
            // On error `buttons` drops here, stopping the tasks already started.
            let claim = backend.claim_input(spec, tx)?;
            let initially = claim.is_active().unwrap_or(false);
            if initially {
                tracing::warn!(
                    button = button.as_str(),
                    line = spec.line,
                    "button is held down at start; ignored until released"
                );
            }
            let task = tokio::spawn(run(*button, claim, rx, timing, initially, out.clone()));
            buttons.tasks.push((*button, spec.line, task));
            tracing::info!(button = button.as_str(), line = spec.line, active_low = spec.active_low, bias = ?spec.bias, "button wired");
        }
        Ok(buttons)
    }

    /// The line of `button`, if wired.
    pub fn line(&self, button: Button) -> Option<u32> {
        self.tasks
            .iter()
            .find(|(b, _, _)| *b == button)
            .map(|(_, l, _)| *l)
    }
}

impl Drop for Buttons {
    fn drop(&mut self) {
        for (_, _, task) in &self.tasks {
            task.abort();
        }
    }
}

/// One button: edges in, presses out, until either channel closes.
async fn run(
    button: Button,
    claim: Box<dyn InputLine>,
    mut edges: mpsc::UnboundedReceiver<Edge>,
    timing: Timing,
    initially_active: bool,
    out: mpsc::Sender<ButtonEvent>,
) {
    let _claim = claim; // released when the task ends
    let mut det = PressDetector::new(timing, initially_active);
    let mut presses = Vec::new();
    loop {
        let deadline = det.next_deadline();
        // A disabled branch's future is still built, so give it some instant.
        let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            edge = edges.recv() => match edge {
                Some(e) => {
                    tracing::trace!(button = button.as_str(), active = e.active, "edge");
                    det.on_edge(e.active, e.at, &mut presses);
                }
                None => return,
            },
            () = sleep_until(wake), if deadline.is_some() => det.advance(Instant::now(), &mut presses),
        }
        for press in presses.drain(..) {
            tracing::debug!(button = button.as_str(), ?press, "button press");
            if out.send(ButtonEvent { button, press }).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "buttons_tests.rs"]
mod tests;
