//! The call state machine's vocabulary: phases, state, events, effects, timers,
//! commands and settings. Plain data; the transitions live in `mod.rs`.

use std::time::{Duration, Instant};

use callbox_protocol::{JoinInfo, RejectReason, ServerEvent};

use crate::config::AnswerPolicy;
use crate::gpio::ButtonEvent;

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
    /// The other party: the caller, or whom the box dialled (an identity).
    pub peer: String,
    /// The caller's display name, when the hub sent one (`inviterName`).
    pub peer_name: Option<String>,
    /// Incoming or outgoing.
    pub direction: Direction,
    /// A video call: the camera is published. `false` for an invitation with
    /// `callType: "audio"`: the camera is never opened and the privacy LED stays dark.
    pub video: bool,
    /// The hub marked the caller a trusted contact of this box (`trusted` in the
    /// invitation): with `answer = "auto"` and no `auto_answer_from`, only trusted
    /// callers are answered without a press. False for outgoing calls.
    pub trusted: bool,
    /// The other invitees who joined the call (a group call), in the order the hub
    /// said so (`invitation_accepted`); not `peer`, never the box itself.
    pub others: Vec<String>,
}

impl CallInfo {
    /// Who the box talks to, for a person: `peer`'s display name, else its identity.
    pub fn peer_display(&self) -> &str {
        self.peer_name.as_deref().unwrap_or(&self.peer)
    }

    /// Everybody the box talks to: the peer (by its display name), then the others
    /// (`"Grandma, bob"`).
    pub fn party(&self) -> String {
        std::iter::once(self.peer_display())
            .chain(self.others.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", ")
    }
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

    /// The current call, to change it.
    pub fn call_mut(&mut self) -> Option<&mut CallInfo> {
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

    pub(super) fn media_active(&self) -> bool {
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
    /// The speaker's volumes.
    pub volume: Volume,
}

/// The speaker's two volumes, % (0–100): the ringtone's while ringing, the call's
/// otherwise ([`Volume::in_effect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    /// In calls (and when calling out).
    pub call: u8,
    /// While ringing; the volume buttons change it when idle too, as on a phone.
    pub ringtone: u8,
}

impl Default for Volume {
    /// `[audio]`'s defaults: 80 % and 80 %.
    fn default() -> Self {
        Self {
            call: 80,
            ringtone: 80,
        }
    }
}

/// Which of the two volumes a volume button changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeKind {
    /// The call's.
    Call,
    /// The ringtone's.
    Ringtone,
}

/// A change of the volume in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeChange {
    /// One `volume_step` louder (at most 100 %).
    Up,
    /// One `volume_step` quieter. The call's volume stops at one step (a button never
    /// silences a call); the ringtone's goes down to 0 (a silent ring).
    Down,
    /// Exactly this %, 0–100 (`callbox ctl volume N`).
    Set(u8),
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
            volume: Volume::default(),
        }
    }

    /// Which volume the buttons change now: the ringtone's while ringing or idle, the
    /// call's from dialling out or answering until the call ends.
    pub fn volume_kind(&self) -> VolumeKind {
        match self.phase {
            Phase::Idle | Phase::Ringing { .. } => VolumeKind::Ringtone,
            _ => VolumeKind::Call,
        }
    }

    /// The speaker's volume now, %: the ringtone's while ringing, else the call's.
    pub fn speaker_volume(&self) -> u8 {
        match self.phase {
            Phase::Ringing { .. } => self.volume.ringtone,
            _ => self.volume.call,
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
    /// Change the volume in effect ([`State::volume_kind`]).
    Volume(VolumeChange),
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
        /// Publish the camera (a video call); `false`: audio only, the camera unopened.
        video: bool,
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
    /// What one volume button press changes, % (`audio.volume_step`).
    pub volume_step: u8,
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
            volume_step: 10,
        }
    }
}
