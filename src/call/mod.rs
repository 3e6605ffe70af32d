//! The call state machine: a pure function `step(state, event, now) -> (state, effects)`.
//!
//! It owns what the box is doing about calls: idle, ringing, answering, dialling out,
//! joining, in a call, rejoining after a media fault, plus do-not-disturb and the
//! microphone mute. It performs no I/O and knows no tokio, GStreamer or GPIO types: the
//! supervisor (`app.rs`) turns the outside world into [`Event`]s and carries out the
//! [`Effect`]s, timers included (a timer is an effect; its expiry comes back as
//! [`Event::TimerFired`]). What the person in front of the box sees and hears (LEDs,
//! ringtone) is a pure function of the state: [`outputs`].

use std::time::{Duration, Instant};

use callbox_protocol::{CallType, JoinInfo, RejectReason, ServerEvent};

use crate::config::AnswerPolicy;
use crate::gpio::{Button, ButtonEvent, Press};

mod model;
mod outputs;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_policy;
#[cfg(test)]
mod tests_props;
#[cfg(test)]
mod tests_volume;

pub use model::*;
pub use outputs::{Outputs, StatusLight, outputs, status_line};

/// How many times media is rebuilt with a fresh token after a fault before the call is
/// given up.
pub const MAX_REJOIN_ATTEMPTS: u32 = 3;

/// After a ring ends (cancelled, timed out, declined), a press of the call button is
/// taken as a late answer and ignored rather than as "speed-dial".
pub const LATE_PRESS_GUARD: Duration = Duration::from_secs(2);

/// How long the status LED shows a failed outgoing call before going back to idle.
pub const NOTICE_TIME: Duration = Duration::from_secs(3);

/// Delay before rejoin attempt `n` (1-based): 1 s, 2 s, 4 s.
pub fn rejoin_delay(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.saturating_sub(1).min(4))
}

/// Advances the machine by one event. Pure: same inputs, same outputs.
pub fn step(state: State, event: Event, now: Instant, settings: &Settings) -> (State, Vec<Effect>) {
    let mut m = Machine {
        s: state,
        fx: Vec::new(),
        now,
        settings,
    };
    m.on(event);
    (m.s, m.fx)
}

struct Machine<'a> {
    s: State,
    fx: Vec<Effect>,
    now: Instant,
    settings: &'a Settings,
}

impl Machine<'_> {
    fn take_phase(&mut self) -> Phase {
        std::mem::replace(&mut self.s.phase, Phase::Idle)
    }

    fn on(&mut self, event: Event) {
        match event {
            Event::HubConnected => self.s.hub_online = true,
            Event::HubDisconnected => self.s.hub_online = false,
            Event::Hub(ev) => self.on_hub(ev),
            Event::Button(b) => self.on_button(b),
            Event::Command(c) => self.on_command(c),
            Event::DndSchedule(on) => {
                self.s.dnd_scheduled = on;
                self.on_dnd_change();
            }
            Event::AnswerSucceeded { call_id, join } => match self.take_phase() {
                Phase::Answering { call } if call.call_id == call_id => {
                    self.start_media(call, join, 0, self.now)
                }
                other => {
                    // Cancelled while the accept was in flight: the hub now counts us as
                    // a participant, so leave properly.
                    self.s.phase = other;
                    self.fx.push(Effect::EndCall {
                        call_id,
                        reason: "cancelled".into(),
                    });
                }
            },
            Event::AnswerFailed { call_id, .. } => match self.take_phase() {
                Phase::Answering { call } if call.call_id == call_id => self.go_idle(),
                other => self.s.phase = other,
            },
            Event::DialSucceeded { callee, join } => match self.take_phase() {
                Phase::Dialing { callee: c } if c == callee => {
                    self.fx.push(Effect::SetTimer {
                        timer: Timer::Dial,
                        after: self.settings.dial_timeout,
                    });
                    self.s.phase = Phase::Calling {
                        call: CallInfo {
                            call_id: join.call_id.clone(),
                            invitation_id: String::new(),
                            room_name: join.room_name.clone(),
                            peer: callee,
                            peer_name: None,
                            direction: Direction::Outgoing,
                            // Speed-dial places video calls (InviteRequest's default).
                            video: true,
                            trusted: false,
                            others: Vec::new(),
                        },
                        join,
                    };
                }
                other => {
                    // Hung up before the hub answered: cancel the call it just created.
                    self.s.phase = other;
                    self.fx.push(Effect::EndCall {
                        call_id: join.call_id,
                        reason: "cancelled".into(),
                    });
                }
            },
            Event::DialFailed { callee, .. } => match self.take_phase() {
                Phase::Dialing { callee: c } if c == callee => self.call_failed(),
                other => self.s.phase = other,
            },
            Event::TokenReceived { call_id, join } => match self.take_phase() {
                Phase::Rejoining {
                    call,
                    attempt,
                    answered_at,
                } if call.call_id == call_id => self.start_media(call, join, attempt, answered_at),
                other => self.s.phase = other,
            },
            Event::TokenFailed { call_id, .. } => match self.take_phase() {
                Phase::Rejoining { call, .. } if call.call_id == call_id => {
                    self.fx.push(Effect::EndCall {
                        call_id,
                        reason: "media_failed".into(),
                    });
                    self.go_idle();
                }
                other => self.s.phase = other,
            },
            Event::MediaStarted { call_id } => match self.take_phase() {
                Phase::Joining {
                    call, answered_at, ..
                } if call.call_id == call_id => {
                    self.fx.push(Effect::CancelTimer(Timer::MediaStart));
                    self.s.phase = Phase::InCall { call, answered_at };
                }
                other => self.s.phase = other,
            },
            Event::MediaFailed { call_id, .. } => match self.take_phase() {
                Phase::Joining {
                    call,
                    attempt,
                    answered_at,
                } if call.call_id == call_id => {
                    self.fx.push(Effect::CancelTimer(Timer::MediaStart));
                    self.media_fault(call, attempt, answered_at);
                }
                Phase::InCall { call, answered_at } if call.call_id == call_id => {
                    self.media_fault(call, 0, answered_at)
                }
                other => self.s.phase = other,
            },
            Event::TimerFired(timer) => self.on_timer(timer),
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match (timer, self.take_phase()) {
            (
                Timer::MediaStart,
                Phase::Joining {
                    call,
                    attempt,
                    answered_at,
                },
            ) => self.media_fault(call, attempt, answered_at),
            (Timer::Rejoin, phase @ Phase::Rejoining { .. }) => {
                if let Some(call) = phase.call() {
                    self.fx.push(Effect::RequestToken {
                        call_id: call.call_id.clone(),
                    });
                }
                self.s.phase = phase;
            }
            (Timer::Ring, Phase::Ringing { call }) => self.reject(call, RejectReason::NoAnswer),
            (Timer::AutoAnswer, Phase::Ringing { call }) => {
                self.fx.push(Effect::CancelTimer(Timer::Ring));
                self.accept(call);
            }
            (Timer::Dial, Phase::Calling { call, .. }) => {
                self.fx.push(Effect::EndCall {
                    call_id: call.call_id,
                    reason: "no_answer".into(),
                });
                self.call_failed();
            }
            (Timer::Notice, phase) => {
                self.s.notice = None;
                self.s.phase = phase;
            }
            (_, phase) => self.s.phase = phase,
        }
    }

    fn on_hub(&mut self, ev: ServerEvent) {
        match ev {
            ServerEvent::CallInvitation {
                invitation_id,
                call_id,
                inviter,
                inviter_name,
                room_name,
                call_type,
                trusted,
            } => {
                let call = CallInfo {
                    call_id,
                    invitation_id,
                    room_name,
                    peer: inviter,
                    peer_name: inviter_name,
                    direction: Direction::Incoming,
                    video: call_type != CallType::Audio,
                    trusted,
                    others: Vec::new(),
                };
                self.on_invitation(call);
            }
            ServerEvent::CallCancelled { call_id } | ServerEvent::CallEnded { call_id, .. } => {
                match self.take_phase() {
                    Phase::Ringing { call } if call.call_id == call_id => {
                        self.cancel_ring_timers();
                        self.s.ring_ended_at = Some(self.now);
                        self.go_idle();
                    }
                    Phase::Answering { call } if call.call_id == call_id => self.go_idle(),
                    Phase::Calling { call, .. } if call.call_id == call_id => {
                        self.fx.push(Effect::CancelTimer(Timer::Dial));
                        self.call_failed();
                    }
                    phase
                        if phase.media_active()
                            && phase.call().is_some_and(|c| c.call_id == call_id) =>
                    {
                        self.stop_media(call_id);
                        self.go_idle();
                    }
                    other => self.s.phase = other,
                }
            }
            ServerEvent::InvitationAccepted {
                call_id, invitee, ..
            } => match self.take_phase() {
                Phase::Calling { call, join } if call.call_id == call_id => {
                    self.fx.push(Effect::CancelTimer(Timer::Dial));
                    self.start_media(call, join, 0, self.now);
                }
                mut phase => {
                    // A group call: somebody else joined the call the box is in.
                    if let Some(call) = phase.call_mut().filter(|c| {
                        c.call_id == call_id && c.peer != invitee && !c.others.contains(&invitee)
                    }) {
                        call.others.push(invitee);
                    }
                    self.s.phase = phase;
                }
            },
            ServerEvent::InvitationRejected { call_id, .. } => match self.take_phase() {
                Phase::Calling { call, .. } if call.call_id == call_id => {
                    self.fx.push(Effect::CancelTimer(Timer::Dial));
                    self.call_failed();
                }
                other => self.s.phase = other,
            },
        }
    }

    fn on_invitation(&mut self, call: CallInfo) {
        match self.take_phase() {
            Phase::Idle => {
                if self.s.dnd() {
                    self.fx.push(Effect::Reject {
                        call_id: call.call_id,
                        invitation_id: call.invitation_id,
                        reason: RejectReason::Dnd,
                    });
                    return;
                }
                // Answered by itself: the callers listed in `auto_answer_from`, or, with
                // no list, the callers the hub marks trusted for this box (never just
                // anyone: that would open a stranger's view into the home).
                let allowed = if self.settings.auto_answer_from.is_empty() {
                    call.trusted
                } else {
                    self.settings.auto_answer_from.contains(&call.peer)
                };
                match self.settings.policy {
                    AnswerPolicy::Auto if allowed => self.accept(call),
                    AnswerPolicy::Muted if allowed => {
                        self.s.mic_muted = true;
                        self.accept(call);
                    }
                    AnswerPolicy::AutoAfter if allowed => {
                        self.fx.push(Effect::SetTimer {
                            timer: Timer::AutoAnswer,
                            after: self.settings.answer_after,
                        });
                        self.ring(call);
                    }
                    _ => self.ring(call),
                }
            }
            // The hub re-sends a ringing invitation after a reconnect: same call.
            busy if busy.call().is_some_and(|c| c.call_id == call.call_id) => self.s.phase = busy,
            busy => {
                self.s.phase = busy;
                self.fx.push(Effect::Reject {
                    call_id: call.call_id,
                    invitation_id: call.invitation_id,
                    reason: RejectReason::Busy,
                });
            }
        }
    }

    /// Buttons mean different things in different states (the common one-button wiring).
    fn on_button(&mut self, b: ButtonEvent) {
        let ringing = matches!(self.s.phase, Phase::Ringing { .. });
        let command = match (b.button, b.press, &self.s.phase) {
            (Button::Call, Press::Long, _) if ringing => Some(Command::Decline),
            (Button::Call, Press::Short, _) if ringing => Some(Command::Answer),
            (Button::Call, Press::Short, Phase::Idle) => {
                let late = self
                    .s
                    .ring_ended_at
                    .is_some_and(|t| self.now.saturating_duration_since(t) < LATE_PRESS_GUARD);
                if late {
                    None // a late answer to a ring that just ended, not a dial
                } else {
                    self.settings.speed_dial.clone().map(Command::Dial)
                }
            }
            (Button::Call, Press::Short, _) | (Button::Hangup, _, _) => {
                if ringing {
                    Some(Command::Decline)
                } else {
                    Some(Command::Hangup)
                }
            }
            (Button::Call, Press::Long, _) => None,
            (Button::Mute, _, _) => Some(Command::Mute(!self.s.mic_muted)),
            (Button::Dnd, _, _) => Some(Command::Dnd(!self.s.dnd_manual)),
            (Button::SpeedDial, _, Phase::Idle) => {
                self.settings.speed_dial.clone().map(Command::Dial)
            }
            (Button::SpeedDial, _, _) => None,
            (Button::VolumeUp, _, _) => Some(Command::Volume(VolumeChange::Up)),
            (Button::VolumeDown, _, _) => Some(Command::Volume(VolumeChange::Down)),
        };
        if let Some(c) = command {
            self.on_command(c);
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Answer => match self.take_phase() {
                Phase::Ringing { call } => {
                    self.cancel_ring_timers();
                    self.accept(call);
                }
                other => self.s.phase = other,
            },
            Command::Decline => match self.take_phase() {
                Phase::Ringing { call } => self.reject(call, RejectReason::Declined),
                other => self.s.phase = other,
            },
            Command::Hangup => match self.take_phase() {
                Phase::Ringing { call } => self.reject(call, RejectReason::Declined),
                Phase::Dialing { .. } => self.go_idle(), // DialSucceeded will cancel it
                Phase::Calling { call, .. } => {
                    self.fx.push(Effect::CancelTimer(Timer::Dial));
                    self.fx.push(Effect::EndCall {
                        call_id: call.call_id,
                        reason: "cancelled".into(),
                    });
                    self.go_idle();
                }
                Phase::Answering { call } => {
                    self.fx.push(Effect::EndCall {
                        call_id: call.call_id,
                        reason: "hangup".into(),
                    });
                    self.go_idle();
                }
                phase if phase.media_active() => {
                    let call_id = phase.call().map(|c| c.call_id.clone()).unwrap_or_default();
                    self.stop_media(call_id.clone());
                    self.fx.push(Effect::EndCall {
                        call_id,
                        reason: "hangup".into(),
                    });
                    self.go_idle();
                }
                other => self.s.phase = other,
            },
            Command::Mute(on) => {
                if self.s.phase.call().is_some() && self.s.mic_muted != on {
                    self.s.mic_muted = on;
                    if self.s.phase.media_active() {
                        self.fx.push(Effect::SetMicMuted(on));
                    }
                }
            }
            Command::Dnd(on) => {
                self.s.dnd_manual = on;
                self.on_dnd_change();
            }
            Command::Dial(callee) => match self.take_phase() {
                Phase::Idle if self.s.hub_online => {
                    self.s.notice = None;
                    self.fx.push(Effect::Dial {
                        callee: callee.clone(),
                    });
                    self.s.phase = Phase::Dialing { callee };
                }
                Phase::Idle => self.call_failed(),
                other => self.s.phase = other,
            },
            Command::Volume(change) => {
                let step = self.settings.volume_step.max(1);
                let kind = self.s.volume_kind();
                let v = match kind {
                    VolumeKind::Call => &mut self.s.volume.call,
                    VolumeKind::Ringtone => &mut self.s.volume.ringtone,
                };
                // A button never silences a call: the person could not hear the
                // caller say so. The ring may go silent (the LEDs still show it).
                let floor = match kind {
                    VolumeKind::Call => step.min(*v),
                    VolumeKind::Ringtone => 0,
                };
                *v = match change {
                    VolumeChange::Up => v.saturating_add(step).min(100),
                    VolumeChange::Down => v.saturating_sub(step).max(floor),
                    VolumeChange::Set(p) => p.min(100),
                };
            }
        }
    }

    fn on_dnd_change(&mut self) {
        if !self.s.dnd() {
            return;
        }
        match self.take_phase() {
            Phase::Ringing { call } => self.reject(call, RejectReason::Dnd),
            other => self.s.phase = other,
        }
    }

    fn ring(&mut self, call: CallInfo) {
        self.fx.push(Effect::SetTimer {
            timer: Timer::Ring,
            after: self.settings.ring_timeout,
        });
        self.s.phase = Phase::Ringing { call };
    }

    fn cancel_ring_timers(&mut self) {
        self.fx.push(Effect::CancelTimer(Timer::Ring));
        self.fx.push(Effect::CancelTimer(Timer::AutoAnswer));
    }

    fn accept(&mut self, call: CallInfo) {
        self.fx.push(Effect::Accept {
            call_id: call.call_id.clone(),
            invitation_id: call.invitation_id.clone(),
        });
        self.s.phase = Phase::Answering { call };
    }

    fn reject(&mut self, call: CallInfo, reason: RejectReason) {
        self.cancel_ring_timers();
        self.s.ring_ended_at = Some(self.now);
        self.fx.push(Effect::Reject {
            call_id: call.call_id,
            invitation_id: call.invitation_id,
            reason,
        });
        self.go_idle();
    }

    fn start_media(&mut self, call: CallInfo, join: JoinInfo, attempt: u32, answered_at: Instant) {
        self.fx.push(Effect::StartMedia {
            call_id: call.call_id.clone(),
            join,
            mic_muted: self.s.mic_muted,
            video: call.video,
        });
        self.fx.push(Effect::SetTimer {
            timer: Timer::MediaStart,
            after: self.settings.media_start_timeout,
        });
        self.s.phase = Phase::Joining {
            call,
            attempt,
            answered_at,
        };
    }

    fn stop_media(&mut self, call_id: String) {
        self.fx.push(Effect::CancelTimer(Timer::MediaStart));
        self.fx.push(Effect::CancelTimer(Timer::Rejoin));
        self.fx.push(Effect::StopMedia { call_id });
    }

    /// Media broke after `attempt` rejoins: stop it, and either schedule the next
    /// rejoin or give the call up.
    fn media_fault(&mut self, call: CallInfo, attempt: u32, answered_at: Instant) {
        self.fx.push(Effect::StopMedia {
            call_id: call.call_id.clone(),
        });
        if attempt >= MAX_REJOIN_ATTEMPTS {
            self.fx.push(Effect::EndCall {
                call_id: call.call_id,
                reason: "media_failed".into(),
            });
            self.go_idle();
            return;
        }
        let next = attempt + 1;
        self.fx.push(Effect::SetTimer {
            timer: Timer::Rejoin,
            after: rejoin_delay(next),
        });
        self.s.phase = Phase::Rejoining {
            call,
            attempt: next,
            answered_at,
        };
    }

    /// An outgoing call did not happen: idle, with a distinct flash.
    fn call_failed(&mut self) {
        self.go_idle();
        self.s.notice = Some(Notice::CallFailed);
        self.fx.push(Effect::SetTimer {
            timer: Timer::Notice,
            after: NOTICE_TIME,
        });
    }

    fn go_idle(&mut self) {
        self.s.phase = Phase::Idle;
        self.s.mic_muted = false;
    }
}
