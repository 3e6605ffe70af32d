//! The volume buttons: which volume they change in which state, the steps and limits,
//! and what the speaker plays at.

use super::*;

fn call() -> CallInfo {
    CallInfo {
        call_id: "c1".into(),
        invitation_id: "inv-c1".into(),
        room_name: "room-c1".into(),
        peer: "alice".into(),
        peer_name: None,
        direction: Direction::Incoming,
        video: true,
        trusted: true,
        others: Vec::new(),
    }
}

fn press(button: Button) -> Event {
    Event::Button(ButtonEvent {
        button,
        press: Press::Short,
    })
}

fn run(s: State, events: &[Event]) -> State {
    let now = Instant::now();
    let settings = Settings::default();
    events.iter().fold(s, |s, e| {
        let (s, fx) = step(s, e.clone(), now, &settings);
        assert!(fx.is_empty(), "a volume change has no other effect: {fx:?}");
        s
    })
}

fn with(phase: Phase, call: u8, ringtone: u8) -> State {
    State {
        phase,
        hub_online: true,
        volume: Volume { call, ringtone },
        ..State::new()
    }
}

#[test]
fn idle_and_ringing_change_the_ringtone_a_call_changes_the_call() {
    let up = press(Button::VolumeUp);
    let down = press(Button::VolumeDown);
    let s = run(with(Phase::Idle, 50, 50), &[up.clone(), up.clone()]);
    assert_eq!(
        s.volume,
        Volume {
            call: 50,
            ringtone: 70
        }
    );
    let s = run(
        with(Phase::Ringing { call: call() }, 50, 50),
        std::slice::from_ref(&down),
    );
    assert_eq!(
        s.volume,
        Volume {
            call: 50,
            ringtone: 40
        }
    );
    assert_eq!(
        outputs(&s).speaker_volume,
        40,
        "the ring plays at its own volume"
    );
    let in_call = Phase::InCall {
        call: call(),
        answered_at: Instant::now(),
    };
    let s = run(with(in_call, 50, 50), std::slice::from_ref(&up));
    assert_eq!(
        s.volume,
        Volume {
            call: 60,
            ringtone: 50
        }
    );
    assert_eq!(outputs(&s).speaker_volume, 60);
    let s = run(
        with(
            Phase::Dialing {
                callee: "bob".into(),
            },
            50,
            50,
        ),
        &[down],
    );
    assert_eq!(s.volume.call, 40, "calling out: the call's volume");
}

#[test]
fn steps_stop_at_100_and_a_call_is_never_silenced_by_a_button() {
    let up = press(Button::VolumeUp);
    let down = press(Button::VolumeDown);
    let s = run(with(Phase::Idle, 95, 95), std::slice::from_ref(&up));
    assert_eq!(s.volume.ringtone, 100);
    let s = run(
        with(Phase::Idle, 20, 20),
        &[down.clone(), down.clone(), down.clone()],
    );
    assert_eq!(s.volume.ringtone, 0, "a silent ring is allowed");
    let in_call = Phase::InCall {
        call: call(),
        answered_at: Instant::now(),
    };
    let s = run(
        with(in_call.clone(), 30, 0),
        &[down.clone(), down.clone(), down.clone()],
    );
    assert_eq!(s.volume.call, 10, "one step is the floor in a call");
    let s = run(with(in_call.clone(), 5, 0), &[down]);
    assert_eq!(
        s.volume.call, 5,
        "below one step already: not raised, not lowered"
    );
    // `callbox ctl volume 0` is explicit and allowed.
    let s = run(
        with(in_call, 30, 0),
        &[Event::Command(Command::Volume(VolumeChange::Set(0)))],
    );
    assert_eq!(s.volume.call, 0);
    assert_eq!(outputs(&s).speaker_volume, 0);
}
