//! What the supervisor shows: the call screen's scene, the LEDs, the speaker's volume
//! and ringtone, and the status `callbox status` reads.

use std::time::Instant;

use crate::call::{self, Direction, Outputs, Phase, State, StatusLight};
use crate::config::Config;
use crate::control::Status;
use crate::gpio::{Led, LedPattern, LedPatterns, Panel};
use crate::media::{MediaCommand, MediaEngine};
use crate::screen::{Presenter, Scene};

/// Sends the screen its scene for `state` when it changed.
pub(super) fn show_scene(
    engine: &MediaEngine,
    presenter: &mut Presenter,
    state: &State,
    last: &mut Option<(Scene, Option<String>)>,
) {
    let now = Instant::now();
    let shown = (presenter.scene(state, now), presenter.banner(now));
    if last.as_ref() != Some(&shown) {
        engine.send(MediaCommand::Screen {
            scene: shown.0.clone(),
            since: state.phase.answered_at(),
            banner: shown.1.clone(),
        });
        *last = Some(shown);
    }
}

pub(super) fn publish_status(s: &mut Status, state: &State, calls_answered: u64) {
    let out = call::outputs(state);
    s.state = state.phase.name().to_owned();
    s.hub_online = state.hub_online;
    s.calls_answered = calls_answered;
    let call = state.phase.call();
    s.call_id = call.map(|c| c.call_id.clone());
    s.room = call.map(|c| c.room_name.clone());
    s.caller = call.map(|c| c.peer.clone());
    s.caller_name = call.and_then(|c| c.peer_name.clone());
    s.participants = call.map(|c| c.others.clone()).unwrap_or_default();
    s.direction = call.map(|c| match c.direction {
        Direction::Incoming => "incoming".to_owned(),
        Direction::Outgoing => "outgoing".to_owned(),
    });
    s.call_duration_ms = state
        .phase
        .answered_at()
        .map(|t| t.elapsed().as_millis() as u64);
    s.dnd = state.dnd();
    s.mic_muted = state.mic_muted;
    s.livekit = match state.phase {
        Phase::InCall { .. } => "connected",
        Phase::Joining { .. } | Phase::Rejoining { .. } => "connecting",
        _ => "down",
    }
    .to_owned();
    s.status_light = serde_json::to_value(out.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    s.ringtone = out.ringtone;
    s.speaker_volume = out.speaker_volume;
    s.volume = Some(state.volume);
}

/// `[gpio.patterns]`, with the ringing LED following the ringtone's cadence unless a
/// ringing pattern was configured.
pub(super) fn status_patterns(config: &Config) -> LedPatterns {
    let mut p = config.gpio.patterns.clone();
    if p.ringing == LedPatterns::default().ringing && config.ringtone.file.is_none() {
        p.ringing = LedPattern::Cadence(config.ringtone.cadence_ms.clone());
    }
    p
}

/// Shows `out` on the LEDs and speaker, changing only what changed since `before`.
pub(super) fn apply_outputs(
    panel: &Panel,
    engine: &MediaEngine,
    patterns: &LedPatterns,
    out: Outputs,
    before: Option<Outputs>,
) {
    // A ring starts at its own volume; a call's volume follows the ring's end.
    let volume_changed = before.map(|b| b.speaker_volume) != Some(out.speaker_volume);
    let ring_changed = before.map(|b| b.ringtone) != Some(out.ringtone);
    if volume_changed && out.ringtone {
        engine.send(MediaCommand::SpeakerVolume(out.speaker_volume));
    }
    if ring_changed {
        engine.send(MediaCommand::Ringtone(out.ringtone));
    }
    if volume_changed && !out.ringtone {
        engine.send(MediaCommand::SpeakerVolume(out.speaker_volume));
    }
    let mute_led = panel.led_line(Led::Mute).is_some();
    let status = match out.status {
        StatusLight::Offline => &patterns.offline,
        StatusLight::Idle => &patterns.idle,
        StatusLight::Dnd => &patterns.dnd,
        StatusLight::Ringing => &patterns.ringing,
        StatusLight::Calling => &patterns.calling,
        StatusLight::InCall => &patterns.in_call,
        // With a mute LED wired the status LED stays "in call" and the mute LED says it.
        StatusLight::InCallMuted if mute_led => &patterns.in_call,
        StatusLight::InCallMuted => &patterns.in_call_muted,
        StatusLight::Error => &patterns.dial_failed,
    };
    panel.set_led(Led::Status, status.clone());
    let on_off = |on: bool, pattern: &LedPattern| {
        if on { pattern.clone() } else { LedPattern::Off }
    };
    panel.set_led(Led::Mute, on_off(out.muted, &patterns.muted));
    panel.set_led(Led::Privacy, on_off(out.camera_live, &LedPattern::On));
}

/// Each wired LED's pattern, level and when the pattern started (ms since the Unix
/// epoch), for `callbox status`.
pub(super) fn led_map(panel: &Panel) -> serde_json::Map<String, serde_json::Value> {
    panel
        .led_state()
        .into_iter()
        .filter(|l| l.wired)
        .filter_map(|l| {
            let mut v = serde_json::to_value(&l).ok()?;
            if let (Some(obj), Some(start)) = (v.as_object_mut(), panel.led_started(l.led)) {
                obj.insert("started_unix_ms".into(), start.unix_ms.into());
            }
            Some((l.led.to_string(), v))
        })
        .collect()
}
