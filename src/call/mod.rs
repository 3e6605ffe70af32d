//! The call state machine: a pure function `step(state, event, now) -> (state, effects)`.
//!
//! It owns what the box is doing about calls (idle, answering, joining, in a call,
//! rejoining after a media fault) and decides what to do next. It performs no I/O and
//! knows no tokio, GStreamer or GPIO types: the supervisor (`app.rs`) turns the outside
//! world into [`Event`]s and carries out the [`Effect`]s, timers included (a timer is an
//! effect; its expiry comes back as [`Event::TimerFired`]).

use std::time::{Duration, Instant};

use callbox_protocol::{JoinInfo, RejectReason, ServerEvent};

use crate::config::AnswerPolicy;

#[cfg(test)]
mod tests;

/// How many times media is rebuilt with a fresh token after a fault before the call is
/// given up.
pub const MAX_REJOIN_ATTEMPTS: u32 = 3;

/// Delay before rejoin attempt `n` (1-based): 1 s, 2 s, 4 s.
pub fn rejoin_delay(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(4))
}

/// The call the box is busy with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// Hub call id.
    pub call_id: String,
    /// The invitation the box answered.
    pub invitation_id: String,
    /// LiveKit room.
    pub room_name: String,
    /// Who called.
    pub inviter: String,
}

/// What the box is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No call; ready for one.
    Idle,
    /// Accept sent to the hub; waiting for the join tokens.
    Answering {
        /// The call.
        call: CallInfo,
    },
    /// Media is starting (attempt 0) or restarting after a fault (attempt ≥ 1).
    Joining {
        /// The call.
        call: CallInfo,
        /// Rejoin attempt, 0 for the first join.
        attempt: u32,
        /// When the call was answered, for the call duration.
        answered_at: Instant,
    },
    /// Media is up.
    InCall {
        /// The call.
        call: CallInfo,
        /// When the call was answered.
        answered_at: Instant,
    },
    /// Media failed; waiting for the back-off timer, then a fresh token.
    Rejoining {
        /// The call.
        call: CallInfo,
        /// The attempt about to be made (1-based).
        attempt: u32,
        /// When the call was answered.
        answered_at: Instant,
    },
}

impl Phase {
    /// The call, when there is one.
    pub fn call(&self) -> Option<&CallInfo> {
        match self {
            Phase::Idle => None,
            Phase::Answering { call }
            | Phase::Joining { call, .. }
            | Phase::InCall { call, .. }
            | Phase::Rejoining { call, .. } => Some(call),
        }
    }

    /// A short snake_case name for status output and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Answering { .. } => "answering",
            Phase::Joining { .. } => "joining",
            Phase::InCall { .. } => "in_call",
            Phase::Rejoining { .. } => "rejoining",
        }
    }
}

/// The machine's whole state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// What the box is doing about calls.
    pub phase: Phase,
    /// Whether the hub's WebSocket is up.
    pub hub_online: bool,
    /// From `[call] answer`.
    pub policy: AnswerPolicy,
}

impl State {
    /// Idle, hub offline.
    pub fn new(policy: AnswerPolicy) -> Self {
        Self {
            phase: Phase::Idle,
            hub_online: false,
            policy,
        }
    }
}

/// Timers the machine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Media must be up by then, or the call is given up.
    MediaStart,
    /// Back-off before the next rejoin attempt.
    Rejoin,
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The hub's WebSocket is up.
    HubConnected,
    /// The hub's WebSocket dropped (media, if any, keeps going through LiveKit).
    HubDisconnected,
    /// An event from the hub.
    Hub(ServerEvent),
    /// The hub accepted our answer and sent join tokens.
    AnswerSucceeded {
        /// The call.
        call_id: String,
        /// Tokens and URL.
        join: JoinInfo,
    },
    /// The answer request failed (network, 4xx/5xx).
    AnswerFailed {
        /// The call.
        call_id: String,
        /// For the log.
        error: String,
    },
    /// Fresh tokens for a rejoin arrived.
    TokenReceived {
        /// The call.
        call_id: String,
        /// Tokens and URL.
        join: JoinInfo,
    },
    /// The token request for a rejoin failed.
    TokenFailed {
        /// The call.
        call_id: String,
        /// For the log.
        error: String,
    },
    /// Media pipelines are playing and joined the room.
    MediaStarted {
        /// The call.
        call_id: String,
    },
    /// Media failed (element error, LiveKit dropped us, …).
    MediaFailed {
        /// The call.
        call_id: String,
        /// For the log.
        error: String,
    },
    /// A timer set by [`Effect::SetTimer`] expired.
    TimerFired(Timer),
}

/// Something the supervisor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `POST /api/calls/invitations/respond` with `accept`; the result comes back as
    /// [`Event::AnswerSucceeded`] or [`Event::AnswerFailed`].
    Accept {
        /// The call.
        call_id: String,
        /// The invitation.
        invitation_id: String,
    },
    /// `POST /api/calls/invitations/respond` with `reject`; fire and forget.
    Reject {
        /// The call.
        call_id: String,
        /// The invitation.
        invitation_id: String,
        /// Why.
        reason: RejectReason,
    },
    /// `POST /api/calls/end`; fire and forget.
    EndCall {
        /// The call.
        call_id: String,
        /// Why, e.g. `media_failed`.
        reason: String,
    },
    /// `POST /api/calls/{callId}/token`; result as [`Event::TokenReceived`]/[`Event::TokenFailed`].
    RequestToken {
        /// The call.
        call_id: String,
    },
    /// Build and start the publish and subscribe pipelines.
    StartMedia {
        /// The call.
        call_id: String,
        /// Tokens and URL.
        join: JoinInfo,
    },
    /// Tear all media down.
    StopMedia {
        /// The call.
        call_id: String,
    },
    /// Start (or restart) a timer.
    SetTimer {
        /// Which.
        timer: Timer,
        /// After how long.
        after: Duration,
    },
    /// Cancel a timer; a no-op when it is not running.
    CancelTimer(Timer),
}

/// Tunables the machine needs that are not state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long media may take to come up, from `[media] start_timeout_ms`.
    pub media_start_timeout: Duration,
}

/// Advances the machine by one event. Pure: same inputs, same outputs.
pub fn step(state: State, event: Event, now: Instant, limits: &Limits) -> (State, Vec<Effect>) {
    let mut effects = Vec::new();
    let State {
        phase,
        mut hub_online,
        policy,
    } = state;
    let phase = match event {
        Event::HubConnected => {
            hub_online = true;
            phase
        }
        Event::HubDisconnected => {
            hub_online = false;
            phase
        }
        Event::Hub(ev) => on_hub_event(phase, ev, policy, &mut effects),
        Event::AnswerSucceeded { call_id, join } => match phase {
            Phase::Answering { call } if call.call_id == call_id => {
                start_media(call_id, join, limits, &mut effects);
                Phase::Joining {
                    call,
                    attempt: 0,
                    answered_at: now,
                }
            }
            other => {
                // The call was cancelled while the accept was in flight: the hub now
                // counts us as a participant, so leave properly.
                effects.push(Effect::EndCall {
                    call_id,
                    reason: "cancelled".into(),
                });
                other
            }
        },
        Event::AnswerFailed { call_id, .. } => match phase {
            Phase::Answering { call } if call.call_id == call_id => Phase::Idle,
            other => other,
        },
        Event::TokenReceived { call_id, join } => match phase {
            Phase::Rejoining {
                call,
                attempt,
                answered_at,
            } if call.call_id == call_id => {
                start_media(call_id, join, limits, &mut effects);
                Phase::Joining {
                    call,
                    attempt,
                    answered_at,
                }
            }
            other => other,
        },
        Event::TokenFailed { call_id, .. } => match phase {
            Phase::Rejoining { call, .. } if call.call_id == call_id => {
                effects.push(Effect::EndCall {
                    call_id,
                    reason: "media_failed".into(),
                });
                Phase::Idle
            }
            other => other,
        },
        Event::MediaStarted { call_id } => match phase {
            Phase::Joining {
                call, answered_at, ..
            } if call.call_id == call_id => {
                effects.push(Effect::CancelTimer(Timer::MediaStart));
                Phase::InCall { call, answered_at }
            }
            other => other,
        },
        Event::MediaFailed { call_id, .. } => match phase {
            Phase::Joining {
                call,
                attempt,
                answered_at,
            } if call.call_id == call_id => {
                effects.push(Effect::CancelTimer(Timer::MediaStart));
                media_fault(call, attempt, answered_at, &mut effects)
            }
            Phase::InCall { call, answered_at } if call.call_id == call_id => {
                media_fault(call, 0, answered_at, &mut effects)
            }
            other => other,
        },
        Event::TimerFired(Timer::MediaStart) => match phase {
            Phase::Joining {
                call,
                attempt,
                answered_at,
            } => media_fault(call, attempt, answered_at, &mut effects),
            other => other,
        },
        Event::TimerFired(Timer::Rejoin) => match phase {
            Phase::Rejoining { ref call, .. } => {
                effects.push(Effect::RequestToken {
                    call_id: call.call_id.clone(),
                });
                phase
            }
            other => other,
        },
    };
    (
        State {
            phase,
            hub_online,
            policy,
        },
        effects,
    )
}

/// Starts media with a deadline for it to come up.
fn start_media(call_id: String, join: JoinInfo, limits: &Limits, effects: &mut Vec<Effect>) {
    effects.push(Effect::StartMedia { call_id, join });
    effects.push(Effect::SetTimer {
        timer: Timer::MediaStart,
        after: limits.media_start_timeout,
    });
}

/// Media broke after `attempt` rejoins: stop it, and either schedule the next rejoin or
/// give the call up.
fn media_fault(
    call: CallInfo,
    attempt: u32,
    answered_at: Instant,
    effects: &mut Vec<Effect>,
) -> Phase {
    effects.push(Effect::StopMedia {
        call_id: call.call_id.clone(),
    });
    if attempt >= MAX_REJOIN_ATTEMPTS {
        effects.push(Effect::EndCall {
            call_id: call.call_id,
            reason: "media_failed".into(),
        });
        return Phase::Idle;
    }
    let next = attempt + 1;
    effects.push(Effect::SetTimer {
        timer: Timer::Rejoin,
        after: rejoin_delay(next),
    });
    Phase::Rejoining {
        call,
        attempt: next,
        answered_at,
    }
}

fn on_hub_event(
    phase: Phase,
    ev: ServerEvent,
    policy: AnswerPolicy,
    effects: &mut Vec<Effect>,
) -> Phase {
    match ev {
        ServerEvent::CallInvitation {
            invitation_id,
            call_id,
            inviter,
            room_name,
            ..
        } => match phase {
            Phase::Idle => match policy {
                AnswerPolicy::Auto => {
                    effects.push(Effect::Accept {
                        call_id: call_id.clone(),
                        invitation_id: invitation_id.clone(),
                    });
                    Phase::Answering {
                        call: CallInfo {
                            call_id,
                            invitation_id,
                            room_name,
                            inviter,
                        },
                    }
                }
            },
            // The hub re-sends a ringing invitation after a reconnect: same call, nothing new.
            busy if busy.call().is_some_and(|c| c.call_id == call_id) => busy,
            busy => {
                effects.push(Effect::Reject {
                    call_id,
                    invitation_id,
                    reason: RejectReason::Busy,
                });
                busy
            }
        },
        ServerEvent::CallCancelled { call_id } | ServerEvent::CallEnded { call_id, .. } => {
            match phase {
                Phase::Idle => Phase::Idle,
                Phase::Answering { call } if call.call_id == call_id => Phase::Idle,
                Phase::Joining { call, .. }
                | Phase::InCall { call, .. }
                | Phase::Rejoining { call, .. }
                    if call.call_id == call_id =>
                {
                    effects.push(Effect::CancelTimer(Timer::MediaStart));
                    effects.push(Effect::CancelTimer(Timer::Rejoin));
                    effects.push(Effect::StopMedia { call_id });
                    Phase::Idle
                }
                other => other,
            }
        }
        // About calls the box placed; not in this version.
        ServerEvent::InvitationAccepted { .. } | ServerEvent::InvitationRejected { .. } => phase,
    }
}
