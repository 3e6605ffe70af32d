//! From the call state to the [`Scene`]: which scene a [`State`] shows, how a call that
//! just ended is summed up ([`ending`]), when the idle screen blanks, and the volume
//! bar a volume button brings up ([`Presenter`]). Pure: the supervisor feeds it
//! states, events and instants.

use std::time::{Duration, Instant};

use callbox_protocol::{RejectReason, ServerEvent};

use super::{Ending, Scene, ScreenConfig};
use crate::call::{Command, Event, Phase, State, VolumeKind};
use crate::gpio::Button;

/// How long the volume bar stays after the last volume button press.
pub const VOLUME_BAR_FOR: Duration = Duration::from_secs(3);

/// The volume bar's text: `Volume ■■■■■■■■□□ 80 %`, or `Ringtone volume …`; ten
/// squares, one per 10 %, rounded to the nearest.
pub fn volume_bar(kind: VolumeKind, percent: u8) -> String {
    let percent = percent.min(100);
    let full = usize::from((percent + 5) / 10);
    let name = match kind {
        VolumeKind::Call => "Volume",
        VolumeKind::Ringtone => "Ringtone volume",
    };
    let silent = if percent == 0 { " (silent)" } else { "" };
    format!(
        "{name} {}{} {percent} %{silent}",
        "■".repeat(full),
        "□".repeat(10 - full)
    )
}

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
            peer: call.peer_display().to_owned(),
            video: call.video,
        },
        Phase::Dialing { callee } => Scene::Calling {
            peer: callee.clone(),
        },
        Phase::Calling { call, .. } => Scene::Calling {
            peer: call.peer_display().to_owned(),
        },
        Phase::Answering { call }
        | Phase::Joining { call, .. }
        | Phase::InCall { call, .. }
        | Phase::Rejoining { call, .. } => Scene::InCall {
            peer: call.party(),
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
                peer: call.peer_display().to_owned(),
            },
            _ => Ending::Missed {
                peer: call.peer_display().to_owned(),
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
                    peer: call.peer_display().to_owned(),
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
                peer: call.peer_display().to_owned(),
                reason: None,
            }),
        },
        _ => call.map(|c| Ending::Ended {
            peer: c.party(),
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
    /// The last volume press: which volume, its new value (%), when.
    volume: Option<(VolumeKind, u8, Instant)>,
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
            volume: None,
        }
    }

    /// The volume bar ([`volume_bar`]) while it shows: for [`VOLUME_BAR_FOR`] after a
    /// volume button or `callbox ctl volume`, on any scene but a blank one.
    pub fn banner(&mut self, now: Instant) -> Option<String> {
        let (kind, percent, at) = self.volume?;
        if now.saturating_duration_since(at) >= VOLUME_BAR_FOR {
            self.volume = None;
            return None;
        }
        Some(volume_bar(kind, percent))
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
        let volume_press = match event {
            Event::Button(b) => matches!(b.button, Button::VolumeUp | Button::VolumeDown),
            Event::Command(c) => matches!(c, Command::Volume(_)),
            _ => false,
        };
        if volume_press {
            let kind = after.volume_kind();
            let percent = match kind {
                VolumeKind::Call => after.volume.call,
                VolumeKind::Ringtone => after.volume.ringtone,
            };
            self.volume = Some((kind, percent, now));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{CallInfo, Direction, VolumeChange};
    use crate::gpio::{ButtonEvent, Press};

    fn call() -> CallInfo {
        CallInfo {
            call_id: "c1".into(),
            invitation_id: "i1".into(),
            room_name: "r1".into(),
            peer: "grandma".into(),
            peer_name: None,
            direction: Direction::Incoming,
            video: true,
            trusted: true,
            others: Vec::new(),
        }
    }

    fn config(blank_after_secs: u64) -> ScreenConfig {
        toml::from_str(&format!(
            "blank_after_secs = {blank_after_secs}\nended_secs = 4"
        ))
        .unwrap()
    }

    fn state(phase: Phase, hub_online: bool) -> State {
        State {
            phase,
            hub_online,
            ..State::new()
        }
    }

    /// The hub's display name is what a person reads; the identity only without one.
    #[test]
    fn the_screen_names_the_caller_by_display_name() {
        let named = CallInfo {
            peer_name: Some("Grandma".into()),
            others: vec!["bob".into()],
            ..call()
        };
        let ringing = state(
            Phase::Ringing {
                call: named.clone(),
            },
            true,
        );
        assert!(matches!(
            scene_for(&ringing, "box", "http://hub"),
            Scene::Ringing { peer, .. } if peer == "Grandma"
        ));
        let t0 = Instant::now();
        let in_call = state(
            Phase::InCall {
                call: named,
                answered_at: t0,
            },
            true,
        );
        assert!(matches!(
            scene_for(&in_call, "box", "http://hub"),
            Scene::InCall { peer, .. } if peer == "Grandma, bob"
        ));
        let plain = state(Phase::Ringing { call: call() }, true);
        assert!(matches!(
            scene_for(&plain, "box", "http://hub"),
            Scene::Ringing { peer, .. } if peer == "grandma"
        ));
    }

    fn press() -> Event {
        Event::Button(ButtonEvent {
            button: Button::Call,
            press: Press::Short,
        })
    }

    #[test]
    fn a_call_that_ends_is_summed_up_then_the_idle_screen_returns() {
        let t0 = Instant::now();
        let mut p = Presenter::new(&config(0), "http://hub", t0);
        let in_call = Phase::InCall {
            call: call(),
            answered_at: t0,
        };
        let idle = state(Phase::Idle, true);
        let hangup = Event::Command(Command::Hangup);
        p.observe(&in_call, &hangup, &idle, t0 + Duration::from_secs(65));
        let ended = p.scene(&idle, t0 + Duration::from_secs(66));
        assert_eq!(
            ended,
            Scene::Ended(Ending::Ended {
                peer: "grandma".into(),
                duration: Duration::from_secs(65)
            })
        );
        assert!(matches!(
            p.scene(&idle, t0 + Duration::from_secs(70)),
            Scene::Idle { .. }
        ));
    }

    #[test]
    fn ringing_that_stops_is_missed_or_declined() {
        let t0 = Instant::now();
        let ringing = Phase::Ringing { call: call() };
        let cancelled = Event::Hub(ServerEvent::CallCancelled {
            call_id: "c1".into(),
        });
        assert_eq!(
            ending(&ringing, &cancelled, t0),
            Some(Ending::Missed {
                peer: "grandma".into()
            })
        );
        assert_eq!(
            ending(&ringing, &press(), t0),
            Some(Ending::Declined {
                peer: "grandma".into()
            })
        );
    }

    #[test]
    fn the_idle_screen_blanks_and_a_button_or_a_call_wakes_it() {
        let t0 = Instant::now();
        let mut p = Presenter::new(&config(600), "http://hub", t0);
        let idle = state(Phase::Idle, true);
        assert!(matches!(
            p.scene(&idle, t0 + Duration::from_secs(599)),
            Scene::Idle { .. }
        ));
        assert_eq!(p.scene(&idle, t0 + Duration::from_secs(600)), Scene::Blank);
        let t1 = t0 + Duration::from_secs(700);
        p.observe(&Phase::Idle, &press(), &idle, t1);
        assert!(
            matches!(p.scene(&idle, t1), Scene::Idle { .. }),
            "a press wakes it"
        );
        let ringing = state(Phase::Ringing { call: call() }, true);
        assert!(matches!(
            p.scene(&ringing, t1 + Duration::from_secs(5000)),
            Scene::Ringing { .. }
        ));
        // An offline box never blanks: whoever comes to fix it must read why.
        let offline = state(Phase::Idle, false);
        assert!(matches!(
            p.scene(&offline, t1 + Duration::from_secs(5000)),
            Scene::Idle {
                hub_online: false,
                ..
            }
        ));
    }

    #[test]
    fn calling_out_shows_whom_and_an_unanswered_call_says_why() {
        let calling = Phase::Dialing {
            callee: "grandma".into(),
        };
        assert_eq!(
            scene_for(&state(calling.clone(), true), "Hallway", ""),
            Scene::Calling {
                peer: "grandma".into()
            }
        );
        let busy = Event::Hub(ServerEvent::InvitationRejected {
            invitation_id: "i".into(),
            call_id: "c".into(),
            invitee: "grandma".into(),
            reason: RejectReason::Busy,
        });
        let mut out = call();
        out.direction = Direction::Outgoing;
        let calling = Phase::Calling {
            call: out,
            join: callbox_protocol::JoinInfo {
                call_id: "c".into(),
                room_name: "r".into(),
                url: String::new(),
                token: None,
                publisher: None,
                subscriber: None,
            },
        };
        let e = ending(&calling, &busy, Instant::now()).unwrap();
        assert_eq!(Scene::Ended(e).texts("").0, "Busy");
        assert_eq!(
            ending(&calling, &Event::Command(Command::Hangup), Instant::now()),
            None
        );
    }

    #[test]
    fn a_volume_press_shows_the_bar_for_three_seconds_and_wakes_a_blank_screen() {
        let t0 = Instant::now();
        let mut p = Presenter::new(&config(60), "http://hub", t0);
        let mut idle = state(Phase::Idle, true);
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(p.scene(&idle, t1), Scene::Blank);
        assert_eq!(p.banner(t1), None);
        idle.volume.ringtone = 70;
        let down = Event::Button(ButtonEvent {
            button: Button::VolumeDown,
            press: Press::Short,
        });
        p.observe(&Phase::Idle, &down, &idle, t1);
        assert!(matches!(p.scene(&idle, t1), Scene::Idle { .. }), "woken");
        assert_eq!(
            p.banner(t1).as_deref(),
            Some("Ringtone volume ■■■■■■■□□□ 70 %")
        );
        assert!(p.banner(t1 + Duration::from_millis(2999)).is_some());
        assert_eq!(p.banner(t1 + VOLUME_BAR_FOR), None);

        // In a call the call's volume is the one shown.
        let mut in_call = state(
            Phase::InCall {
                call: call(),
                answered_at: t1,
            },
            true,
        );
        in_call.volume.call = 100;
        let t2 = t1 + Duration::from_secs(10);
        p.observe(
            &in_call.phase.clone(),
            &Event::Command(Command::Volume(VolumeChange::Up)),
            &in_call,
            t2,
        );
        assert_eq!(p.banner(t2).as_deref(), Some("Volume ■■■■■■■■■■ 100 %"));
    }

    #[test]
    fn the_volume_bar_rounds_to_the_nearest_ten_and_says_silent() {
        assert_eq!(
            volume_bar(VolumeKind::Ringtone, 0),
            "Ringtone volume □□□□□□□□□□ 0 % (silent)"
        );
        assert_eq!(volume_bar(VolumeKind::Call, 45), "Volume ■■■■■□□□□□ 45 %");
        assert_eq!(volume_bar(VolumeKind::Call, 44), "Volume ■■■■□□□□□□ 44 %");
    }
}
