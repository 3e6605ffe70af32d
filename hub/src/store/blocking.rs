//! [`AsyncStore`]: the database as async code uses it. Every call runs on tokio's
//! blocking pool (`spawn_blocking`), so a slow disk, a long query or another process
//! holding the SQLite write lock (up to the 5 s busy timeout) stalls only that call,
//! never a tokio worker thread and every connection it serves.

use std::panic::Location;
use std::path::PathBuf;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::task::JoinError;

use super::{Store, StoreError};

/// The hub database for async code: a shared [`Store`] whose every call runs on
/// tokio's blocking pool. It has no query methods of its own, so async code cannot
/// reach SQLite on a worker thread by mistake; cloning it is cheap (one `Arc`).
#[derive(Debug, Clone)]
pub struct AsyncStore {
    store: Arc<Store>,
}

impl AsyncStore {
    /// Shares an open store with async code.
    pub fn new(store: Store) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// [`Store::open`] on tokio's blocking pool (it creates and migrates the schema,
    /// disk writes a worker thread must not wait for).
    #[track_caller]
    pub fn open(
        path: impl Into<PathBuf>,
    ) -> impl Future<Output = Result<Self, StoreError>> + Send + 'static {
        let caller = Location::caller();
        let path = path.into();
        async move {
            let opened = tokio::task::spawn_blocking(move || Store::open(&path)).await;
            joined(caller, opened)?.map(Self::new)
        }
    }

    /// Runs `f` with the store on tokio's blocking pool and waits for it without
    /// holding a worker thread: SQLite calls block (the connection's lock, disk I/O,
    /// another writer), and on a worker they would stall every task scheduled there.
    ///
    /// `f` runs to its end even if the returned future is dropped (a transaction is
    /// committed or rolled back, never left half done). A panic in `f`, or the runtime
    /// shutting down before `f` ran, is [`StoreError::Blocking`] naming the caller.
    #[track_caller]
    pub fn run<T, E, F>(&self, f: F) -> impl Future<Output = Result<T, E>> + Send + use<T, E, F>
    where
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let caller = Location::caller();
        let store = Arc::clone(&self.store);
        async move {
            let done = tokio::task::spawn_blocking(move || f(&store)).await;
            joined(caller, done)?
        }
    }

    /// [`Store::transact`] on tokio's blocking pool: `f` runs in one immediate
    /// transaction, committed when it returns `Ok` (see [`AsyncStore::run`]).
    #[track_caller]
    pub fn transact<T, E, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, E>> + Send + use<T, E, F>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.run(move |s| s.transact(f))
    }
}

/// The closure's result, or [`StoreError::Blocking`] when it panicked or never ran.
fn joined<T>(
    caller: &'static Location<'static>,
    done: Result<T, JoinError>,
) -> Result<T, StoreError> {
    done.map_err(|source| StoreError::Blocking { caller, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PrincipalKind;
    use tokio::sync::{mpsc, oneshot};

    fn open(dir: &tempfile::TempDir) -> (PathBuf, AsyncStore) {
        let path = dir.path().join("hub.sqlite3");
        let store = AsyncStore::new(Store::open(&path).unwrap());
        (path, store)
    }

    /// On a runtime with a single thread, a store write that waits for the SQLite
    /// lock (another connection holds `BEGIN EXCLUSIVE`) leaves the runtime free:
    /// the test task and a spawned task run while the write is still waiting, and the
    /// write succeeds once the lock is released. Were the write run on the worker, it
    /// would hold the only thread for the 5 s busy timeout and fail with "database is
    /// locked" before anything else ran, so `still_waiting` would not be empty.
    #[tokio::test(flavor = "current_thread")]
    async fn a_store_call_waiting_for_the_database_does_not_stall_the_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let (path, store) = open(&dir);
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();

        let (started_tx, started) = oneshot::channel();
        let (done_tx, mut done) = oneshot::channel();
        let writer = store.clone();
        tokio::spawn(async move {
            let written = writer
                .run(move |s| {
                    let _ = started_tx.send(());
                    s.upsert_principal("box1", PrincipalKind::Device, "h", 1)
                })
                .await;
            let _ = done_tx.send(written);
        });
        started.await.expect("the write started");

        // The write is now inside SQLite, waiting for the lock; another task answers.
        let (ping, mut pong) = mpsc::channel(1);
        tokio::spawn(async move { ping.send("pong").await });
        assert_eq!(pong.recv().await, Some("pong"));
        let still_waiting = done.try_recv();
        assert!(
            matches!(still_waiting, Err(oneshot::error::TryRecvError::Empty)),
            "the write finished before the runtime ran anything else: {still_waiting:?}"
        );

        blocker.execute_batch("ROLLBACK").unwrap();
        done.await
            .unwrap()
            .expect("the write succeeds once the lock is free");
        let kinds = store.run(|s| s.principal_kinds(&["box1"])).await.unwrap();
        assert_eq!(kinds.get("box1"), Some(&PrincipalKind::Device));
    }

    /// A panic inside a store call is an error naming the caller, not a panic of the
    /// awaiting task, and the store stays usable.
    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_store_call_is_a_store_error() {
        let dir = tempfile::tempdir().unwrap();
        let (_path, store) = open(&dir);
        let line = line!() + 2;
        let failed = store
            .transact(|_| -> Result<(), StoreError> { panic!("boom in a query") })
            .await;
        let Err(e @ StoreError::Blocking { caller, .. }) = failed else {
            panic!("expected StoreError::Blocking, got {failed:?}");
        };
        assert_eq!((caller.file(), caller.line()), (file!(), line));
        assert!(e.to_string().contains("boom in a query"), "{e}");
        store
            .run(|s| s.upsert_principal("box1", PrincipalKind::Device, "h", 1))
            .await
            .expect("the store works after a panic");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn open_runs_off_the_runtime_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = AsyncStore::open(dir.path().join("sub/hub.sqlite3"))
            .await
            .unwrap();
        assert!(store.run(|s| s.live_calls()).await.unwrap().is_empty());
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            AsyncStore::open(file.join("sub/hub.sqlite3")).await,
            Err(StoreError::CreateDir { .. })
        ));
    }
}
