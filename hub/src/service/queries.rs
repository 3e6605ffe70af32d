//! The call service's read-only requests: tokens and tracks of a live call, the
//! contact list with presence, active calls, history, and the invitations re-sent to a
//! WebSocket that connects. Their database reads run on tokio's blocking pool
//! ([`AsyncStore`](crate::store::AsyncStore)), one call per request where possible.

use callbox_protocol::{CallRecord, CallStatus, InvitationStatus, JoinInfo, ServerEvent};

use super::{Hub, MAX_HISTORY_LIMIT, ServiceError};
use crate::auth::Principal;
use crate::contacts;
use crate::model::{Call, CallError};
use crate::store::{self, StoreError};

impl Hub {
    /// `POST /api/calls/{callId}/token`: fresh tokens for a participant of a live call.
    pub async fn token(&self, caller: &Principal, call_id: &str) -> Result<JoinInfo, ServiceError> {
        let call = self.load_call(call_id).await?;
        call.check_can_join(&caller.identity)?;
        tracing::info!(call_id = %call.id, room = %call.room_name, identity = %caller.identity, "fresh tokens");
        Ok(self
            .tokens
            .join_info(&call.id, &call.room_name, &caller.identity, caller.kind)?)
    }

    /// `GET /api/calls/{callId}/tracks`: the tracks published in a live call's room,
    /// for a participant of the call (the box asks when LiveKit offers it a track).
    ///
    /// Errors: the call is unknown, over, or `caller` is not in it; LiveKit unreachable.
    pub async fn tracks(
        &self,
        caller: &Principal,
        call_id: &str,
    ) -> Result<Vec<callbox_protocol::PublishedTrack>, ServiceError> {
        let call = self.load_call(call_id).await?;
        call.check_can_join(&caller.identity)?;
        self.livekit
            .published_tracks(&call.room_name)
            .await
            .map_err(ServiceError::LiveKitUnavailable)
    }

    /// A stored call, or [`CallError::CallNotFound`].
    async fn load_call(&self, call_id: &str) -> Result<Call, ServiceError> {
        let id = call_id.to_owned();
        self.store
            .transact(move |c| store::load_call(c, &id))
            .await?
            .ok_or_else(|| CallError::CallNotFound(call_id.to_owned()).into())
    }

    /// `GET /api/contacts`: whom `caller` may call, with presence: `busy` in a
    /// connected call, `online` with a WebSocket open, else `offline`.
    pub async fn contacts(
        &self,
        caller: &Principal,
    ) -> Result<Vec<contacts::Contact>, ServiceError> {
        let identity = caller.identity.clone();
        // The list and who on it is in a connected call: one database call.
        let list = self
            .store
            .run(move |s| {
                let list = contacts::callable_by(s, &identity)?;
                list.into_iter()
                    .map(|c| {
                        let calls = s.active_calls_of(&c.identity)?;
                        let busy = calls
                            .iter()
                            .any(|call| call.status == CallStatus::Connected);
                        Ok((c, busy))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        Ok(list
            .into_iter()
            .map(|(mut c, busy)| {
                c.presence = if busy {
                    "busy"
                } else if self.clients.is_connected(&c.identity) {
                    "online"
                } else {
                    "offline"
                };
                c
            })
            .collect())
    }

    /// `GET /api/calls/active`.
    pub async fn active(&self, caller: &Principal) -> Result<Vec<CallRecord>, ServiceError> {
        let identity = caller.identity.clone();
        let calls = self
            .store
            .run(move |s| s.active_calls_of(&identity))
            .await?;
        Ok(calls.iter().map(Call::to_record).collect())
    }

    /// `GET /api/calls/history` (limit capped at [`MAX_HISTORY_LIMIT`]).
    pub async fn history(
        &self,
        caller: &Principal,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<CallRecord>, ServiceError> {
        let limit = limit.min(MAX_HISTORY_LIMIT);
        let identity = caller.identity.clone();
        let calls = self
            .store
            .run(move |s| s.history_of(&identity, limit, offset))
            .await?;
        Ok(calls.iter().map(Call::to_record).collect())
    }

    /// `call_invitation` events for invitations of `identity` still ringing (sent when
    /// its WebSocket connects). Errors are logged, not fatal.
    pub async fn pending_invitation_events(&self, identity: &str) -> Vec<ServerEvent> {
        let who = identity.to_owned();
        let events = match self
            .store
            .run(move |s| s.ringing_calls_inviting(&who))
            .await
        {
            Ok(calls) => calls
                .iter()
                .flat_map(|call| {
                    call.invitations
                        .iter()
                        .filter(|i| i.identity == identity && i.status == InvitationStatus::Pending)
                        .map(|i| call.invitation_event(i))
                })
                .collect(),
            Err(e) => {
                tracing::error!(identity, error = %e, "cannot load pending invitations");
                return Vec::new();
            }
        };
        self.named(events).await
    }
}
