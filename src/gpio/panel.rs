//! [`Panel`]: the buttons and LEDs of one box, started from `[gpio]`.

use std::time::Duration;

use tokio::sync::mpsc;

use super::backend::Backend;
use super::buttons::Buttons;
use super::cdev::CdevBackend;
use super::config::{BackendKind, GpioConfig, GpioPlan};
use super::leds::{LedState, Leds, PatternStart};
use super::sim::SimBackend;
use super::{Button, ButtonEvent, GpioError, Led, LedPattern, Press};

/// How many button events may wait for the supervisor.
const EVENT_QUEUE: usize = 32;
/// How long a simulated short press holds the button down.
pub const SIM_SHORT_HOLD: Duration = Duration::from_millis(80);
/// How much longer than `long_press_ms` a simulated long press holds the button down.
pub const SIM_LONG_EXTRA: Duration = Duration::from_millis(100);

/// The box's buttons and LEDs. Dropping it stops the tasks, darkens the LEDs and
/// releases every line.
pub struct Panel {
    plan: GpioPlan,
    describe: String,
    sim: Option<SimBackend>,
    leds: Leds,
    buttons: Buttons,
    events: mpsc::Sender<ButtonEvent>,
    _backend: Box<dyn Backend>,
}

impl std::fmt::Debug for Panel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Panel")
            .field("backend", &self.describe)
            .field("buttons", &self.buttons)
            .field("leds", &self.leds)
            .finish_non_exhaustive()
    }
}

impl Panel {
    /// Resolve `config` (board profile, defaults, validation), open the backend, claim
    /// every line and start the button and LED tasks. Button presses arrive on the
    /// returned receiver. Must be called inside a tokio runtime.
    pub fn start(config: &GpioConfig) -> Result<(Panel, mpsc::Receiver<ButtonEvent>), GpioError> {
        Self::start_plan(config.resolve()?)
    }

    /// Like [`start`](Self::start) with an already resolved plan.
    pub fn start_plan(plan: GpioPlan) -> Result<(Panel, mpsc::Receiver<ButtonEvent>), GpioError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GpioError::NoRuntime);
        }
        let (backend, sim): (Box<dyn Backend>, Option<SimBackend>) = match plan.backend {
            BackendKind::Sim => {
                let sim = SimBackend::new();
                (Box::new(sim.clone()), Some(sim))
            }
            BackendKind::Cdev => (Box::new(CdevBackend::open(&plan.chip)?), None),
            #[cfg(feature = "rpi")]
            BackendKind::Rpi => (Box::new(super::rpi::RpiBackend::open()?), None),
            #[cfg(not(feature = "rpi"))]
            BackendKind::Rpi => return Err(GpioError::RpiNotCompiled),
        };
        Self::with_backend(plan, backend, sim)
    }

    /// Start on a given backend (`sim` is its handle when it is a [`SimBackend`]); for
    /// tests and for boards with their own backend.
    pub fn with_backend(
        plan: GpioPlan,
        backend: Box<dyn Backend>,
        sim: Option<SimBackend>,
    ) -> Result<(Panel, mpsc::Receiver<ButtonEvent>), GpioError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GpioError::NoRuntime);
        }
        let describe = backend.describe();
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let leds = Leds::start(backend.as_ref(), &plan.leds)?;
        let buttons = Buttons::start(backend.as_ref(), &plan.buttons, plan.timing, tx.clone())?;
        tracing::info!(
            backend = %describe,
            board = %plan.board,
            buttons = plan.buttons.len(),
            leds = plan.leds.len(),
            debounce_ms = plan.timing.debounce.as_millis() as u64,
            long_press_ms = plan.timing.long_press.as_millis() as u64,
            "GPIO panel started"
        );
        if plan.backend != BackendKind::Sim && plan.buttons.is_empty() {
            tracing::warn!("no buttons are wired; see [gpio.buttons] and hardware/README.md");
        }
        let panel = Panel {
            plan,
            describe,
            sim,
            leds,
            buttons,
            events: tx,
            _backend: backend,
        };
        Ok((panel, rx))
    }

    /// Show `pattern` on `led` (from its first step; no change if it is already showing).
    /// Unwired LEDs remember the pattern for [`led_state`](Self::led_state).
    pub fn set_led(&self, led: Led, pattern: LedPattern) {
        self.leds.set(led, pattern);
    }

    /// Every LED's pattern, whether it is lit now, and its line (for `callbox status`).
    pub fn led_state(&self) -> Vec<LedState> {
        self.leds.state()
    }

    /// When `led`'s current pattern started on the line (for the ringing-latency
    /// benchmark).
    pub fn led_started(&self, led: Led) -> Option<PatternStart> {
        self.leds.started(led)
    }

    /// The simulated backend, when `backend = "sim"`: drive its inputs, read its outputs.
    pub fn sim(&self) -> Option<SimBackend> {
        self.sim.clone()
    }

    /// Which backend runs.
    pub fn backend(&self) -> BackendKind {
        self.plan.backend
    }

    /// The backend with its chip, e.g. `cdev /dev/gpiochip0`.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// What was resolved from the config (pins, timing).
    pub fn plan(&self) -> &GpioPlan {
        &self.plan
    }

    /// The line of `button`, if wired.
    pub fn button_line(&self, button: Button) -> Option<u32> {
        self.buttons.line(button)
    }

    /// The line of `led`, if wired.
    pub fn led_line(&self, led: Led) -> Option<u32> {
        self.leds.line(led)
    }

    /// Press `button` as a person would (`callbox ctl press <button> [--long]`).
    ///
    /// On the sim backend the line is driven: down, held [`SIM_SHORT_HOLD`] (or
    /// `long_press_ms` + [`SIM_LONG_EXTRA`]), up, so debounce and long-press detection
    /// run for real; the event arrives on the receiver like a real press (the long one
    /// while still held). On real backends the [`ButtonEvent`] is injected directly.
    /// Returns when the press is complete.
    pub async fn press(&self, button: Button, long: bool) -> Result<(), GpioError> {
        let Some(sim) = &self.sim else {
            let press = if long { Press::Long } else { Press::Short };
            tracing::info!(button = button.as_str(), ?press, "injected button press");
            return self
                .events
                .send(ButtonEvent { button, press })
                .await
                .map_err(|_| GpioError::Closed);
        };
        let line = self
            .buttons
            .line(button)
            .ok_or(GpioError::NotWired(button.as_str()))?;
        let hold = if long {
            self.plan.timing.long_press + SIM_LONG_EXTRA
        } else {
            SIM_SHORT_HOLD
        };
        tracing::info!(
            button = button.as_str(),
            line,
            hold_ms = hold.as_millis() as u64,
            "simulated button press"
        );
        sim.press(line)?;
        // Released even if the caller gives up half-way (e.g. its connection closed).
        let _release = ReleaseOnDrop { sim, line };
        tokio::time::sleep(hold).await;
        Ok(())
    }
}

struct ReleaseOnDrop<'a> {
    sim: &'a SimBackend,
    line: u32,
}

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.sim.set_level(self.line, false);
    }
}

#[cfg(test)]
#[path = "panel_tests.rs"]
mod tests;
