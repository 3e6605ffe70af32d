//! `step` driven by random event sequences (proptest), with the invariants a person at
//! the box relies on checked after every step: the privacy LED is lit exactly when the
//! camera is published, the ringtone plays only while ringing and never over a call's
//! media, media never starts twice without stopping, and nothing panics.

use proptest::prelude::*;

use super::tests::join;
use super::*;
use callbox_protocol::{CallType, RejectReason};

const CALLS: [&str; 2] = ["c1", "c2"];

fn an_event() -> impl Strategy<Value = Event> {
    let id = prop::sample::select(CALLS.to_vec());
    let timer = prop::sample::select(vec![
        Timer::MediaStart,
        Timer::Rejoin,
        Timer::Ring,
        Timer::AutoAnswer,
        Timer::Dial,
        Timer::Notice,
    ]);
    let button =
        (prop::sample::select(Button::ALL.to_vec()), prop::bool::ANY).prop_map(|(button, long)| {
            Event::Button(ButtonEvent {
                button,
                press: if long { Press::Long } else { Press::Short },
            })
        });
    let command = prop_oneof![
        Just(Command::Answer),
        Just(Command::Decline),
        Just(Command::Hangup),
        prop::bool::ANY.prop_map(Command::Mute),
        prop::bool::ANY.prop_map(Command::Dnd),
        Just(Command::Dial("grandma".into())),
        (0u8..=100).prop_map(|v| Command::Volume(VolumeChange::Set(v))),
    ]
    .prop_map(Event::Command);
    let hub = (id.clone(), prop::bool::ANY, prop::bool::ANY, 0usize..4).prop_map(
        |(id, video, trusted, which)| {
            Event::Hub(match which {
                0 => ServerEvent::CallInvitation {
                    invitation_id: format!("inv-{id}"),
                    call_id: id.into(),
                    inviter: "alice".into(),
                    inviter_name: None,
                    call_type: if video {
                        CallType::Video
                    } else {
                        CallType::Audio
                    },
                    room_name: format!("room-{id}"),
                    trusted,
                },
                1 => ServerEvent::CallCancelled { call_id: id.into() },
                2 => ServerEvent::CallEnded {
                    call_id: id.into(),
                    reason: "hangup".into(),
                },
                _ if video => ServerEvent::InvitationAccepted {
                    invitation_id: format!("inv-{id}"),
                    call_id: id.into(),
                    invitee: "grandma".into(),
                },
                _ => ServerEvent::InvitationRejected {
                    invitation_id: format!("inv-{id}"),
                    call_id: id.into(),
                    invitee: "grandma".into(),
                    reason: RejectReason::Busy,
                },
            })
        },
    );
    let results = (id, 0usize..9).prop_map(|(id, which)| match which {
        0 => Event::AnswerSucceeded {
            call_id: id.into(),
            join: join(id),
        },
        1 => Event::AnswerFailed {
            call_id: id.into(),
            error: "x".into(),
        },
        2 => Event::DialSucceeded {
            callee: "grandma".into(),
            join: join(id),
        },
        3 => Event::DialFailed {
            callee: "grandma".into(),
            error: "x".into(),
        },
        4 => Event::TokenReceived {
            call_id: id.into(),
            join: join(id),
        },
        5 => Event::TokenFailed {
            call_id: id.into(),
            error: "x".into(),
        },
        6 => Event::MediaStarted { call_id: id.into() },
        7 => Event::MediaFailed {
            call_id: id.into(),
            error: "x".into(),
        },
        _ => Event::HubConnected,
    });
    prop_oneof![
        Just(Event::HubConnected),
        Just(Event::HubDisconnected),
        prop::bool::ANY.prop_map(Event::DndSchedule),
        timer.prop_map(Event::TimerFired),
        button,
        command,
        hub,
        results,
    ]
}

fn a_policy() -> impl Strategy<Value = AnswerPolicy> {
    prop::sample::select(vec![
        AnswerPolicy::Manual,
        AnswerPolicy::Auto,
        AnswerPolicy::AutoAfter,
        AnswerPolicy::Muted,
    ])
}

/// The media the supervisor would have running after applying `effects`.
#[derive(Debug, Default)]
struct Media {
    /// `(call_id, camera published)`.
    running: Option<(String, bool)>,
}

impl Media {
    fn apply(&mut self, effects: &[Effect]) -> Result<(), TestCaseError> {
        for e in effects {
            match e {
                Effect::StartMedia { call_id, video, .. } => {
                    prop_assert!(
                        self.running.is_none(),
                        "media started for {call_id} while {:?} runs",
                        self.running
                    );
                    self.running = Some((call_id.clone(), *video));
                }
                Effect::StopMedia { .. } => self.running = None,
                _ => {}
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_keep_the_boxs_promises(
        policy in a_policy(),
        events in prop::collection::vec(an_event(), 1..60),
    ) {
        let settings = Settings {
            policy,
            speed_dial: Some("grandma".into()),
            ..Settings::default()
        };
        let mut state = State::new();
        let mut media = Media::default();
        let mut now = Instant::now();
        for event in events {
            now += Duration::from_millis(700);
            let (next, effects) = step(state, event.clone(), now, &settings);
            state = next;
            media.apply(&effects)?;
            let out = outputs(&state);
            // The privacy LED tells the truth: lit iff the camera is published.
            let publishing = media.running.as_ref().is_some_and(|(_, video)| *video);
            prop_assert_eq!(
                out.camera_live, publishing,
                "after {:?}: LED {} but camera published {}; phase {:?}",
                event, out.camera_live, publishing, state.phase
            );
            // Media belongs to the current call.
            if let Some((id, _)) = &media.running {
                prop_assert_eq!(
                    state.phase.call().map(|c| c.call_id.as_str()),
                    Some(id.as_str()),
                    "media of {} runs in phase {:?}", id, state.phase
                );
            }
            // The ringtone: only while ringing, never over a call's media.
            prop_assert_eq!(out.ringtone, matches!(state.phase, Phase::Ringing { .. }));
            prop_assert!(!(out.ringtone && media.running.is_some()));
            // The mute LED only in a call.
            prop_assert!(!out.muted || state.phase.call().is_some());
        }
    }
}
