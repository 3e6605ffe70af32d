//! Principals (devices and users), their bearer credentials and identity rules.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Why an identity or credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The identity is empty, longer than 64 characters or has a character outside
    /// `[A-Za-z0-9_.-]`.
    #[error("invalid identity `{0}`: use 1-64 characters of A-Z a-z 0-9 _ . -")]
    InvalidIdentity(String),
    /// No usable `Authorization: Bearer` header (or `access_token` query for `/ws`).
    #[error("missing bearer credential")]
    MissingCredential,
    /// The credential matches no principal.
    #[error("unknown credential")]
    UnknownCredential,
}

/// Longest identity accepted, in characters.
pub const MAX_IDENTITY_LEN: usize = 64;

/// Whether a principal is a box (joins LiveKit as two participants) or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A callbox appliance: publisher + hidden subscriber tokens.
    Device,
    /// A person with an SDK client or browser: one publish+subscribe token.
    User,
}

impl PrincipalKind {
    /// Name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Device => "device",
            Self::User => "user",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "device" => Some(Self::Device),
            "user" => Some(Self::User),
            _ => None,
        }
    }
}

/// An authenticated caller of the hub API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Identity, e.g. `box1` or `alice`.
    pub identity: String,
    /// Device or user.
    pub kind: PrincipalKind,
}

/// Checks the identity rules: 1-64 characters of `[A-Za-z0-9_.-]`.
///
/// `~` is deliberately excluded: the hub uses `<id>~rx` for a device's LiveKit
/// subscriber identity and maps LiveKit identities back by stripping `~…`.
pub fn validate_identity(identity: &str) -> Result<(), AuthError> {
    let ok = !identity.is_empty()
        && identity.len() <= MAX_IDENTITY_LEN
        && identity
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidIdentity(
            identity.chars().take(80).collect(),
        ))
    }
}

/// A fresh bearer credential: 32 random bytes, hex-encoded (64 characters).
pub fn generate_credential() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored form of a credential: lowercase hex SHA-256 of its UTF-8 bytes.
///
/// Credentials are 256-bit random values, so a fast hash is enough: there is nothing to
/// brute-force.
pub fn hash_credential(credential: &str) -> String {
    hex::encode(Sha256::digest(credential.as_bytes()))
}

/// The principal a LiveKit participant identity belongs to: `box1~rx` → `box1`.
pub fn principal_of_livekit_identity(identity: &str) -> &str {
    identity.split_once('~').map_or(identity, |(p, _)| p)
}

/// Extracts the credential from an `Authorization` header value (`Bearer <cred>`,
/// scheme case-insensitive).
pub fn bearer_from_header(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let cred = rest.trim();
    (!cred.is_empty()).then_some(cred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_follow_the_rules() {
        for ok in ["box1", "alice", "A.b-c_d", &"x".repeat(64)] {
            assert_eq!(validate_identity(ok), Ok(()), "{ok}");
        }
        for bad in ["", "box 1", "box~rx", "é", "a/b", &"x".repeat(65), "a\n"] {
            assert!(validate_identity(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_random_and_hashed_with_sha256() {
        let a = generate_credential();
        let b = generate_credential();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        // Known SHA-256 test vector.
        assert_eq!(
            hash_credential("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_credential(&a), a);
        assert_eq!(hash_credential(&a), hash_credential(&a));
    }

    #[test]
    fn livekit_identities_map_to_principals() {
        assert_eq!(principal_of_livekit_identity("box1~rx"), "box1");
        assert_eq!(principal_of_livekit_identity("box1"), "box1");
        assert_eq!(principal_of_livekit_identity("alice~a~b"), "alice");
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_from_header("Bearer abc"), Some("abc"));
        assert_eq!(bearer_from_header("bearer  abc "), Some("abc"));
        assert_eq!(bearer_from_header("Basic abc"), None);
        assert_eq!(bearer_from_header("Bearer "), None);
        assert_eq!(bearer_from_header("abc"), None);
    }
}
