//! The call service: invite, respond, end, tokens, history, ring timers, LiveKit
//! webhooks and start-up recovery, tying the state machine (`model`) to SQLite, LiveKit
//! and the WebSocket clients. Every database call goes through [`AsyncStore`] (tokio's
//! blocking pool), so a slow database never stalls a worker thread.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callbox_protocol::{
    CallStatus, EndRequest, InviteRequest, JoinInfo, RespondAction, RespondRequest, ServerEvent,
};
use livekit_api::services::{ServerError, ServerErrorCode, ServiceError as LkServiceError};
use rand::RngCore;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::auth::{Principal, principal_of_livekit_identity, validate_identity};
use crate::config::HubConfig;
use crate::contacts;
use crate::limits::{InviteLimiter, valid_reason};
use crate::livekit::{LiveKit, LiveKitError, WebhookNotice};
use crate::model::{Call, CallError, Effects};
use crate::store::{self, AsyncStore, StoreError};
use crate::tokens::{TokenError, TokenMinter};
use crate::ws::Clients;

mod queries;

/// Most history records returned per page.
pub const MAX_HISTORY_LIMIT: u32 = 200;

/// Why a call request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The state machine refused.
    #[error(transparent)]
    Call(#[from] CallError),
    /// `invitees` is empty.
    #[error("invitees must not be empty")]
    NoInvitees,
    /// The inviter invited itself.
    #[error("you cannot invite yourself")]
    SelfInvite,
    /// An identity appears twice in `invitees`.
    #[error("`{0}` is invited twice")]
    DuplicateInvitee(String),
    /// Inviter + invitees exceed `max_participants`.
    #[error("{count} participants exceed the limit of {max}")]
    TooManyParticipants {
        /// Inviter + invitees.
        count: usize,
        /// The configured cap.
        max: u32,
    },
    /// An invitee is not a known principal.
    #[error("unknown invitee `{0}`")]
    UnknownInvitee(String),
    /// The request named the room: rooms are named by the hub only, so a token can
    /// never grant a room outside the hub's calls.
    #[error("roomName is not allowed: the hub names the rooms of its calls")]
    RoomNameFromClient,
    /// The invitee's owner has not allowed the inviter to call it.
    #[error(
        "you may not call `{invitee}`: ask its owner to allow you (callbox-hub allow --callee {invitee} --caller {caller})"
    )]
    NotAllowed {
        /// Who was invited.
        invitee: String,
        /// Who invited.
        caller: String,
    },
    /// The caller sent more than `max_invites_per_minute` invitations in the last
    /// minute.
    #[error(
        "too many invitations: at most {per_minute} a minute; try again in {retry_after_secs} s"
    )]
    TooManyInvitations {
        /// The configured limit.
        per_minute: u32,
        /// Seconds until one more is allowed (rounded up).
        retry_after_secs: u64,
    },
    /// `reason` of `POST /api/calls/end` is not a short code.
    #[error("reason must be 1-64 characters of a-z 0-9 _ (e.g. hangup)")]
    BadReason,
    /// Another live call already uses `roomName`.
    #[error("room `{0}` is in use by another call")]
    RoomInUse(String),
    /// LiveKit could not be reached or refused to create the room.
    #[error("LiveKit unavailable: {0}")]
    LiveKitUnavailable(#[source] LiveKitError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A token could not be signed.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Result of `POST /api/calls/invitations/respond`.
#[derive(Debug)]
pub enum Responded {
    /// Accepted: how to join.
    Joined(Box<JoinInfo>),
    /// Rejected.
    Rejected,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A random 128-bit id, hex-encoded.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// True when LiveKit answered "no such room" (it was already closed).
fn room_not_found(e: &LkServiceError) -> bool {
    matches!(e, LkServiceError::Twirp(ServerError::Twirp(code)) if code.code == ServerErrorCode::NOT_FOUND)
}

/// The shared state of a running hub.
#[derive(Debug)]
pub struct Hub {
    /// Validated configuration.
    pub config: HubConfig,
    /// The database (every call on tokio's blocking pool).
    pub store: AsyncStore,
    /// RoomService + webhook verification.
    pub livekit: LiveKit,
    /// Token signing.
    pub tokens: TokenMinter,
    /// Open WebSocket connections.
    pub clients: Clients,
    /// Invitations per caller per minute.
    pub invites: InviteLimiter,
    timers: Mutex<HashMap<String, AbortHandle>>,
    shutdown: watch::Receiver<bool>,
    ws_alive: Mutex<Option<mpsc::Sender<()>>>,
}

impl Hub {
    /// Builds the state; `ws_alive` is cloned into every WebSocket task.
    pub fn new(
        config: HubConfig,
        store: AsyncStore,
        shutdown: watch::Receiver<bool>,
        ws_alive: mpsc::Sender<()>,
    ) -> Self {
        Self {
            livekit: LiveKit::new(&config.livekit),
            tokens: TokenMinter::new(&config.livekit, config.token_ttl()),
            invites: InviteLimiter::new(config.max_invites_per_minute),
            config,
            store,
            clients: Clients::default(),
            timers: Mutex::new(HashMap::new()),
            shutdown,
            ws_alive: Mutex::new(Some(ws_alive)),
        }
    }

    /// Resolves when the hub is shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// A liveness token for a new WebSocket task, or `None` once shutdown began.
    pub fn ws_alive_token(&self) -> Option<mpsc::Sender<()>> {
        self.ws_alive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops handing out WebSocket liveness tokens and aborts every ring timer.
    pub fn begin_shutdown(&self) {
        self.ws_alive
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        for (_, timer) in self.timers().drain() {
            timer.abort();
        }
    }

    fn timers(&self) -> MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `POST /api/calls/invite`: validates, creates the LiveKit room, stores the call
    /// ringing, rings every invitee and starts the ring timer.
    pub async fn invite(
        self: &Arc<Self>,
        caller: &Principal,
        req: InviteRequest,
    ) -> Result<JoinInfo, ServiceError> {
        if let Err(wait) = self
            .invites
            .check(&caller.identity, tokio::time::Instant::now())
        {
            tracing::warn!(caller = %caller.identity, "invitation refused: too many this minute");
            return Err(ServiceError::TooManyInvitations {
                per_minute: self.config.max_invites_per_minute,
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            });
        }
        if req.invitees.is_empty() {
            return Err(ServiceError::NoInvitees);
        }
        let mut seen = HashSet::new();
        for who in &req.invitees {
            if *who == caller.identity {
                return Err(ServiceError::SelfInvite);
            }
            if !seen.insert(who.as_str()) {
                return Err(ServiceError::DuplicateInvitee(who.clone()));
            }
        }
        let count = req.invitees.len() + 1;
        if count > self.config.max_participants as usize {
            return Err(ServiceError::TooManyParticipants {
                count,
                max: self.config.max_participants,
            });
        }
        if let Some(bad) = req.invitees.iter().find(|w| validate_identity(w).is_err()) {
            return Err(ServiceError::UnknownInvitee(bad.chars().take(80).collect()));
        }
        // Who exists, and whether each invitee's owner allows the caller: one database call.
        let (invitees, inviter) = (req.invitees.clone(), caller.identity.clone());
        let (known, permissions) = self
            .store
            .run(move |s| {
                let names: Vec<&str> = invitees.iter().map(String::as_str).collect();
                let known = s.principal_kinds(&names)?;
                let permissions = invitees
                    .iter()
                    .map(|invitee| contacts::permission(s, invitee, &inviter))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok::<_, StoreError>((known, permissions))
            })
            .await?;
        if let Some(missing) = req
            .invitees
            .iter()
            .find(|w| !known.contains_key(w.as_str()))
        {
            return Err(ServiceError::UnknownInvitee(missing.clone()));
        }
        if req.room_name.is_some() {
            return Err(ServiceError::RoomNameFromClient);
        }
        // Nobody the callee's owner did not allow makes it ring.
        let mut trusted = Vec::with_capacity(req.invitees.len());
        for (invitee, permission) in req.invitees.iter().zip(permissions) {
            match permission {
                Some(t) => trusted.push(t),
                None => {
                    tracing::warn!(
                        caller = %caller.identity, invitee = %invitee,
                        "invitation refused: the caller is not on the invitee's contact list"
                    );
                    return Err(ServiceError::NotAllowed {
                        invitee: invitee.clone(),
                        caller: caller.identity.clone(),
                    });
                }
            }
        }
        let call_id = new_id();
        let room = format!("callbox-{call_id}");
        let now = now_ms();
        let invitees = req.invitees.iter().map(|w| (new_id(), w.clone())).collect();
        let mut call = Call::new(
            call_id.clone(),
            room.clone(),
            req.call_type,
            caller.identity.clone(),
            invitees,
            now,
            now,
        );
        for (invitation, trusted) in call.invitations.iter_mut().zip(trusted) {
            invitation.trusted = trusted;
        }
        let (new_call, new_room) = (call.clone(), room.clone());
        self.store
            .transact(move |c| {
                if store::room_in_use(c, &new_room)? {
                    return Err(ServiceError::RoomInUse(new_room));
                }
                store::insert_call(c, &new_call)?;
                Ok(())
            })
            .await?;
        // The room first: without it nobody can join.
        let setup = async {
            self.livekit
                .create_room(&room, self.room_empty_timeout_secs())
                .await
                .map_err(ServiceError::LiveKitUnavailable)?;
            Ok::<_, ServiceError>(self.tokens.join_info(
                &call_id,
                &room,
                &caller.identity,
                caller.kind,
            )?)
        }
        .await;
        let join = match setup {
            Ok(join) => join,
            Err(e) => {
                tracing::warn!(call_id = %call_id, room = %room, error = %e, "call set-up failed");
                let reason = match e {
                    ServiceError::LiveKitUnavailable(_) => "livekit_unavailable",
                    _ => "setup_failed",
                };
                call.fail(reason, now_ms());
                let failed = call.clone();
                self.store
                    .transact(move |c| store::save_call(c, &failed))
                    .await?;
                return Err(e);
            }
        };
        let deadline = now_ms() + self.config.ring_timeout().as_millis() as i64;
        let effects = call.start_ringing(deadline);
        let ringing = call.clone();
        self.store
            .transact(move |c| store::save_call(c, &ringing))
            .await?;
        tracing::info!(
            call_id = %call_id, room = %room, inviter = %caller.identity,
            invitees = ?req.invitees, "call ringing"
        );
        self.schedule_ring_timer(&call_id, deadline);
        self.deliver(&call_id, &effects).await;
        Ok(join)
    }

    /// `POST /api/calls/invitations/respond`.
    pub async fn respond(
        self: &Arc<Self>,
        caller: &Principal,
        req: RespondRequest,
    ) -> Result<Responded, ServiceError> {
        let now = now_ms();
        let (answer, invitee) = (req.clone(), caller.identity.clone());
        let (call, effects) = self
            .store
            .transact(move |c| {
                let id = &answer.invitation_id;
                let mut call = store::load_call_by_invitation(c, id)?
                    .ok_or_else(|| CallError::InvitationNotFound(id.clone()))?;
                let effects = match answer.action {
                    RespondAction::Accept => call.accept(id, &invitee, now)?,
                    RespondAction::Reject => call.reject(id, &invitee, answer.reason, now)?,
                };
                store::save_call(c, &call)?;
                Ok::<_, ServiceError>((call, effects))
            })
            .await?;
        tracing::info!(
            call_id = %call.id, room = %call.room_name, invitee = %caller.identity,
            action = ?req.action, status = call.status.as_str(), "invitation answered"
        );
        self.deliver(&call.id, &effects).await;
        if effects.finished {
            self.finish(&call).await;
        }
        match req.action {
            RespondAction::Accept => Ok(Responded::Joined(Box::new(self.tokens.join_info(
                &call.id,
                &call.room_name,
                &caller.identity,
                caller.kind,
            )?))),
            RespondAction::Reject => Ok(Responded::Rejected),
        }
    }

    /// `POST /api/calls/end` (idempotent on a final call).
    pub async fn end(
        self: &Arc<Self>,
        caller: &Principal,
        req: EndRequest,
    ) -> Result<(), ServiceError> {
        if req.reason.as_deref().is_some_and(|r| !valid_reason(r)) {
            return Err(ServiceError::BadReason);
        }
        self.end_call(&req.call_id, Some(&caller.identity), req.reason.as_deref())
            .await
    }

    async fn end_call(
        self: &Arc<Self>,
        call_id: &str,
        caller: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), ServiceError> {
        let now = now_ms();
        let (id, by, why) = (
            call_id.to_owned(),
            caller.map(str::to_owned),
            reason.map(str::to_owned),
        );
        let (call, effects) = self
            .store
            .transact(move |c| {
                let mut call =
                    store::load_call(c, &id)?.ok_or_else(|| CallError::CallNotFound(id.clone()))?;
                let effects = call.end(by.as_deref(), why.as_deref(), now)?;
                if effects.finished {
                    store::save_call(c, &call)?;
                }
                Ok::<_, ServiceError>((call, effects))
            })
            .await?;
        if effects.finished {
            tracing::info!(
                call_id = %call.id, room = %call.room_name, by = caller.unwrap_or("hub"),
                status = call.status.as_str(), reason = call.end_reason.as_deref().unwrap_or(""),
                "call over"
            );
            self.deliver(&call.id, &effects).await;
            self.finish(&call).await;
        }
        Ok(())
    }

    /// Acts on a verified LiveKit webhook: when a participant leaves the room of a
    /// connected call (or the room closes) and fewer than two principals remain, the
    /// call ends with reason `participant_left` (or `room_finished`).
    pub async fn on_webhook(self: &Arc<Self>, notice: WebhookNotice) -> Result<(), ServiceError> {
        let Some(room) = notice.room.as_deref() else {
            return Ok(());
        };
        let reason = match notice.event.as_str() {
            "participant_left" => "participant_left",
            "room_finished" => "room_finished",
            _ => return Ok(()),
        };
        let in_room = room.to_owned();
        let call = self
            .store
            .transact(move |c| store::load_live_call_by_room(c, &in_room))
            .await?;
        let Some(call) = call.filter(|c| c.status == CallStatus::Connected) else {
            return Ok(());
        };
        if reason == "participant_left" {
            let left = notice.participant.clone();
            let Some(remaining) = self.parties_in_room(&call.id, room, left.as_deref()).await
            else {
                return Ok(());
            };
            tracing::info!(
                call_id = %call.id, room, left = left.as_deref().unwrap_or(""), remaining,
                "participant left"
            );
            if remaining >= 2 {
                return Ok(());
            }
            // Give a rejoining participant (a box rebuilding its media) time to come back.
            let hub = self.clone();
            let (call_id, room) = (call.id.clone(), room.to_owned());
            let grace = self.config.rejoin_grace();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let in_room = room.clone();
                let still_live = hub
                    .store
                    .transact(move |c| store::load_live_call_by_room(c, &in_room))
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.id == call_id && c.status == CallStatus::Connected);
                if !still_live {
                    return;
                }
                match hub.parties_in_room(&call_id, &room, None).await {
                    Some(n) if n >= 2 => {
                        tracing::info!(
                            call_id,
                            room,
                            "participant rejoined within the grace period"
                        )
                    }
                    _ => {
                        if let Err(e) = hub.end_call(&call_id, None, Some("participant_left")).await
                        {
                            tracing::warn!(call_id, room, error = %e, "cannot end the call");
                        }
                    }
                }
            });
            return Ok(());
        }
        self.end_call(&call.id, None, Some(reason)).await
    }

    /// Distinct principals in `room`, not counting the LiveKit identity `left`. `None`
    /// when LiveKit cannot be asked (logged); a missing room counts as empty.
    async fn parties_in_room(
        &self,
        call_id: &str,
        room: &str,
        left: Option<&str>,
    ) -> Option<usize> {
        let identities = match self.livekit.participant_identities(room).await {
            Ok(ids) => ids,
            Err(LiveKitError::RoomService { source, .. }) if room_not_found(&source) => Vec::new(),
            Err(e) => {
                tracing::warn!(call_id, room, error = %e, "cannot count participants");
                return None;
            }
        };
        let principals: HashSet<&str> = identities
            .iter()
            .filter(|id| Some(id.as_str()) != left)
            .map(|id| principal_of_livekit_identity(id))
            .collect();
        Some(principals.len())
    }

    /// Start-up recovery: calls stuck setting up fail, ring deadlines that passed while
    /// the hub was down are applied now, the others get timers for the rest of their time.
    pub async fn recover(self: &Arc<Self>) -> Result<(), ServiceError> {
        let now = now_ms();
        for mut call in self.store.run(|s| s.live_calls()).await? {
            match call.status {
                CallStatus::Initiating => {
                    call.fail("hub_restarted", now);
                    let failed = call.clone();
                    self.store
                        .transact(move |c| store::save_call(c, &failed))
                        .await?;
                    tracing::warn!(call_id = %call.id, room = %call.room_name, "call was being set up at shutdown: failed");
                    self.finish(&call).await;
                }
                _ if !call.has_pending() => {}
                _ if call.ring_deadline_ms <= now => {
                    tracing::info!(call_id = %call.id, room = %call.room_name, "ring deadline passed while the hub was down");
                    self.ring_timed_out(&call.id).await?;
                }
                _ => self.schedule_ring_timer(&call.id, call.ring_deadline_ms),
            }
        }
        Ok(())
    }

    fn schedule_ring_timer(self: &Arc<Self>, call_id: &str, deadline_ms: i64) {
        let wait = Duration::from_millis(deadline_ms.saturating_sub(now_ms()).max(0) as u64);
        let hub = Arc::clone(self);
        let id = call_id.to_owned();
        let task = tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            // Deregister first so finishing the call does not abort this very task.
            hub.timers().remove(&id);
            if let Err(e) = hub.ring_timed_out(&id).await {
                tracing::error!(call_id = %id, error = %e, "ring timeout handling failed");
            }
        });
        if let Some(old) = self
            .timers()
            .insert(call_id.to_owned(), task.abort_handle())
        {
            old.abort();
        }
    }

    async fn ring_timed_out(self: &Arc<Self>, call_id: &str) -> Result<(), ServiceError> {
        let now = now_ms();
        let id = call_id.to_owned();
        let outcome = self
            .store
            .transact(move |c| {
                let Some(mut call) = store::load_call(c, &id)? else {
                    return Ok(None);
                };
                let effects = call.ring_timeout(now);
                store::save_call(c, &call)?;
                Ok::<_, StoreError>(Some((call, effects)))
            })
            .await?;
        let Some((call, effects)) = outcome else {
            return Ok(());
        };
        if !effects.events.is_empty() {
            tracing::info!(
                call_id = %call.id, room = %call.room_name, status = call.status.as_str(),
                "ring timeout"
            );
        }
        self.deliver(&call.id, &effects).await;
        if effects.finished {
            self.finish(&call).await;
        }
        Ok(())
    }

    /// `events` with the inviters' display names filled into the `call_invitation`s
    /// (one database call; on a database error the names stay empty, logged).
    async fn named(&self, mut events: Vec<ServerEvent>) -> Vec<ServerEvent> {
        let inviters: HashSet<String> = events
            .iter()
            .filter_map(|event| match event {
                ServerEvent::CallInvitation {
                    inviter,
                    inviter_name: None,
                    ..
                } => Some(inviter.clone()),
                _ => None,
            })
            .collect();
        if inviters.is_empty() {
            return events;
        }
        let names = self
            .store
            .run(move |s| {
                let mut names = HashMap::new();
                for inviter in inviters {
                    let name = contacts::display_name(s, &inviter)?;
                    names.insert(inviter, name);
                }
                Ok::<_, StoreError>(names)
            })
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the display names of inviters");
                HashMap::new()
            });
        for event in &mut events {
            if let ServerEvent::CallInvitation {
                inviter,
                inviter_name: name @ None,
                ..
            } = event
            {
                *name = names.get(inviter.as_str()).cloned().flatten();
            }
        }
        events
    }

    async fn deliver(&self, call_id: &str, effects: &Effects) {
        let events = effects.events.iter().map(|(_, event)| event.clone());
        let events = self.named(events.collect()).await;
        for ((who, _), event) in effects.events.iter().zip(&events) {
            let n = self.clients.send(who, event);
            tracing::debug!(call_id, to = %who, connections = n, event = ?event, "event queued");
        }
    }

    /// A call became final: stop its ring timer and delete its room (best effort).
    async fn finish(&self, call: &Call) {
        if let Some(timer) = self.timers().remove(&call.id) {
            timer.abort();
        }
        if let Err(e) = self.livekit.delete_room(&call.room_name).await {
            tracing::warn!(call_id = %call.id, room = %call.room_name, error = %e, "could not delete LiveKit room");
        }
    }

    fn room_empty_timeout_secs(&self) -> u32 {
        let ring = self.config.ring_timeout_secs.ceil() as u32;
        crate::livekit::ROOM_EMPTY_TIMEOUT_SECS.max(ring.saturating_add(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex() {
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_id());
    }
}
