//! `callbox-hub`, the reference call server of the callbox protocol (design §3): start
//! and stop a hub in-process, and manage principals without a running hub.
//!
//! ```no_run
//! # async fn demo() -> Result<(), callbox_hub::HubError> {
//! use callbox_hub::{HubConfig, LiveKitConfig, PrincipalKind};
//! let mut config = HubConfig::new("/tmp/hub.sqlite3", LiveKitConfig::new("ws://127.0.0.1:7880", "key", "a-secret-of-at-least-32-characters"));
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! let box_credential = callbox_hub::add_principal(&config.database, "box1", PrincipalKind::Device)?;
//! let hub = callbox_hub::start(config).await?;
//! println!("hub at {} (WebSocket {})", hub.url(), hub.ws_url());
//! hub.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod contacts;
pub mod http;
pub mod limits;
pub mod livekit;
pub mod model;
pub mod service;
pub mod sessions;
pub mod store;
pub mod tokens;
pub mod web;
pub mod ws;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use auth::{Principal, PrincipalKind};
pub use config::{ConfigError, HubConfig, LiveKitConfig};
pub use contacts::ContactError;
pub use service::ServiceError;
pub use store::StoreError;

/// How long [`RunningHub::shutdown`] waits for WebSockets and in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the hub could not start or a principal could not be added.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The identity breaks the naming rules.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// A contacts change was refused.
    #[error(transparent)]
    Contact(#[from] ContactError),
    /// A sign-in link could not be made.
    #[error(transparent)]
    Session(#[from] sessions::SessionError),
    /// Start-up recovery of stored calls failed.
    #[error("recovering stored calls: {0}")]
    Recover(#[from] ServiceError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A hub serving HTTP and WebSockets in the background of the current tokio runtime.
#[derive(Debug)]
pub struct RunningHub {
    /// The bound address (the real port when `listen` had port 0).
    pub addr: SocketAddr,
    hub: Arc<service::Hub>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    ws_closed: mpsc::Receiver<()>,
}

impl RunningHub {
    /// Base URL for REST calls, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// WebSocket URL, e.g. `ws://127.0.0.1:41234/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Sends `text` as is, as one WebSocket text frame, to every connection of
    /// `identity`; returns how many connections got it. A diagnostic for checking how
    /// devices handle frames they do not understand (they must log and ignore them).
    pub fn send_raw(&self, identity: &str, text: &str) -> usize {
        self.hub.clients.send_raw(identity, text)
    }

    /// The configuration in use.
    pub fn config(&self) -> &HubConfig {
        &self.hub.config
    }

    /// Stops accepting connections, closes every WebSocket (close code 1001), stops ring
    /// timers and waits up to 5 s for in-flight requests. The database is left
    /// consistent; a new hub may be started on the same file afterwards.
    pub async fn shutdown(mut self) {
        tracing::info!(addr = %self.addr, "hub shutting down");
        self.hub.begin_shutdown();
        let _ = self.stop.send(true);
        // Every WebSocket task holds a sender; recv() returns None once all have closed.
        if tokio::time::timeout(SHUTDOWN_GRACE, self.ws_closed.recv())
            .await
            .is_err()
        {
            tracing::warn!("WebSocket connections did not close in time");
        }
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server error at shutdown"),
            Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
            Err(_) => {
                tracing::warn!("HTTP requests did not finish in time; aborting them");
                self.server.abort();
            }
        }
        tracing::info!("hub stopped");
    }
}

/// Starts a hub on `config.listen` (port 0 picks a free port).
///
/// Opens (or creates) the database, recovers stored calls (ring deadlines that passed
/// while the hub was down make calls `missed`; other ringing calls get timers for the
/// rest of their time), then serves in the background.
pub async fn start(config: HubConfig) -> Result<RunningHub, HubError> {
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| HubError::Bind {
            addr: config.listen,
            source,
        })?;
    start_with_listener(config, listener).await
}

/// Like [`start`] but serves on an already bound listener (`config.listen` is ignored).
/// Lets a test know the hub's address before starting it, e.g. to give LiveKit the
/// webhook URL first.
pub async fn start_with_listener(
    config: HubConfig,
    listener: tokio::net::TcpListener,
) -> Result<RunningHub, HubError> {
    config.validate()?;
    config.require_livekit_keys()?;
    let addr = listener.local_addr().map_err(|source| HubError::Bind {
        addr: config.listen,
        source,
    })?;
    let store = store::AsyncStore::open(config.database.clone()).await?;
    let (stop, stop_rx) = watch::channel(false);
    let (ws_alive, ws_closed) = mpsc::channel(1);
    let hub = Arc::new(service::Hub::new(config, store, stop_rx.clone(), ws_alive));
    hub.recover().await?;
    let app = http::router(Arc::clone(&hub));
    let mut stop_signal = stop_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_signal.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(
        %addr, database = %hub.config.database.display(), livekit = %hub.livekit.api_url(),
        "hub listening"
    );
    Ok(RunningHub {
        addr,
        hub,
        stop,
        server,
        ws_closed,
    })
}

/// Creates the principal `identity` (or rotates its credential) in the database at
/// `db_path`, returning the new bearer credential. Only its SHA-256 is stored, so this
/// is the one time it can be seen. Works with or without a running hub.
pub fn add_principal(
    db_path: impl AsRef<Path>,
    identity: &str,
    kind: PrincipalKind,
) -> Result<String, HubError> {
    auth::validate_identity(identity)?;
    let store = store::Store::open(db_path.as_ref())?;
    let credential = auth::generate_credential();
    store.upsert_principal(
        identity,
        kind,
        &auth::hash_credential(&credential),
        service::now_ms(),
    )?;
    Ok(credential)
}

/// Allows `caller` to call `callee` (a box or a user) in the database at `db_path`;
/// `trusted`: a box set to `answer = "auto"` answers it by itself. Granting again
/// updates `trusted`. Works with or without a running hub.
///
/// Errors: [`ContactError::UnknownPrincipal`] (create it first), the database.
pub fn allow_caller(
    db_path: impl AsRef<Path>,
    callee: &str,
    caller: &str,
    trusted: bool,
) -> Result<(), HubError> {
    let store = store::Store::open(db_path.as_ref())?;
    contacts::allow(&store, callee, caller, trusted, service::now_ms())?;
    Ok(())
}

/// Takes `caller` off `callee`'s list; false if it was not on it.
pub fn revoke_caller(
    db_path: impl AsRef<Path>,
    callee: &str,
    caller: &str,
) -> Result<bool, HubError> {
    let store = store::Store::open(db_path.as_ref())?;
    Ok(contacts::revoke(&store, callee, caller)?)
}

/// Sets (or with `None` clears) the display name of `identity`.
pub fn set_display_name(
    db_path: impl AsRef<Path>,
    identity: &str,
    name: Option<&str>,
) -> Result<(), HubError> {
    let store = store::Store::open(db_path.as_ref())?;
    contacts::set_display_name(&store, identity, name)?;
    Ok(())
}

/// Makes a one-time sign-in link code for the user `identity`, valid for `valid_hours`
/// (see [`sessions`]); the caller app at `<public_url>/#signin=<code>` redeems it.
/// Works with or without a running hub.
///
/// Errors: [`sessions::SessionError`] (unknown user, a device, bad validity), the
/// database.
pub fn signin_link_code(
    db_path: impl AsRef<Path>,
    identity: &str,
    valid_hours: u32,
) -> Result<String, HubError> {
    let store = store::Store::open(db_path.as_ref())?;
    Ok(sessions::create_link(
        &store,
        identity,
        valid_hours,
        service::now_ms(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A running hub on a one-thread runtime answers `/health` while one of its
    /// database calls waits for the SQLite write lock (another connection holds
    /// `BEGIN EXCLUSIVE`), and the call succeeds once the lock is free. Were the call
    /// run on the worker it would hold the only thread until SQLite's 5 s busy timeout
    /// failed it, and `/health` would answer only after that.
    #[tokio::test(flavor = "current_thread")]
    async fn health_answers_while_a_database_call_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.sqlite3");
        let lk = LiveKitConfig::new(
            "ws://127.0.0.1:9",
            "key",
            "a-secret-of-at-least-32-characters",
        );
        let mut config = HubConfig::new(&db, lk);
        config.listen = "127.0.0.1:0".parse().unwrap();
        let hub = start(config).await.unwrap();
        let blocker = rusqlite::Connection::open(&db).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();

        let (started_tx, started) = tokio::sync::oneshot::channel();
        let store = hub.hub.store.clone();
        let write = tokio::spawn(async move {
            store
                .run(move |s| {
                    let _ = started_tx.send(());
                    s.upsert_principal("box1", PrincipalKind::Device, "h", 1)
                })
                .await
        });
        started.await.expect("the write started");

        let health = reqwest::get(format!("{}/health", hub.url())).await.unwrap();
        assert_eq!(health.status(), reqwest::StatusCode::OK);
        assert!(
            !write.is_finished(),
            "the write must still be waiting for the lock"
        );
        blocker.execute_batch("ROLLBACK").unwrap();
        write
            .await
            .unwrap()
            .expect("the write succeeds once the lock is free");
        hub.shutdown().await;
    }
}
