//! The `callbox-hub` binary: add-device / add-user output, config errors, serve + SIGTERM.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_callbox-hub");

fn write_config(dir: &Path, listen: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("hub.toml");
    let db = dir.join("db/hub.sqlite3");
    std::fs::write(
        &path,
        format!(
            "listen = \"{listen}\"\ndatabase = \"{}\"\n{extra}\n[livekit]\napi_key = \"k\"\napi_secret = \"0123456789abcdef0123456789abcdef\"\n",
            db.display()
        ),
    )
    .unwrap();
    path
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn add_principal_prints_only_the_credential_and_rotates_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:0", "");
    let config = config.to_str().unwrap();

    let first = run(&["add-device", "--config", config, "--identity", "box1"]);
    assert!(first.status.success(), "{}", stderr(&first));
    // Into a pipe (journald, a script) the log is plain text: no ANSI colour codes.
    assert!(
        stderr(&first).contains("credential issued"),
        "{}",
        stderr(&first)
    );
    assert!(
        !stderr(&first).contains('\x1b'),
        "escape codes in piped stderr: {:?}",
        stderr(&first)
    );
    let cred = stdout(&first);
    let lines: Vec<&str> = cred.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stdout: {cred:?}");
    assert_eq!(lines[0].len(), 64);
    assert!(lines[0].bytes().all(|b| b.is_ascii_hexdigit()));

    let again = run(&["add-device", "--config", config, "--identity", "box1"]);
    assert!(again.status.success());
    assert_ne!(stdout(&again), cred, "re-adding rotates the credential");

    let user = run(&["add-user", "--config", config, "--identity", "alice"]);
    assert!(user.status.success(), "{}", stderr(&user));

    let clash = run(&["add-user", "--config", config, "--identity", "box1"]);
    assert!(!clash.status.success());
    assert!(stdout(&clash).is_empty());
    assert!(
        stderr(&clash).contains("already exists as a device"),
        "{}",
        stderr(&clash)
    );

    let bad = run(&["add-user", "--config", config, "--identity", "no spaces"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("invalid identity"),
        "{}",
        stderr(&bad)
    );

    // Who may call whom: `allow --box … --caller …`, `revoke`, `set-name`.
    let allow = run(&[
        "allow",
        "--config",
        config,
        "--box",
        "box1",
        "--caller",
        "alice",
        "--trusted",
    ]);
    assert!(allow.status.success(), "{}", stderr(&allow));
    assert_eq!(
        stdout(&allow).trim(),
        "alice may call box1 (trusted: answered by itself)"
    );
    let unknown = run(&[
        "allow", "--config", config, "--box", "box1", "--caller", "carol",
    ]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no device or user `carol`"),
        "{}",
        stderr(&unknown)
    );
    let named = run(&[
        "set-name",
        "--config",
        config,
        "--identity",
        "box1",
        "--name",
        "Hallway",
    ]);
    assert!(named.status.success(), "{}", stderr(&named));
    let revoke = run(&[
        "revoke", "--config", config, "--box", "box1", "--caller", "alice",
    ]);
    assert_eq!(stdout(&revoke).trim(), "alice may no longer call box1");
    let again = run(&[
        "revoke", "--config", config, "--box", "box1", "--caller", "alice",
    ]);
    assert_eq!(stdout(&again).trim(), "alice was not allowed to call box1");

    // The database only has hashes.
    let db = std::fs::read(dir.path().join("db/hub.sqlite3")).unwrap();
    let needle = lines[0].as_bytes();
    assert!(!db.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn config_errors_name_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "127.0.0.1:0", "ring_timeout_sec = 3");
    let out = run(&["serve", "--config", config.to_str().unwrap()]);
    // EX_CONFIG: callbox-hub.service does not restart into the same error.
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(config.to_str().unwrap()) && err.contains("ring_timeout_sec"),
        "{err}"
    );
}

#[test]
fn the_example_config_as_installed_registers_devices_but_will_not_serve() {
    // What the package installs as /etc/callbox-hub/hub.toml, with the database moved.
    let dir = tempfile::tempdir().unwrap();
    let example = include_str!("../../config/hub.example.toml").replace(
        "/var/lib/callbox-hub/hub.sqlite3",
        dir.path().join("hub.sqlite3").to_str().unwrap(),
    );
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, example).unwrap();
    let config = config.to_str().unwrap();
    let add = run(&["add-device", "--config", config, "--identity", "box1"]);
    assert!(add.status.success(), "{}", stderr(&add));
    let serve = run(&["serve", "--config", config]);
    assert_eq!(serve.status.code(), Some(78), "{}", stderr(&serve));
    assert!(
        stderr(&serve).contains("livekit.api_key") && stderr(&serve).contains("placeholder"),
        "{}",
        stderr(&serve)
    );
}

#[test]
fn add_device_as_root_leaves_the_database_to_the_state_directory_owner() {
    // callbox-hub.service runs as a DynamicUser owning /var/lib/callbox-hub; an installer
    // runs add-device as root. The database must stay writable by the service.
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        callbox_testkit::report!("skipped: needs root to hand files to another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("db");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(61234), Some(61234)).unwrap();
    let config = write_config(dir.path(), "127.0.0.1:0", "");
    let out = run(&[
        "add-device",
        "--config",
        config.to_str().unwrap(),
        "--identity",
        "b",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let meta = std::fs::metadata(state.join("hub.sqlite3")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (61234, 61234));
}

#[test]
fn serve_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"), "");
    let config = config.to_str().unwrap();
    let cred = stdout(&run(&[
        "add-user",
        "--config",
        config,
        "--identity",
        "alice",
    ]));

    let mut child = Command::new(BIN)
        .args(["serve", "--config", config])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let health = loop {
        let r = rt.block_on(client.get(format!("http://127.0.0.1:{port}/health")).send());
        if let Ok(r) = r {
            break rt.block_on(r.text()).unwrap();
        }
        assert!(Instant::now() < deadline, "hub did not come up");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health, r#"{"status":"ok"}"#);
    let active = rt
        .block_on(
            client
                .get(format!("http://127.0.0.1:{port}/api/calls/active"))
                .bearer_auth(cred.trim())
                .send(),
        )
        .unwrap();
    assert_eq!(active.status(), 200);

    // No metrics_token in the config: /metrics is off, and says how to turn it on.
    let metrics = rt
        .block_on(
            client
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send(),
        )
        .unwrap();
    assert_eq!(metrics.status(), 403);
    assert!(
        rt.block_on(metrics.text())
            .unwrap()
            .contains("set metrics_token")
    );

    // A one-time sign-in link for the caller app, at the hub's address (no public_url).
    let link = run(&["invite-link", "--config", config, "--user", "alice"]);
    assert!(link.status.success(), "{}", stderr(&link));
    let link = stdout(&link);
    let code = link
        .trim()
        .strip_prefix(&format!("http://127.0.0.1:{port}/#signin="))
        .unwrap_or_else(|| panic!("a link to the app: {link:?}"));
    assert_eq!(code.len(), 64, "{link}");
    let signed_in = rt
        .block_on(
            client
                .post(format!("http://127.0.0.1:{port}/api/signin"))
                .json(&serde_json::json!({ "code": code }))
                .send(),
        )
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    // Links are for people: a box, or nobody, gets a clear error.
    run(&["add-device", "--config", config, "--identity", "box1"]);
    for who in ["box1", "nobody"] {
        let out = run(&["invite-link", "--config", config, "--user", who]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains(&format!("no user `{who}`")),
            "{}",
            stderr(&out)
        );
    }

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hub did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
