//! The call and invitation state machine of the hub: pure transitions that return the
//! WebSocket events to send, with no I/O (persistence is `store`, delivery is `service`).

use callbox_protocol::{
    CallRecord, CallStatus, CallType, InvitationStatus, InviteeRecord, RejectReason, ServerEvent,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A request the call's current state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No call with that id.
    #[error("no call `{0}`")]
    CallNotFound(String),
    /// No invitation with that id.
    #[error("no invitation `{0}`")]
    InvitationNotFound(String),
    /// The invitation belongs to someone else.
    #[error("invitation `{0}` is not addressed to you")]
    NotYourInvitation(String),
    /// The invitation was already answered, rang out or was cancelled.
    #[error("invitation `{id}` is {status}, not pending")]
    InvitationNotPending {
        /// The invitation.
        id: String,
        /// Its current status (wire name).
        status: String,
    },
    /// The caller is neither the inviter nor an invitee who accepted.
    #[error("you are not a participant of call `{0}`")]
    NotAParticipant(String),
    /// The call is over.
    #[error("call `{id}` is {status}")]
    CallNotActive {
        /// The call.
        id: String,
        /// Its final status (wire name).
        status: String,
    },
}

/// One invitee's invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Invitation id.
    pub id: String,
    /// Invitee identity.
    pub identity: String,
    /// Where it stands.
    pub status: InvitationStatus,
    /// Why it was rejected.
    pub reason: Option<RejectReason>,
    /// When it was answered, ms since the Unix epoch.
    pub responded_at_ms: Option<i64>,
    /// The inviter is a trusted contact of the invitee (`crate::contacts`): a box
    /// may answer by itself.
    pub trusted: bool,
}

/// A call with all its invitations, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// Call id.
    pub id: String,
    /// LiveKit room name.
    pub room_name: String,
    /// Video or audio.
    pub call_type: CallType,
    /// Who placed the call.
    pub inviter: String,
    /// Where the call stands.
    pub status: CallStatus,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// First accept, ms since the Unix epoch.
    pub answered_at_ms: Option<i64>,
    /// End time, ms since the Unix epoch.
    pub ended_at_ms: Option<i64>,
    /// When pending invitations ring out, ms since the Unix epoch.
    pub ring_deadline_ms: i64,
    /// One per invitee, in invitation order.
    pub invitations: Vec<Invitation>,
}

/// What a transition asks the outside world to do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Events to push, each to every WebSocket of the named identity.
    pub events: Vec<(String, ServerEvent)>,
    /// The call just became final: delete its LiveKit room and stop its ring timer.
    pub finished: bool,
}

/// The snake_case wire name of a serde enum (`InvitationStatus::Pending` → `pending`).
pub fn wire_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// Parses a snake_case wire name back into a serde enum.
pub fn from_wire_name<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

impl Call {
    /// A new call in `initiating` with one `pending` invitation per invitee.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        room_name: String,
        call_type: CallType,
        inviter: String,
        invitees: Vec<(String, String)>,
        now_ms: i64,
        ring_deadline_ms: i64,
    ) -> Self {
        Self {
            id,
            room_name,
            call_type,
            inviter,
            status: CallStatus::Initiating,
            end_reason: None,
            created_at_ms: now_ms,
            answered_at_ms: None,
            ended_at_ms: None,
            ring_deadline_ms,
            invitations: invitees
                .into_iter()
                .map(|(id, identity)| Invitation {
                    id,
                    identity,
                    status: InvitationStatus::Pending,
                    reason: None,
                    responded_at_ms: None,
                    trusted: false,
                })
                .collect(),
        }
    }

    /// `initiating` → `ringing` once the LiveKit room exists. Returns the
    /// `call_invitation` events for every invitee.
    pub fn start_ringing(&mut self, ring_deadline_ms: i64) -> Effects {
        self.status = CallStatus::Ringing;
        self.ring_deadline_ms = ring_deadline_ms;
        let events = self
            .invitations
            .iter()
            .filter(|i| i.status == InvitationStatus::Pending)
            .map(|i| (i.identity.clone(), self.invitation_event(i)))
            .collect();
        Effects {
            events,
            finished: false,
        }
    }

    /// Any non-final state → `failed` (e.g. LiveKit unreachable, hub restarted while
    /// setting up); pending invitations are cancelled. Nobody has been told about the
    /// call yet, so no events.
    pub fn fail(&mut self, reason: &str, now_ms: i64) {
        self.finish(
            CallStatus::Failed,
            reason,
            now_ms,
            InvitationStatus::Cancelled,
        );
    }

    /// The `call_invitation` event for one of this call's invitations.
    pub fn invitation_event(&self, invitation: &Invitation) -> ServerEvent {
        ServerEvent::CallInvitation {
            invitation_id: invitation.id.clone(),
            call_id: self.id.clone(),
            inviter: self.inviter.clone(),
            // Filled in by the service on delivery (the model has no names).
            inviter_name: None,
            call_type: self.call_type,
            room_name: self.room_name.clone(),
            trusted: invitation.trusted,
        }
    }

    /// True for the inviter and for invitees who accepted: they may end the call and
    /// get tokens.
    pub fn is_participant(&self, identity: &str) -> bool {
        self.inviter == identity
            || self
                .invitations
                .iter()
                .any(|i| i.identity == identity && i.status == InvitationStatus::Accepted)
    }

    /// True for the inviter and for invitees still pending or accepted (what
    /// `/api/calls/active` lists).
    pub fn takes_part(&self, identity: &str) -> bool {
        self.inviter == identity
            || self.invitations.iter().any(|i| {
                i.identity == identity
                    && matches!(
                        i.status,
                        InvitationStatus::Pending | InvitationStatus::Accepted
                    )
            })
    }

    /// Checks that `identity` may get fresh LiveKit tokens for this call.
    pub fn check_can_join(&self, identity: &str) -> Result<(), CallError> {
        if !self.is_participant(identity) {
            return Err(CallError::NotAParticipant(self.id.clone()));
        }
        if self.status.is_final() {
            return Err(self.not_active());
        }
        Ok(())
    }

    /// An invitee accepts: invitation `accepted`, call `connected`; tells the inviter
    /// and the other accepted invitees, and tells the new participant who accepted
    /// before it (one `invitation_accepted` each), so every participant can name
    /// everyone in the call.
    pub fn accept(
        &mut self,
        invitation_id: &str,
        caller: &str,
        now_ms: i64,
    ) -> Result<Effects, CallError> {
        let idx = self.pending_invitation_of(invitation_id, caller)?;
        let inv = &mut self.invitations[idx];
        inv.status = InvitationStatus::Accepted;
        inv.responded_at_ms = Some(now_ms);
        let event = ServerEvent::InvitationAccepted {
            invitation_id: inv.id.clone(),
            call_id: self.id.clone(),
            invitee: inv.identity.clone(),
        };
        if self.status != CallStatus::Connected {
            self.status = CallStatus::Connected;
            self.answered_at_ms = Some(now_ms);
        }
        let acceptor = self.invitations[idx].identity.clone();
        let mut events = vec![(self.inviter.clone(), event.clone())];
        for (i, other) in self.invitations.iter().enumerate() {
            if i != idx
                && other.status == InvitationStatus::Accepted
                && other.identity != self.inviter
            {
                events.push((other.identity.clone(), event.clone()));
                events.push((
                    acceptor.clone(),
                    ServerEvent::InvitationAccepted {
                        invitation_id: other.id.clone(),
                        call_id: self.id.clone(),
                        invitee: other.identity.clone(),
                    },
                ));
            }
        }
        Ok(Effects {
            events,
            finished: false,
        })
    }

    /// An invitee refuses: invitation `rejected` (default reason `declined`); tells the
    /// inviter. When nobody is left pending or accepted, the call becomes `rejected`.
    pub fn reject(
        &mut self,
        invitation_id: &str,
        caller: &str,
        reason: Option<RejectReason>,
        now_ms: i64,
    ) -> Result<Effects, CallError> {
        let idx = self.pending_invitation_of(invitation_id, caller)?;
        let reason = reason.unwrap_or(RejectReason::Declined);
        let inv = &mut self.invitations[idx];
        inv.status = InvitationStatus::Rejected;
        inv.reason = Some(reason);
        inv.responded_at_ms = Some(now_ms);
        let events = vec![(
            self.inviter.clone(),
            ServerEvent::InvitationRejected {
                invitation_id: inv.id.clone(),
                call_id: self.id.clone(),
                invitee: inv.identity.clone(),
                reason,
            },
        )];
        let anyone_left = self.invitations.iter().any(|i| {
            matches!(
                i.status,
                InvitationStatus::Pending | InvitationStatus::Accepted
            )
        });
        let finished = !anyone_left;
        if finished {
            self.finish(
                CallStatus::Rejected,
                &wire_name(&reason),
                now_ms,
                InvitationStatus::Cancelled,
            );
        }
        Ok(Effects { events, finished })
    }

    /// A participant hangs up (`caller = Some`) or the hub ends the call itself
    /// (`caller = None`, e.g. everybody else left the LiveKit room).
    ///
    /// Ringing + inviter → `cancelled`, pending invitees get `call_cancelled`.
    /// Connected → `ended` (default reason `hangup`), every other participant gets
    /// `call_ended`, pending invitees get `call_cancelled`. An already final call is
    /// left alone (idempotent).
    pub fn end(
        &mut self,
        caller: Option<&str>,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<Effects, CallError> {
        if let Some(caller) = caller
            && !self.is_participant(caller)
        {
            return Err(CallError::NotAParticipant(self.id.clone()));
        }
        if self.status.is_final() {
            return Ok(Effects::default());
        }
        let mut events = self.pending_cancellations();
        if self.status == CallStatus::Connected {
            let reason = reason.unwrap_or("hangup").to_owned();
            let mut others: Vec<&str> = vec![self.inviter.as_str()];
            others.extend(
                self.invitations
                    .iter()
                    .filter(|i| i.status == InvitationStatus::Accepted)
                    .map(|i| i.identity.as_str()),
            );
            for who in others {
                if Some(who) != caller {
                    events.push((
                        who.to_owned(),
                        ServerEvent::CallEnded {
                            call_id: self.id.clone(),
                            reason: reason.clone(),
                        },
                    ));
                }
            }
            self.finish(
                CallStatus::Ended,
                &reason,
                now_ms,
                InvitationStatus::Cancelled,
            );
        } else {
            let reason = reason.unwrap_or("cancelled");
            self.finish(
                CallStatus::Cancelled,
                reason,
                now_ms,
                InvitationStatus::Cancelled,
            );
        }
        Ok(Effects {
            events,
            finished: true,
        })
    }

    /// `call_cancelled` for every invitee still ringing, as (identity, event).
    fn pending_cancellations(&self) -> Vec<(String, ServerEvent)> {
        self.invitations
            .iter()
            .filter(|i| i.status == InvitationStatus::Pending)
            .map(|i| (i.identity.clone(), self.cancelled_event()))
            .collect()
    }

    /// The ring timer fired. Ringing → pending invitations `missed`, call `missed`
    /// (end reason `no_answer`): pending invitees get `call_cancelled`, the inviter gets
    /// `call_ended {reason: "missed"}`. Connected → only the still-pending invitations
    /// ring out (`missed`, `call_cancelled`). Otherwise nothing.
    pub fn ring_timeout(&mut self, now_ms: i64) -> Effects {
        if !matches!(self.status, CallStatus::Ringing | CallStatus::Connected) {
            return Effects::default();
        }
        let mut events = self.pending_cancellations();
        if self.status == CallStatus::Ringing {
            events.push((
                self.inviter.clone(),
                ServerEvent::CallEnded {
                    call_id: self.id.clone(),
                    reason: "missed".into(),
                },
            ));
            self.finish(
                CallStatus::Missed,
                "no_answer",
                now_ms,
                InvitationStatus::Missed,
            );
            Effects {
                events,
                finished: true,
            }
        } else {
            self.set_pending(InvitationStatus::Missed);
            Effects {
                events,
                finished: false,
            }
        }
    }

    /// True while some invitation is still ringing.
    pub fn has_pending(&self) -> bool {
        self.invitations
            .iter()
            .any(|i| i.status == InvitationStatus::Pending)
    }

    /// The record `/api/calls/active` and `/api/calls/history` return.
    pub fn to_record(&self) -> CallRecord {
        CallRecord {
            call_id: self.id.clone(),
            room_name: self.room_name.clone(),
            call_type: self.call_type,
            inviter: self.inviter.clone(),
            invitees: self
                .invitations
                .iter()
                .map(|i| InviteeRecord {
                    invitation_id: i.id.clone(),
                    identity: i.identity.clone(),
                    status: i.status,
                    reason: i.reason,
                })
                .collect(),
            status: self.status,
            end_reason: self.end_reason.clone(),
            created_at_ms: self.created_at_ms,
            answered_at_ms: self.answered_at_ms,
            ended_at_ms: self.ended_at_ms,
        }
    }

    fn pending_invitation_of(&self, invitation_id: &str, caller: &str) -> Result<usize, CallError> {
        let idx = self
            .invitations
            .iter()
            .position(|i| i.id == invitation_id)
            .ok_or_else(|| CallError::InvitationNotFound(invitation_id.to_owned()))?;
        let inv = &self.invitations[idx];
        if inv.identity != caller {
            return Err(CallError::NotYourInvitation(invitation_id.to_owned()));
        }
        if inv.status != InvitationStatus::Pending || self.status.is_final() {
            return Err(CallError::InvitationNotPending {
                id: invitation_id.to_owned(),
                status: wire_name(&inv.status),
            });
        }
        Ok(idx)
    }

    fn cancelled_event(&self) -> ServerEvent {
        ServerEvent::CallCancelled {
            call_id: self.id.clone(),
        }
    }

    fn not_active(&self) -> CallError {
        CallError::CallNotActive {
            id: self.id.clone(),
            status: self.status.as_str().to_owned(),
        }
    }

    fn set_pending(&mut self, to: InvitationStatus) {
        for inv in &mut self.invitations {
            if inv.status == InvitationStatus::Pending {
                inv.status = to;
            }
        }
    }

    fn finish(
        &mut self,
        status: CallStatus,
        reason: &str,
        now_ms: i64,
        pending_to: InvitationStatus,
    ) {
        self.status = status;
        self.end_reason = Some(reason.to_owned());
        self.ended_at_ms = Some(now_ms);
        self.set_pending(pending_to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(invitees: &[&str]) -> Call {
        let mut c = Call::new(
            "c1".into(),
            "room1".into(),
            CallType::Video,
            "alice".into(),
            invitees
                .iter()
                .enumerate()
                .map(|(n, who)| (format!("i{n}"), who.to_string()))
                .collect(),
            1_000,
            61_000,
        );
        let fx = c.start_ringing(61_000);
        assert_eq!(fx.events.len(), invitees.len());
        c
    }

    fn to(fx: &Effects) -> Vec<(&str, &str)> {
        fx.events
            .iter()
            .map(|(who, ev)| {
                let kind = match ev {
                    ServerEvent::CallInvitation { .. } => "call_invitation",
                    ServerEvent::InvitationAccepted { .. } => "invitation_accepted",
                    ServerEvent::InvitationRejected { .. } => "invitation_rejected",
                    ServerEvent::CallCancelled { .. } => "call_cancelled",
                    ServerEvent::CallEnded { .. } => "call_ended",
                };
                (who.as_str(), kind)
            })
            .collect()
    }

    #[test]
    fn accept_connects_and_notifies_inviter_and_other_accepted() {
        let mut c = call(&["box1", "box2", "box3"]);
        let fx = c.accept("i0", "box1", 2_000).unwrap();
        assert_eq!(to(&fx), [("alice", "invitation_accepted")]);
        assert_eq!(c.status, CallStatus::Connected);
        assert_eq!(c.answered_at_ms, Some(2_000));
        let fx = c.accept("i1", "box2", 3_000).unwrap();
        assert_eq!(
            to(&fx),
            [
                ("alice", "invitation_accepted"),
                ("box1", "invitation_accepted"),
                ("box2", "invitation_accepted")
            ]
        );
        assert!(
            matches!(&fx.events[2].1, ServerEvent::InvitationAccepted { invitee, .. } if invitee == "box1"),
            "box2 hears that box1 is in the call"
        );
        assert_eq!(c.answered_at_ms, Some(2_000));
        assert_eq!(
            c.accept("i1", "box2", 3_000),
            Err(CallError::InvitationNotPending {
                id: "i1".into(),
                status: "accepted".into()
            })
        );
        assert_eq!(
            c.accept("i2", "box1", 3_000),
            Err(CallError::NotYourInvitation("i2".into()))
        );
        assert_eq!(
            c.accept("nope", "box1", 3_000),
            Err(CallError::InvitationNotFound("nope".into()))
        );
    }

    #[test]
    fn last_rejection_rejects_the_call() {
        let mut c = call(&["box1", "box2"]);
        let fx = c
            .reject("i0", "box1", Some(RejectReason::Busy), 2_000)
            .unwrap();
        assert_eq!(to(&fx), [("alice", "invitation_rejected")]);
        assert!(!fx.finished);
        assert_eq!(c.status, CallStatus::Ringing);
        let fx = c.reject("i1", "box2", None, 3_000).unwrap();
        assert!(fx.finished);
        assert_eq!(c.status, CallStatus::Rejected);
        assert_eq!(c.end_reason.as_deref(), Some("declined"));
        assert_eq!(c.invitations[1].reason, Some(RejectReason::Declined));
    }

    #[test]
    fn inviter_cancels_a_ringing_call() {
        let mut c = call(&["box1", "box2"]);
        c.reject("i0", "box1", None, 1_500).unwrap();
        assert_eq!(
            c.end(Some("box1"), None, 2_000),
            Err(CallError::NotAParticipant("c1".into()))
        );
        let fx = c.end(Some("alice"), None, 2_000).unwrap();
        assert_eq!(to(&fx), [("box2", "call_cancelled")]);
        assert_eq!(c.status, CallStatus::Cancelled);
        assert_eq!(c.invitations[1].status, InvitationStatus::Cancelled);
        assert_eq!(c.invitations[0].status, InvitationStatus::Rejected);
        // Idempotent.
        assert_eq!(c.end(Some("alice"), None, 3_000), Ok(Effects::default()));
    }

    #[test]
    fn ending_a_connected_call_tells_everybody_else() {
        let mut c = call(&["box1", "box2", "box3"]);
        c.accept("i0", "box1", 2_000).unwrap();
        c.accept("i1", "box2", 2_000).unwrap();
        let fx = c.end(Some("box1"), None, 5_000).unwrap();
        assert_eq!(
            to(&fx),
            [
                ("box3", "call_cancelled"),
                ("alice", "call_ended"),
                ("box2", "call_ended")
            ]
        );
        assert_eq!(c.status, CallStatus::Ended);
        assert_eq!(c.end_reason.as_deref(), Some("hangup"));
        assert_eq!(c.ended_at_ms, Some(5_000));
        assert_eq!(
            c.check_can_join("alice"),
            Err(CallError::CallNotActive {
                id: "c1".into(),
                status: "ended".into()
            })
        );
    }

    #[test]
    fn server_side_end_tells_every_participant() {
        let mut c = call(&["box1"]);
        c.accept("i0", "box1", 2_000).unwrap();
        let fx = c.end(None, Some("participant_left"), 3_000).unwrap();
        assert_eq!(to(&fx), [("alice", "call_ended"), ("box1", "call_ended")]);
        assert_eq!(c.end_reason.as_deref(), Some("participant_left"));
    }

    #[test]
    fn ring_timeout_misses_a_ringing_call() {
        let mut c = call(&["box1"]);
        let fx = c.ring_timeout(61_000);
        assert_eq!(
            to(&fx),
            [("box1", "call_cancelled"), ("alice", "call_ended")]
        );
        assert!(
            matches!(&fx.events[1].1, ServerEvent::CallEnded { reason, .. } if reason == "missed")
        );
        assert!(fx.finished);
        assert_eq!(c.status, CallStatus::Missed);
        assert_eq!(c.end_reason.as_deref(), Some("no_answer"));
        assert_eq!(c.invitations[0].status, InvitationStatus::Missed);
    }

    #[test]
    fn ring_timeout_of_a_connected_call_only_rings_out_pending_invitations() {
        let mut c = call(&["box1", "box2"]);
        c.accept("i0", "box1", 2_000).unwrap();
        let fx = c.ring_timeout(61_000);
        assert_eq!(to(&fx), [("box2", "call_cancelled")]);
        assert!(!fx.finished);
        assert_eq!(c.status, CallStatus::Connected);
        assert_eq!(c.invitations[1].status, InvitationStatus::Missed);
    }

    #[test]
    fn participation_rules() {
        let mut c = call(&["box1", "box2"]);
        assert!(c.takes_part("box1") && !c.is_participant("box1"));
        assert_eq!(
            c.check_can_join("box1"),
            Err(CallError::NotAParticipant("c1".into()))
        );
        assert_eq!(c.check_can_join("alice"), Ok(()));
        c.accept("i0", "box1", 2_000).unwrap();
        c.reject("i1", "box2", None, 2_000).unwrap();
        assert_eq!(c.check_can_join("box1"), Ok(()));
        assert!(!c.takes_part("box2"));
    }

    #[test]
    fn wire_names_round_trip() {
        assert_eq!(wire_name(&InvitationStatus::Pending), "pending");
        assert_eq!(wire_name(&RejectReason::NoAnswer), "no_answer");
        assert_eq!(from_wire_name::<CallType>("audio"), Some(CallType::Audio));
        assert_eq!(from_wire_name::<CallType>("smell"), None);
    }
}
