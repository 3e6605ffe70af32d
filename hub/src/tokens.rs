//! LiveKit access tokens the hub mints for call participants ([`JoinInfo`]).
//!
//! Users get one publish+subscribe token. Devices get two, because the GStreamer LiveKit
//! elements join as two participants: a publisher (`<id>`, `canSubscribe: false`, or
//! LiveKit drops the sink after ~30 s) and a hidden subscriber (`<id>~rx`).

use std::time::Duration;

use callbox_protocol::{JoinInfo, ParticipantToken};
use livekit_api::access_token::{AccessToken, AccessTokenError, VideoGrants};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::PrincipalKind;
use crate::config::LiveKitConfig;

/// Suffix of a device's subscriber identity (`box1` → `box1~rx`).
pub const SUBSCRIBER_SUFFIX: &str = "~rx";

/// A token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// livekit-api refused the claims or the key pair.
    #[error("cannot sign LiveKit token for `{identity}`: {source}")]
    Sign {
        /// Participant identity.
        identity: String,
        /// The signing error.
        source: AccessTokenError,
    },
}

/// Mints room-scoped LiveKit tokens.
#[derive(Debug, Clone)]
pub struct TokenMinter {
    url: String,
    api_key: String,
    api_secret: SecretString,
    ttl: Duration,
}

impl TokenMinter {
    /// A minter for the configured LiveKit server; tokens live `ttl`.
    pub fn new(livekit: &LiveKitConfig, ttl: Duration) -> Self {
        Self {
            url: livekit.url.clone(),
            api_key: livekit.api_key.clone(),
            api_secret: livekit.api_secret.clone(),
            ttl,
        }
    }

    /// Everything `identity` needs to join `room` for call `call_id`.
    pub fn join_info(
        &self,
        call_id: &str,
        room: &str,
        identity: &str,
        kind: PrincipalKind,
    ) -> Result<JoinInfo, TokenError> {
        let mut info = JoinInfo {
            call_id: call_id.to_owned(),
            room_name: room.to_owned(),
            url: self.url.clone(),
            token: None,
            publisher: None,
            subscriber: None,
        };
        match kind {
            PrincipalKind::User => {
                let grants = VideoGrants {
                    room_join: true,
                    room: room.to_owned(),
                    can_publish: true,
                    can_subscribe: true,
                    can_publish_data: true,
                    ..Default::default()
                };
                info.token = Some(self.sign(identity, grants)?);
            }
            PrincipalKind::Device => {
                let publisher = VideoGrants {
                    room_join: true,
                    room: room.to_owned(),
                    can_publish: true,
                    can_subscribe: false,
                    can_publish_data: true,
                    ..Default::default()
                };
                let sub_identity = format!("{identity}{SUBSCRIBER_SUFFIX}");
                let subscriber = VideoGrants {
                    room_join: true,
                    room: room.to_owned(),
                    can_publish: false,
                    can_subscribe: true,
                    can_publish_data: false,
                    hidden: true,
                    ..Default::default()
                };
                info.publisher = Some(ParticipantToken {
                    identity: identity.to_owned(),
                    token: self.sign(identity, publisher)?,
                });
                info.subscriber = Some(ParticipantToken {
                    token: self.sign(&sub_identity, subscriber)?,
                    identity: sub_identity,
                });
            }
        }
        Ok(info)
    }

    fn sign(&self, identity: &str, grants: VideoGrants) -> Result<String, TokenError> {
        AccessToken::with_api_key(&self.api_key, self.api_secret.expose_secret())
            .with_ttl(self.ttl)
            .with_identity(identity)
            .with_name(identity)
            .with_grants(grants)
            .to_jwt()
            .map_err(|source| TokenError::Sign {
                identity: identity.to_owned(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livekit_api::access_token::TokenVerifier;

    const KEY: &str = "devkey";
    const SECRET: &str = "a-secret-that-is-at-least-32-characters-long";

    fn minter() -> TokenMinter {
        TokenMinter::new(
            &LiveKitConfig::new("ws://127.0.0.1:7880", KEY, SECRET),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn device_gets_a_publish_only_and_a_hidden_subscribe_only_token() {
        let info = minter()
            .join_info("c1", "room1", "box1", PrincipalKind::Device)
            .unwrap();
        assert_eq!(info.url, "ws://127.0.0.1:7880");
        assert_eq!(info.token, None);
        let verifier = TokenVerifier::with_api_key(KEY, SECRET);

        let publisher = info.publisher.unwrap();
        assert_eq!(publisher.identity, "box1");
        let claims = verifier.verify(&publisher.token).unwrap();
        assert_eq!(claims.sub, "box1");
        assert!(claims.video.room_join);
        assert_eq!(claims.video.room, "room1");
        assert!(claims.video.can_publish);
        assert!(!claims.video.can_subscribe);
        assert!(claims.video.can_publish_data);
        assert!(!claims.video.hidden);
        assert!(!claims.video.room_admin && !claims.video.room_create);

        let subscriber = info.subscriber.unwrap();
        assert_eq!(subscriber.identity, "box1~rx");
        let claims = verifier.verify(&subscriber.token).unwrap();
        assert_eq!(claims.sub, "box1~rx");
        assert_eq!(claims.video.room, "room1");
        assert!(!claims.video.can_publish);
        assert!(claims.video.can_subscribe);
        assert!(claims.video.hidden);

        // Room-scoped with the configured lifetime.
        let ttl = claims.exp as i64 - claims.nbf as i64;
        assert!((599..=601).contains(&ttl), "ttl {ttl}");
    }

    #[test]
    fn user_gets_one_full_token() {
        let info = minter()
            .join_info("c1", "room1", "alice", PrincipalKind::User)
            .unwrap();
        assert!(info.publisher.is_none() && info.subscriber.is_none());
        let claims = TokenVerifier::with_api_key(KEY, SECRET)
            .verify(&info.token.unwrap())
            .unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.iss, KEY);
        assert!(claims.video.room_join && claims.video.can_publish && claims.video.can_subscribe);
        assert!(claims.video.can_publish_data && !claims.video.hidden);
    }

    #[test]
    fn tokens_from_another_key_do_not_verify() {
        let info = minter()
            .join_info("c1", "room1", "alice", PrincipalKind::User)
            .unwrap();
        assert!(
            TokenVerifier::with_api_key(KEY, "wrong")
                .verify(&info.token.unwrap())
                .is_err()
        );
    }
}
