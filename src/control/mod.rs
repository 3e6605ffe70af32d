//! The local control socket: a unix socket (`[control] socket`) speaking one JSON
//! line per request. Today it answers `status`; it is how `callbox status`, installers
//! and tests see what the box is doing. No network exposure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::media::Counters;

/// Control socket failures.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Could not create or bind the socket.
    #[error("cannot listen on control socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Could not reach a running daemon.
    #[error("cannot reach the callbox daemon at {path}: {source} (is `callbox run` running?)")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The daemon's answer was not understood.
    #[error("bad answer from the daemon: {0}")]
    Protocol(String),
}

/// What `status` reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// Call phase: `idle`, `answering`, `joining`, `in_call`, `rejoining`.
    pub state: String,
    /// Whether the hub's WebSocket is up.
    pub hub_online: bool,
    /// Current call id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// Current LiveKit room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Who called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// Time since the call was answered, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_duration_ms: Option<u64>,
    /// Video frames handed to the publisher during the current or last call.
    pub video_frames_sent: u64,
    /// Decoded remote video frames during the current or last call.
    pub video_frames_received: u64,
    /// Decoded remote audio buffers during the current or last call.
    pub audio_buffers_received: u64,
    /// Calls answered since the daemon started.
    pub calls_answered: u64,
}

/// Live view of the daemon the control server reads from.
pub struct StatusSource {
    /// Updated by the supervisor after every state-machine step.
    pub status: Arc<Mutex<Status>>,
    /// Live frame counters from the media thread.
    pub counters: Arc<Counters>,
}

impl StatusSource {
    fn snapshot(&self) -> Status {
        let mut s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
        let (sent, recv, audio) = self.counters.snapshot();
        s.video_frames_sent = sent;
        s.video_frames_received = recv;
        s.audio_buffers_received = audio;
        s
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    cmd: String,
}

/// Binds `path` (replacing a stale socket file, creating the parent directory) and
/// serves requests until the task is dropped.
pub async fn serve(path: &Path, source: StatusSource) -> Result<(), ControlError> {
    let bind_err = |source| ControlError::Bind {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660));
    }
    tracing::info!(socket = %path.display(), "control socket listening");
    let source = Arc::new(source);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                continue;
            }
        };
        let source = source.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &source).await {
                tracing::debug!(error = %e, "control client dropped");
            }
        });
    }
}

async fn handle(stream: UnixStream, source: &StatusSource) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) if req.cmd == "status" => serde_json::to_value(source.snapshot())
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
            Ok(req) => serde_json::json!({
                "error": format!("unknown command `{}`; known: status", req.cmd)
            }),
            Err(e) => serde_json::json!({
                "error": format!("bad request (expected {{\"cmd\":\"status\"}}): {e}")
            }),
        };
        let mut text = answer.to_string();
        text.push('\n');
        w.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

/// Asks a running daemon for its status.
pub async fn query_status(path: &Path) -> Result<Status, ControlError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ControlError::Connect {
            path: path.to_owned(),
            source,
        })?;
    let (r, mut w) = stream.into_split();
    let io = |e: std::io::Error| ControlError::Protocol(e.to_string());
    w.write_all(b"{\"cmd\":\"status\"}\n").await.map_err(io)?;
    let line = BufReader::new(r)
        .lines()
        .next_line()
        .await
        .map_err(io)?
        .ok_or_else(|| ControlError::Protocol("no answer".into()))?;
    serde_json::from_str(&line).map_err(|e| ControlError::Protocol(format!("{e}: {line}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn status_round_trips_over_the_socket_with_live_counters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/control.sock");
        let status = Arc::new(Mutex::new(Status {
            state: "in_call".into(),
            hub_online: true,
            call_id: Some("c1".into()),
            ..Default::default()
        }));
        let counters = Arc::new(Counters::default());
        counters.video_frames_received.store(42, Ordering::Relaxed);
        let src = StatusSource {
            status: status.clone(),
            counters: counters.clone(),
        };
        let p = path.clone();
        let server = tokio::spawn(async move { serve(&p, src).await });
        let mut got = None;
        for _ in 0..100 {
            if let Ok(s) = query_status(&path).await {
                got = Some(s);
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let got = got.expect("daemon answered");
        assert_eq!(got.state, "in_call");
        assert_eq!(got.call_id.as_deref(), Some("c1"));
        assert_eq!(got.video_frames_received, 42);
        server.abort();
    }

    #[tokio::test]
    async fn no_daemon_is_a_clear_error() {
        let err = query_status(Path::new("/nonexistent/callbox.sock"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/callbox.sock") && err.contains("callbox run"),
            "{err}"
        );
    }
}
