//! From the call state to the [`Scene`]: which scene a [`State`] shows, how a call that
//! just ended is summed up ([`ending`]), and when the idle screen blanks
//! ([`Presenter`]). Pure: the supervisor feeds it states, events and instants.

use std::time::{Duration, Instant};

use callbox_protocol::{RejectReason, ServerEvent};

use super::{Ending, Scene, ScreenConfig};
use crate::call::{Command, Event, Phase, State};

/// The scene for `state` when no ended-call summary or blanking applies.
pub fn scene_for(state: &State, name: &str, hub_url: &str) -> Scene {
    match &state.phase {
        Phase::Idle => Scene::Idle {
            name: name.to_owned(),
            hub_online: state.hub_online,
            hub_url: hub_url.to_owned(),
            dnd: state.dnd(),
        },
        Phase::Ringing { call } => Scene::Ringing {
            peer: call.peer.clone(),
            video: call.video,
        },
        Phase::Dialing { callee } => Scene::Calling {
            peer: callee.clone(),
        },
        Phase::Calling { call, .. } => Scene::Calling {
            peer: call.peer.clone(),
        },
        Phase::Answering { call }
        | Phase::Joining { call, .. }
        | Phase::InCall { call, .. }
        | Phase::Rejoining { call, .. } => Scene::InCall {
            peer: call.peer.clone(),
            elapsed: Duration::ZERO,
            muted: state.mic_muted,
            video: call.video,
            connecting: !matches!(state.phase, Phase::InCall { .. }),
        },
    }
}

/// How the call of `before` ended, when `event` took the box from `before` to idle.
pub fn ending(before: &Phase, event: &Event, now: Instant) -> Option<Ending> {
    let call = before.call();
    match before {
        Phase::Ringing { call } => Some(match event {
            Event::Command(Command::Decline) | Event::Button(_) => Ending::Declined {
                peer: call.peer.clone(),
            },
            _ => Ending::Missed {
                peer: call.peer.clone(),
            },
        }),
        Phase::Dialing { callee } => Some(Ending::NotAnswered {
            peer: callee.clone(),
            reason: None,
        }),
        Phase::Calling { call, .. } => match event {
            // The box cancelled its own call: nothing to report.
            Event::Command(Command::Hangup) | Event::Button(_) => None,
            Event::Hub(ServerEvent::InvitationRejected { reason, .. }) => {
                Some(Ending::NotAnswered {
                    peer: call.peer.clone(),
                    reason: Some(
                        match reason {
                            RejectReason::Busy => "busy",
                            RejectReason::Declined => "declined",
                            RejectReason::Dnd => "declined",
                            RejectReason::NoAnswer => "no_answer",
                        }
                        .to_owned(),
                    ),
                })
            }
            _ => Some(Ending::NotAnswered {
                peer: call.peer.clone(),
                reason: None,
            }),
        },
        _ => call.map(|c| Ending::Ended {
            peer: c.peer.clone(),
            duration: before
                .answered_at()
                .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
        }),
    }
}

/// Decides the scene over time: the state's scene, an ended-call summary for
/// `screen.ended_secs`, and blanking after `screen.blank_after_secs` without activity.
#[derive(Debug)]
pub struct Presenter {
    name: String,
    hub_url: String,
    ended_for: Duration,
    blank_after: Option<Duration>,
    ended: Option<(Ending, Instant)>,
    last_activity: Instant,
}

impl Presenter {
    /// A presenter for `config`, the hub at `hub_url`, starting at `now`.
    pub fn new(config: &ScreenConfig, hub_url: &str, now: Instant) -> Self {
        Self {
            name: config.name.clone(),
            hub_url: hub_url.to_owned(),
            ended_for: Duration::from_secs(config.ended_secs),
            blank_after: (config.blank_after_secs > 0)
                .then(|| Duration::from_secs(config.blank_after_secs)),
            ended: None,
            last_activity: now,
        }
    }

    /// Takes note of `event`, which took the state from `before` to `after`.
    pub fn observe(&mut self, before: &Phase, event: &Event, after: &State, now: Instant) {
        let wakes = matches!(
            event,
            Event::Button(_) | Event::Command(_) | Event::Hub(ServerEvent::CallInvitation { .. })
        );
        if wakes || !matches!(after.phase, Phase::Idle) {
            self.last_activity = now;
        }
        if !matches!(before, Phase::Idle) && matches!(after.phase, Phase::Idle) {
            self.ended = ending(before, event, now).map(|e| (e, now));
            self.last_activity = now;
        } else if !matches!(after.phase, Phase::Idle) {
            self.ended = None;
        }
    }

    /// The scene to show for `state` at `now`.
    pub fn scene(&mut self, state: &State, now: Instant) -> Scene {
        if !matches!(state.phase, Phase::Idle) {
            return scene_for(state, &self.name, &self.hub_url);
        }
        if let Some((ending, at)) = &self.ended {
            if now.saturating_duration_since(*at) < self.ended_for {
                return Scene::Ended(ending.clone());
            }
            self.ended = None;
        }
        // An offline box keeps saying so: whoever comes to fix it must see why.
        match self.blank_after {
            Some(after)
                if state.hub_online
                    && now.saturating_duration_since(self.last_activity) >= after =>
            {
                Scene::Blank
            }
            _ => scene_for(state, &self.name, &self.hub_url),
        }
    }
}
