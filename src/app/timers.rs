//! The state machine's timers as tokio tasks, with generations so that a late expiry
//! never acts on the next call.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;

use crate::call::Timer;

/// Timers requested by the state machine, as tokio tasks. Setting a running timer
/// restarts it. The channel is unbounded but holds at most one expiry per running
/// timer (each task sends once), so it is bounded by the number of [`Timer`] kinds.
///
/// Each start gets a generation number, and an expiry is delivered by [`Timers::next`]
/// only while it is still the timer's current generation: an expiry already on its way
/// when the machine cancelled or restarted the timer (for the previous call, say) is
/// dropped, so a late timer can never act on the next call.
pub struct Timers {
    tx: UnboundedSender<(Timer, u64)>,
    rx: mpsc::UnboundedReceiver<(Timer, u64)>,
    running: HashMap<Timer, (u64, JoinHandle<()>)>,
    generation: u64,
}

impl Default for Timers {
    fn default() -> Self {
        Self::new()
    }
}

impl Timers {
    /// No timer running.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx,
            running: HashMap::new(),
            generation: 0,
        }
    }

    /// Starts `timer`, replacing a running one.
    pub fn set(&mut self, timer: Timer, after: Duration) {
        self.cancel(timer);
        self.generation += 1;
        let generation = self.generation;
        let tx = self.tx.clone();
        let handle = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send((timer, generation));
        });
        self.running.insert(timer, (generation, handle));
    }

    /// Stops `timer`; a no-op when it is not running. An expiry already sent is
    /// dropped by [`Timers::next`].
    pub fn cancel(&mut self, timer: Timer) {
        if let Some((_, h)) = self.running.remove(&timer) {
            h.abort();
        }
    }

    /// The next timer to expire that is still set (cancel-safe, for `select!`).
    pub async fn next(&mut self) -> Timer {
        loop {
            let Some((timer, generation)) = self.rx.recv().await else {
                // We hold a sender, so the channel never closes.
                std::future::pending::<()>().await;
                continue;
            };
            if self.running.get(&timer).map(|(g, _)| *g) == Some(generation) {
                self.running.remove(&timer);
                return timer;
            }
            tracing::debug!(
                ?timer,
                "dropping the expiry of a timer cancelled or restarted since"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timer_fires_after_its_duration_and_not_before() {
        let mut timers = Timers::new();
        timers.set(Timer::MediaStart, Duration::from_secs(20));
        let early = tokio::time::timeout(Duration::from_millis(19_999), timers.next()).await;
        assert!(early.is_err(), "not yet");
        let fired = tokio::time::timeout(Duration::from_millis(2), timers.next()).await;
        assert_eq!(fired.unwrap(), Timer::MediaStart);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_timer_never_fires_and_reset_restarts_it() {
        let mut timers = Timers::new();
        timers.set(Timer::Rejoin, Duration::from_secs(1));
        timers.cancel(Timer::Rejoin);
        timers.set(Timer::MediaStart, Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        timers.set(Timer::MediaStart, Duration::from_secs(2)); // restart
        let quiet = tokio::time::timeout(Duration::from_millis(1000), timers.next()).await;
        assert!(quiet.is_err(), "cancelled and restarted timers are quiet");
        let fired = tokio::time::timeout(Duration::from_millis(1001), timers.next()).await;
        assert_eq!(fired.unwrap(), Timer::MediaStart);
        let more = tokio::time::timeout(Duration::from_secs(10), timers.next()).await;
        assert!(more.is_err(), "fired once");
    }

    /// An expiry already on its way when the timer is cancelled (the ring timer of a
    /// call that just ended, say) never reaches the machine, and neither does one of a
    /// restarted timer's previous run.
    #[tokio::test(start_paused = true)]
    async fn an_expiry_in_flight_when_cancelled_or_restarted_is_dropped() {
        let mut timers = Timers::new();
        timers.set(Timer::Ring, Duration::from_secs(1));
        // The timer task runs and sends its expiry; the supervisor has not read it yet.
        tokio::time::sleep(Duration::from_millis(1001)).await;
        timers.cancel(Timer::Ring);
        let late = tokio::time::timeout(Duration::from_secs(10), timers.next()).await;
        assert!(
            late.is_err(),
            "a cancelled timer's expiry in flight is dropped"
        );

        timers.set(Timer::Ring, Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(1001)).await;
        // The next call rings: the timer restarts for it.
        timers.set(Timer::Ring, Duration::from_secs(5));
        let early = tokio::time::timeout(Duration::from_millis(4_999), timers.next()).await;
        assert!(early.is_err(), "the previous run's expiry is dropped");
        let fired = tokio::time::timeout(Duration::from_millis(2), timers.next()).await;
        assert_eq!(fired.unwrap(), Timer::Ring);
    }
}
