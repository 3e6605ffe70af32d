//! What the box shows and plays for a given call state: the status LED's meaning, the
//! ringtone, the mute and privacy LEDs. Pure; the supervisor applies changes.

use super::{Notice, Phase, State};

/// The meaning the status LED shows; the config maps each to a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusLight {
    /// No hub connection.
    Offline,
    /// Ready for calls.
    Idle,
    /// Ready, but do-not-disturb is on.
    Dnd,
    /// An incoming call is ringing.
    Ringing,
    /// Dialling out, waiting for the callee.
    Calling,
    /// In a call (answering, joining, connected, rejoining).
    InCall,
    /// In a call with the microphone muted.
    InCallMuted,
    /// Something failed (an outgoing call was rejected or timed out).
    Error,
}

/// Everything user-visible, as a function of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Outputs {
    /// The status LED's meaning.
    pub status: StatusLight,
    /// The ringtone plays.
    pub ringtone: bool,
    /// The microphone is muted in a call (mute LED lit).
    pub muted: bool,
    /// The camera is being published (privacy LED lit).
    pub camera_live: bool,
    /// The speaker's volume, % ([`State::speaker_volume`]).
    pub speaker_volume: u8,
}

/// The outputs for `s`.
pub fn outputs(s: &State) -> Outputs {
    let in_call = matches!(
        s.phase,
        Phase::Answering { .. }
            | Phase::Joining { .. }
            | Phase::InCall { .. }
            | Phase::Rejoining { .. }
    );
    let muted = in_call && s.mic_muted;
    let status = match (&s.phase, s.notice) {
        (Phase::Ringing { .. }, _) => StatusLight::Ringing,
        (Phase::Dialing { .. } | Phase::Calling { .. }, _) => StatusLight::Calling,
        _ if muted => StatusLight::InCallMuted,
        _ if in_call => StatusLight::InCall,
        (_, Some(Notice::CallFailed)) => StatusLight::Error,
        _ if !s.hub_online => StatusLight::Offline,
        _ if s.dnd() => StatusLight::Dnd,
        _ => StatusLight::Idle,
    };
    Outputs {
        status,
        ringtone: matches!(s.phase, Phase::Ringing { .. }),
        muted,
        camera_live: match &s.phase {
            Phase::Joining { call, .. } | Phase::InCall { call, .. } => call.video,
            _ => false,
        },
        speaker_volume: s.speaker_volume(),
    }
}

/// One line saying what the box is doing, for systemd's `STATUS=` (shown by
/// `systemctl status callbox`), e.g. `idle, hub online` or `in call with grandma`.
pub fn status_line(s: &State) -> String {
    let hub = if s.hub_online {
        "hub online"
    } else {
        "hub offline, retrying"
    };
    let peer = |c: &super::CallInfo| c.party();
    match &s.phase {
        Phase::Idle if s.dnd() => format!("idle, do not disturb, {hub}"),
        Phase::Idle => format!("idle, {hub}"),
        Phase::Ringing { call } => format!("ringing: call from {}", peer(call)),
        Phase::Answering { call } => format!("answering {}", peer(call)),
        Phase::Dialing { callee } => format!("dialling {callee}"),
        Phase::Calling { call, .. } => format!("calling {}", peer(call)),
        Phase::Joining { call, .. } => format!("joining call with {}", peer(call)),
        Phase::InCall { call, .. } => {
            let kind = if call.video { "call" } else { "audio call" };
            let muted = if s.mic_muted {
                " (microphone muted)"
            } else {
                ""
            };
            format!("in {kind} with {}{muted}", peer(call))
        }
        Phase::Rejoining { call, attempt, .. } => {
            format!(
                "media lost, rejoining call with {} (attempt {attempt})",
                peer(call)
            )
        }
    }
}
