use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/callbox/callbox.toml"))
}

const MINIMAL: &str = "[hub]\nurl = \"http://hub.local:8080/\"\ncredential = \"abc\"\n";

#[test]
fn minimal_file_gets_documented_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.hub.url, "http://hub.local:8080");
    assert_eq!(c.credential(), "abc");
    assert_eq!(c.call.answer, AnswerPolicy::Auto);
    assert_eq!(c.media.video_source, VideoSource::Auto);
    assert_eq!(
        (c.media.width, c.media.height, c.media.framerate),
        (640, 480, 30)
    );
    assert_eq!(c.media.max_video_bitrate_kbps, 1500);
    assert_eq!(c.media.test_pattern, TestPattern::Ball);
    assert_eq!(c.media.jitter_buffer_ms, 100);
    assert_eq!(c.control.socket, PathBuf::from("/run/callbox/control.sock"));
    assert_eq!(c.hub.reconnect_max_ms, 30_000);
}

#[test]
fn unknown_key_names_file_key_and_allowed_keys() {
    let err = parse(&format!("{MINIMAL}[media]\nvidoe_source = \"test\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/etc/callbox/callbox.toml"), "{err}");
    assert!(err.contains("vidoe_source"), "{err}");
    assert!(err.contains("video_source"), "lists allowed keys: {err}");
}

#[test]
fn bad_enum_value_lists_allowed_values() {
    let err = parse(&format!("{MINIMAL}[media]\nvideo_sink = \"hdmi\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("hdmi") && err.contains("kmssink"), "{err}");
    let err = parse(&format!("{MINIMAL}[call]\nanswer = \"maybe\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("maybe") && err.contains("auto"), "{err}");
}

#[test]
fn missing_credential_says_how_to_get_one() {
    let err = parse("[hub]\nurl = \"http://h\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hub.credential") && err.contains("add-device"),
        "{err}"
    );
}

#[test]
fn the_example_file_as_installed_says_to_set_the_credential() {
    // The package installs config/callbox.example.toml as /etc/callbox/callbox.toml;
    // started as is, the daemon must tell the installer what to edit.
    let err = parse(include_str!("../../config/callbox.example.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/etc/callbox/callbox.toml")
            && err.contains("hub.credential")
            && err.contains("placeholder")
            && err.contains("add-device"),
        "{err}"
    );
    let fixed = include_str!("../../config/callbox.example.toml")
        .replace("replace-with-the-device-credential", "a-real-credential");
    let c = parse(&fixed).expect("the example is otherwise valid");
    assert_eq!(c.call.answer, AnswerPolicy::Auto);
}

#[test]
fn bad_values_name_the_key() {
    for (extra, key) in [
        ("[media]\nwidth = 0\n", "media.width"),
        ("[media]\nframerate = 500\n", "media.framerate"),
        (
            "[media]\nstun_server = \"stun.l.google.com:19302\"\n",
            "media.stun_server",
        ),
        (
            "[media]\nice_local_addresses = [\"lo\"]\n",
            "media.ice_local_addresses",
        ),
        ("[media]\njitter_buffer_ms = 5\n", "media.jitter_buffer_ms"),
    ] {
        let err = parse(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
    let err = parse("[hub]\nurl = \"hub:8080\"\ncredential = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("hub.url") && err.contains("http://"), "{err}");
}

#[test]
fn call_policies_and_schedule_parse() {
    let c = parse(&format!(
        "{MINIMAL}[call]\nanswer = \"auto_after\"\nanswer_after_secs = 3\n\
         auto_answer_from = [\"grandma\"]\nspeed_dial = \"grandma\"\n\
         dnd_schedule = \"22:00-07:30\"\n"
    ))
    .unwrap();
    assert_eq!(c.call.answer, AnswerPolicy::AutoAfter);
    assert_eq!(c.call.answer_after_secs, 3);
    let sched = DndSchedule::parse(c.call.dnd_schedule.as_deref().unwrap()).unwrap();
    assert!(sched.contains(23 * 60) && sched.contains(0) && sched.contains(7 * 60 + 29));
    assert!(!sched.contains(7 * 60 + 30) && !sched.contains(12 * 60));
    let day = DndSchedule::parse("09:00-17:00").unwrap();
    assert!(day.contains(9 * 60) && !day.contains(17 * 60) && !day.contains(8 * 60));
    for bad in ["22:00", "25:00-07:00", "07:00-07:00", "aa:bb-cc:dd"] {
        assert!(DndSchedule::parse(bad).is_none(), "{bad}");
    }
    let err = parse(&format!("{MINIMAL}[call]\ndnd_schedule = \"10pm-7am\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("call.dnd_schedule") && err.contains("HH:MM-HH:MM"),
        "{err}"
    );
    let err = parse(&format!("{MINIMAL}[call]\nanswer = \"sometimes\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("manual") && err.contains("auto_after") && err.contains("muted"),
        "{err}"
    );
}

#[test]
fn gpio_mistakes_name_the_file_and_key() {
    let err = parse(&format!(
        "{MINIMAL}[gpio]\nbackend = \"cdev\"\n[gpio.buttons.call]\nline = 27\n\
         [gpio.leds.status]\nline = 27\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("/etc/callbox/callbox.toml") && err.contains("gpio."),
        "{err}"
    );
}

#[test]
fn credential_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cred = dir.path().join("cred");
    std::fs::write(&cred, "s3cret\n").unwrap();
    let c = parse(&format!(
        "[hub]\nurl = \"http://h\"\ncredential_file = \"{}\"\n",
        cred.display()
    ))
    .unwrap();
    assert_eq!(c.credential(), "s3cret");
    // The credential never prints, from either place.
    assert!(!format!("{c:?}").contains("s3cret"));
    let inline = parse("[hub]\nurl = \"http://h\"\ncredential = \"t0psecret\"\n").unwrap();
    assert!(!format!("{inline:?}").contains("t0psecret"));
}

#[test]
fn screen_keys_are_checked_and_named() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        (c.screen.width, c.screen.height, c.screen.framerate),
        (0, 0, 30)
    );
    assert!(c.screen.self_view);
    let c = parse(&format!(
        "{MINIMAL}[screen]\nname = \"Hallway\"\nwidth = 1280\nheight = 720\nself_view_corner = \"top-left\"\n"
    ))
    .unwrap();
    assert_eq!(c.screen.self_view_corner, crate::screen::Corner::TopLeft);
    for (toml, key) in [
        ("width = 1280", "screen.width"),
        ("width = 641\nheight = 360", "screen.width"),
        ("framerate = 0", "screen.framerate"),
        ("name = \"\"", "screen.name"),
    ] {
        let err = parse(&format!("{MINIMAL}[screen]\n{toml}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    let err = parse(&format!(
        "{MINIMAL}[screen]\nself_view_corner = \"middle\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("bottom-right"), "lists the corners: {err}");
}

#[test]
fn the_test_pattern_is_one_of_videotestsrcs_names() {
    let c = parse(&format!("{MINIMAL}[media]\ntest_pattern = \"snow\"\n")).unwrap();
    assert_eq!(c.media.test_pattern.nick(), "snow");
    let err = parse(&format!("{MINIMAL}[media]\ntest_pattern = \"noise\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test_pattern") || err.contains("noise"),
        "{err}"
    );
    assert!(
        err.contains("snow") && err.contains("smpte"),
        "lists them: {err}"
    );
}
