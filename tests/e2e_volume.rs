//! Issue #8, volume and the network indicator: the volume buttons (pressed through the GPIO simulation, so the
//! debounce runs for real) change the speaker's level, the caller can measure it, and
//! the screen shows a volume bar.
//!
//! The box has no speaker here, so the software volume is measured through the
//! simulated acoustic echo (`media.simulated_echo_delay_ms`, echo cancellation off):
//! the caller's 440 Hz tone comes back from the box's speaker path into its
//! microphone, so the caller hears its own tone at the box's speaker volume.

mod support;

use std::time::Duration;

use support::{World, caller_counts, hang_up};

/// Whole screen, bottom line (the volume bar or "Ready for calls").
const BOTTOM: (f64, f64, f64, f64) = (0.0, 0.86, 1.0, 1.0);

fn is_light(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c >= 200)
}

/// Presses `button` and waits until the daemon's status satisfies `done`.
fn press(w: &World, button: &str, what: &str, done: impl Fn(&callbox::control::Status) -> bool) {
    let ack = w.ctl(&["press", button]);
    assert_eq!(ack["ok"], true, "press {button}: {ack}");
    w.wait_status(what, Duration::from_secs(5), done);
}

/// The caller's 440 Hz level (dBFS) over at least 2 s from now on.
fn echo_level(caller: &mut callbox_testkit::PyPeer) -> f64 {
    caller.send_line("reset_levels");
    caller.expect_event("levels_reset", Duration::from_secs(5));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let counts = caller_counts(caller);
        if counts["tone_level_windows"].as_u64().unwrap_or(0) >= 20 {
            return counts["tone_levels_db"]["440"]
                .as_f64()
                .unwrap_or_else(|| panic!("the caller measured 440 Hz: {counts}"));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "2 s of audio measured: {counts}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn volume_buttons_change_what_the_speaker_plays_and_the_screen_shows_it() {
    let w = World::with_online_box(
        "echo_cancellation = false\nnoise_suppression = false\n\
         simulated_echo_delay_ms = 40\nsimulated_echo_gain_db = -6.0",
        "[audio]\nvolume = 100\nringtone_volume = 60\n\n\
         [screen]\nname = \"Hallway\"\nwidth = 640\nheight = 360\n",
    );
    let s = w.status().expect("status");
    assert_eq!(s.volume.map(|v| (v.call, v.ringtone)), Some((100, 60)));

    // Idle: the volume buttons set the ringtone's volume, and the screen says so.
    let before = w.screenshot("volume-before");
    press(&w, "volume_down", "ringtone at 50 %", |s| {
        s.volume.is_some_and(|v| v.ringtone == 50 && v.call == 100)
    });
    let bar = w.screenshot("volume");
    let (lit_before, lit_bar) = (before.share(BOTTOM, is_light), bar.share(BOTTOM, is_light));
    callbox_testkit::report!(
        "bottom line light pixels: {lit_before:.3} (\"Ready for calls\") -> {lit_bar:.3} (volume bar)"
    );
    assert!(
        lit_bar > lit_before * 1.5,
        "the volume bar (5 filled squares and longer words) fills more of the bottom line \
         than \"Ready for calls\": {lit_bar:.3} vs {lit_before:.3}"
    );

    // In a call: the call's volume, heard by the caller through the echo.
    let mut caller = w.dial_audio_levels(&["440"], "3", "300");
    caller.expect_event("media_ok", Duration::from_secs(60));
    // The network indicator's figures, from WebRTC stats: on loopback, good.
    let s = w.wait_status("network measured", Duration::from_secs(15), |s| {
        s.network.is_some_and(|n| n.jitter_ms.is_some())
    });
    let n = s.network.unwrap();
    callbox_testkit::report!(
        "network in an audio call on loopback: {:?}, receive loss {:.1} %, send loss {:?} %, RTT {:?} ms, \
         jitter {:?} ms, {:.0} kbit/s out",
        n.quality,
        n.receive_loss_pct,
        n.send_loss_pct,
        n.rtt_ms,
        n.jitter_ms,
        n.send_kbps
    );
    assert_eq!(n.quality, callbox::media::quality::Quality::Good, "{n:?}");
    assert!(n.jitter_ms.unwrap() < 30.0, "loopback jitter: {n:?}");
    assert!(
        n.send_kbps > 10.0,
        "the box's Opus leaves (tens of kbit/s): {n:?}"
    );
    let loud = echo_level(&mut caller);
    for v in [90u8, 80, 70, 60, 50] {
        press(&w, "volume_down", &format!("call volume {v} %"), |s| {
            s.volume.is_some_and(|x| x.call == v && x.ringtone == 50) && s.speaker_volume == v
        });
    }
    // What is in flight at the old volume (jitter buffers, the echo's delay) passes.
    std::thread::sleep(Duration::from_millis(800));
    let quiet = echo_level(&mut caller);
    let drop = loud - quiet;
    callbox_testkit::report!(
        "caller's tone through the box's speaker: {loud:.1} dBFS at 100 %, {quiet:.1} dBFS at 50 %: \
         {drop:.1} dB less (expected 25: 0.5 dB per %)"
    );
    assert!(
        loud > -30.0,
        "at 100 % the echo is clearly heard: {loud:.1} dBFS"
    );
    assert!(
        (20.0..=30.0).contains(&drop),
        "five steps down take 25 dB off, measured {drop:.1}"
    );
    assert!(w.daemon_log().contains("speaker volume"));
    hang_up(&w, caller);
    assert!(
        w.status().unwrap().network.is_none(),
        "no network figures outside a call"
    );
    // Idle again: the speaker is back at the call volume the buttons left.
    let s = w.status().expect("status");
    assert_eq!(s.volume.map(|v| (v.call, v.ringtone)), Some((50, 50)));
}

/// Under systemd (`$STATE_DIRECTORY`) the volumes the buttons set survive a restart,
/// as a power cut must not undo them.
#[test]
fn the_volume_set_by_the_buttons_survives_a_restart() {
    let mut w = World::start();
    let state = w.dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let state_env = state.display().to_string();
    let cred = w.box_credential.clone();
    let start = |w: &mut World| {
        w.start_daemon_env(&cred, "", &[("STATE_DIRECTORY", &state_env)]);
        w.wait_status("online", Duration::from_secs(20), |s| {
            s.hub_online && s.state == "idle"
        })
    };
    let s = start(&mut w);
    assert_eq!(s.volume.map(|v| (v.call, v.ringtone)), Some((80, 80)));
    press(&w, "volume_down", "ringtone 70 %", |s| {
        s.volume.is_some_and(|v| v.ringtone == 70)
    });
    let mut daemon = w.daemon.take().unwrap();
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let s = start(&mut w);
    assert_eq!(
        s.volume.map(|v| (v.call, v.ringtone)),
        Some((80, 70)),
        "the ringtone's volume as the button left it"
    );
    assert!(w.daemon_log().contains("speaker volume as last set"));
}
