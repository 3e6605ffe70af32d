//! The `callbox` binary's exit status and messages for what an installer must fix.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_callbox");

#[test]
fn the_example_config_as_installed_exits_78_naming_the_key_to_set() {
    // The package installs config/callbox.example.toml as /etc/callbox/callbox.toml.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/callbox.example.toml");
    for verb in ["check", "run"] {
        let out = Command::new(BIN)
            .args([verb, "--config", example])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // EX_CONFIG: callbox.service has RestartPreventExitStatus=78, so systemd shows
        // this message once instead of restarting into it.
        assert_eq!(out.status.code(), Some(78), "callbox {verb}: {err}");
        assert!(
            err.contains("callbox.example.toml")
                && err.contains("hub.credential")
                && err.contains("placeholder"),
            "callbox {verb}: {err}"
        );
    }
}

#[test]
fn a_missing_config_file_exits_78_naming_it() {
    let out = Command::new(BIN)
        .args(["check", "--config", "/nonexistent/callbox.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/callbox.toml"));
}
