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

use callbox_protocol::{JoinInfo, RejectReason, ServerEvent};

use crate::config::AnswerPolicy;
use crate::gpio::{Button, ButtonEvent, Press};

mod outputs;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_policy;

pub use outputs::{Outputs, StatusLight, outputs};

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

/// Who started the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Somebody called the box.
    Incoming,
    /// The box dialled out.
    Outgoing,
}

/// The call the box is busy with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// Hub call id.
    pub call_id: String,
    /// The invitation the box answers (incoming calls; empty for outgoing).
    pub invitation_id: String,
    /// LiveKit room.
    pub room_name: String,
    /// The other party: the caller, or whom the box dialled.
    pub peer: String,
    /// Incoming or outgoing.
    pub direction: Direction,
}

/// What the box is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No call; ready for one.
    Idle,
    /// An invitation is ringing; waiting for a press, the auto-answer timer or the ring
    /// timeout.
    Ringing {
        /// The call.
        call: CallInfo,
    },
    /// Accept sent to the hub; waiting for the join tokens.
    Answering {
        /// The call.
        call: CallInfo,
    },
    /// `POST /api/calls/invite` in flight for an outgoing call.
    Dialing {
        /// Whom.
        callee: String,
    },
    /// Outgoing call ringing at the callee; media starts when they accept.
    Calling {
        /// The call.
        call: CallInfo,
        /// Tokens from the invite response.
        join: JoinInfo,
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
            Phase::Idle | Phase::Dialing { .. } => None,
            Phase::Ringing { call }
            | Phase::Answering { call }
            | Phase::Calling { call, .. }
            | Phase::Joining { call, .. }
            | Phase::InCall { call, .. }
            | Phase::Rejoining { call, .. } => Some(call),
        }
    }

    /// A short snake_case name for status output and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Ringing { .. } => "ringing",
            Phase::Answering { .. } => "answering",
            Phase::Dialing { .. } => "dialing",
            Phase::Calling { .. } => "calling",
            Phase::Joining { .. } => "joining",
            Phase::InCall { .. } => "in_call",
            Phase::Rejoining { .. } => "rejoining",
        }
    }

    /// When the call was answered (joining, in call, rejoining).
    pub fn answered_at(&self) -> Option<Instant> {
        match self {
            Phase::Joining { answered_at, .. }
            | Phase::InCall { answered_at, .. }
            | Phase::Rejoining { answered_at, .. } => Some(*answered_at),
            _ => None,
        }
    }

    fn media_active(&self) -> bool {
        matches!(
            self,
            Phase::Joining { .. } | Phase::InCall { .. } | Phase::Rejoining { .. }
        )
    }
}

/// A short-lived message the status LED shows after something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// An outgoing call was rejected, timed out or could not be placed.
    CallFailed,
}

/// The machine's whole state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// What the box is doing about calls.
    pub phase: Phase,
    /// Whether the hub's WebSocket is up.
    pub hub_online: bool,
    /// Do-not-disturb switched on by the button or `callbox ctl dnd on`.
    pub dnd_manual: bool,
    /// Do-not-disturb on because of the daily schedule.
    pub dnd_scheduled: bool,
    /// The microphone is muted (only meaningful during a call).
    pub mic_muted: bool,
    /// When the last ring ended (for [`LATE_PRESS_GUARD`]).
    pub ring_ended_at: Option<Instant>,
    /// A failure the status LED is showing.
    pub notice: Option<Notice>,
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    /// Idle, hub offline, DND off, not muted.
    pub fn new() -> Self {
        Self {
            phase: Phase::Idle,
            hub_online: false,
            dnd_manual: false,
            dnd_scheduled: false,
            mic_muted: false,
            ring_ended_at: None,
            notice: None,
        }
    }

    /// Do-not-disturb, by button or schedule.
    pub fn dnd(&self) -> bool {
        self.dnd_manual || self.dnd_scheduled
    }
}

/// Timers the machine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Media must be up by then, or the call is given up.
    MediaStart,
    /// Back-off before the next rejoin attempt.
    Rejoin,
    /// Nobody answered the ringing box: reject as `no_answer`.
    Ring,
    /// `auto_after` policy: answer now.
    AutoAnswer,
    /// Nobody answered the box's outgoing call.
    Dial,
    /// Stop showing a [`Notice`].
    Notice,
}

/// A command from the person at the box (via a button) or `callbox ctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Answer the ringing call.
    Answer,
    /// Decline the ringing call.
    Decline,
    /// End the current call (or cancel the outgoing one).
    Hangup,
    /// Mute (`true`) or unmute the microphone.
    Mute(bool),
    /// Switch do-not-disturb on or off.
    Dnd(bool),
    /// Call this identity.
    Dial(String),
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
    /// A debounced button press; mapped to a [`Command`] by the state it arrives in.
    Button(ButtonEvent),
    /// A command from `callbox ctl`.
    Command(Command),
    /// The do-not-disturb schedule switched on or off.
    DndSchedule(bool),
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
    /// The hub placed our outgoing call.
    DialSucceeded {
        /// Whom we called.
        callee: String,
        /// Call id, room and our tokens.
        join: JoinInfo,
    },
    /// The invite request failed (unknown identity, hub down…).
    DialFailed {
        /// Whom we called.
        callee: String,
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
    /// `POST /api/calls/invite`; result as [`Event::DialSucceeded`]/[`Event::DialFailed`].
    Dial {
        /// Whom.
        callee: String,
    },
    /// `POST /api/calls/end`; fire and forget.
    EndCall {
        /// The call.
        call_id: String,
        /// Why, e.g. `hangup`, `media_failed`.
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
        /// Start with the microphone muted.
        mic_muted: bool,
    },
    /// Tear all media down.
    StopMedia {
        /// The call.
        call_id: String,
    },
    /// Mute or unmute the published microphone of the running call.
    SetMicMuted(bool),
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

/// Settings the machine needs that are not state (from the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How the box answers.
    pub policy: AnswerPolicy,
    /// `auto_after`: ring this long, then answer.
    pub answer_after: Duration,
    /// Callers that may be auto-answered; empty means everyone. Others ring.
    pub auto_answer_from: Vec<String>,
    /// How long the box rings before rejecting as `no_answer`.
    pub ring_timeout: Duration,
    /// Who the call button (when idle) and the speed-dial button call.
    pub speed_dial: Option<String>,
    /// How long an outgoing call may ring before the box gives up.
    pub dial_timeout: Duration,
    /// How long media may take to come up.
    pub media_start_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policy: AnswerPolicy::Auto,
            answer_after: Duration::from_secs(5),
            auto_answer_from: Vec::new(),
            ring_timeout: Duration::from_secs(45),
            speed_dial: None,
            dial_timeout: Duration::from_secs(60),
            media_start_timeout: Duration::from_secs(20),
        }
    }
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
                Phase::Answering { call } if call.call_id == call_id => self.to_idle(),
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
                            direction: Direction::Outgoing,
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
                    self.to_idle();
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
                room_name,
                ..
            } => {
                let call = CallInfo {
                    call_id,
                    invitation_id,
                    room_name,
                    peer: inviter,
                    direction: Direction::Incoming,
                };
                self.on_invitation(call);
            }
            ServerEvent::CallCancelled { call_id } | ServerEvent::CallEnded { call_id, .. } => {
                match self.take_phase() {
                    Phase::Ringing { call } if call.call_id == call_id => {
                        self.cancel_ring_timers();
                        self.s.ring_ended_at = Some(self.now);
                        self.to_idle();
                    }
                    Phase::Answering { call } if call.call_id == call_id => self.to_idle(),
                    Phase::Calling { call, .. } if call.call_id == call_id => {
                        self.fx.push(Effect::CancelTimer(Timer::Dial));
                        self.call_failed();
                    }
                    phase
                        if phase.media_active()
                            && phase.call().is_some_and(|c| c.call_id == call_id) =>
                    {
                        self.stop_media(call_id);
                        self.to_idle();
                    }
                    other => self.s.phase = other,
                }
            }
            ServerEvent::InvitationAccepted { call_id, .. } => match self.take_phase() {
                Phase::Calling { call, join } if call.call_id == call_id => {
                    self.fx.push(Effect::CancelTimer(Timer::Dial));
                    self.start_media(call, join, 0, self.now);
                }
                other => self.s.phase = other,
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
                let allowed = self.settings.auto_answer_from.is_empty()
                    || self.settings.auto_answer_from.contains(&call.peer);
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
                Phase::Dialing { .. } => self.to_idle(), // DialSucceeded will cancel it
                Phase::Calling { call, .. } => {
                    self.fx.push(Effect::CancelTimer(Timer::Dial));
                    self.fx.push(Effect::EndCall {
                        call_id: call.call_id,
                        reason: "cancelled".into(),
                    });
                    self.to_idle();
                }
                Phase::Answering { call } => {
                    self.fx.push(Effect::EndCall {
                        call_id: call.call_id,
                        reason: "hangup".into(),
                    });
                    self.to_idle();
                }
                phase if phase.media_active() => {
                    let call_id = phase.call().map(|c| c.call_id.clone()).unwrap_or_default();
                    self.stop_media(call_id.clone());
                    self.fx.push(Effect::EndCall {
                        call_id,
                        reason: "hangup".into(),
                    });
                    self.to_idle();
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
        self.to_idle();
    }

    fn start_media(&mut self, call: CallInfo, join: JoinInfo, attempt: u32, answered_at: Instant) {
        self.fx.push(Effect::StartMedia {
            call_id: call.call_id.clone(),
            join,
            mic_muted: self.s.mic_muted,
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
            self.to_idle();
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
        self.to_idle();
        self.s.notice = Some(Notice::CallFailed);
        self.fx.push(Effect::SetTimer {
            timer: Timer::Notice,
            after: NOTICE_TIME,
        });
    }

    fn to_idle(&mut self) {
        self.s.phase = Phase::Idle;
        self.s.mic_muted = false;
    }
}
