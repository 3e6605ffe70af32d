//! The hub's event WebSocket (`GET /ws`): connect with the device credential, turn text
//! frames into [`ServerEvent`]s, reconnect with capped, jittered exponential back-off.
//!
//! Malformed frames and unknown event types are logged and ignored, never fatal.

use std::time::Duration;

use callbox_protocol::{EventParseError, ServerEvent};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc::Sender;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use super::HubClient;

/// What the WebSocket task reports.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// Connected and authenticated.
    Connected,
    /// The connection dropped; reconnecting.
    Disconnected,
    /// A well-formed event.
    Event(ServerEvent),
}

/// Reconnect delay for attempt `n` (0-based): `min · 2ⁿ` capped at `max`, then scaled by
/// `jitter` ∈ [0.75, 1.25] so a fleet of boxes does not reconnect in lock-step.
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, jitter: f64) -> Duration {
    let base = min.saturating_mul(1u32 << attempt.min(20)).min(max);
    base.mul_f64(jitter.clamp(0.75, 1.25))
}

/// No frame at all for this long means the link is dead. The hub pings every 15 s
/// and the box every [`PING_INTERVAL`] (the hub's pong counts), so a live link is
/// never this quiet. It was 45 s: after a 30 s network cut the box still believed
/// in a connection the hub had dropped, and an invitation in that window was missed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(20);

/// How often the box pings the hub: its own keep-alive, so that a dead link is found
/// within [`IDLE_LIMIT`] even if the hub's pings stop.
pub const PING_INTERVAL: Duration = Duration::from_secs(8);

/// `http(s)://host/…` → `ws(s)://host/…/ws`.
pub fn ws_url(base: &str) -> String {
    let rest = base
        .strip_prefix("https://")
        .map(|r| format!("wss://{r}"))
        .or_else(|| base.strip_prefix("http://").map(|r| format!("ws://{r}")))
        .unwrap_or_else(|| base.to_owned());
    format!("{rest}/ws")
}

/// A connection that lasted this long was stable: the next reconnect starts the
/// back-off again from `min`. A shorter one (a hub that accepts and drops, or flaps)
/// keeps climbing the back-off, so a fleet of boxes does not hammer it.
pub const STABLE_CONNECTION: Duration = Duration::from_secs(10);

/// Capacity of the channel [`run`] reports on (bounded: a supervisor that stops
/// reading holds the WebSocket reader back instead of growing memory).
pub const EVENT_CAPACITY: usize = 64;

/// Runs forever: connects, forwards events to `out`, reconnects with
/// [`backoff_delay`]. The back-off resets only after a connection that lasted
/// [`STABLE_CONNECTION`]. Returns when `out` is closed (the supervisor stopped).
pub async fn run(hub: HubClient, min: Duration, max: Duration, out: Sender<WsEvent>) {
    let url = ws_url(hub.base());
    let mut attempt: u32 = 0;
    loop {
        match connect(&url, hub.credential()).await {
            Ok(stream) => {
                tracing::info!(url, attempt, "connected to hub");
                let since = tokio::time::Instant::now();
                if out.send(WsEvent::Connected).await.is_err() {
                    return;
                }
                let reason = pump(stream, &out).await;
                let lasted = since.elapsed();
                if lasted >= STABLE_CONNECTION {
                    attempt = 0;
                }
                tracing::warn!(
                    url,
                    reason,
                    lasted_ms = lasted.as_millis() as u64,
                    "hub connection lost"
                );
                if out.send(WsEvent::Disconnected).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let delay = backoff_delay(attempt, min, max, rand::random_range(0.75..=1.25));
                match &e {
                    tungstenite::Error::Http(resp) if resp.status().as_u16() == 401 => {
                        tracing::error!(
                            url,
                            retry_ms = delay.as_millis() as u64,
                            "hub rejected the device credential (HTTP 401): check \
                             hub.credential in the config file"
                        )
                    }
                    tungstenite::Error::Http(resp) => tracing::error!(
                        url,
                        status = resp.status().as_u16(),
                        retry_ms = delay.as_millis() as u64,
                        "hub refused the WebSocket"
                    ),
                    other => tracing::warn!(
                        url,
                        error = %other,
                        retry_ms = delay.as_millis() as u64,
                        "hub unreachable (check hub.url), retrying"
                    ),
                }
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = out.closed() => return,
                }
                continue;
            }
        }
        // Dropped after being connected: after a stable connection the first retry
        // comes after `min`, else the back-off goes on climbing.
        let delay = backoff_delay(attempt, min, max, rand::random_range(0.75..=1.25));
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = out.closed() => return,
        }
    }
}

/// Largest message the box takes from the hub: 64 KiB (a `call_invitation` is under
/// 1 KiB). A bigger one is a protocol error: the connection is dropped and retried.
pub const MAX_HUB_MESSAGE_BYTES: usize = 64 * 1024;

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, credential: &str) -> Result<Stream, tungstenite::Error> {
    let mut req = url.into_client_request()?;
    let value = format!("Bearer {credential}").parse().map_err(|_| {
        tungstenite::Error::Url(tungstenite::error::UrlError::UnableToConnect(
            "credential is not a valid header value".into(),
        ))
    })?;
    req.headers_mut().insert("authorization", value);
    // The hub's events are a few hundred bytes; a bigger message (tungstenite's default
    // allows 64 MiB) ends the connection instead of the box's memory.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_HUB_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_HUB_MESSAGE_BYTES));
    let connecting = tokio_tungstenite::connect_async_with_config(req, Some(config), false);
    let (stream, _resp) = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| {
            tungstenite::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "WebSocket handshake timed out after 10 s",
            ))
        })??;
    Ok(stream)
}

/// Reads frames until the connection ends; returns why.
async fn pump(mut stream: Stream, out: &Sender<WsEvent>) -> String {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = tokio::time::Instant::now();
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout_at(last_heard + IDLE_LIMIT, stream.next()) => n,
            _ = ping.tick() => {
                // A failed send shows as an error on the next read.
                let _ = stream.send(Message::Ping(Vec::new().into())).await;
                continue;
            }
            _ = out.closed() => return "shutting down".into(),
        };
        last_heard = tokio::time::Instant::now();
        let msg = match next {
            Err(_) => return format!("nothing from the hub for {} s", IDLE_LIMIT.as_secs()),
            Ok(None) => return "closed".into(),
            Ok(Some(Err(e))) => return e.to_string(),
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Text(text) => {
                if let Some(ev) = parse_frame(text.as_str())
                    && out.send(WsEvent::Event(ev)).await.is_err()
                {
                    return "shutting down".into();
                }
            }
            Message::Ping(p) => {
                let _ = stream.send(Message::Pong(p)).await;
            }
            Message::Close(frame) => {
                return format!("closed by hub: {frame:?}");
            }
            Message::Binary(_) => tracing::warn!("ignoring binary frame from hub"),
            Message::Pong(_) | Message::Frame(_) => {}
        }
    }
}

/// Parses one text frame; logs and drops (`None`) anything bad.
pub fn parse_frame(text: &str) -> Option<ServerEvent> {
    match ServerEvent::parse(text) {
        Ok(ev) => {
            tracing::debug!(call_id = ev.call_id(), event = ?ev, "hub event");
            Some(ev)
        }
        Err(EventParseError::UnknownType(t)) => {
            tracing::info!(event_type = t, "ignoring unknown hub event type");
            None
        }
        Err(e) => {
            let excerpt: String = text.chars().take(200).collect();
            tracing::warn!(error = %e, frame = excerpt, "ignoring malformed hub message");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps_and_jitters_within_a_quarter() {
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(30));
        assert_eq!(backoff_delay(0, min, max, 1.0), Duration::from_millis(500));
        assert_eq!(backoff_delay(1, min, max, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff_delay(3, min, max, 1.0), Duration::from_millis(4000));
        assert_eq!(backoff_delay(10, min, max, 1.0), max);
        assert_eq!(backoff_delay(60, min, max, 1.0), max, "no overflow");
        assert_eq!(
            backoff_delay(10, min, max, 1.25),
            Duration::from_millis(37_500)
        );
        assert_eq!(
            backoff_delay(0, min, max, 0.1),
            Duration::from_millis(375),
            "clamped"
        );
    }

    #[test]
    fn ws_url_follows_the_scheme() {
        assert_eq!(ws_url("http://h:8080"), "ws://h:8080/ws");
        assert_eq!(
            ws_url("https://hub.example/base"),
            "wss://hub.example/base/ws"
        );
    }

    #[test]
    fn bad_frames_are_dropped_and_good_ones_forwarded() {
        assert_eq!(parse_frame("{not json"), None);
        assert_eq!(parse_frame(r#"{"type":"surprise","x":1}"#), None);
        assert_eq!(parse_frame(r#"{"type":"call_ended"}"#), None);
        assert_eq!(
            parse_frame(r#"{"type":"call_cancelled","callId":"c1"}"#),
            Some(ServerEvent::CallCancelled {
                call_id: "c1".into()
            })
        );
    }
}
