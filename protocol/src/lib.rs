//! Wire types of the callbox call protocol (design §3), shared by the box and the hub.
//!
//! Pure serde types: no I/O. JSON field names are camelCase; WebSocket events carry a
//! `type` field in snake_case (`call_invitation`, …). A company that runs its own backend
//! implements these shapes and points the box at it.
//!
//! REST (all with `Authorization: Bearer <credential>`):
//! - `POST /api/calls/invite` [`InviteRequest`] → `201` [`JoinInfo`]
//! - `POST /api/calls/invitations/respond` [`RespondRequest`] → accept: `200` [`JoinInfo`];
//!   reject: `200` [`Ack`]
//! - `POST /api/calls/end` [`EndRequest`] → `200` [`Ack`]
//! - `POST /api/calls/{callId}/token` → `200` [`JoinInfo`] (rejoin after a fault)
//! - `GET /api/calls/active` → `200` `[`[`CallRecord`]`]`
//! - `GET /api/calls/history?limit&offset` → `200` `[`[`CallRecord`]`]`, newest first
//! - `GET /health` → `200` [`Health`]
//!
//! Errors are `4xx`/`5xx` with an [`ErrorBody`].

use serde::{Deserialize, Serialize};

/// Whether a call carries video or only audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CallType {
    /// Camera and microphone.
    #[default]
    Video,
    /// Microphone only.
    Audio,
}

/// Body of `POST /api/calls/invite`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteRequest {
    /// Video or audio call; default video.
    #[serde(default)]
    pub call_type: CallType,
    /// Identities of the participants to ring: devices or users whose contact list
    /// has the caller (else 403 `not_allowed`).
    pub invitees: Vec<String>,
    /// Must be absent: the hub names the rooms of its calls (400
    /// `room_name_not_allowed`). Kept so such a request gets that clear error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_name: Option<String>,
}

/// What an invitee answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RespondAction {
    /// Join the call.
    Accept,
    /// Refuse the call; see [`RejectReason`].
    Reject,
}

/// Why an invitation was refused or ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Already in a call.
    Busy,
    /// Someone pressed decline.
    Declined,
    /// Do-not-disturb is on.
    Dnd,
    /// Nobody answered before the ring timeout.
    NoAnswer,
}

/// Body of `POST /api/calls/invitations/respond`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RespondRequest {
    /// From the `call_invitation` event.
    pub invitation_id: String,
    /// Accept or reject.
    pub action: RespondAction,
    /// Reason for a rejection; ignored on accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

/// Body of `POST /api/calls/end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndRequest {
    /// The call to end (or cancel, while it is still ringing).
    pub call_id: String,
    /// Free-form reason, e.g. `hangup`, `media_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A LiveKit access token for one participant identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantToken {
    /// The LiveKit participant identity the token is minted for.
    pub identity: String,
    /// The signed JWT.
    pub token: String,
}

/// Everything a participant needs to join a call's LiveKit room.
///
/// Users (SDK clients, browsers) get one `token` that may publish and subscribe.
/// Devices get `publisher` and `subscriber` instead, because the GStreamer LiveKit
/// elements join as two participants: the publisher's token grants
/// `canSubscribe: false` (LiveKit drops a subscriber that never answers offers after
/// ~30 s) and the subscriber's identity is distinct and `hidden`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinInfo {
    /// The hub's call id.
    pub call_id: String,
    /// LiveKit room name.
    pub room_name: String,
    /// LiveKit signalling URL (`ws://` or `wss://`).
    pub url: String,
    /// Publish + subscribe token (users).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Publish-only token (devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<ParticipantToken>,
    /// Subscribe-only, hidden token (devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<ParticipantToken>,
}

/// One track published in a call's LiveKit room, as `GET /api/calls/{callId}/tracks`
/// returns it (from LiveKit's RoomService `ListParticipants`).
///
/// The box asks for these when LiveKit offers it the caller's tracks: GStreamer 1.22's
/// `webrtcbin` answers an offer with one codec per m-line, so the box must know which
/// codec a video track is sent in to answer with that codec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedTrack {
    /// Identity of the publishing participant.
    pub identity: String,
    /// LiveKit track SID (`TR_…`), as in the SDP's `a=msid`.
    pub sid: String,
    /// `audio` or `video`.
    pub kind: String,
    /// MIME types the track is published in, primary first (`video/VP8`,
    /// `video/H264`; more than one with a backup codec). Empty when LiveKit has not
    /// negotiated the track yet.
    pub codecs: Vec<String>,
}

/// `GET /api/me`: who the credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The principal's identity.
    pub identity: String,
    /// Its display name (`callbox-hub set-name`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `device` or `user`.
    pub kind: String,
}

/// Body of `POST /api/signin`: the code of a one-time sign-in link
/// (`callbox-hub invite-link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigninRequest {
    /// The code (the part after `#signin=` in the link).
    pub code: String,
}

/// Reply to `POST /api/signin`: a session credential for the link's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigninResponse {
    /// The user.
    pub identity: String,
    /// A new bearer credential (64 hex characters) valid until `POST /api/signout`.
    pub credential: String,
}

/// A plain acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Always true.
    pub ok: bool,
}

/// Body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `unknown_invitee`, `unauthorized`, `livekit_unavailable`.
    pub error: String,
    /// A sentence for a human.
    pub message: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// Life cycle of a call on the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// Created, room being set up.
    Initiating,
    /// Invitations sent, nobody answered yet.
    Ringing,
    /// At least one invitee accepted.
    Connected,
    /// Hung up after being connected.
    Ended,
    /// Every invitee refused.
    Rejected,
    /// The inviter hung up while ringing.
    Cancelled,
    /// Nobody answered before the ring timeout.
    Missed,
    /// Could not be set up (e.g. LiveKit unreachable).
    Failed,
}

impl CallStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [CallStatus; 8] = [
        Self::Initiating,
        Self::Ringing,
        Self::Connected,
        Self::Ended,
        Self::Rejected,
        Self::Cancelled,
        Self::Missed,
        Self::Failed,
    ];

    /// True for states a call never leaves.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Initiating | Self::Ringing | Self::Connected)
    }

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiating => "initiating",
            Self::Ringing => "ringing",
            Self::Connected => "connected",
            Self::Ended => "ended",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
            Self::Failed => "failed",
        }
    }

    /// Parses the snake_case wire name.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// State of one invitee's invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    /// Ringing.
    Pending,
    /// Joined.
    Accepted,
    /// Refused.
    Rejected,
    /// Rang out.
    Missed,
    /// The call ended before an answer.
    Cancelled,
}

/// One invitee of a call, in [`CallRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InviteeRecord {
    /// Invitation id.
    pub invitation_id: String,
    /// Invitee identity.
    pub identity: String,
    /// Where the invitation stands.
    pub status: InvitationStatus,
    /// Rejection reason, when rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RejectReason>,
}

/// A call as returned by `/api/calls/active` and `/api/calls/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// Call id.
    pub call_id: String,
    /// LiveKit room name.
    pub room_name: String,
    /// Video or audio.
    pub call_type: CallType,
    /// Who placed the call.
    pub inviter: String,
    /// Who was rung.
    pub invitees: Vec<InviteeRecord>,
    /// Where the call stands.
    pub status: CallStatus,
    /// Why it ended, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// First accept, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at_ms: Option<i64>,
    /// End time, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<i64>,
}

/// Server → client WebSocket events (`GET /ws`), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    /// Somebody is calling this client.
    #[serde(rename_all = "camelCase")]
    CallInvitation {
        /// Answer with this id.
        invitation_id: String,
        /// The call.
        call_id: String,
        /// Caller identity.
        inviter: String,
        /// The caller's display name (`callbox-hub set-name`), when it has one: what
        /// a screen shows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inviter_name: Option<String>,
        /// Video or audio.
        call_type: CallType,
        /// LiveKit room name.
        room_name: String,
        /// The inviter is a trusted contact of this invitee (the hub's contacts): a
        /// box set to `answer = "auto"` answers it by itself. Absent: false.
        #[serde(default)]
        trusted: bool,
    },
    /// An invitee accepted: sent to the inviter and the other accepted invitees; a
    /// new participant also gets one for each invitee who accepted before it.
    #[serde(rename_all = "camelCase")]
    InvitationAccepted {
        /// The invitation.
        invitation_id: String,
        /// The call.
        call_id: String,
        /// Who accepted.
        invitee: String,
    },
    /// An invitee refused (sent to the inviter).
    #[serde(rename_all = "camelCase")]
    InvitationRejected {
        /// The invitation.
        invitation_id: String,
        /// The call.
        call_id: String,
        /// Who refused.
        invitee: String,
        /// Why.
        reason: RejectReason,
    },
    /// The call stopped ringing before this client answered (inviter hung up, rang out,
    /// or someone else answered).
    #[serde(rename_all = "camelCase")]
    CallCancelled {
        /// The call.
        call_id: String,
    },
    /// A connected call is over.
    #[serde(rename_all = "camelCase")]
    CallEnded {
        /// The call.
        call_id: String,
        /// Why, e.g. `hangup`, `participant_left`, `missed`.
        reason: String,
    },
}

/// Why a WebSocket text frame did not yield a [`ServerEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventParseError {
    /// Not JSON, not an object, or no string `type` field.
    Malformed(String),
    /// A `type` this version does not know; log and ignore (forward compatibility).
    UnknownType(String),
    /// A known `type` with missing or mistyped fields.
    BadFields {
        /// The event type.
        event_type: String,
        /// What serde said.
        detail: String,
    },
}

impl std::fmt::Display for EventParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(d) => write!(f, "malformed event: {d}"),
            Self::UnknownType(t) => write!(f, "unknown event type `{t}`"),
            Self::BadFields { event_type, detail } => {
                write!(f, "bad `{event_type}` event: {detail}")
            }
        }
    }
}

impl std::error::Error for EventParseError {}

const KNOWN_EVENTS: [&str; 5] = [
    "call_invitation",
    "invitation_accepted",
    "invitation_rejected",
    "call_cancelled",
    "call_ended",
];

impl ServerEvent {
    /// Parses one WebSocket text frame, telling malformed frames, unknown event types
    /// and bad fields apart so the client can log each clearly.
    pub fn parse(text: &str) -> Result<Self, EventParseError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| EventParseError::Malformed(e.to_string()))?;
        let event_type = value
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| EventParseError::Malformed("no string `type` field".into()))?
            .to_owned();
        if !KNOWN_EVENTS.contains(&event_type.as_str()) {
            return Err(EventParseError::UnknownType(event_type));
        }
        serde_json::from_value(value).map_err(|e| EventParseError::BadFields {
            event_type,
            detail: e.to_string(),
        })
    }

    /// The call this event is about.
    pub fn call_id(&self) -> &str {
        match self {
            Self::CallInvitation { call_id, .. }
            | Self::InvitationAccepted { call_id, .. }
            | Self::InvitationRejected { call_id, .. }
            | Self::CallCancelled { call_id }
            | Self::CallEnded { call_id, .. } => call_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitation_round_trips_with_the_documented_field_names() {
        let text = r#"{"type":"call_invitation","invitationId":"i1","callId":"c1","inviter":"alice","callType":"video","roomName":"r1","trusted":true}"#;
        let ev = ServerEvent::parse(text).unwrap();
        assert_eq!(
            ev,
            ServerEvent::CallInvitation {
                invitation_id: "i1".into(),
                call_id: "c1".into(),
                inviter: "alice".into(),
                inviter_name: None,
                call_type: CallType::Video,
                room_name: "r1".into(),
                trusted: true,
            }
        );
        let back: serde_json::Value = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    /// An invitation from a hub before contacts has no `trusted`: not trusted, so a
    /// box rings rather than answering by itself.
    #[test]
    fn an_invitation_without_trusted_is_not_trusted() {
        let text = r#"{"type":"call_invitation","invitationId":"i1","callId":"c1","inviter":"alice","callType":"video","roomName":"r1"}"#;
        assert!(matches!(
            ServerEvent::parse(text).unwrap(),
            ServerEvent::CallInvitation { trusted: false, .. }
        ));
    }

    #[test]
    fn every_event_type_round_trips() {
        let fixtures = [
            r#"{"type":"invitation_accepted","invitationId":"i","callId":"c","invitee":"box1"}"#,
            r#"{"type":"invitation_rejected","invitationId":"i","callId":"c","invitee":"box1","reason":"dnd"}"#,
            r#"{"type":"call_cancelled","callId":"c"}"#,
            r#"{"type":"call_ended","callId":"c","reason":"hangup"}"#,
        ];
        for text in fixtures {
            let ev = ServerEvent::parse(text).unwrap();
            assert_eq!(ev.call_id(), "c");
            let back = serde_json::to_value(&ev).unwrap();
            assert_eq!(
                back,
                serde_json::from_str::<serde_json::Value>(text).unwrap()
            );
        }
    }

    #[test]
    fn parse_errors_are_told_apart() {
        assert!(matches!(
            ServerEvent::parse("{nope"),
            Err(EventParseError::Malformed(_))
        ));
        assert!(matches!(
            ServerEvent::parse("[1]"),
            Err(EventParseError::Malformed(_))
        ));
        assert_eq!(
            ServerEvent::parse(r#"{"type":"party_time"}"#),
            Err(EventParseError::UnknownType("party_time".into()))
        );
        assert!(matches!(
            ServerEvent::parse(r#"{"type":"call_ended","callId":7}"#),
            Err(EventParseError::BadFields { .. })
        ));
    }

    #[test]
    fn join_info_omits_absent_tokens() {
        let j = JoinInfo {
            call_id: "c".into(),
            room_name: "r".into(),
            url: "ws://x".into(),
            token: Some("t".into()),
            publisher: None,
            subscriber: None,
        };
        let v = serde_json::to_value(&j).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"callId":"c","roomName":"r","url":"ws://x","token":"t"})
        );
    }

    #[test]
    fn call_status_names_match_the_wire() {
        for s in CallStatus::ALL {
            assert_eq!(CallStatus::parse(s.as_str()), Some(s));
        }
        assert!(CallStatus::Missed.is_final());
        assert!(!CallStatus::Ringing.is_final());
    }
}
