//! The local control socket: a unix socket (`[control] socket`, mode 0660, owned by the
//! service user) speaking one JSON object per line. It is how `callbox ctl`, installers
//! and tests see and drive the box without a caller: `{"cmd":"status"}`, `answer`,
//! `decline`, `hangup`, `mute`, `unmute`, `dnd_on`, `dnd_off`,
//! `{"cmd":"dial","identity":"…"}`, `{"cmd":"press","button":"call","long":false}`,
//! and `{"cmd":"screenshot"}` (the call screen's last frame: `{"png_base64":"…"}`).
//! Commands are handed to the supervisor; the answer `{"ok":true}` means accepted.
//! No network exposure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::call::{Command, VolumeChange};
use crate::gpio::Button;
use crate::media::{Counters, RingtoneStatus};

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
    /// Who called (or whom the box called).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The caller's display name, when the hub sent one (the screen shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_name: Option<String>,
    /// Everybody else in a group call besides `caller` and the box, in the order they
    /// joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    /// Time since the call was answered, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_duration_ms: Option<u64>,
    /// Video frames handed to the publisher during the current or last call.
    pub video_frames_sent: u64,
    /// Decoded remote video frames during the current or last call.
    pub video_frames_received: u64,
    /// Decoded remote audio buffers during the current or last call.
    pub audio_buffers_received: u64,
    /// Calls answered or placed since the daemon started.
    pub calls_answered: u64,
    /// `incoming` or `outgoing`, during a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Do-not-disturb is on (button or schedule).
    #[serde(default)]
    pub dnd: bool,
    /// The microphone is muted.
    #[serde(default)]
    pub mic_muted: bool,
    /// LiveKit media: `down`, `connecting` or `connected`.
    #[serde(default)]
    pub livekit: String,
    /// What the status LED means now (`idle`, `offline`, `ringing`, …).
    #[serde(default)]
    pub status_light: String,
    /// The call state wants the ringtone.
    #[serde(default)]
    pub ringtone: bool,
    /// The ringtone pipeline is actually playing (from the media thread).
    #[serde(default)]
    pub ringtone_playing: bool,
    /// Buffers with sound the ringtone delivered to the speaker since it started.
    #[serde(default)]
    pub ringtone_audible_buffers: u64,
    /// Each LED's pattern and whether it is lit right now, e.g.
    /// `{"status": {"pattern": "cadence:400/200/400/2000", "lit": true}}`.
    #[serde(default)]
    pub leds: serde_json::Map<String, serde_json::Value>,
    /// The speaker's volume now, % (the ringtone's while ringing, else the call's).
    #[serde(default)]
    pub speaker_volume: u8,
    /// The call's and the ringtone's volumes, %.
    #[serde(default)]
    pub volume: Option<crate::call::Volume>,
    /// The call's network over the last 2 s: loss both ways (%), RTT and jitter (ms), sent
    /// kbit/s and `quality` (good / fair / poor); absent outside a call.
    #[serde(default)]
    pub network: Option<crate::media::quality::Link>,
    /// The video encoder element the current or last call's camera was encoded with,
    /// e.g. `x264enc`, `v4l2h264enc` (what `livekitwebrtcsink` actually built).
    #[serde(default)]
    pub video_encoder: Option<String>,
    /// A call's pipelines are up. They are torn down just after a call ends, so this
    /// can still be true for a moment while `state` is already `idle`.
    #[serde(default)]
    pub media_active: bool,
    /// Times the watchdog rebuilt the media thread since the daemon started (it died
    /// or stopped answering for `media.watchdog_ms`).
    #[serde(default)]
    pub media_restarts: u64,
    /// Panics caught in GStreamer callbacks since the daemon started (each costs that
    /// callback's work, such as one remote track; the log says which).
    #[serde(default)]
    pub media_callback_panics: u64,
    /// Times the box returned freed memory to the system after calls (two a call).
    #[serde(default)]
    pub memory_trims: u64,
    /// What the C allocator holds now ([`crate::memory::HeapStats`], KiB); absent on
    /// C libraries other than glibc.
    #[serde(default)]
    pub heap: Option<crate::memory::HeapStats>,
    /// When the current or last call's first remote video frame reached the screen,
    /// ms since the Unix epoch; absent before it.
    #[serde(default)]
    pub first_video_received_unix_ms: Option<u64>,
}

/// What a client asks the daemon to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A call command (answer, hang up, mute, DND, dial…).
    Command(Command),
    /// Press a button as if by hand (through the GPIO simulation when it is in use).
    Press {
        /// Which.
        button: Button,
        /// Held past the long-press threshold.
        long: bool,
    },
}

/// Requests queued to the supervisor at most; it takes one per state-machine step, so
/// more than this waiting means it is stuck (and the systemd watchdog restarts it).
pub const REQUEST_CAPACITY: usize = 32;

/// Live view of the daemon the control server reads from, and where it sends requests.
pub struct StatusSource {
    /// Updated by the supervisor after every state-machine step.
    pub status: Arc<Mutex<Status>>,
    /// Live frame counters from the media thread.
    pub counters: Arc<Counters>,
    /// The ringtone's live state from the media thread.
    pub ringtone: Arc<RingtoneStatus>,
    /// Live LED states (pattern and lit), filled in by the supervisor's GPIO panel.
    pub leds: Arc<dyn Fn() -> serde_json::Map<String, serde_json::Value> + Send + Sync>,
    /// Requests for the supervisor: a channel of [`REQUEST_CAPACITY`]; a request
    /// that does not fit is answered `{"error": "busy …"}` and dropped.
    pub requests: tokio::sync::mpsc::Sender<Request>,
    /// Asks the media thread for the call screen's last frame as PNG.
    pub screenshot: Arc<dyn Fn() -> Option<ScreenshotReply> + Send + Sync>,
}

/// Where the media thread answers a screenshot request: the PNG's bytes or why not.
pub type ScreenshotReply = tokio::sync::oneshot::Receiver<Result<Vec<u8>, String>>;

/// How long a screenshot may take.
const SCREENSHOT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn screenshot(source: &StatusSource) -> serde_json::Value {
    use base64::Engine as _;
    let Some(reply) = (source.screenshot)() else {
        return serde_json::json!({"error": "the media thread is not running"});
    };
    match tokio::time::timeout(SCREENSHOT_TIMEOUT, reply).await {
        Ok(Ok(Ok(png))) => serde_json::json!({
            "png_base64": base64::engine::general_purpose::STANDARD.encode(&png)
        }),
        Ok(Ok(Err(e))) => serde_json::json!({ "error": e }),
        Ok(Err(_)) => serde_json::json!({"error": "the media thread dropped the request"}),
        Err(_) => serde_json::json!({"error": "the media thread did not answer in 10 s"}),
    }
}

impl StatusSource {
    fn snapshot(&self) -> Status {
        // The LEDs are read under the status lock, which the supervisor holds while it
        // changes both: the snapshot never pairs a new LED with an old state.
        let (mut s, leds) = {
            let guard = self.status.lock().unwrap_or_else(|e| e.into_inner());
            ((*guard).clone(), (self.leds)())
        };
        let (sent, recv, audio) = self.counters.snapshot();
        s.video_frames_sent = sent;
        s.video_frames_received = recv;
        s.audio_buffers_received = audio;
        s.video_encoder = self.counters.video_encoder();
        s.media_active = self
            .counters
            .media_active
            .load(std::sync::atomic::Ordering::Relaxed);
        // Only while the call has media: between the call ending (the state machine is
        // already idle) and the media thread tearing the pipelines down, the last
        // sample is still there, and `idle` with network figures would be a lie.
        s.network = if s.livekit == "down" {
            None
        } else {
            self.counters.network()
        };
        s.first_video_received_unix_ms = Some(
            self.counters
                .first_video_received_unix_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
        .filter(|&ms| ms > 0);
        s.memory_trims = self
            .counters
            .memory_trims
            .load(std::sync::atomic::Ordering::Relaxed);
        s.heap = crate::memory::heap_stats();
        s.media_callback_panics =
            crate::media::CALLBACK_PANICS.load(std::sync::atomic::Ordering::Relaxed);
        s.leds = leds;
        s.ringtone_playing = self.ringtone.is_playing();
        s.ringtone_audible_buffers = self.ringtone.audible_buffers();
        s
    }
}

/// The wire form of a request.
#[derive(Debug, Serialize, Deserialize)]
struct WireRequest {
    cmd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    button: Option<Button>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    long: bool,
    /// `volume`: `up`, `down` or a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    level: Option<String>,
}

const COMMANDS: &str = "status, screenshot, answer, decline, hangup, mute, unmute, dnd_on, dnd_off, \
                        dial, press, volume";

const BUTTONS: &str = "call, hangup, mute, dnd, speed_dial, volume_up or volume_down";

/// `up`, `down` or `0`..=`100` (a trailing `%` allowed).
fn parse_volume(level: &str) -> Result<VolumeChange, String> {
    match level.trim() {
        "up" => Ok(VolumeChange::Up),
        "down" => Ok(VolumeChange::Down),
        n => n
            .trim_end_matches('%')
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 100)
            .map(VolumeChange::Set)
            .ok_or_else(|| format!("volume `{n}`: allowed up, down or 0 to 100 (%)")),
    }
}

fn parse_request(req: WireRequest) -> Result<Request, String> {
    let cmd = |c| Ok(Request::Command(c));
    match req.cmd.as_str() {
        "answer" => cmd(Command::Answer),
        "decline" => cmd(Command::Decline),
        "hangup" => cmd(Command::Hangup),
        "mute" => cmd(Command::Mute(true)),
        "unmute" => cmd(Command::Mute(false)),
        "dnd_on" => cmd(Command::Dnd(true)),
        "dnd_off" => cmd(Command::Dnd(false)),
        "dial" => match req.identity.filter(|i| !i.trim().is_empty()) {
            Some(id) => cmd(Command::Dial(id)),
            None => Err("dial needs an \"identity\"".into()),
        },
        "press" => match req.button {
            Some(button) => Ok(Request::Press {
                button,
                long: req.long,
            }),
            None => Err(format!("press needs a \"button\": {BUTTONS}")),
        },
        "volume" => match req.level.as_deref() {
            Some(l) => parse_volume(l).map(|v| Request::Command(Command::Volume(v))),
            None => Err("volume needs a \"level\": up, down or 0 to 100".into()),
        },
        other => Err(format!("unknown command `{other}`; known: {COMMANDS}")),
    }
}

/// Binds `path` (replacing a stale socket file, creating the parent directory) with
/// mode 0660 and serves requests until the task is dropped.
pub async fn serve(path: &Path, source: StatusSource) -> Result<(), ControlError> {
    serve_on(bind(path)?, source).await
}

/// Binds the control socket at `path`: the parent directory is created, a stale socket
/// file replaced, the mode 0660 from the moment the path exists.
///
/// The socket is bound inside a fresh private (0700) directory beside `path`, given
/// its mode there, then renamed into place, so no other user can ever connect through
/// a socket with the process umask's wider mode.
///
/// Errors: [`ControlError::Bind`] naming the path.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let bind_err = |source| ControlError::Bind {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(bind_err)?;
    let private = dir.join(format!(".callbox-control-{}", std::process::id()));
    // A leftover from a crashed process with the same pid.
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(bind_err)?;
    let staged = private.join("socket");
    let placed = UnixListener::bind(&staged)
        .and_then(|listener| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o660))?;
            // rename(2) replaces a stale socket file atomically.
            std::fs::rename(&staged, path)?;
            Ok(listener)
        })
        .map_err(bind_err);
    let _ = std::fs::remove_dir_all(&private);
    let listener = placed?;
    tracing::info!(socket = %path.display(), "control socket listening");
    Ok(listener)
}

/// Serves requests on a socket from [`bind`] until the task is dropped.
pub async fn serve_on(listener: UnixListener, source: StatusSource) -> Result<(), ControlError> {
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

/// The longest request line the control socket reads, in bytes. A longer one is
/// answered with an error and the connection is closed (a request is a few dozen
/// bytes; an unbounded line would grow the daemon's memory without limit).
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;

async fn handle(stream: UnixStream, source: &StatusSource) -> std::io::Result<()> {
    use tokio::io::AsyncReadExt;
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    loop {
        let mut buf = Vec::new();
        let n = (&mut reader)
            .take(MAX_REQUEST_BYTES + 1)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') && buf.len() as u64 > MAX_REQUEST_BYTES {
            tracing::warn!(
                limit = MAX_REQUEST_BYTES,
                "control request too long, closing"
            );
            let answer = serde_json::json!({
                "error": format!("request longer than {MAX_REQUEST_BYTES} bytes")
            });
            w.write_all(format!("{answer}\n").as_bytes()).await?;
            return Ok(());
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        let answer = match serde_json::from_str::<WireRequest>(line) {
            Ok(req) if req.cmd == "status" => serde_json::to_value(source.snapshot())
                .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
            Ok(req) if req.cmd == "screenshot" => screenshot(source).await,
            Ok(req) => match parse_request(req) {
                Ok(r) => {
                    tracing::info!(request = ?r, "control request");
                    match source.requests.try_send(r) {
                        Ok(()) => serde_json::json!({"ok": true}),
                        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => serde_json::json!({
                            "error": format!("busy: {REQUEST_CAPACITY} requests already waiting; try again")
                        }),
                        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                            serde_json::json!({"error": "the daemon is shutting down"})
                        }
                    }
                }
                Err(e) => serde_json::json!({ "error": e }),
            },
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

/// Sends one raw JSON request line and returns the daemon's JSON answer.
pub async fn request(path: &Path, line: &str) -> Result<serde_json::Value, ControlError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| ControlError::Connect {
            path: path.to_owned(),
            source,
        })?;
    let (r, mut w) = stream.into_split();
    let io = |e: std::io::Error| ControlError::Protocol(e.to_string());
    w.write_all(format!("{line}\n").as_bytes())
        .await
        .map_err(io)?;
    let answer = BufReader::new(r)
        .lines()
        .next_line()
        .await
        .map_err(io)?
        .ok_or_else(|| ControlError::Protocol("no answer".into()))?;
    serde_json::from_str(&answer).map_err(|e| ControlError::Protocol(format!("{e}: {answer}")))
}

/// Asks the daemon at `path` for the call screen's last frame; returns the PNG bytes.
///
/// Errors: the socket, or the daemon's `error` (no screen, no frame yet).
pub async fn screenshot_png(path: &Path) -> Result<Vec<u8>, ControlError> {
    use base64::Engine as _;
    let answer = request(path, r#"{"cmd":"screenshot"}"#).await?;
    if let Some(e) = answer.get("error").and_then(|e| e.as_str()) {
        return Err(ControlError::Protocol(e.to_owned()));
    }
    let b64 = answer
        .get("png_base64")
        .and_then(|v| v.as_str())
        .ok_or_else(|| ControlError::Protocol(format!("no png_base64 in {answer}")))?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| ControlError::Protocol(format!("png_base64: {e}")))
}

/// The request line for a `callbox ctl` command and its arguments, e.g.
/// `["dnd", "on"]` or `["press", "call", "--long"]`.
pub fn ctl_request(args: &[String]) -> Result<String, String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let req = match a.as_slice() {
        ["status"] => WireRequest::cmd("status"),
        [c @ ("answer" | "decline" | "hangup" | "mute" | "unmute")] => WireRequest::cmd(c),
        ["dnd", "on"] => WireRequest::cmd("dnd_on"),
        ["dnd", "off"] => WireRequest::cmd("dnd_off"),
        ["dial", id] => WireRequest {
            identity: Some((*id).to_owned()),
            ..WireRequest::cmd("dial")
        },
        ["press", b, rest @ ..] if rest.is_empty() || rest == ["--long"] => {
            let button: Button = serde_json::from_value(serde_json::Value::String((*b).into()))
                .map_err(|_| format!("unknown button `{b}`: {BUTTONS}"))?;
            WireRequest {
                button: Some(button),
                long: !rest.is_empty(),
                ..WireRequest::cmd("press")
            }
        }
        ["volume", level] => {
            parse_volume(level)?;
            WireRequest {
                level: Some((*level).to_owned()),
                ..WireRequest::cmd("volume")
            }
        }
        _ => {
            return Err(
                "usage: callbox ctl status|answer|decline|hangup|mute|unmute|dnd on|off|\
                 dial <identity>|press <button> [--long]|volume up|down|<0-100>"
                    .into(),
            );
        }
    };
    serde_json::to_string(&req).map_err(|e| e.to_string())
}

impl WireRequest {
    fn cmd(c: &str) -> Self {
        Self {
            cmd: c.to_owned(),
            identity: None,
            button: None,
            long: false,
            level: None,
        }
    }
}

/// Asks a running daemon for its status.
pub async fn query_status(path: &Path) -> Result<Status, ControlError> {
    let answer = request(path, r#"{"cmd":"status"}"#).await?;
    serde_json::from_value(answer.clone())
        .map_err(|e| ControlError::Protocol(format!("{e}: {answer}")))
}

#[cfg(test)]
mod tests;
