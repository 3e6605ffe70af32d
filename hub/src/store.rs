//! SQLite persistence: principals (hashed credentials, display names), calls and
//! invitations; the contacts table is `crate::contacts`'.
//!
//! One connection behind a `std::sync::Mutex`; every query is short and the lock is
//! never held across an `.await`. Timestamps are ms since the Unix epoch.
//!
//! [`Store`]'s methods block (the lock, disk I/O, SQLite's busy wait), so only
//! synchronous code calls them directly (the admin commands, tests); async code holds
//! an [`AsyncStore`], which runs every call on tokio's blocking pool.

mod blocking;

use std::collections::HashMap;
use std::panic::Location;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use callbox_protocol::CallStatus;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::auth::{Principal, PrincipalKind};
use crate::model::{Call, Invitation, from_wire_name, wire_name};

pub use blocking::AsyncStore;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database directory could not be created.
    #[error("cannot create database directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored value is not one this version understands.
    #[error("corrupt row in `{table}`: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// `add-device` / `add-user` for an identity that exists with the other kind.
    #[error("identity `{identity}` already exists as a {existing}")]
    KindMismatch {
        /// The identity.
        identity: String,
        /// Its current kind.
        existing: &'static str,
    },
    /// A call on tokio's blocking pool ([`AsyncStore`]) panicked, or never ran because
    /// the runtime was shutting down.
    #[error("database call from {caller} did not finish: {source}")]
    Blocking {
        /// Where the call was made.
        caller: &'static Location<'static>,
        /// The panic or cancellation.
        source: tokio::task::JoinError,
    },
}

/// 2: contacts, `principals.display_name`, `invitations.trusted` (added to a version 1
/// database by [`migrate`]). 3: sign-in links and browser sessions (`crate::sessions`).
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS principals (
    identity          TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    credential_sha256 TEXT NOT NULL UNIQUE,
    created_at_ms     INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    id               TEXT PRIMARY KEY,
    room_name        TEXT NOT NULL,
    call_type        TEXT NOT NULL,
    inviter          TEXT NOT NULL,
    status           TEXT NOT NULL,
    end_reason       TEXT,
    created_at_ms    INTEGER NOT NULL,
    answered_at_ms   INTEGER,
    ended_at_ms      INTEGER,
    ring_deadline_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_inviter ON calls (inviter, created_at_ms);
CREATE INDEX IF NOT EXISTS calls_by_status ON calls (status);
CREATE INDEX IF NOT EXISTS calls_by_room ON calls (room_name);
CREATE TABLE IF NOT EXISTS invitations (
    id              TEXT PRIMARY KEY,
    call_id         TEXT NOT NULL REFERENCES calls (id),
    position        INTEGER NOT NULL,
    invitee         TEXT NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT,
    responded_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS invitations_by_call ON invitations (call_id, position);
CREATE INDEX IF NOT EXISTS invitations_by_invitee ON invitations (invitee, status);
";

/// Adds the columns of later schema versions that `CREATE TABLE IF NOT EXISTS` does
/// not add to an existing table.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    for (table, column, declaration) in [
        ("principals", "display_name", "TEXT"),
        ("invitations", "trusted", "INTEGER NOT NULL DEFAULT 0"),
    ] {
        let present = conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
            ))?
            .exists([column])?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {declaration}"
            ))?;
        }
    }
    Ok(())
}

/// Statuses of calls that are not over yet, as SQL literals.
const LIVE_STATUSES: &str = "('initiating', 'ringing', 'connected')";

/// The hub database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database file and its schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::contacts::SCHEMA)?;
        conn.execute_batch(crate::sessions::SCHEMA)?;
        migrate(&conn)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt {
                table: "schema",
                detail: format!(
                    "database schema version {version} is newer than this hub ({SCHEMA_VERSION})"
                ),
            });
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written row (transactions
        // roll back on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in one immediate transaction, committing when it returns `Ok`.
    pub fn transact<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Creates a principal or rotates its credential hash. Fails if the identity exists
    /// with the other kind.
    pub fn upsert_principal(
        &self,
        identity: &str,
        kind: PrincipalKind,
        credential_sha256: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.transact(|c| {
            let existing: Option<String> = c
                .query_row("SELECT kind FROM principals WHERE identity = ?1", [identity], |r| {
                    r.get(0)
                })
                .optional()?;
            match existing {
                Some(k) if k != kind.as_str() => Err(StoreError::KindMismatch {
                    identity: identity.to_owned(),
                    existing: PrincipalKind::parse(&k).map_or("principal", PrincipalKind::as_str),
                }),
                Some(_) => {
                    c.execute(
                        "UPDATE principals SET credential_sha256 = ?2, updated_at_ms = ?3 WHERE identity = ?1",
                        params![identity, credential_sha256, now_ms],
                    )?;
                    Ok(())
                }
                None => {
                    c.execute(
                        "INSERT INTO principals (identity, kind, credential_sha256, created_at_ms, updated_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?4)",
                        params![identity, kind.as_str(), credential_sha256, now_ms],
                    )?;
                    Ok(())
                }
            }
        })
    }

    /// The principal whose credential hashes to `credential_sha256`.
    pub fn principal_by_credential_hash(
        &self,
        credential_sha256: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let conn = self.lock();
        let row: Option<(String, String)> = conn
            .query_row(
                "SELECT identity, kind FROM principals WHERE credential_sha256 = ?1",
                [credential_sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(identity, kind)| {
            let kind = PrincipalKind::parse(&kind)
                .ok_or_else(|| corrupt("principals", format!("kind `{kind}`")))?;
            Ok(Principal { identity, kind })
        })
        .transpose()
    }

    /// Kinds of the given identities; unknown identities are absent from the map.
    pub fn principal_kinds(
        &self,
        identities: &[&str],
    ) -> Result<HashMap<String, PrincipalKind>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT kind FROM principals WHERE identity = ?1")?;
        let mut out = HashMap::new();
        for id in identities {
            let kind: Option<String> = stmt.query_row([id], |r| r.get(0)).optional()?;
            if let Some(kind) = kind {
                let kind = PrincipalKind::parse(&kind)
                    .ok_or_else(|| corrupt("principals", format!("kind `{kind}`")))?;
                out.insert((*id).to_owned(), kind);
            }
        }
        Ok(out)
    }

    /// Number of calls per status (wire name), for `/metrics`.
    pub fn call_status_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT status, COUNT(*) FROM calls GROUP BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Ringing calls in which `identity` has a pending invitation (to re-send on connect).
    pub fn ringing_calls_inviting(&self, identity: &str) -> Result<Vec<Call>, StoreError> {
        self.calls_where(
            "c.status = 'ringing' AND c.id IN
               (SELECT call_id FROM invitations WHERE invitee = ?1 AND status = 'pending')
             ORDER BY c.created_at_ms, c.id",
            params![identity],
        )
    }

    /// Ringing or connected calls `identity` places or is invited to, newest first.
    pub fn active_calls_of(&self, identity: &str) -> Result<Vec<Call>, StoreError> {
        let calls = self.calls_where(
            "c.status IN ('ringing', 'connected') AND (c.inviter = ?1 OR c.id IN
               (SELECT call_id FROM invitations WHERE invitee = ?1))
             ORDER BY c.created_at_ms DESC, c.id DESC",
            params![identity],
        )?;
        Ok(calls
            .into_iter()
            .filter(|c| c.takes_part(identity))
            .collect())
    }

    /// Every call `identity` placed or was invited to, newest first, paged.
    pub fn history_of(
        &self,
        identity: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Call>, StoreError> {
        self.calls_where(
            "(c.inviter = ?1 OR c.id IN (SELECT call_id FROM invitations WHERE invitee = ?1))
             ORDER BY c.created_at_ms DESC, c.id DESC LIMIT ?2 OFFSET ?3",
            params![identity, limit, offset],
        )
    }

    /// Calls that are not over yet (start-up recovery: ring timers, stale set-ups).
    pub fn live_calls(&self) -> Result<Vec<Call>, StoreError> {
        self.calls_where(
            &format!("c.status IN {LIVE_STATUSES} ORDER BY c.created_at_ms"),
            [],
        )
    }

    fn calls_where(&self, clause: &str, p: impl rusqlite::Params) -> Result<Vec<Call>, StoreError> {
        let conn = self.lock();
        let sql = format!("SELECT {CALL_COLUMNS} FROM calls c WHERE {clause}");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt
            .query_map(p, call_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        rows.into_iter()
            .map(|row| {
                let mut call = row?;
                call.invitations = load_invitations(&conn, &call.id)?;
                Ok(call)
            })
            .collect()
    }
}

const CALL_COLUMNS: &str = "c.id, c.room_name, c.call_type, c.inviter, c.status, c.end_reason,
     c.created_at_ms, c.answered_at_ms, c.ended_at_ms, c.ring_deadline_ms";

fn corrupt(table: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { table, detail }
}

/// Decodes one `calls` row (invitations still empty). The inner result carries
/// corrupt-value errors, the outer one SQLite errors.
fn call_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Call, StoreError>> {
    let call_type: String = r.get(2)?;
    let status: String = r.get(4)?;
    let id: String = r.get(0)?;
    let Some(call_type) = from_wire_name(&call_type) else {
        return Ok(Err(corrupt(
            "calls",
            format!("call `{id}` has call_type `{call_type}`"),
        )));
    };
    let Some(status) = CallStatus::parse(&status) else {
        return Ok(Err(corrupt(
            "calls",
            format!("call `{id}` has status `{status}`"),
        )));
    };
    Ok(Ok(Call {
        id,
        room_name: r.get(1)?,
        call_type,
        inviter: r.get(3)?,
        status,
        end_reason: r.get(5)?,
        created_at_ms: r.get(6)?,
        answered_at_ms: r.get(7)?,
        ended_at_ms: r.get(8)?,
        ring_deadline_ms: r.get(9)?,
        invitations: Vec::new(),
    }))
}

fn load_invitations(conn: &Connection, call_id: &str) -> Result<Vec<Invitation>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, invitee, status, reason, responded_at_ms, trusted FROM invitations
         WHERE call_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([call_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, bool>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, identity, status, reason, responded_at_ms, trusted) = row?;
        let status = from_wire_name(&status).ok_or_else(|| {
            corrupt(
                "invitations",
                format!("invitation `{id}` has status `{status}`"),
            )
        })?;
        let reason = match reason {
            None => None,
            Some(r) => Some(from_wire_name(&r).ok_or_else(|| {
                corrupt("invitations", format!("invitation `{id}` has reason `{r}`"))
            })?),
        };
        out.push(Invitation {
            id,
            identity,
            status,
            reason,
            responded_at_ms,
            trusted,
        });
    }
    Ok(out)
}

/// Loads one call with its invitations.
pub fn load_call(conn: &Connection, call_id: &str) -> Result<Option<Call>, StoreError> {
    let sql = format!("SELECT {CALL_COLUMNS} FROM calls c WHERE c.id = ?1");
    let row = conn.query_row(&sql, [call_id], call_from_row).optional()?;
    match row {
        None => Ok(None),
        Some(call) => {
            let mut call = call?;
            call.invitations = load_invitations(conn, &call.id)?;
            Ok(Some(call))
        }
    }
}

/// Loads the call an invitation belongs to.
pub fn load_call_by_invitation(
    conn: &Connection,
    invitation_id: &str,
) -> Result<Option<Call>, StoreError> {
    let call_id: Option<String> = conn
        .query_row(
            "SELECT call_id FROM invitations WHERE id = ?1",
            [invitation_id],
            |r| r.get(0),
        )
        .optional()?;
    match call_id {
        Some(id) => load_call(conn, &id),
        None => Ok(None),
    }
}

/// Loads the live (not final) call using a LiveKit room, if any.
pub fn load_live_call_by_room(conn: &Connection, room: &str) -> Result<Option<Call>, StoreError> {
    let call_id: Option<String> = conn
        .query_row(
            &format!(
                "SELECT id FROM calls WHERE room_name = ?1 AND status IN {LIVE_STATUSES}
                 ORDER BY created_at_ms DESC LIMIT 1"
            ),
            [room],
            |r| r.get(0),
        )
        .optional()?;
    match call_id {
        Some(id) => load_call(conn, &id),
        None => Ok(None),
    }
}

/// Inserts a new call and its invitations.
pub fn insert_call(conn: &Connection, call: &Call) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO calls (id, room_name, call_type, inviter, status, end_reason, created_at_ms,
                            answered_at_ms, ended_at_ms, ring_deadline_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            call.id,
            call.room_name,
            wire_name(&call.call_type),
            call.inviter,
            call.status.as_str(),
            call.end_reason,
            call.created_at_ms,
            call.answered_at_ms,
            call.ended_at_ms,
            call.ring_deadline_ms
        ],
    )?;
    for (pos, inv) in call.invitations.iter().enumerate() {
        conn.execute(
            "INSERT INTO invitations (id, call_id, position, invitee, status, reason, responded_at_ms,
                                      trusted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                inv.id,
                call.id,
                pos as i64,
                inv.identity,
                wire_name(&inv.status),
                inv.reason.map(|r| wire_name(&r)),
                inv.responded_at_ms,
                inv.trusted
            ],
        )?;
    }
    Ok(())
}

/// Writes back the mutable parts of a call and its invitations.
pub fn save_call(conn: &Connection, call: &Call) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE calls SET status = ?2, end_reason = ?3, answered_at_ms = ?4, ended_at_ms = ?5,
                          ring_deadline_ms = ?6
         WHERE id = ?1",
        params![
            call.id,
            call.status.as_str(),
            call.end_reason,
            call.answered_at_ms,
            call.ended_at_ms,
            call.ring_deadline_ms
        ],
    )?;
    for inv in &call.invitations {
        conn.execute(
            "UPDATE invitations SET status = ?2, reason = ?3, responded_at_ms = ?4 WHERE id = ?1",
            params![
                inv.id,
                wire_name(&inv.status),
                inv.reason.map(|r| wire_name(&r)),
                inv.responded_at_ms
            ],
        )?;
    }
    Ok(())
}

/// True when a live call already uses `room`.
pub fn room_in_use(conn: &Connection, room: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT 1 FROM calls WHERE room_name = ?1 AND status IN {LIVE_STATUSES} LIMIT 1"
            ),
            [room],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use callbox_protocol::{CallType, InvitationStatus};

    #[test]
    fn calls_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/hub.sqlite3");
        let store = Store::open(&path).unwrap();
        store
            .upsert_principal("alice", PrincipalKind::User, "h1", 1)
            .unwrap();
        store
            .upsert_principal("box1", PrincipalKind::Device, "h2", 1)
            .unwrap();
        let mut call = Call::new(
            "c1".into(),
            "r1".into(),
            CallType::Audio,
            "alice".into(),
            vec![("i1".into(), "box1".into())],
            10,
            70,
        );
        store.transact(|c| insert_call(c, &call)).unwrap();
        call.start_ringing(70);
        call.accept("i1", "box1", 20).unwrap();
        store.transact(|c| save_call(c, &call)).unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        let loaded = store.transact(|c| load_call(c, "c1")).unwrap().unwrap();
        assert_eq!(loaded, call);
        assert_eq!(loaded.invitations[0].status, InvitationStatus::Accepted);
        let by_inv = store
            .transact(|c| load_call_by_invitation(c, "i1"))
            .unwrap()
            .unwrap();
        assert_eq!(by_inv.id, "c1");
        assert!(store.transact(|c| room_in_use(c, "r1")).unwrap());
        assert_eq!(store.active_calls_of("box1").unwrap().len(), 1);
        assert_eq!(store.history_of("alice", 10, 0).unwrap().len(), 1);
        assert_eq!(store.history_of("alice", 10, 1).unwrap().len(), 0);
        assert_eq!(store.history_of("nobody", 10, 0).unwrap().len(), 0);
        assert_eq!(
            store.call_status_counts().unwrap().get("connected"),
            Some(&1)
        );
    }

    /// A version 1 database (before contacts) opens, gains the new columns and keeps
    /// its principals.
    #[test]
    fn a_version_1_database_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO principals VALUES ('box1', 'device', 'h', 1, 1)",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert!(store.principal_by_credential_hash("h").unwrap().is_some());
        crate::contacts::set_display_name(&store, "box1", Some("Hallway")).unwrap();
        let version: i64 = store
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn principals_rotate_but_keep_their_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.sqlite3")).unwrap();
        store
            .upsert_principal("box1", PrincipalKind::Device, "old", 1)
            .unwrap();
        store
            .upsert_principal("box1", PrincipalKind::Device, "new", 2)
            .unwrap();
        assert_eq!(store.principal_by_credential_hash("old").unwrap(), None);
        assert_eq!(
            store.principal_by_credential_hash("new").unwrap(),
            Some(Principal {
                identity: "box1".into(),
                kind: PrincipalKind::Device
            })
        );
        assert!(matches!(
            store.upsert_principal("box1", PrincipalKind::User, "x", 3),
            Err(StoreError::KindMismatch { .. })
        ));
        let kinds = store.principal_kinds(&["box1", "ghost"]).unwrap();
        assert_eq!(kinds.len(), 1);
    }
}
