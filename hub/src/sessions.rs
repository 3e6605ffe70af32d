//! Browser sign-in for the caller app: one-time sign-in links an admin makes with
//! `callbox-hub invite-link --user grandma`, and the sessions they open.
//!
//! A link carries a random one-time code; redeeming it (`POST /api/signin`) deletes it
//! and issues a fresh session credential for that user, so grandma never types the
//! 64-character credential and the user's own credential is not rotated (her other
//! devices stay signed in). A session credential authenticates like the user's own
//! (`Authorization: Bearer`, `?access_token=` on `/ws`) until `POST /api/signout`
//! forgets it. Only SHA-256 hashes of codes and credentials are stored.

use rusqlite::{OptionalExtension, params};

use crate::auth::{Principal, PrincipalKind, generate_credential, hash_credential};
use crate::store::{Store, StoreError};

/// How long a sign-in link works by default: 7 days, in hours.
pub const DEFAULT_LINK_VALID_HOURS: u32 = 7 * 24;

/// The longest a sign-in link may be valid: 30 days, in hours.
pub const MAX_LINK_VALID_HOURS: u32 = 30 * 24;

/// Why a link cannot be made or redeemed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No user has this identity (`add-user` first). Boxes sign in with their
    /// credential file, never with a link.
    #[error("no user `{0}` (create it with add-user first; links are for users, not boxes)")]
    UnknownUser(String),
    /// `--valid-hours` outside 1..=[`MAX_LINK_VALID_HOURS`].
    #[error("a link is valid for 1 to {MAX_LINK_VALID_HOURS} hours, not {0}")]
    BadValidity(u32),
    /// The code was never issued, was used already or has expired.
    #[error("this sign-in link was used already or has expired; ask for a new one")]
    InvalidLink,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `SCHEMA`'s part for sign-in links and browser sessions (applied by [`Store::open`]).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS signin_links (
    code_sha256   TEXT PRIMARY KEY,
    identity      TEXT NOT NULL REFERENCES principals (identity) ON DELETE CASCADE,
    expires_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    credential_sha256 TEXT PRIMARY KEY,
    identity          TEXT NOT NULL REFERENCES principals (identity) ON DELETE CASCADE,
    created_at_ms     INTEGER NOT NULL
);
";

/// Makes a one-time sign-in code for the user `identity`, valid for `valid_hours`
/// from `now_ms`; returns the code (64 hex characters; only its hash is stored).
///
/// Errors: [`SessionError::UnknownUser`] (also for a device),
/// [`SessionError::BadValidity`].
pub fn create_link(
    store: &Store,
    identity: &str,
    valid_hours: u32,
    now_ms: i64,
) -> Result<String, SessionError> {
    if !(1..=MAX_LINK_VALID_HOURS).contains(&valid_hours) {
        return Err(SessionError::BadValidity(valid_hours));
    }
    let code = generate_credential();
    store.transact(|c| {
        let kind: Option<String> = c
            .query_row(
                "SELECT kind FROM principals WHERE identity = ?1",
                [identity],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::from)?;
        if kind.as_deref() != Some(PrincipalKind::User.as_str()) {
            return Err(SessionError::UnknownUser(identity.to_owned()));
        }
        // Expired links of anyone are of no use; drop them while here.
        c.execute(
            "DELETE FROM signin_links WHERE expires_at_ms <= ?1",
            [now_ms],
        )
        .map_err(StoreError::from)?;
        c.execute(
            "INSERT INTO signin_links (code_sha256, identity, expires_at_ms) VALUES (?1, ?2, ?3)",
            params![
                hash_credential(&code),
                identity,
                now_ms + i64::from(valid_hours) * 3_600_000
            ],
        )
        .map_err(StoreError::from)?;
        Ok(())
    })?;
    Ok(code)
}

/// Redeems a sign-in code: deletes it and opens a session. Returns the user's
/// identity and the session's new credential (64 hex characters).
///
/// Errors: [`SessionError::InvalidLink`] for an unknown, used or expired code.
pub fn redeem(store: &Store, code: &str, now_ms: i64) -> Result<(String, String), SessionError> {
    let credential = generate_credential();
    store
        .transact(|c| {
            let code_hash = hash_credential(code.trim());
            let row: Option<(String, i64)> = c
                .query_row(
                    "SELECT identity, expires_at_ms FROM signin_links WHERE code_sha256 = ?1",
                    [&code_hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(StoreError::from)?;
            c.execute(
                "DELETE FROM signin_links WHERE code_sha256 = ?1",
                [&code_hash],
            )
            .map_err(StoreError::from)?;
            let identity = match row {
                Some((identity, expires)) if expires > now_ms => identity,
                _ => return Err(SessionError::InvalidLink),
            };
            c.execute(
            "INSERT INTO sessions (credential_sha256, identity, created_at_ms) VALUES (?1, ?2, ?3)",
            params![hash_credential(&credential), identity, now_ms],
        )
        .map_err(StoreError::from)?;
            Ok(identity)
        })
        .map(|identity| (identity, credential))
}

/// The principal a session credential (by its hash) belongs to.
pub fn principal(store: &Store, credential_sha256: &str) -> Result<Option<Principal>, StoreError> {
    store.transact(|c| {
        let row: Option<(String, String)> = c
            .query_row(
                "SELECT p.identity, p.kind FROM sessions s
                 JOIN principals p ON p.identity = s.identity
                 WHERE s.credential_sha256 = ?1",
                [credential_sha256],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(identity, kind)| {
            PrincipalKind::parse(&kind).map(|kind| Principal { identity, kind })
        }))
    })
}

/// Forgets a session (sign-out); false when the credential was not a session's (a
/// principal's own credential stays valid).
pub fn forget(store: &Store, credential_sha256: &str) -> Result<bool, StoreError> {
    store.transact(|c| {
        Ok(c.execute(
            "DELETE FROM sessions WHERE credential_sha256 = ?1",
            [credential_sha256],
        )? > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.sqlite3")).unwrap();
        store
            .upsert_principal("grandma", PrincipalKind::User, &hash_credential("g"), 0)
            .unwrap();
        store
            .upsert_principal("box1", PrincipalKind::Device, &hash_credential("b"), 0)
            .unwrap();
        (dir, store)
    }

    #[test]
    fn a_link_signs_in_once_and_the_session_ends_at_sign_out() {
        let (_dir, store) = store();
        let code = create_link(&store, "grandma", 1, 1_000).unwrap();
        let (who, credential) = redeem(&store, &code, 2_000).unwrap();
        assert_eq!(who, "grandma");
        let p = principal(&store, &hash_credential(&credential))
            .unwrap()
            .expect("the session authenticates");
        assert_eq!(
            (p.identity.as_str(), p.kind),
            ("grandma", PrincipalKind::User)
        );
        assert!(matches!(
            redeem(&store, &code, 2_001),
            Err(SessionError::InvalidLink)
        ));
        // Her own credential was not rotated.
        assert!(
            store
                .principal_by_credential_hash(&hash_credential("g"))
                .unwrap()
                .is_some()
        );
        assert!(forget(&store, &hash_credential(&credential)).unwrap());
        assert!(
            principal(&store, &hash_credential(&credential))
                .unwrap()
                .is_none()
        );
        assert!(!forget(&store, &hash_credential("g")).unwrap());
    }

    #[test]
    fn links_expire_and_are_only_for_users() {
        let (_dir, store) = store();
        let code = create_link(&store, "grandma", 1, 0).unwrap();
        assert!(matches!(
            redeem(&store, &code, 3_600_000),
            Err(SessionError::InvalidLink)
        ));
        assert!(matches!(
            redeem(&store, "not-a-code", 0),
            Err(SessionError::InvalidLink)
        ));
        for who in ["box1", "nobody"] {
            let e = create_link(&store, who, 1, 0).unwrap_err();
            assert!(e.to_string().contains(who), "{e}");
        }
        assert!(matches!(
            create_link(&store, "grandma", 0, 0),
            Err(SessionError::BadValidity(0))
        ));
    }
}
