//! Who may call whom. Every callee (a box or a user) has a list of the principals
//! allowed to call it; an invitation from anyone else is refused (403) and never rings.
//! An entry may be `trusted`: the invitation says so, and a box with the default
//! `answer = "auto"` answers only trusted callers by itself (it rings for the others).
//! Also principals' display names, and the contact list a caller sees
//! (`GET /api/contacts`: whom it may call, with presence).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::auth::{PrincipalKind, validate_identity};
use crate::store::{Store, StoreError};

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// A contacts change that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    /// No principal has this identity (`add-device` / `add-user` first).
    #[error("no device or user `{0}` (create it with add-device or add-user first)")]
    UnknownPrincipal(String),
    /// A principal cannot be its own contact.
    #[error("`{0}` cannot be allowed to call itself")]
    SelfContact(String),
    /// A display name that is empty, too long or has control characters.
    #[error("display name must be 1-{MAX_DISPLAY_NAME_CHARS} printable characters")]
    BadDisplayName,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `SCHEMA`'s part for contacts (applied by [`Store::open`]).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS contacts (
    callee        TEXT NOT NULL REFERENCES principals (identity),
    caller        TEXT NOT NULL REFERENCES principals (identity),
    trusted       INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (callee, caller)
);
CREATE INDEX IF NOT EXISTS contacts_by_caller ON contacts (caller);
";

/// Someone a caller may call, as `GET /api/contacts` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// The callee's identity (what to put in `invitees`).
    pub identity: String,
    /// Its display name, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `device` or `user`.
    pub kind: &'static str,
    /// `online` (a WebSocket is connected), `busy` (in a call) or `offline`.
    pub presence: &'static str,
}

fn known(c: &rusqlite::Connection, identity: &str) -> Result<bool, StoreError> {
    Ok(c.query_row(
        "SELECT 1 FROM principals WHERE identity = ?1",
        [identity],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

/// Allows `caller` to call `callee` (`trusted`: the callee may answer by itself).
/// Granting again updates `trusted`.
///
/// Errors: [`ContactError::UnknownPrincipal`], [`ContactError::SelfContact`].
pub fn allow(
    store: &Store,
    callee: &str,
    caller: &str,
    trusted: bool,
    now_ms: i64,
) -> Result<(), ContactError> {
    if callee == caller {
        return Err(ContactError::SelfContact(callee.to_owned()));
    }
    store.transact(|c| {
        for who in [callee, caller] {
            if validate_identity(who).is_err() || !known(c, who)? {
                return Err(ContactError::UnknownPrincipal(who.to_owned()));
            }
        }
        c.execute(
            "INSERT INTO contacts (callee, caller, trusted, created_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (callee, caller) DO UPDATE SET trusted = excluded.trusted",
            params![callee, caller, trusted, now_ms],
        )
        .map_err(StoreError::from)?;
        Ok(())
    })
}

/// Takes `caller` off `callee`'s list; false if it was not on it.
pub fn revoke(store: &Store, callee: &str, caller: &str) -> Result<bool, ContactError> {
    store.transact(|c| {
        Ok(c.execute(
            "DELETE FROM contacts WHERE callee = ?1 AND caller = ?2",
            params![callee, caller],
        )
        .map_err(StoreError::from)?
            > 0)
    })
}

/// Whether `caller` may call `callee`: `Some(trusted)`, or `None` (not allowed).
pub fn permission(store: &Store, callee: &str, caller: &str) -> Result<Option<bool>, StoreError> {
    store.transact(|c| {
        Ok(c.query_row(
            "SELECT trusted FROM contacts WHERE callee = ?1 AND caller = ?2",
            params![callee, caller],
            |r| r.get::<_, bool>(0),
        )
        .optional()?)
    })
}

/// Sets (or with `None` clears) the display name of `identity`.
///
/// Errors: [`ContactError::UnknownPrincipal`], [`ContactError::BadDisplayName`].
pub fn set_display_name(
    store: &Store,
    identity: &str,
    name: Option<&str>,
) -> Result<(), ContactError> {
    let name = name.map(str::trim);
    if let Some(n) = name
        && (n.is_empty()
            || n.chars().count() > MAX_DISPLAY_NAME_CHARS
            || n.chars().any(char::is_control))
    {
        return Err(ContactError::BadDisplayName);
    }
    store.transact(|c| {
        let changed = c
            .execute(
                "UPDATE principals SET display_name = ?2 WHERE identity = ?1",
                params![identity, name],
            )
            .map_err(StoreError::from)?;
        if changed == 0 {
            return Err(ContactError::UnknownPrincipal(identity.to_owned()));
        }
        Ok(())
    })
}

/// The display name of `identity`, if it has one.
pub fn display_name(store: &Store, identity: &str) -> Result<Option<String>, StoreError> {
    store.transact(|c| {
        Ok(c.query_row(
            "SELECT display_name FROM principals WHERE identity = ?1",
            [identity],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
    })
}

/// Whom `caller` may call, by identity, without presence (`presence` is `offline`;
/// the service fills it in).
pub fn callable_by(store: &Store, caller: &str) -> Result<Vec<Contact>, StoreError> {
    store.transact(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT p.identity, p.display_name, p.kind FROM contacts k
             JOIN principals p ON p.identity = k.callee
             WHERE k.caller = ?1 ORDER BY COALESCE(p.display_name, p.identity)",
        )?;
        let rows = stmt.query_map([caller], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (identity, display_name, kind) = row?;
            let kind = PrincipalKind::parse(&kind).map_or("user", PrincipalKind::as_str);
            out.push(Contact {
                identity,
                display_name,
                kind,
                presence: "offline",
            });
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("hub.sqlite3")).unwrap();
        for (who, kind) in [
            ("hallway-box", PrincipalKind::Device),
            ("grandma", PrincipalKind::User),
            ("stranger", PrincipalKind::User),
        ] {
            store.upsert_principal(who, kind, who, 1).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn only_allowed_callers_may_call_and_trust_is_per_contact() {
        let (_d, s) = store();
        assert_eq!(permission(&s, "hallway-box", "grandma").unwrap(), None);
        allow(&s, "hallway-box", "grandma", false, 2).unwrap();
        assert_eq!(
            permission(&s, "hallway-box", "grandma").unwrap(),
            Some(false)
        );
        allow(&s, "hallway-box", "grandma", true, 3).unwrap();
        assert_eq!(
            permission(&s, "hallway-box", "grandma").unwrap(),
            Some(true)
        );
        assert_eq!(
            permission(&s, "grandma", "hallway-box").unwrap(),
            None,
            "one way only"
        );
        assert_eq!(permission(&s, "hallway-box", "stranger").unwrap(), None);
        assert!(revoke(&s, "hallway-box", "grandma").unwrap());
        assert!(!revoke(&s, "hallway-box", "grandma").unwrap());
        assert_eq!(permission(&s, "hallway-box", "grandma").unwrap(), None);
    }

    #[test]
    fn bad_grants_say_what_is_wrong() {
        let (_d, s) = store();
        assert!(matches!(
            allow(&s, "hallway-box", "nobody", false, 1),
            Err(ContactError::UnknownPrincipal(who)) if who == "nobody"
        ));
        assert!(matches!(
            allow(&s, "grandma", "grandma", false, 1),
            Err(ContactError::SelfContact(_))
        ));
        assert!(matches!(
            set_display_name(&s, "grandma", Some("")),
            Err(ContactError::BadDisplayName)
        ));
        assert!(matches!(
            set_display_name(&s, "nobody", Some("X")),
            Err(ContactError::UnknownPrincipal(_))
        ));
    }

    #[test]
    fn a_caller_sees_whom_it_may_call_with_display_names() {
        let (_d, s) = store();
        allow(&s, "hallway-box", "grandma", true, 1).unwrap();
        set_display_name(&s, "hallway-box", Some("Hallway")).unwrap();
        assert_eq!(
            display_name(&s, "hallway-box").unwrap().as_deref(),
            Some("Hallway")
        );
        let list = callable_by(&s, "grandma").unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].identity, "hallway-box");
        assert_eq!(list[0].display_name.as_deref(), Some("Hallway"));
        assert_eq!(list[0].kind, "device");
        assert!(callable_by(&s, "stranger").unwrap().is_empty());
        set_display_name(&s, "hallway-box", None).unwrap();
        assert_eq!(display_name(&s, "hallway-box").unwrap(), None);
    }
}
