//! Answer policies, buttons, do-not-disturb, mute and calling out: table-driven over
//! event sequences, with the edges issue #3 names (answer and cancel in the same
//! millisecond, ring timeout while the button is held, DND while ringing, a second
//! invitation while ringing or in a call, the hub dropping while ringing).

use super::tests::join;
use super::*;
use callbox_protocol::CallType;

fn at(ms: u64) -> Instant {
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T0.get_or_init(Instant::now) + Duration::from_millis(ms)
}

fn settings(policy: AnswerPolicy) -> Settings {
    Settings {
        policy,
        answer_after: Duration::from_secs(3),
        ring_timeout: Duration::from_secs(45),
        speed_dial: Some("grandma".into()),
        dial_timeout: Duration::from_secs(60),
        ..Settings::default()
    }
}

/// An invitation from `from`; the hub marks every caller trusted but `neighbour` (a
/// contact allowed to ring, not to be answered by itself).
fn invite(id: &str, from: &str) -> Event {
    Event::Hub(ServerEvent::CallInvitation {
        invitation_id: format!("inv-{id}"),
        call_id: id.into(),
        inviter: from.into(),
        inviter_name: None,
        call_type: CallType::Video,
        room_name: format!("room-{id}"),
        trusted: from != "neighbour",
    })
}

fn press(button: Button) -> Event {
    Event::Button(ButtonEvent {
        button,
        press: Press::Short,
    })
}

fn hold(button: Button) -> Event {
    Event::Button(ButtonEvent {
        button,
        press: Press::Long,
    })
}

fn online() -> State {
    State {
        hub_online: true,
        ..State::new()
    }
}

/// Runs `events` (each at its own ms offset) and returns the final state and every
/// effect in order.
fn run(settings: &Settings, start: State, events: &[(u64, Event)]) -> (State, Vec<Effect>) {
    let mut s = start;
    let mut all = Vec::new();
    for (ms, ev) in events {
        let (next, fx) = step(s, ev.clone(), at(*ms), settings);
        s = next;
        all.extend(fx);
    }
    (s, all)
}

fn reject(id: &str, reason: RejectReason) -> Effect {
    Effect::Reject {
        call_id: id.into(),
        invitation_id: format!("inv-{id}"),
        reason,
    }
}

fn accept(id: &str) -> Effect {
    Effect::Accept {
        call_id: id.into(),
        invitation_id: format!("inv-{id}"),
    }
}

fn set(timer: Timer, secs: u64) -> Effect {
    Effect::SetTimer {
        timer,
        after: Duration::from_secs(secs),
    }
}

fn cancel(timer: Timer) -> Effect {
    Effect::CancelTimer(timer)
}

struct Case {
    name: &'static str,
    policy: AnswerPolicy,
    allow: &'static [&'static str],
    start: State,
    events: Vec<(u64, Event)>,
    phase: &'static str,
    effects: Vec<Effect>,
}

fn answered(id: &str) -> Event {
    Event::AnswerSucceeded {
        call_id: id.into(),
        join: join(id),
    }
}

fn cancelled(id: &str) -> Event {
    Event::Hub(ServerEvent::CallCancelled { call_id: id.into() })
}

fn ring_cancel() -> Vec<Effect> {
    vec![cancel(Timer::Ring), cancel(Timer::AutoAnswer)]
}

fn cases() -> Vec<Case> {
    use AnswerPolicy::*;
    let ringing = |policy| Case {
        name: "",
        policy,
        allow: &[],
        start: online(),
        events: vec![(0, invite("c1", "alice"))],
        phase: "ringing",
        effects: vec![set(Timer::Ring, 45)],
    };
    let mut v = vec![
        Case {
            name: "manual: an invitation rings with the ring timeout",
            ..ringing(Manual)
        },
        Case {
            name: "auto: answers at once",
            phase: "answering",
            effects: vec![accept("c1")],
            ..ringing(Auto)
        },
        Case {
            name: "auto_after: rings, with the auto-answer timer",
            effects: vec![set(Timer::AutoAnswer, 3), set(Timer::Ring, 45)],
            ..ringing(AutoAfter)
        },
        Case {
            name: "auto_after: the timer answers",
            events: vec![
                (0, invite("c1", "alice")),
                (3000, Event::TimerFired(Timer::AutoAnswer)),
            ],
            phase: "answering",
            effects: vec![
                set(Timer::AutoAnswer, 3),
                set(Timer::Ring, 45),
                cancel(Timer::Ring),
                accept("c1"),
            ],
            ..ringing(AutoAfter)
        },
        Case {
            name: "muted: answers at once and starts media muted",
            events: vec![(0, invite("c1", "alice")), (10, answered("c1"))],
            phase: "joining",
            effects: vec![
                accept("c1"),
                Effect::StartMedia {
                    call_id: "c1".into(),
                    join: join("c1"),
                    mic_muted: true,
                    video: true,
                },
                set(Timer::MediaStart, 20),
            ],
            ..ringing(Muted)
        },
        Case {
            name: "auto: a caller the hub does not mark trusted rings",
            events: vec![(0, invite("c1", "neighbour"))],
            ..ringing(Auto)
        },
        Case {
            name: "muted: a caller the hub does not mark trusted rings",
            events: vec![(0, invite("c1", "neighbour"))],
            ..ringing(Muted)
        },
        Case {
            name: "auto_after: a caller the hub does not mark trusted rings, no timer",
            events: vec![(0, invite("c1", "neighbour"))],
            ..ringing(AutoAfter)
        },
        Case {
            name: "auto with an allow-list: a listed caller is answered, trusted or not",
            allow: &["neighbour"],
            events: vec![(0, invite("c1", "neighbour"))],
            phase: "answering",
            effects: vec![accept("c1")],
            ..ringing(Auto)
        },
        Case {
            name: "auto with an allow-list: a stranger rings",
            allow: &["grandma"],
            ..ringing(Auto)
        },
        Case {
            name: "auto with an allow-list: a listed caller is answered",
            allow: &["grandma"],
            events: vec![(0, invite("c1", "grandma"))],
            phase: "answering",
            effects: vec![accept("c1")],
            ..ringing(Auto)
        },
        Case {
            name: "DND by button rejects with dnd, even on auto",
            start: State {
                dnd_manual: true,
                ..online()
            },
            phase: "idle",
            effects: vec![reject("c1", RejectReason::Dnd)],
            ..ringing(Auto)
        },
        Case {
            name: "DND by schedule rejects with dnd",
            start: State {
                dnd_scheduled: true,
                ..online()
            },
            phase: "idle",
            effects: vec![reject("c1", RejectReason::Dnd)],
            ..ringing(Manual)
        },
        // --- while ringing
        Case {
            name: "ringing: short press answers",
            events: vec![(0, invite("c1", "alice")), (2000, press(Button::Call))],
            phase: "answering",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![accept("c1")],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "ringing: long press declines",
            events: vec![(0, invite("c1", "alice")), (2000, hold(Button::Call))],
            phase: "idle",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![reject("c1", RejectReason::Declined)],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "ringing: the hang-up button declines",
            events: vec![(0, invite("c1", "alice")), (500, press(Button::Hangup))],
            phase: "idle",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![reject("c1", RejectReason::Declined)],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "ringing: ring timeout rejects as no_answer",
            events: vec![
                (0, invite("c1", "alice")),
                (45_000, Event::TimerFired(Timer::Ring)),
            ],
            phase: "idle",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![reject("c1", RejectReason::NoAnswer)],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "ringing: DND toggled on by its button rejects with dnd",
            events: vec![(0, invite("c1", "alice")), (1000, press(Button::Dnd))],
            phase: "idle",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![reject("c1", RejectReason::Dnd)],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "ringing: the DND schedule starting rejects with dnd",
            events: vec![(0, invite("c1", "alice")), (1000, Event::DndSchedule(true))],
            phase: "idle",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![reject("c1", RejectReason::Dnd)],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "ringing: a second invitation is busy",
            events: vec![(0, invite("c1", "alice")), (100, invite("c2", "bob"))],
            phase: "ringing",
            effects: vec![set(Timer::Ring, 45), reject("c2", RejectReason::Busy)],
            ..ringing(Manual)
        },
        Case {
            name: "ringing: the hub drops and re-sends the invitation; still one ring",
            events: vec![
                (0, invite("c1", "alice")),
                (100, Event::HubDisconnected),
                (900, Event::HubConnected),
                (901, invite("c1", "alice")),
            ],
            phase: "ringing",
            effects: vec![set(Timer::Ring, 45)],
            ..ringing(Manual)
        },
        Case {
            name: "ringing: the caller cancels",
            events: vec![(0, invite("c1", "alice")), (100, cancelled("c1"))],
            phase: "idle",
            effects: [vec![set(Timer::Ring, 45)], ring_cancel()].concat(),
            ..ringing(Manual)
        },
        // --- edges
        Case {
            name: "cancel then answer in the same ms: no answer, and no speed-dial either",
            events: vec![
                (0, invite("c1", "alice")),
                (5000, cancelled("c1")),
                (5000, press(Button::Call)),
            ],
            phase: "idle",
            effects: [vec![set(Timer::Ring, 45)], ring_cancel()].concat(),
            ..ringing(Manual)
        },
        Case {
            name: "answer then cancel in the same ms: the late tokens leave the call",
            events: vec![
                (0, invite("c1", "alice")),
                (5000, press(Button::Call)),
                (5000, cancelled("c1")),
                (5040, answered("c1")),
            ],
            phase: "idle",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![
                    accept("c1"),
                    Effect::EndCall {
                        call_id: "c1".into(),
                        reason: "cancelled".into(),
                    },
                ],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "ring timeout while the button is held: the long press lands in idle, ignored",
            events: vec![
                (0, invite("c1", "alice")),
                (44_000, Event::TimerFired(Timer::Ring)),
                (45_500, hold(Button::Call)),
            ],
            phase: "idle",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![reject("c1", RejectReason::NoAnswer)],
            ]
            .concat(),
            ..ringing(Manual)
        },
        Case {
            name: "a press well after a ring ended is a speed-dial",
            events: vec![
                (0, invite("c1", "alice")),
                (100, cancelled("c1")),
                (100 + 2001, press(Button::Call)),
            ],
            phase: "dialing",
            effects: [
                vec![set(Timer::Ring, 45)],
                ring_cancel(),
                vec![Effect::Dial {
                    callee: "grandma".into(),
                }],
            ]
            .concat(),
            ..ringing(Manual)
        },
    ];
    for c in &mut v {
        assert!(!c.name.is_empty());
    }
    v
}

#[test]
fn policies_and_edges() {
    for case in cases() {
        let s = Settings {
            auto_answer_from: case.allow.iter().map(|s| s.to_string()).collect(),
            ..settings(case.policy)
        };
        let (end, fx) = run(&s, case.start.clone(), &case.events);
        assert_eq!(end.phase.name(), case.phase, "{}: phase", case.name);
        assert_eq!(fx, case.effects, "{}: effects", case.name);
    }
}

fn in_call(s: &Settings) -> State {
    let (st, _) = run(
        s,
        online(),
        &[
            (0, invite("c1", "alice")),
            (10, answered("c1")),
            (
                20,
                Event::MediaStarted {
                    call_id: "c1".into(),
                },
            ),
        ],
    );
    assert_eq!(st.phase.name(), "in_call");
    st
}

#[test]
fn mute_button_toggles_the_published_microphone_and_the_indication() {
    let s = settings(AnswerPolicy::Auto);
    let st = in_call(&s);
    let (st, fx) = run(&s, st, &[(100, press(Button::Mute))]);
    assert_eq!(fx, vec![Effect::SetMicMuted(true)]);
    assert!(st.mic_muted);
    assert_eq!(outputs(&st).status, StatusLight::InCallMuted);
    assert!(outputs(&st).muted);
    let (st, fx) = run(&s, st, &[(200, Event::Command(Command::Mute(false)))]);
    assert_eq!(fx, vec![Effect::SetMicMuted(false)]);
    assert_eq!(outputs(&st).status, StatusLight::InCall);
    // Mute outside a call does nothing.
    let (idle, fx) = run(&s, online(), &[(0, press(Button::Mute))]);
    assert!(fx.is_empty() && !idle.mic_muted);
}

#[test]
fn muted_answer_stays_muted_until_the_button_and_resets_after_the_call() {
    let s = settings(AnswerPolicy::Muted);
    let st = in_call(&s);
    assert!(st.mic_muted, "muted policy answers muted");
    let (st, fx) = run(&s, st, &[(100, press(Button::Mute))]);
    assert_eq!(fx, vec![Effect::SetMicMuted(false)]);
    let (st, _) = run(&s, st, &[(200, press(Button::Mute))]);
    assert!(st.mic_muted);
    let (st, fx) = run(&s, st, &[(300, press(Button::Call))]);
    assert_eq!(st.phase, Phase::Idle);
    assert!(!st.mic_muted, "the next call starts unmuted");
    assert!(fx.contains(&Effect::EndCall {
        call_id: "c1".into(),
        reason: "hangup".into()
    }));
}

#[test]
fn a_second_invitation_in_a_call_is_busy_and_the_call_button_hangs_up() {
    let s = settings(AnswerPolicy::Auto);
    let st = in_call(&s);
    let (st, fx) = run(&s, st, &[(100, invite("c2", "bob"))]);
    assert_eq!(fx, vec![reject("c2", RejectReason::Busy)]);
    assert_eq!(st.phase.name(), "in_call");
    let (st, fx) = run(&s, st, &[(200, press(Button::Call))]);
    assert_eq!(
        fx,
        vec![
            cancel(Timer::MediaStart),
            cancel(Timer::Rejoin),
            Effect::StopMedia {
                call_id: "c1".into()
            },
            Effect::EndCall {
                call_id: "c1".into(),
                reason: "hangup".into()
            },
        ]
    );
    assert_eq!(st.phase, Phase::Idle);
}

fn dialled(s: &Settings) -> State {
    let (st, fx) = run(
        s,
        online(),
        &[
            (0, press(Button::SpeedDial)),
            (
                50,
                Event::DialSucceeded {
                    callee: "grandma".into(),
                    join: join("out1"),
                },
            ),
        ],
    );
    assert_eq!(
        fx,
        vec![
            Effect::Dial {
                callee: "grandma".into()
            },
            set(Timer::Dial, 60)
        ]
    );
    assert_eq!(st.phase.name(), "calling");
    assert_eq!(outputs(&st).status, StatusLight::Calling);
    st
}

#[test]
fn speed_dial_joins_when_the_callee_accepts() {
    let s = settings(AnswerPolicy::Manual);
    let st = dialled(&s);
    let (st, fx) = run(
        &s,
        st,
        &[(
            3000,
            Event::Hub(ServerEvent::InvitationAccepted {
                invitation_id: "i".into(),
                call_id: "out1".into(),
                invitee: "grandma".into(),
            }),
        )],
    );
    assert_eq!(
        fx,
        vec![
            cancel(Timer::Dial),
            Effect::StartMedia {
                call_id: "out1".into(),
                join: join("out1"),
                mic_muted: false,
                video: true,
            },
            set(Timer::MediaStart, 20),
        ]
    );
    let Phase::Joining { call, .. } = &st.phase else {
        panic!("{:?}", st.phase)
    };
    assert_eq!(
        (call.peer.as_str(), call.direction),
        ("grandma", Direction::Outgoing)
    );
    // An invitation while calling out is busy.
    let (_, fx) = run(&s, dialled(&s), &[(100, invite("c9", "bob"))]);
    assert_eq!(fx, vec![reject("c9", RejectReason::Busy)]);
}

#[test]
fn a_failed_call_out_flashes_then_returns_to_idle() {
    let s = settings(AnswerPolicy::Manual);
    let rejected = Event::Hub(ServerEvent::InvitationRejected {
        invitation_id: "i".into(),
        call_id: "out1".into(),
        invitee: "grandma".into(),
        reason: RejectReason::Declined,
    });
    for (name, ev, extra) in [
        ("rejected", rejected, vec![]),
        (
            "timed out",
            Event::TimerFired(Timer::Dial),
            vec![Effect::EndCall {
                call_id: "out1".into(),
                reason: "no_answer".into(),
            }],
        ),
    ] {
        let (st, fx) = run(&s, dialled(&s), &[(1000, ev)]);
        assert_eq!(st.phase, Phase::Idle, "{name}");
        assert_eq!(
            outputs(&st).status,
            StatusLight::Error,
            "{name}: distinct flash"
        );
        assert!(fx.ends_with(&[set(Timer::Notice, 3)]), "{name}: {fx:?}");
        for e in extra {
            assert!(fx.contains(&e), "{name}: {fx:?}");
        }
        let (st, _) = run(&s, st, &[(4000, Event::TimerFired(Timer::Notice))]);
        assert_eq!(
            outputs(&st).status,
            StatusLight::Idle,
            "{name}: back to idle"
        );
    }
    // Offline: nothing to dial through.
    let (st, fx) = run(&s, State::new(), &[(0, press(Button::SpeedDial))]);
    assert_eq!(st.notice, Some(Notice::CallFailed));
    assert_eq!(fx, vec![set(Timer::Notice, 3)]);
    // The hub refuses the invite.
    let (st, _) = run(
        &s,
        online(),
        &[
            (0, Event::Command(Command::Dial("nobody".into()))),
            (
                10,
                Event::DialFailed {
                    callee: "nobody".into(),
                    error: "404".into(),
                },
            ),
        ],
    );
    assert_eq!(outputs(&st).status, StatusLight::Error);
}

#[test]
fn hanging_up_an_outgoing_call_cancels_it_even_before_the_hub_answered() {
    let s = settings(AnswerPolicy::Manual);
    let (st, fx) = run(&s, dialled(&s), &[(500, press(Button::Hangup))]);
    assert_eq!(st.phase, Phase::Idle);
    assert_eq!(
        fx,
        vec![
            cancel(Timer::Dial),
            Effect::EndCall {
                call_id: "out1".into(),
                reason: "cancelled".into()
            }
        ]
    );
    let (st, fx) = run(
        &s,
        online(),
        &[
            (0, press(Button::SpeedDial)),
            (10, press(Button::Hangup)),
            (
                40,
                Event::DialSucceeded {
                    callee: "grandma".into(),
                    join: join("out2"),
                },
            ),
        ],
    );
    assert_eq!(st.phase, Phase::Idle);
    assert_eq!(
        fx.last(),
        Some(&Effect::EndCall {
            call_id: "out2".into(),
            reason: "cancelled".into()
        })
    );
}

#[test]
fn outputs_follow_the_state() {
    let s = settings(AnswerPolicy::Manual);
    assert_eq!(outputs(&State::new()).status, StatusLight::Offline);
    assert_eq!(outputs(&online()).status, StatusLight::Idle);
    let dnd = State {
        dnd_manual: true,
        ..online()
    };
    assert_eq!(outputs(&dnd).status, StatusLight::Dnd);
    let (ringing, _) = run(&s, online(), &[(0, invite("c1", "alice"))]);
    let o = outputs(&ringing);
    assert_eq!(
        (o.status, o.ringtone, o.camera_live),
        (StatusLight::Ringing, true, false)
    );
    let (answering, _) = run(&s, ringing, &[(10, press(Button::Call))]);
    let o = outputs(&answering);
    assert_eq!(
        (o.ringtone, o.camera_live),
        (false, false),
        "ring stops at the press"
    );
    let st = in_call(&settings(AnswerPolicy::Auto));
    let o = outputs(&st);
    assert_eq!((o.status, o.camera_live), (StatusLight::InCall, true));
    let (rejoining, _) = run(
        &s,
        st,
        &[(
            100,
            Event::MediaFailed {
                call_id: "c1".into(),
                error: "x".into(),
            },
        )],
    );
    assert!(
        !outputs(&rejoining).camera_live,
        "privacy LED off while media is down"
    );
}
