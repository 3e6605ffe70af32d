//! The daemon's edges: the tasks that turn the outside world (hub WebSocket, media
//! thread, buttons, control socket, do-not-disturb schedule) into supervisor events.
//! Each is made by one function here and runs in one watched [`Edges`] set: an edge
//! lives as long as the daemon, so one that ends is a fault the supervisor reports by
//! exiting non-zero (systemd then restarts the daemon).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc::{self, Receiver, Sender};
use tokio::task::{Id, JoinSet};

use crate::call::Event;
use crate::config::DndSchedule;
use crate::control::{self, StatusSource};
use crate::gpio::ButtonEvent;
use crate::media::MediaEvent;
use crate::signaling::{HubClient, ws};

/// Capacity of the supervisor's event channel. Edges wait (`send().await`) when it is
/// full, so a burst slows its source down instead of growing memory.
pub const EVENT_CAPACITY: usize = 256;

/// How an edge ended.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Its task returned.
    #[error("the {edge} edge ended unexpectedly")]
    Ended {
        /// Which edge (`hub`, `media`, `buttons`, `control`, `schedule`).
        edge: &'static str,
    },
    /// Its task panicked.
    #[error("the {edge} edge panicked: {panic}")]
    Panicked {
        /// Which edge.
        edge: &'static str,
        /// The panic's message.
        panic: String,
    },
    /// Its task was cancelled from outside.
    #[error("the {edge} edge was cancelled")]
    Cancelled {
        /// Which edge.
        edge: &'static str,
    },
}

/// The running edges, by name.
#[derive(Default)]
pub struct Edges {
    set: JoinSet<()>,
    names: HashMap<Id, &'static str>,
}

impl Edges {
    /// No edge yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `edge` as a task named `name`.
    pub fn spawn(&mut self, name: &'static str, edge: impl Future<Output = ()> + Send + 'static) {
        let handle = self.set.spawn(edge);
        self.names.insert(handle.id(), name);
        tracing::debug!(edge = name, "edge started");
    }

    /// The edges' names, in no particular order.
    pub fn names(&self) -> Vec<&'static str> {
        self.names.values().copied().collect()
    }

    /// Waits until an edge ends and says how; pending forever while none runs.
    /// Cancel-safe (for `select!`).
    pub async fn ended(&mut self) -> EdgeError {
        let Some(result) = self.set.join_next_with_id().await else {
            return std::future::pending().await;
        };
        match result {
            Ok((id, ())) => EdgeError::Ended {
                edge: self.names.remove(&id).unwrap_or("unknown"),
            },
            Err(e) => {
                let edge = self.names.remove(&e.id()).unwrap_or("unknown");
                if e.is_panic() {
                    let panic = e.into_panic();
                    let panic = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "(no message)".into());
                    EdgeError::Panicked { edge, panic }
                } else {
                    EdgeError::Cancelled { edge }
                }
            }
        }
    }

    /// Stops every edge (at shutdown).
    pub fn abort_all(&mut self) {
        self.set.abort_all();
    }
}

/// The hub edge: the event WebSocket with its reconnects ([`ws::run`]), as events.
pub async fn hub(
    hub: HubClient,
    reconnect_min: Duration,
    reconnect_max: Duration,
    events: Sender<Event>,
) {
    let (tx, mut rx) = mpsc::channel(ws::EVENT_CAPACITY);
    let socket = ws::run(hub, reconnect_min, reconnect_max, tx);
    let forward = async move {
        while let Some(ev) = rx.recv().await {
            let ev = match ev {
                ws::WsEvent::Connected => Event::HubConnected,
                ws::WsEvent::Disconnected => Event::HubDisconnected,
                ws::WsEvent::Event(e) => Event::Hub(e),
            };
            if events.send(ev).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = socket => {}
        _ = forward => {}
    }
}

/// The media edge: the media thread's reports, as events.
pub async fn media(mut reports: Receiver<MediaEvent>, events: Sender<Event>) {
    while let Some(ev) = reports.recv().await {
        let ev = match ev {
            MediaEvent::Started { call_id } => Event::MediaStarted { call_id },
            MediaEvent::Failed { call_id, error } => Event::MediaFailed { call_id, error },
        };
        if events.send(ev).await.is_err() {
            return;
        }
    }
}

/// The buttons edge: debounced presses from the GPIO panel, as events.
pub async fn buttons(mut presses: mpsc::Receiver<ButtonEvent>, events: Sender<Event>) {
    while let Some(b) = presses.recv().await {
        tracing::info!(button = %b.button, press = ?b.press, "button");
        // Tests kill this edge (`FAILPOINTS=edge-buttons=panic`) to prove that a
        // dead edge makes the daemon exit non-zero.
        fail::fail_point!("edge-buttons");
        if events.send(Event::Button(b)).await.is_err() {
            return;
        }
    }
}

/// The control-socket edge: serves `callbox status` and commands on `listener` (bound
/// by [`control::bind`] before `READY=1`).
pub async fn control(listener: tokio::net::UnixListener, source: StatusSource) {
    if let Err(e) = control::serve_on(listener, source).await {
        tracing::error!(error = %e, "control socket failed; `callbox status` will not work");
    }
}

/// The schedule edge: the daily do-not-disturb window, checked against local time
/// every 20 s; an event when it opens or closes.
pub async fn schedule(schedule: DndSchedule, events: Sender<Event>) {
    let mut last = None;
    let mut tick = tokio::time::interval(Duration::from_secs(20));
    loop {
        tick.tick().await;
        let now = minute_of_day_local();
        let on = schedule.contains(now);
        if last != Some(on) {
            tracing::info!(on, "do-not-disturb schedule");
            last = Some(on);
            if events.send(Event::DndSchedule(on)).await.is_err() {
                return;
            }
        }
    }
}

/// Minutes since local midnight (0..1440).
fn minute_of_day_local() -> u16 {
    use chrono::Timelike;
    let now = chrono::Local::now();
    (now.hour() * 60 + now.minute()) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_edge_that_returns_or_panics_is_reported_by_name() {
        let mut edges = Edges::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        edges.spawn("buttons", async move {
            let _ = rx.await;
        });
        edges.spawn("schedule", async { panic!("boom") });
        match edges.ended().await {
            EdgeError::Panicked { edge, panic } => {
                assert_eq!((edge, panic.as_str()), ("schedule", "boom"))
            }
            other => panic!("expected the schedule's panic, got {other}"),
        }
        drop(tx);
        match edges.ended().await {
            EdgeError::Ended { edge } => assert_eq!(edge, "buttons"),
            other => panic!("expected the buttons' end, got {other}"),
        }
        let none = tokio::time::timeout(Duration::from_millis(50), edges.ended()).await;
        assert!(none.is_err(), "no edge left: pending, not a fault");
    }
}
