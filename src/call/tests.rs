//! Every transition of the call state machine, table-driven, with injected time.

use super::*;
use callbox_protocol::CallType;

fn settings() -> Settings {
    Settings {
        media_start_timeout: Duration::from_secs(20),
        ..Settings::default()
    }
}

fn call(id: &str) -> CallInfo {
    CallInfo {
        call_id: id.into(),
        invitation_id: format!("inv-{id}"),
        room_name: format!("room-{id}"),
        peer: "alice".into(),
        peer_name: None,
        direction: Direction::Incoming,
        video: true,
        trusted: true,
        others: Vec::new(),
    }
}

pub(super) fn join(id: &str) -> JoinInfo {
    JoinInfo {
        call_id: id.into(),
        room_name: format!("room-{id}"),
        url: "ws://127.0.0.1:7880".into(),
        token: None,
        publisher: None,
        subscriber: None,
    }
}

fn invitation(id: &str) -> Event {
    Event::Hub(ServerEvent::CallInvitation {
        invitation_id: format!("inv-{id}"),
        call_id: id.into(),
        inviter: "alice".into(),
        inviter_name: None,
        call_type: CallType::Video,
        room_name: format!("room-{id}"),
        trusted: true,
    })
}

fn ended(id: &str) -> Event {
    Event::Hub(ServerEvent::CallEnded {
        call_id: id.into(),
        reason: "hangup".into(),
    })
}

fn cancelled(id: &str) -> Event {
    Event::Hub(ServerEvent::CallCancelled { call_id: id.into() })
}

fn state(phase: Phase) -> State {
    State {
        phase,
        hub_online: true,
        ..State::new()
    }
}

struct Case {
    name: &'static str,
    from: Phase,
    event: Event,
    to: Phase,
    effects: Vec<Effect>,
}

fn t0() -> Instant {
    // One fixed instant for the whole table, so phases compare equal.
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn stop_all(id: &str) -> Vec<Effect> {
    vec![
        Effect::CancelTimer(Timer::MediaStart),
        Effect::CancelTimer(Timer::Rejoin),
        Effect::StopMedia { call_id: id.into() },
    ]
}

fn cases() -> Vec<Case> {
    let t = t0();
    let joining = |attempt| Phase::Joining {
        call: call("c1"),
        attempt,
        answered_at: t,
    };
    let in_call = Phase::InCall {
        call: call("c1"),
        answered_at: t,
    };
    let rejoining = |attempt| Phase::Rejoining {
        call: call("c1"),
        attempt,
        answered_at: t,
    };
    let answering = Phase::Answering { call: call("c1") };
    let media_failed = |id: &str| Event::MediaFailed {
        call_id: id.into(),
        error: "boom".into(),
    };
    let busy_c2 = vec![Effect::Reject {
        call_id: "c2".into(),
        invitation_id: "inv-c2".into(),
        reason: RejectReason::Busy,
    }];
    let start_media = vec![
        Effect::StartMedia {
            call_id: "c1".into(),
            join: join("c1"),
            mic_muted: false,
            video: true,
        },
        Effect::SetTimer {
            timer: Timer::MediaStart,
            after: settings().media_start_timeout,
        },
    ];
    vec![
        // --- Idle
        Case {
            name: "idle: auto policy accepts an invitation at once",
            from: Phase::Idle,
            event: invitation("c1"),
            to: answering.clone(),
            effects: vec![Effect::Accept {
                call_id: "c1".into(),
                invitation_id: "inv-c1".into(),
            }],
        },
        Case {
            name: "idle: call_ended for a call we never had is ignored",
            from: Phase::Idle,
            event: ended("c9"),
            to: Phase::Idle,
            effects: vec![],
        },
        Case {
            name: "idle: call_cancelled for an unknown call is ignored",
            from: Phase::Idle,
            event: cancelled("c9"),
            to: Phase::Idle,
            effects: vec![],
        },
        Case {
            name: "idle: invitation_accepted is not ours to act on",
            from: Phase::Idle,
            event: Event::Hub(ServerEvent::InvitationAccepted {
                invitation_id: "i".into(),
                call_id: "c9".into(),
                invitee: "bob".into(),
            }),
            to: Phase::Idle,
            effects: vec![],
        },
        Case {
            name: "idle: stray media failure is ignored",
            from: Phase::Idle,
            event: media_failed("c1"),
            to: Phase::Idle,
            effects: vec![],
        },
        Case {
            name: "idle: stray timer is ignored",
            from: Phase::Idle,
            event: Event::TimerFired(Timer::MediaStart),
            to: Phase::Idle,
            effects: vec![],
        },
        Case {
            name: "idle: a late accept for a call we dropped leaves it at the hub",
            from: Phase::Idle,
            event: Event::AnswerSucceeded {
                call_id: "c1".into(),
                join: join("c1"),
            },
            to: Phase::Idle,
            effects: vec![Effect::EndCall {
                call_id: "c1".into(),
                reason: "cancelled".into(),
            }],
        },
        // --- Answering
        Case {
            name: "answering: tokens arrive, media starts with a start timeout",
            from: answering.clone(),
            event: Event::AnswerSucceeded {
                call_id: "c1".into(),
                join: join("c1"),
            },
            to: joining(0),
            effects: start_media.clone(),
        },
        Case {
            name: "answering: the hub refused the answer, back to idle",
            from: answering.clone(),
            event: Event::AnswerFailed {
                call_id: "c1".into(),
                error: "409".into(),
            },
            to: Phase::Idle,
            effects: vec![],
        },
        Case {
            name: "answering: caller cancels before tokens arrive",
            from: answering.clone(),
            event: cancelled("c1"),
            to: Phase::Idle,
            effects: vec![],
        },
        Case {
            name: "answering: a second invitation is rejected as busy",
            from: answering.clone(),
            event: invitation("c2"),
            to: answering.clone(),
            effects: busy_c2.clone(),
        },
        Case {
            name: "answering: the same invitation re-sent after a reconnect is ignored",
            from: answering.clone(),
            event: invitation("c1"),
            to: answering.clone(),
            effects: vec![],
        },
        Case {
            name: "answering: an end for another call changes nothing",
            from: answering.clone(),
            event: ended("c2"),
            to: answering.clone(),
            effects: vec![],
        },
        // --- Joining
        Case {
            name: "joining: media up, timer cancelled, in call",
            from: joining(0),
            event: Event::MediaStarted {
                call_id: "c1".into(),
            },
            to: in_call.clone(),
            effects: vec![Effect::CancelTimer(Timer::MediaStart)],
        },
        Case {
            name: "joining: media failure schedules rejoin attempt 1",
            from: joining(0),
            event: media_failed("c1"),
            to: rejoining(1),
            effects: vec![
                Effect::CancelTimer(Timer::MediaStart),
                Effect::StopMedia {
                    call_id: "c1".into(),
                },
                Effect::SetTimer {
                    timer: Timer::Rejoin,
                    after: Duration::from_secs(1),
                },
            ],
        },
        Case {
            name: "joining: media start timeout counts as a fault",
            from: joining(1),
            event: Event::TimerFired(Timer::MediaStart),
            to: rejoining(2),
            effects: vec![
                Effect::StopMedia {
                    call_id: "c1".into(),
                },
                Effect::SetTimer {
                    timer: Timer::Rejoin,
                    after: Duration::from_secs(2),
                },
            ],
        },
        Case {
            name: "joining: the last allowed attempt failing gives the call up",
            from: joining(MAX_REJOIN_ATTEMPTS),
            event: media_failed("c1"),
            to: Phase::Idle,
            effects: vec![
                Effect::CancelTimer(Timer::MediaStart),
                Effect::StopMedia {
                    call_id: "c1".into(),
                },
                Effect::EndCall {
                    call_id: "c1".into(),
                    reason: "media_failed".into(),
                },
            ],
        },
        Case {
            name: "joining: caller hangs up while media starts",
            from: joining(0),
            event: ended("c1"),
            to: Phase::Idle,
            effects: stop_all("c1"),
        },
        Case {
            name: "joining: media events of another call are ignored",
            from: joining(0),
            event: Event::MediaStarted {
                call_id: "c0".into(),
            },
            to: joining(0),
            effects: vec![],
        },
        Case {
            name: "joining: second invitation rejected as busy",
            from: joining(0),
            event: invitation("c2"),
            to: joining(0),
            effects: busy_c2.clone(),
        },
        // --- In call
        Case {
            name: "in call: caller hangs up, media torn down, idle",
            from: in_call.clone(),
            event: ended("c1"),
            to: Phase::Idle,
            effects: stop_all("c1"),
        },
        Case {
            name: "in call: call_cancelled also ends it",
            from: in_call.clone(),
            event: cancelled("c1"),
            to: Phase::Idle,
            effects: stop_all("c1"),
        },
        Case {
            name: "in call: end of another call is ignored",
            from: in_call.clone(),
            event: ended("c2"),
            to: in_call.clone(),
            effects: vec![],
        },
        Case {
            name: "in call: second invitation rejected as busy",
            from: in_call.clone(),
            event: invitation("c2"),
            to: in_call.clone(),
            effects: busy_c2.clone(),
        },
        Case {
            name: "in call: media fault starts a rejoin",
            from: in_call.clone(),
            event: media_failed("c1"),
            to: rejoining(1),
            effects: vec![
                Effect::StopMedia {
                    call_id: "c1".into(),
                },
                Effect::SetTimer {
                    timer: Timer::Rejoin,
                    after: Duration::from_secs(1),
                },
            ],
        },
        Case {
            name: "in call: a late start timer is ignored",
            from: in_call.clone(),
            event: Event::TimerFired(Timer::MediaStart),
            to: in_call.clone(),
            effects: vec![],
        },
        // --- Rejoining
        Case {
            name: "rejoining: back-off over, ask the hub for fresh tokens",
            from: rejoining(1),
            event: Event::TimerFired(Timer::Rejoin),
            to: rejoining(1),
            effects: vec![Effect::RequestToken {
                call_id: "c1".into(),
            }],
        },
        Case {
            name: "rejoining: fresh tokens rebuild media",
            from: rejoining(1),
            event: Event::TokenReceived {
                call_id: "c1".into(),
                join: join("c1"),
            },
            to: joining(1),
            effects: start_media.clone(),
        },
        Case {
            name: "rejoining: no tokens (call gone at the hub), give up",
            from: rejoining(2),
            event: Event::TokenFailed {
                call_id: "c1".into(),
                error: "409".into(),
            },
            to: Phase::Idle,
            effects: vec![Effect::EndCall {
                call_id: "c1".into(),
                reason: "media_failed".into(),
            }],
        },
        Case {
            name: "rejoining: caller hangs up meanwhile",
            from: rejoining(1),
            event: ended("c1"),
            to: Phase::Idle,
            effects: stop_all("c1"),
        },
        Case {
            name: "rejoining: second invitation rejected as busy",
            from: rejoining(1),
            event: invitation("c2"),
            to: rejoining(1),
            effects: busy_c2,
        },
    ]
}

#[test]
fn every_transition() {
    for case in cases() {
        let (next, effects) = step(
            state(case.from.clone()),
            case.event.clone(),
            t0(),
            &settings(),
        );
        assert_eq!(next.phase, case.to, "{}: phase", case.name);
        assert_eq!(effects, case.effects, "{}: effects", case.name);
        assert!(next.hub_online, "{}: hub state untouched", case.name);
    }
}

#[test]
fn hub_connection_is_tracked_without_touching_the_call() {
    let in_call = Phase::InCall {
        call: call("c1"),
        answered_at: t0(),
    };
    let (s, fx) = step(
        state(in_call.clone()),
        Event::HubDisconnected,
        t0(),
        &settings(),
    );
    assert!(!s.hub_online);
    assert_eq!(
        s.phase, in_call,
        "a hub drop does not end a call: media runs via LiveKit"
    );
    assert!(fx.is_empty());
    let (s, fx) = step(s, Event::HubConnected, t0(), &settings());
    assert!(s.hub_online);
    assert!(fx.is_empty());
}

#[test]
fn answered_at_is_the_time_tokens_arrived() {
    let t = t0() + Duration::from_millis(1234);
    let (s, _) = step(
        state(Phase::Answering { call: call("c1") }),
        Event::AnswerSucceeded {
            call_id: "c1".into(),
            join: join("c1"),
        },
        t,
        &settings(),
    );
    assert!(matches!(s.phase, Phase::Joining { answered_at, .. } if answered_at == t));
}

#[test]
fn two_calls_in_a_row_go_back_to_idle_each_time() {
    let mut s = State::new();
    for id in ["c1", "c2"] {
        let events = [
            invitation(id),
            Event::AnswerSucceeded {
                call_id: id.into(),
                join: join(id),
            },
            Event::MediaStarted { call_id: id.into() },
            ended(id),
        ];
        for ev in events {
            s = step(s, ev, t0(), &settings()).0;
        }
        assert_eq!(s.phase, Phase::Idle, "{id}");
    }
}

/// An invitation with `callType: "audio"`: media starts without the camera, and the
/// privacy LED stays dark through the call (it is lit only while the camera is published).
#[test]
fn an_audio_call_starts_media_without_the_camera() {
    let audio_invitation = Event::Hub(ServerEvent::CallInvitation {
        invitation_id: "inv-a1".into(),
        call_id: "a1".into(),
        inviter: "alice".into(),
        inviter_name: None,
        call_type: CallType::Audio,
        room_name: "room-a1".into(),
        trusted: true,
    });
    let (s, _) = step(state(Phase::Idle), audio_invitation, t0(), &settings());
    let (s, fx) = step(
        s,
        Event::AnswerSucceeded {
            call_id: "a1".into(),
            join: join("a1"),
        },
        t0(),
        &settings(),
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::StartMedia { video: false, .. })),
        "{fx:?}"
    );
    assert!(!outputs(&s).camera_live, "privacy LED dark while joining");
    let (s, _) = step(
        s,
        Event::MediaStarted {
            call_id: "a1".into(),
        },
        t0(),
        &settings(),
    );
    assert_eq!(s.phase.name(), "in_call");
    assert!(
        !outputs(&s).camera_live,
        "privacy LED dark in an audio call"
    );
    assert_eq!(status_line(&s), "in audio call with alice");

    // A video call lights it.
    let (s, _) = step(state(Phase::Idle), invitation("v1"), t0(), &settings());
    let (s, fx) = step(
        s,
        Event::AnswerSucceeded {
            call_id: "v1".into(),
            join: join("v1"),
        },
        t0(),
        &settings(),
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::StartMedia { video: true, .. }))
    );
    assert!(outputs(&s).camera_live);
}

#[test]
fn rejoin_delays_back_off() {
    assert_eq!(rejoin_delay(1), Duration::from_secs(1));
    assert_eq!(rejoin_delay(2), Duration::from_secs(2));
    assert_eq!(rejoin_delay(3), Duration::from_secs(4));
}

#[test]
fn status_line_says_what_the_box_is_doing_in_words() {
    let now = Instant::now();
    let mut offline = state(Phase::Idle);
    offline.hub_online = false;
    let mut dnd = state(Phase::Idle);
    dnd.dnd_manual = true;
    let mut muted = state(Phase::InCall {
        call: call("c1"),
        answered_at: now,
    });
    muted.mic_muted = true;
    for (s, want) in [
        (state(Phase::Idle), "idle, hub online"),
        (offline, "idle, hub offline, retrying"),
        (dnd, "idle, do not disturb, hub online"),
        (
            state(Phase::Ringing { call: call("c1") }),
            "ringing: call from alice",
        ),
        (
            state(Phase::InCall {
                call: call("c1"),
                answered_at: now,
            }),
            "in call with alice",
        ),
        (muted, "in call with alice (microphone muted)"),
        (
            state(Phase::Rejoining {
                call: call("c1"),
                attempt: 2,
                answered_at: now,
            }),
            "media lost, rejoining call with alice (attempt 2)",
        ),
        (
            state(Phase::Dialing {
                callee: "grandma".into(),
            }),
            "dialling grandma",
        ),
    ] {
        assert_eq!(status_line(&s), want);
    }
}

#[test]
fn a_group_call_learns_who_else_joined() {
    let accepted = |call_id: &str, invitee: &str| {
        Event::Hub(ServerEvent::InvitationAccepted {
            invitation_id: format!("inv-{invitee}"),
            call_id: call_id.into(),
            invitee: invitee.into(),
        })
    };
    let in_call = Phase::InCall {
        call: call("c1"),
        answered_at: t0(),
    };
    let (s, fx) = step(state(in_call), accepted("c1", "bob"), t0(), &settings());
    assert!(fx.is_empty(), "nothing to do but remember: {fx:?}");
    // Twice, the caller, or another call: nothing changes.
    let (s, _) = step(s, accepted("c1", "bob"), t0(), &settings());
    let (s, _) = step(s, accepted("c1", "alice"), t0(), &settings());
    let (s, _) = step(s, accepted("c2", "carol"), t0(), &settings());
    let (s, _) = step(s, accepted("c1", "carol"), t0(), &settings());
    let call = s.phase.call().unwrap();
    assert_eq!(call.others, ["bob", "carol"]);
    assert_eq!(call.party(), "alice, bob, carol");
    assert_eq!(status_line(&s), "in call with alice, bob, carol");
}
