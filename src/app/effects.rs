//! Carries out the state machine's effects: REST calls to the hub (their results come
//! back as events), media commands and timers.

use crate::call::{Effect, Event};
use crate::media::{MediaCommand, MediaEngine};
use crate::signaling::HubClient;
use tokio::sync::mpsc::Sender;

use super::timers::Timers;

/// Starts `effect`; never waits on the network (hub requests run as their own tasks).
pub(super) fn execute(
    effect: Effect,
    hub: &HubClient,
    engine: &MediaEngine,
    timers: &mut Timers,
    events: &Sender<Event>,
) {
    match effect {
        Effect::Accept {
            call_id,
            invitation_id,
        } => {
            tracing::info!(call_id, invitation_id, "answering");
            let (hub, tx) = (hub.clone(), events.clone());
            tokio::spawn(async move {
                let ev = match hub.accept(&invitation_id).await {
                    Ok(join) => Event::AnswerSucceeded { call_id, join },
                    Err(e) => {
                        tracing::error!(call_id, error = %e, "answer failed");
                        Event::AnswerFailed {
                            call_id,
                            error: e.to_string(),
                        }
                    }
                };
                let _ = tx.send(ev).await;
            });
        }
        Effect::Reject {
            call_id,
            invitation_id,
            reason,
        } => {
            tracing::info!(call_id, invitation_id, ?reason, "rejecting invitation");
            let hub = hub.clone();
            tokio::spawn(async move {
                if let Err(e) = hub.reject(&invitation_id, reason).await {
                    tracing::warn!(call_id, error = %e, "reject failed");
                }
            });
        }
        Effect::EndCall { call_id, reason } => {
            tracing::info!(call_id, reason, "ending call");
            let hub = hub.clone();
            tokio::spawn(async move {
                if let Err(e) = hub.end(&call_id, &reason).await {
                    tracing::warn!(call_id, error = %e, "end failed");
                }
            });
        }
        Effect::RequestToken { call_id } => {
            tracing::info!(call_id, "asking the hub for fresh tokens to rejoin");
            let (hub, tx) = (hub.clone(), events.clone());
            tokio::spawn(async move {
                let ev = match hub.token(&call_id).await {
                    Ok(join) => Event::TokenReceived { call_id, join },
                    Err(e) => Event::TokenFailed {
                        call_id,
                        error: e.to_string(),
                    },
                };
                let _ = tx.send(ev).await;
            });
        }
        Effect::Dial { callee } => {
            tracing::info!(callee, "dialling");
            let (hub, tx) = (hub.clone(), events.clone());
            tokio::spawn(async move {
                let ev = match hub.invite(&callee).await {
                    Ok(join) => Event::DialSucceeded { callee, join },
                    Err(e) => {
                        tracing::error!(callee, error = %e, "call could not be placed");
                        Event::DialFailed {
                            callee,
                            error: e.to_string(),
                        }
                    }
                };
                let _ = tx.send(ev).await;
            });
        }
        Effect::StartMedia {
            call_id,
            join,
            mic_muted,
            video,
        } => engine.send(MediaCommand::Start {
            call_id,
            join,
            mic_muted,
            video,
        }),
        Effect::SetMicMuted(muted) => engine.send(MediaCommand::SetMicMuted(muted)),
        Effect::StopMedia { call_id } => engine.send(MediaCommand::Stop { call_id }),
        Effect::SetTimer { timer, after } => timers.set(timer, after),
        Effect::CancelTimer(timer) => timers.cancel(timer),
    }
}
