//! LEDs: one driver task per wired LED, running a [`LedPattern`] on its output line.
//!
//! [`Leds::set`] switches at once: the new pattern starts from its first step (lit for
//! `Blink`/`Cadence`). Setting the pattern that is already showing changes nothing, so
//! a supervisor may re-assert patterns after every state change without restarting a
//! cadence mid-flash. Steps are scheduled against absolute deadlines, so a cadence does
//! not drift. For the latency benchmark each LED records when its pattern last started
//! (the instant its first step reached the line), see [`Leds::started`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::backend::{Backend, OutputLine, OutputSpec};
use super::{GpioError, Led, LedPattern};

/// When a pattern started showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternStart {
    /// The pattern.
    pub pattern: LedPattern,
    /// Wall-clock-independent instant (real time, even under a paused tokio clock).
    pub instant: std::time::Instant,
    /// Milliseconds since the Unix epoch, for comparing with other processes' logs.
    pub unix_ms: u64,
    /// The same moment on tokio's clock (exact in paused-clock tests).
    pub tokio_instant: Instant,
}

/// What an LED is doing, for `callbox status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedState {
    /// Which LED.
    pub led: Led,
    /// The pattern it was last set to.
    pub pattern: LedPattern,
    /// Whether it is lit right now.
    pub lit: bool,
    /// Whether it has a line (unwired LEDs remember their pattern but show nothing).
    pub wired: bool,
    /// Its line offset / BCM pin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

#[derive(Debug)]
struct Shared {
    pattern: LedPattern,
    lit: bool,
    started: Option<PatternStart>,
}

struct Entry {
    tx: watch::Sender<LedPattern>,
    shared: Arc<Mutex<Shared>>,
    line: Option<u32>,
    task: Option<JoinHandle<()>>,
}

/// The LED drivers. Dropping it stops them; their lines go dark as they are released.
pub struct Leds {
    entries: HashMap<Led, Entry>,
}

impl std::fmt::Debug for Leds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leds")
            .field("wired", &self.entries.len())
            .finish()
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Leds {
    /// Claim every `(led, line)` on `backend` and start its driver showing `Off`. LEDs not
    /// in `wiring` still accept patterns (reported as unwired). Must run inside a tokio
    /// runtime.
    pub fn start(backend: &dyn Backend, wiring: &[(Led, OutputSpec)]) -> Result<Self, GpioError> {
        let mut entries = HashMap::new();
        for led in Led::ALL {
            let (tx, rx) = watch::channel(LedPattern::Off);
            let shared = Arc::new(Mutex::new(Shared {
                pattern: LedPattern::Off,
                lit: false,
                started: None,
            }));
            let mut entry = Entry {
                tx,
                shared: Arc::clone(&shared),
                line: None,
                task: None,
            };
            if let Some((_, spec)) = wiring.iter().find(|(l, _)| *l == led) {
                // On error the entries so far drop, which stops their tasks.
                let out = backend.claim_output(spec)?;
                entry.line = Some(spec.line);
                entry.task = Some(tokio::spawn(drive(led, DarkOnDrop(out), rx, shared)));
                tracing::info!(
                    led = led.as_str(),
                    line = spec.line,
                    active_low = spec.active_low,
                    "LED wired"
                );
            }
            entries.insert(led, entry);
        }
        Ok(Self { entries })
    }

    /// Show `pattern` on `led` from its first step, unless it is already showing it.
    pub fn set(&self, led: Led, pattern: LedPattern) {
        let Some(e) = self.entries.get(&led) else {
            return;
        };
        lock(&e.shared).pattern = pattern.clone();
        let changed = e.tx.send_if_modified(|cur| {
            if *cur == pattern {
                false
            } else {
                *cur = pattern.clone();
                true
            }
        });
        if changed {
            tracing::debug!(led = led.as_str(), %pattern, "LED pattern");
        }
    }

    /// The pattern `led` was last set to.
    pub fn pattern(&self, led: Led) -> LedPattern {
        self.entries
            .get(&led)
            .map_or(LedPattern::Off, |e| lock(&e.shared).pattern.clone())
    }

    /// Whether `led` is lit right now (`false` when unwired).
    pub fn is_lit(&self, led: Led) -> bool {
        self.entries.get(&led).is_some_and(|e| lock(&e.shared).lit)
    }

    /// When `led`'s current pattern started showing on the line (`None` when unwired or
    /// before its driver first ran).
    pub fn started(&self, led: Led) -> Option<PatternStart> {
        self.entries
            .get(&led)
            .and_then(|e| lock(&e.shared).started.clone())
    }

    /// Every LED's state, in [`Led::ALL`] order.
    pub fn state(&self) -> Vec<LedState> {
        Led::ALL
            .iter()
            .filter_map(|led| {
                let e = self.entries.get(led)?;
                let s = lock(&e.shared);
                Some(LedState {
                    led: *led,
                    pattern: s.pattern.clone(),
                    lit: s.lit,
                    wired: e.line.is_some(),
                    line: e.line,
                })
            })
            .collect()
    }

    /// The line of `led`, if wired.
    pub fn line(&self, led: Led) -> Option<u32> {
        self.entries.get(&led).and_then(|e| e.line)
    }
}

impl Drop for Leds {
    fn drop(&mut self) {
        for e in self.entries.values() {
            if let Some(t) = &e.task {
                t.abort();
            }
        }
    }
}

/// Darkens the LED when the driver stops (daemon exit, panel dropped).
struct DarkOnDrop(Box<dyn OutputLine>);

impl Drop for DarkOnDrop {
    fn drop(&mut self) {
        let _ = self.0.set(false);
    }
}

/// The driver: run the current pattern; restart whenever a new one arrives.
async fn drive(
    led: Led,
    mut out: DarkOnDrop,
    mut rx: watch::Receiver<LedPattern>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut failing = false;
    let mut set = |out: &mut DarkOnDrop, lit: bool| {
        match out.0.set(lit) {
            Ok(()) => {
                if failing {
                    tracing::info!(led = led.as_str(), "LED line works again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(led = led.as_str(), error = %e, "cannot set LED");
                }
                failing = true;
            }
        }
        lock(&shared).lit = lit;
    };
    loop {
        let pattern = rx.borrow_and_update().clone();
        let steps: Vec<_> = pattern
            .steps()
            .into_iter()
            .filter(|(_, d)| d.is_none_or(|d| !d.is_zero()))
            .collect();
        // All steps zero-length: hold the first level (never spin).
        let steps = if steps.is_empty() {
            vec![(pattern.steps().first().is_some_and(|s| s.0), None)]
        } else {
            steps
        };
        let mut deadline = Instant::now();
        let mut first = true;
        'pattern: loop {
            for (lit, dur) in &steps {
                set(&mut out, *lit);
                if first {
                    first = false;
                    let start = PatternStart {
                        pattern: pattern.clone(),
                        instant: std::time::Instant::now(),
                        unix_ms: unix_ms(),
                        tokio_instant: Instant::now(),
                    };
                    lock(&shared).started = Some(start);
                }
                let changed = match dur {
                    None => rx.changed().await,
                    Some(d) => {
                        deadline += *d;
                        tokio::select! {
                            () = sleep_until(deadline) => continue,
                            r = rx.changed() => r,
                        }
                    }
                };
                match changed {
                    Ok(()) => break 'pattern,
                    Err(_) => return, // the Leds handle is gone
                }
            }
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[path = "leds_tests.rs"]
mod tests;
