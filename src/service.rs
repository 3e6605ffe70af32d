//! systemd integration (sd_notify(3)): `READY=1` once the box is up, `STATUS=` lines
//! that say what it is doing, watchdog pings, `STOPPING=1` on the way out.
//!
//! The watchdog is pinged from the supervisor loop itself ([`Notifier::watchdog_tick`]
//! is one of its `select!` branches), never from a task of its own: a loop that hangs
//! stops the pings, and systemd restarts the service after `WatchdogSec=`.
//!
//! Everything here is a no-op when the daemon was not started by systemd (no
//! `NOTIFY_SOCKET`), so `callbox run` by hand behaves as before.

use std::time::Duration;

/// Talks to systemd's notify socket, when there is one.
#[derive(Debug)]
pub struct Notifier {
    /// `NOTIFY_SOCKET` was set at start-up.
    enabled: bool,
    /// Ping period: half of `WATCHDOG_USEC`, as systemd.service(5) recommends.
    watchdog: Option<Duration>,
    /// The last `STATUS=` sent, so unchanged lines are not resent.
    last_status: String,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (the watchdog applies
    /// only when `WATCHDOG_PID` is this process, per sd_watchdog_enabled(3)). Leaves
    /// the environment as it is, so GStreamer's helpers never see it.
    pub fn from_env() -> Self {
        let mut usec = 0u64;
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Duration::from_micros(usec / 2))
            .filter(|d| !d.is_zero());
        Self {
            enabled: std::env::var_os("NOTIFY_SOCKET").is_some(),
            watchdog,
            last_status: String::new(),
        }
    }

    /// A notifier that never sends anything (tests, `callbox check`).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            watchdog: None,
            last_status: String::new(),
        }
    }

    /// How often the supervisor must call [`Notifier::ping`]; `None` without a
    /// watchdog.
    pub fn watchdog_period(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `READY=1` with a first status line.
    pub fn ready(&mut self, status: &str) {
        self.send_with_status(sd_notify::NotifyState::Ready, status);
    }

    /// `STATUS=<line>`, only when it differs from the last one.
    pub fn status(&mut self, status: &str) {
        let status = sanitize(status);
        if status != self.last_status {
            self.send(&[sd_notify::NotifyState::Status(&status)]);
            self.last_status = status;
        }
    }

    /// `WATCHDOG=1`.
    pub fn ping(&self) {
        if self.watchdog.is_some() {
            self.send(&[sd_notify::NotifyState::Watchdog]);
        }
    }

    /// `STOPPING=1` with a last status line.
    pub fn stopping(&mut self, status: &str) {
        self.send_with_status(sd_notify::NotifyState::Stopping, status);
    }

    fn send_with_status(&mut self, state: sd_notify::NotifyState, status: &str) {
        let status = sanitize(status);
        self.send(&[state, sd_notify::NotifyState::Status(&status)]);
        self.last_status = status;
    }

    /// A future that completes at the next watchdog deadline (never, without a
    /// watchdog). For the supervisor's `select!`.
    pub fn watchdog_tick(&self) -> WatchdogTick {
        WatchdogTick {
            interval: self.watchdog.map(|p| {
                let mut i = tokio::time::interval(p);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            }),
        }
    }

    fn send(&self, state: &[sd_notify::NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(false, state) {
            tracing::warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
        }
    }
}

/// The watchdog's schedule, polled by the supervisor loop.
#[derive(Debug)]
pub struct WatchdogTick {
    interval: Option<tokio::time::Interval>,
}

impl WatchdogTick {
    /// Waits for the next ping time; pending forever without a watchdog.
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(i) => {
                i.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// A status line is one line of text: the notify protocol is newline-separated and a
/// caller's identity comes from the network.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_cannot_smuggle_a_second_notify_field() {
        assert_eq!(
            sanitize("call from evil\nREADY=1"),
            "call from evil READY=1"
        );
        assert_eq!(sanitize(&"x".repeat(500)).len(), 200);
    }
}
