//! WebSocket clients: the registry of open `/ws` connections per identity, event fan-out,
//! and the per-connection task (invitation re-send, pings, shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use callbox_protocol::ServerEvent;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::auth::Principal;
use crate::service::Hub;

/// Interval between WebSocket pings (15 s).
pub const PING_INTERVAL: Duration = Duration::from_secs(15);

/// A connection that has sent nothing (not even a pong) for this long (45 s) is dropped.
pub const IDLE_LIMIT: Duration = Duration::from_secs(45);

/// Events queued per connection before it counts as stuck and is dropped (the client
/// reconnects and gets its pending invitations again).
const QUEUE_DEPTH: usize = 64;

/// A WebSocket failure, only logged (the connection is dropped).
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// Writing to or reading from the socket failed.
    #[error("socket error: {0}")]
    Socket(#[from] axum::Error),
    /// The event could not be encoded (never expected).
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What goes out on a client's WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A protocol event, JSON-encoded.
    Event(ServerEvent),
    /// A text frame sent as is (see [`Clients::send_raw`]).
    Raw(String),
}

type Registry = HashMap<String, HashMap<u64, mpsc::Sender<Outgoing>>>;

/// The largest WebSocket message (and frame) a client may send, in bytes (tungstenite's
/// default is 64 MiB). Clients send nothing but pings today; a bigger message closes the
/// connection.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

/// Open connections per identity (several per identity allowed).
#[derive(Debug, Default)]
pub struct Clients {
    by_identity: Mutex<Registry>,
    next_id: AtomicU64,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.by_identity.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection; events for `identity` arrive on the returned receiver.
    pub fn register(&self, identity: &str) -> (u64, mpsc::Receiver<Outgoing>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        self.lock()
            .entry(identity.to_owned())
            .or_default()
            .insert(id, tx);
        (id, rx)
    }

    /// Forgets a connection.
    pub fn unregister(&self, identity: &str, id: u64) {
        let mut map = self.lock();
        if let Some(conns) = map.get_mut(identity) {
            conns.remove(&id);
            if conns.is_empty() {
                map.remove(identity);
            }
        }
    }

    /// Queues `event` on every connection of `identity`; returns how many got it.
    /// A connection whose queue is full is dropped (its task sees the channel close).
    pub fn send(&self, identity: &str, event: &ServerEvent) -> usize {
        self.deliver(identity, Outgoing::Event(event.clone()))
    }

    /// Queues a raw text frame on every connection of `identity`; returns how many got
    /// it. For diagnostics and compatibility tests: lets an operator check how devices
    /// cope with frames a newer (or broken) server might send.
    pub fn send_raw(&self, identity: &str, text: &str) -> usize {
        self.deliver(identity, Outgoing::Raw(text.to_owned()))
    }

    fn deliver(&self, identity: &str, out: Outgoing) -> usize {
        let mut map = self.lock();
        let Some(conns) = map.get_mut(identity) else {
            return 0;
        };
        let mut delivered = 0;
        conns.retain(|conn_id, tx| match tx.try_send(out.clone()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(identity, conn_id, "WebSocket client too slow, dropping it");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if conns.is_empty() {
            map.remove(identity);
        }
        delivered
    }

    /// Whether `identity` has a WebSocket open.
    pub fn is_connected(&self, identity: &str) -> bool {
        self.lock().get(identity).is_some_and(|c| !c.is_empty())
    }

    /// Number of open connections (all identities).
    pub fn count(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }
}

/// Runs one upgraded `/ws` connection until the client leaves, the socket fails, it
/// goes idle, or the hub shuts down. `_alive` is dropped on exit so shutdown can wait
/// for every connection to close.
pub async fn run_connection(
    hub: Arc<Hub>,
    principal: Principal,
    socket: WebSocket,
    _alive: mpsc::Sender<()>,
) {
    let identity = principal.identity.as_str();
    let (conn_id, mut events) = hub.clients.register(identity);
    tracing::info!(identity, conn_id, "WebSocket client connected");
    let (mut sink, mut stream) = socket.split();
    let result = async {
        // The box may have been offline or reconnecting: ring again.
        for event in hub.pending_invitation_events(identity).await {
            tracing::info!(identity, call_id = event.call_id(), "re-sending pending invitation");
            sink.send(Message::Text(serde_json::to_string(&event)?.into())).await?;
        }
        let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
        let mut shutdown = hub.shutdown_signal();
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                out = events.recv() => match out {
                    Some(Outgoing::Event(event)) => {
                        tracing::debug!(identity, call_id = event.call_id(), "sending event");
                        sink.send(Message::Text(serde_json::to_string(&event)?.into())).await?;
                    }
                    Some(Outgoing::Raw(text)) => {
                        tracing::info!(identity, "sending raw text frame");
                        sink.send(Message::Text(text.into())).await?;
                    }
                    None => break, // dropped by the registry (too slow)
                },
                msg = stream.next() => {
                    last_heard = Instant::now();
                    match msg {
                        Some(Ok(Message::Text(text))) => {
                            tracing::debug!(identity, text = %text.as_str(), "ignoring client text frame");
                        }
                        Some(Ok(Message::Close(_))) | None => break,
                        Some(Ok(_)) => {} // ping (auto-answered), pong, binary
                        Some(Err(e)) => return Err(WsError::Socket(e)),
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > IDLE_LIMIT {
                        tracing::info!(identity, conn_id, "WebSocket client silent, dropping it");
                        break;
                    }
                    sink.send(Message::Ping(Default::default())).await?;
                }
                () = stopped(&mut shutdown) => {
                    let frame = CloseFrame { code: close_code::AWAY, reason: "hub shutting down".into() };
                    // Best effort: the client may already be gone.
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    break;
                }
            }
        }
        Ok::<(), WsError>(())
    }
    .await;
    hub.clients.unregister(identity, conn_id);
    match result {
        Ok(()) => tracing::info!(identity, conn_id, "WebSocket client disconnected"),
        Err(e) => tracing::info!(identity, conn_id, error = %e, "WebSocket client dropped"),
    }
}

/// Resolves once the hub's shutdown flag is set (or its sender is gone).
async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_reach_every_connection_of_an_identity() {
        let clients = Clients::default();
        let (a, mut rx_a) = clients.register("box1");
        let (_b, mut rx_b) = clients.register("box1");
        let (_c, mut rx_c) = clients.register("alice");
        assert_eq!(clients.count(), 3);
        let ev = ServerEvent::CallCancelled {
            call_id: "c1".into(),
        };
        assert_eq!(clients.send("box1", &ev), 2);
        assert_eq!(rx_a.recv().await, Some(Outgoing::Event(ev.clone())));
        assert_eq!(rx_b.recv().await, Some(Outgoing::Event(ev.clone())));
        assert_eq!(clients.send_raw("alice", "{oops"), 1);
        assert_eq!(rx_c.recv().await, Some(Outgoing::Raw("{oops".into())));
        clients.unregister("box1", a);
        assert_eq!(clients.send("box1", &ev), 1);
        assert_eq!(clients.send("nobody", &ev), 0);
    }

    #[tokio::test]
    async fn a_stuck_connection_is_dropped() {
        let clients = Clients::default();
        let (_id, mut rx) = clients.register("box1");
        let ev = ServerEvent::CallCancelled {
            call_id: "c1".into(),
        };
        for _ in 0..QUEUE_DEPTH {
            assert_eq!(clients.send("box1", &ev), 1);
        }
        assert_eq!(clients.send("box1", &ev), 0);
        assert_eq!(clients.count(), 0);
        for _ in 0..QUEUE_DEPTH {
            assert!(rx.recv().await.is_some());
        }
        assert_eq!(rx.recv().await, None);
    }
}
