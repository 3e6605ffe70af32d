//! The hub's side of LiveKit: RoomService calls (create/delete rooms, list participants
//! and their tracks)
//! and verification of LiveKit's webhooks.

use std::time::Duration;

use livekit_api::access_token::TokenVerifier;
use livekit_api::services::ServiceError;
use livekit_api::services::room::{CreateRoomOptions, RoomClient};
use livekit_api::webhooks::{WebhookError, WebhookReceiver};
use secrecy::ExposeSecret;

use crate::config::LiveKitConfig;

/// Least time an empty room lives before LiveKit closes it, in seconds (the hub uses
/// more when the ring timeout is longer). The hub deletes the room itself when the call
/// ends.
pub const ROOM_EMPTY_TIMEOUT_SECS: u32 = 300;

/// Per-request timeout for RoomService calls.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A LiveKit request failed or a webhook was not genuine.
#[derive(Debug, thiserror::Error)]
pub enum LiveKitError {
    /// A RoomService call failed (server down, refused, or returned an error).
    #[error("LiveKit RoomService {op} for room `{room}` failed: {source}")]
    RoomService {
        /// `CreateRoom`, `DeleteRoom`, `ListParticipants`.
        op: &'static str,
        /// The room.
        room: String,
        /// What livekit-api said (boxed: it is large).
        source: Box<ServiceError>,
    },
    /// The webhook's `Authorization` JWT is missing, expired, not signed with our key,
    /// or does not match the body's SHA-256.
    #[error("webhook not authentic: {0}")]
    WebhookAuth(String),
    /// The webhook body is authentic but not the JSON we expect.
    #[error("webhook body unreadable: {0}")]
    WebhookBody(String),
}

/// The parts of a LiveKit webhook the hub acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookNotice {
    /// `participant_left`, `room_finished`, …
    pub event: String,
    /// Room name, when the event concerns a room.
    pub room: Option<String>,
    /// Participant identity, for `participant_*` events.
    pub participant: Option<String>,
}

/// RoomService client plus webhook verifier for one LiveKit deployment.
#[derive(Debug)]
pub struct LiveKit {
    rooms: RoomClient,
    webhooks: WebhookReceiver,
    api_url: String,
}

impl LiveKit {
    /// A client for the configured server (`api_url`, or derived from `url`).
    pub fn new(config: &LiveKitConfig) -> Self {
        let api_url = config.effective_api_url();
        Self {
            rooms: RoomClient::with_api_key(
                &api_url,
                &config.api_key,
                config.api_secret.expose_secret(),
            )
            .with_failover(false)
            .with_request_timeout(REQUEST_TIMEOUT),
            webhooks: WebhookReceiver::new(TokenVerifier::with_api_key(
                &config.api_key,
                config.api_secret.expose_secret(),
            )),
            api_url,
        }
    }

    /// The RoomService base URL in use.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// Creates `room` (idempotent on LiveKit's side); LiveKit closes it after
    /// `empty_timeout_secs` seconds without participants.
    pub async fn create_room(
        &self,
        room: &str,
        empty_timeout_secs: u32,
    ) -> Result<(), LiveKitError> {
        let options = CreateRoomOptions {
            empty_timeout: empty_timeout_secs,
            ..Default::default()
        };
        self.rooms
            .create_room(room, options)
            .await
            .map(drop)
            .map_err(|source| LiveKitError::RoomService {
                op: "CreateRoom",
                room: room.to_owned(),
                source: Box::new(source),
            })
    }

    /// Deletes `room`, disconnecting everybody in it.
    pub async fn delete_room(&self, room: &str) -> Result<(), LiveKitError> {
        self.rooms
            .delete_room(room)
            .await
            .map_err(|source| LiveKitError::RoomService {
                op: "DeleteRoom",
                room: room.to_owned(),
                source: Box::new(source),
            })
    }

    /// LiveKit identities of the participants currently in `room` (disconnected ones
    /// left out).
    pub async fn participant_identities(&self, room: &str) -> Result<Vec<String>, LiveKitError> {
        Ok(self
            .connected_participants(room)
            .await?
            .into_iter()
            .map(|p| p.identity)
            .collect())
    }

    /// `ListParticipants` of `room`, disconnected ones left out.
    async fn connected_participants(
        &self,
        room: &str,
    ) -> Result<Vec<livekit_protocol::ParticipantInfo>, LiveKitError> {
        const DISCONNECTED: i32 = livekit_protocol::participant_info::State::Disconnected as i32;
        let list = self.rooms.list_participants(room).await.map_err(|source| {
            LiveKitError::RoomService {
                op: "ListParticipants",
                room: room.to_owned(),
                source: Box::new(source),
            }
        })?;
        Ok(list
            .into_iter()
            .filter(|p| p.state != DISCONNECTED)
            .collect())
    }

    /// The tracks published in `room`, by connected participants, with their codecs
    /// (see [`callbox_protocol::PublishedTrack`]).
    pub async fn published_tracks(
        &self,
        room: &str,
    ) -> Result<Vec<callbox_protocol::PublishedTrack>, LiveKitError> {
        Ok(self
            .connected_participants(room)
            .await?
            .into_iter()
            .flat_map(|p| {
                let identity = p.identity;
                p.tracks
                    .into_iter()
                    .map(move |t| published_track(&identity, t))
            })
            .collect())
    }

    /// Verifies a webhook (JWT in `authorization`, signed with our API key, carrying the
    /// body's SHA-256) and extracts what the hub needs.
    ///
    /// Uses livekit-api's `WebhookReceiver`. When the signature is good but the body has
    /// values this livekit-protocol version does not know (a newer server), falls back to
    /// reading the few fields we need from the raw JSON.
    pub fn verify_webhook(
        &self,
        body: &str,
        authorization: &str,
    ) -> Result<WebhookNotice, LiveKitError> {
        let auth = authorization.trim();
        let auth = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or(auth);
        match self.webhooks.receive(body, auth) {
            Ok(ev) => Ok(WebhookNotice {
                event: ev.event,
                room: ev.room.map(|r| r.name).filter(|n| !n.is_empty()),
                participant: ev.participant.map(|p| p.identity).filter(|i| !i.is_empty()),
            }),
            // Only reached after the JWT and the body hash were verified.
            Err(WebhookError::InvalidData(e)) => {
                lenient_notice(body).ok_or_else(|| LiveKitError::WebhookBody(e.to_string()))
            }
            Err(e) => Err(LiveKitError::WebhookAuth(e.to_string())),
        }
    }
}

/// One LiveKit `TrackInfo` as the hub reports it: the codecs are the track's
/// `codecs[].mimeType` (primary first), or its `mimeType` when the list is empty.
fn published_track(
    identity: &str,
    t: livekit_protocol::TrackInfo,
) -> callbox_protocol::PublishedTrack {
    let mut codecs: Vec<String> = t
        .codecs
        .iter()
        .map(|c| c.mime_type.clone())
        .filter(|m| !m.is_empty())
        .collect();
    if codecs.is_empty() && !t.mime_type.is_empty() {
        codecs.push(t.mime_type.clone());
    }
    let kind = if t.r#type == livekit_protocol::TrackType::Video as i32 {
        "video"
    } else if t.r#type == livekit_protocol::TrackType::Audio as i32 {
        "audio"
    } else {
        "data"
    };
    callbox_protocol::PublishedTrack {
        identity: identity.to_owned(),
        sid: t.sid,
        kind: kind.to_owned(),
        codecs,
    }
}

fn lenient_notice(body: &str) -> Option<WebhookNotice> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let text = |ptr: &str| {
        v.pointer(ptr)
            .and_then(|s| s.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Some(WebhookNotice {
        event: text("/event")?,
        room: text("/room/name"),
        participant: text("/participant/identity"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_parse_reads_the_fields_we_need() {
        let body = r#"{"event":"participant_left","room":{"name":"r1","x":1},
            "participant":{"identity":"box1~rx","disconnectReason":"SOMETHING_NEW"}}"#;
        assert_eq!(
            lenient_notice(body),
            Some(WebhookNotice {
                event: "participant_left".into(),
                room: Some("r1".into()),
                participant: Some("box1~rx".into()),
            })
        );
        assert_eq!(lenient_notice("[]"), None);
    }

    #[test]
    fn a_track_lists_its_codecs_primary_first() {
        let mut t = livekit_protocol::TrackInfo {
            sid: "TR_1".into(),
            r#type: livekit_protocol::TrackType::Video as i32,
            mime_type: "video/VP8".into(),
            ..Default::default()
        };
        let one = published_track("alice", t.clone());
        assert_eq!(
            (one.kind.as_str(), one.codecs),
            ("video", vec!["video/VP8".into()])
        );
        for mime in ["video/VP9", "video/H264"] {
            t.codecs.push(livekit_protocol::SimulcastCodecInfo {
                mime_type: mime.into(),
                ..Default::default()
            });
        }
        let backup = published_track("alice", t);
        assert_eq!(
            backup.codecs,
            vec!["video/VP9".to_owned(), "video/H264".into()]
        );
        assert_eq!(backup.identity, "alice");
    }

    #[test]
    fn forged_webhooks_are_refused() {
        let lk = LiveKit::new(&LiveKitConfig::new(
            "ws://127.0.0.1:1",
            "key",
            "secret-secret-secret-secret-secret",
        ));
        assert!(matches!(
            lk.verify_webhook(r#"{"event":"room_started"}"#, "not-a-jwt"),
            Err(LiveKitError::WebhookAuth(_))
        ));
    }
}
