//! `callbox check`, the installer's diagnostic, against a real hub: what it finds on
//! this machine, and that a wrong credential or an unreachable hub is a FAIL naming the
//! key to fix, with exit status 1.

mod support;

use std::process::Command;

use support::World;

fn check(config: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_callbox"))
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("callbox check runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[test]
fn check_says_what_this_machine_has_and_whether_it_can_take_calls() {
    let w = World::start();
    let config = w.write_config(&w.box_credential, "");
    let (code, text) = check(&config);
    assert_eq!(code, Some(0), "{text}");
    for line in [
        "ok   config",
        "ok   gstreamer",
        "ok   camera    media.video_source = \"test\"",
        "ok   encoder   H.264:",
        "ok   decoder   VP8:",
        "ok   hub       http://127.0.0.1:",
        "result: this box can take calls",
    ] {
        assert!(text.contains(line), "`{line}` in:\n{text}");
    }
    assert!(text.contains("device credential accepted"), "{text}");

    let config = w.write_config("not-the-credential", "");
    let (code, text) = check(&config);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL hub") && text.contains("hub.credential") && text.contains("add-device"),
        "{text}"
    );
    assert!(
        text.contains("cannot take calls until the 1 FAIL line(s)"),
        "{text}"
    );
}

#[test]
fn an_unreachable_hub_is_a_fail_naming_hub_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callbox.toml");
    std::fs::write(
        &config,
        "[hub]\nurl = \"http://127.0.0.1:9\"\ncredential = \"x\"\n\n[media]\nvideo_source = \"test\"\naudio_source = \"test\"\nvideo_sink = \"fakesink\"\naudio_sink = \"fakesink\"\n",
    )
    .unwrap();
    let (code, text) = check(&config);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL hub       cannot reach http://127.0.0.1:9"),
        "{text}"
    );
    assert!(text.contains("hub.url"), "{text}");
}
