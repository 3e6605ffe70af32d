//! [`SimBackend`]: GPIO lines inside the process. Tests and `callbox ctl press` drive its
//! inputs; tests and `callbox status` read its outputs back, with the time of their
//! last change. Cloning shares the same lines (it is an `Arc` inside).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::GpioError;
use super::backend::{Backend, Edge, InputLine, InputSpec, OutputLine, OutputSpec};

/// In-process GPIO lines. `Clone` shares them.
#[derive(Clone, Default)]
pub struct SimBackend {
    inner: Arc<Mutex<SimState>>,
}

impl std::fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBackend").finish_non_exhaustive()
    }
}

/// An output line as read back from the simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOutput {
    /// Line offset.
    pub line: u32,
    /// Whether the LED is lit (logical level).
    pub lit: bool,
    /// The electrical level of the pin (`lit` inverted for active-low LEDs).
    pub high: bool,
    /// When `lit` last changed (or when the line was claimed), on tokio's clock.
    pub changed_at: Instant,
    /// How many times `lit` has changed since the line was claimed.
    pub changes: u64,
}

#[derive(Default)]
struct SimState {
    /// Logical input levels by line (kept when unclaimed, so a line can be "held at boot").
    levels: HashMap<u32, bool>,
    /// Claimed inputs by line.
    inputs: HashMap<u32, SimInputClaim>,
    /// Claimed outputs by line.
    outputs: HashMap<u32, SimOutputState>,
    next_id: u64,
}

struct SimInputClaim {
    id: u64,
    role: String,
    events: mpsc::UnboundedSender<Edge>,
}

struct SimOutputState {
    id: u64,
    role: String,
    active_low: bool,
    lit: bool,
    changed_at: Instant,
    changes: u64,
}

impl SimBackend {
    /// A fresh set of lines, all inputs released and no outputs claimed.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Set the logical level of input `line` (`true` = pressed). When the level changes
    /// and the line is claimed, an edge stamped "now" (tokio clock) is delivered. Works
    /// on unclaimed lines too (the level is seen when the line is claimed).
    pub fn set_level(&self, line: u32, active: bool) {
        let mut st = self.state();
        let old = st.levels.insert(line, active).unwrap_or(false);
        if old == active {
            return;
        }
        if let Some(claim) = st.inputs.get(&line) {
            tracing::trace!(line, active, role = %claim.role, "sim input edge");
            // The receiver is gone only while the panel shuts down.
            let _ = claim.events.send(Edge {
                active,
                at: Instant::now(),
            });
        }
    }

    /// Press the button on `line` (drive it active). Errors if no button claims the line.
    pub fn press(&self, line: u32) -> Result<(), GpioError> {
        self.require_claimed(line)?;
        self.set_level(line, true);
        Ok(())
    }

    /// Release the button on `line`. Errors if no button claims the line.
    pub fn release(&self, line: u32) -> Result<(), GpioError> {
        self.require_claimed(line)?;
        self.set_level(line, false);
        Ok(())
    }

    fn require_claimed(&self, line: u32) -> Result<(), GpioError> {
        if self.state().inputs.contains_key(&line) {
            Ok(())
        } else {
            Err(GpioError::SimLineUnclaimed { line })
        }
    }

    /// The logical level of input `line` (`false` if never driven).
    pub fn level(&self, line: u32) -> bool {
        self.state().levels.get(&line).copied().unwrap_or(false)
    }

    /// Output `line` as last set, or `None` if no LED claims it.
    pub fn output(&self, line: u32) -> Option<SimOutput> {
        self.state().outputs.get(&line).map(|o| SimOutput {
            line,
            lit: o.lit,
            high: o.lit != o.active_low,
            changed_at: o.changed_at,
            changes: o.changes,
        })
    }

    /// Whether output `line` is lit (`false` when unclaimed).
    pub fn is_lit(&self, line: u32) -> bool {
        self.output(line).is_some_and(|o| o.lit)
    }

    /// Every claimed line with its role: `(line, role, is_output)`, sorted by line.
    pub fn claims(&self) -> Vec<(u32, String, bool)> {
        let st = self.state();
        let mut v: Vec<_> = st
            .inputs
            .iter()
            .map(|(l, c)| (*l, c.role.clone(), false))
            .chain(st.outputs.iter().map(|(l, o)| (*l, o.role.clone(), true)))
            .collect();
        v.sort();
        v
    }

    fn busy(&self, st: &SimState, line: u32, role: &str) -> Option<GpioError> {
        let holder = st
            .inputs
            .get(&line)
            .map(|c| c.role.clone())
            .or_else(|| st.outputs.get(&line).map(|o| o.role.clone()))?;
        Some(GpioError::Busy {
            chip: self.describe(),
            line,
            consumer: format!("callbox:{holder}"),
            role: role.to_string(),
        })
    }
}

impl Backend for SimBackend {
    fn describe(&self) -> String {
        "sim".to_string()
    }

    fn claim_input(
        &self,
        spec: &InputSpec,
        events: mpsc::UnboundedSender<Edge>,
    ) -> Result<Box<dyn InputLine>, GpioError> {
        let mut st = self.state();
        if let Some(e) = self.busy(&st, spec.line, &spec.role) {
            return Err(e);
        }
        st.next_id += 1;
        let id = st.next_id;
        st.inputs.insert(
            spec.line,
            SimInputClaim {
                id,
                role: spec.role.clone(),
                events,
            },
        );
        tracing::debug!(line = spec.line, role = %spec.role, "sim input claimed");
        Ok(Box::new(SimInputLine {
            sim: self.clone(),
            line: spec.line,
            id,
        }))
    }

    fn claim_output(&self, spec: &OutputSpec) -> Result<Box<dyn OutputLine>, GpioError> {
        let mut st = self.state();
        if let Some(e) = self.busy(&st, spec.line, &spec.role) {
            return Err(e);
        }
        st.next_id += 1;
        let id = st.next_id;
        st.outputs.insert(
            spec.line,
            SimOutputState {
                id,
                role: spec.role.clone(),
                active_low: spec.active_low,
                lit: false,
                changed_at: Instant::now(),
                changes: 0,
            },
        );
        tracing::debug!(line = spec.line, role = %spec.role, "sim output claimed");
        Ok(Box::new(SimOutputLine {
            sim: self.clone(),
            line: spec.line,
            id,
        }))
    }
}

struct SimInputLine {
    sim: SimBackend,
    line: u32,
    id: u64,
}

impl InputLine for SimInputLine {
    fn line(&self) -> u32 {
        self.line
    }

    fn is_active(&self) -> Result<bool, GpioError> {
        Ok(self.sim.level(self.line))
    }
}

impl Drop for SimInputLine {
    fn drop(&mut self) {
        let mut st = self.sim.state();
        if st.inputs.get(&self.line).is_some_and(|c| c.id == self.id) {
            st.inputs.remove(&self.line);
        }
    }
}

struct SimOutputLine {
    sim: SimBackend,
    line: u32,
    id: u64,
}

impl OutputLine for SimOutputLine {
    fn line(&self) -> u32 {
        self.line
    }

    fn set(&mut self, lit: bool) -> Result<(), GpioError> {
        let mut st = self.sim.state();
        match st.outputs.get_mut(&self.line) {
            Some(o) if o.id == self.id => {
                if o.lit != lit {
                    o.lit = lit;
                    o.changed_at = Instant::now();
                    o.changes += 1;
                }
                Ok(())
            }
            _ => Err(GpioError::SimLineUnclaimed { line: self.line }),
        }
    }
}

impl Drop for SimOutputLine {
    fn drop(&mut self) {
        let mut st = self.sim.state();
        if st.outputs.get(&self.line).is_some_and(|o| o.id == self.id) {
            st.outputs.remove(&self.line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpio::backend::Bias;

    fn input(line: u32) -> InputSpec {
        InputSpec {
            line,
            active_low: true,
            bias: Bias::PullUp,
            role: "buttons.call".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gpio_sim_delivers_edges_and_reads_outputs_back() {
        let sim = SimBackend::new();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let claim = sim.claim_input(&input(17), tx).unwrap();
        sim.press(17).unwrap();
        sim.press(17).unwrap(); // no change, no edge
        sim.release(17).unwrap();
        assert!(rx.recv().await.unwrap().active);
        assert!(!rx.recv().await.unwrap().active);
        assert!(rx.try_recv().is_err());
        assert!(!claim.is_active().unwrap());

        let mut out = sim
            .claim_output(&OutputSpec {
                line: 27,
                active_low: true,
                role: "leds.status".into(),
            })
            .unwrap();
        let t0 = Instant::now();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        out.set(true).unwrap();
        let o = sim.output(27).unwrap();
        assert!(o.lit && !o.high);
        assert_eq!(o.changed_at, t0 + std::time::Duration::from_millis(10));
        assert_eq!(o.changes, 1);
        drop(out);
        assert!(sim.output(27).is_none());
    }

    #[tokio::test]
    async fn gpio_sim_refuses_double_claims_and_unclaimed_presses() {
        let sim = SimBackend::new();
        let (tx, _rx) = mpsc::unbounded_channel();
        let _a = sim.claim_input(&input(5), tx.clone()).unwrap();
        let err = sim
            .claim_output(&OutputSpec {
                line: 5,
                active_low: false,
                role: "leds.mute".into(),
            })
            .err()
            .unwrap();
        assert!(err.to_string().contains("busy"), "{err}");
        assert!(err.to_string().contains("buttons.call"), "{err}");
        assert!(matches!(
            sim.press(6),
            Err(GpioError::SimLineUnclaimed { line: 6 })
        ));
    }
}
