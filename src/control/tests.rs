//! The control socket's tests: status, commands, the socket's mode, random request lines.
use super::*;
use std::sync::atomic::Ordering;

/// A daemon's status source at rest, sending requests to `tx`.
fn idle_source(tx: tokio::sync::mpsc::Sender<Request>) -> StatusSource {
    StatusSource {
        status: Arc::new(Mutex::new(Status::default())),
        counters: Arc::new(Counters::default()),
        ringtone: Arc::new(RingtoneStatus::default()),
        leds: Arc::new(serde_json::Map::new),
        requests: tx,
        screenshot: Arc::new(|| None),
    }
}

#[tokio::test]
async fn status_round_trips_over_the_socket_with_live_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/control.sock");
    let status = Arc::new(Mutex::new(Status {
        state: "in_call".into(),
        hub_online: true,
        call_id: Some("c1".into()),
        ..Default::default()
    }));
    let counters = Arc::new(Counters::default());
    counters.video_frames_received.store(42, Ordering::Relaxed);
    let (tx, _rx) = tokio::sync::mpsc::channel(REQUEST_CAPACITY);
    let src = StatusSource {
        status: status.clone(),
        counters: counters.clone(),
        ringtone: Arc::new(RingtoneStatus::default()),
        leds: Arc::new(serde_json::Map::new),
        requests: tx,
        screenshot: Arc::new(|| None),
    };
    let p = path.clone();
    let server = tokio::spawn(async move { serve(&p, src).await });
    let mut got = None;
    for _ in 0..100 {
        if let Ok(s) = query_status(&path).await {
            got = Some(s);
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let got = got.expect("daemon answered");
    assert_eq!(got.state, "in_call");
    assert_eq!(got.call_id.as_deref(), Some("c1"));
    assert_eq!(got.video_frames_received, 42);
    server.abort();
}

/// Random request lines (real commands with random arguments, and junk) on a live
/// socket: each gets exactly one JSON answer line, and the server keeps serving.
#[test]
fn random_request_lines_each_get_one_json_answer() {
    use proptest::prelude::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let (tx, mut rx) = tokio::sync::mpsc::channel(REQUEST_CAPACITY);
    let src = idle_source(tx);
    let listener = rt.block_on(async { bind(&path) }).unwrap();
    let _server = rt.spawn(serve_on(listener, src));
    // Requests that parse are delivered; drain them.
    rt.spawn(async move { while rx.recv().await.is_some() {} });
    let cmd = prop::sample::select(vec![
        "status",
        "answer",
        "decline",
        "hangup",
        "mute",
        "dnd",
        "dial",
        "press",
        "volume",
        "screenshot",
        "nope",
    ]);
    let arg = prop_oneof![
        any::<String>().prop_map(|s| serde_json::Value::String(s).to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
    ];
    let key = prop::sample::select(vec!["on", "level", "button", "identity", "long", "x"]);
    let line = prop_oneof![
        (cmd, prop::collection::vec((key, arg), 0..3)).prop_map(|(c, fields)| {
            let mut s = format!("{{\"cmd\":\"{c}\"");
            for (k, v) in fields {
                s.push_str(&format!(",\"{k}\":{v}"));
            }
            s.push('}');
            s
        }),
        any::<String>().prop_map(|s| s.replace('\n', " ")),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 500,
        ..ProptestConfig::default()
    });
    runner
        .run(&prop::collection::vec(line, 1..5), |lines| {
            let answers = rt.block_on(async {
                let stream = tokio::net::UnixStream::connect(&path).await.unwrap();
                let (r, mut w) = stream.into_split();
                let mut r = tokio::io::BufReader::new(r);
                let mut answers = Vec::new();
                for line in &lines {
                    w.write_all(format!("{line}\n").as_bytes()).await.unwrap();
                    let mut answer = String::new();
                    r.read_line(&mut answer).await.unwrap();
                    answers.push(answer);
                }
                answers
            });
            for (line, answer) in lines.iter().zip(&answers) {
                let v: serde_json::Value = serde_json::from_str(answer)
                    .map_err(|e| TestCaseError::fail(format!("{line:?} → {answer:?}: {e}")))?;
                prop_assert!(v.is_object(), "{:?} → {}", line, v);
            }
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn the_socket_appears_with_mode_0660_replacing_a_stale_one() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    drop(bind(&path).unwrap());
    // A stale socket from a previous run is replaced.
    let listener = bind(&path).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    // Nothing is left of the private staging directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("control.sock")]);
    // And it is the listening socket.
    let client = tokio::net::UnixStream::connect(&path).await;
    assert!(client.is_ok());
    let (accepted, _) = listener.accept().await.unwrap();
    drop(accepted);
}

#[tokio::test]
async fn ctl_commands_reach_the_supervisor_and_bad_ones_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let (tx, mut rx) = tokio::sync::mpsc::channel(REQUEST_CAPACITY);
    let src = idle_source(tx);
    let p = path.clone();
    let server = tokio::spawn(async move { serve(&p, src).await });
    let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    let expect = [
        ("answer", Request::Command(Command::Answer)),
        ("dnd on", Request::Command(Command::Dnd(true))),
        ("unmute", Request::Command(Command::Mute(false))),
        (
            "dial grandma",
            Request::Command(Command::Dial("grandma".into())),
        ),
        (
            "press call --long",
            Request::Press {
                button: Button::Call,
                long: true,
            },
        ),
        (
            "press speed_dial",
            Request::Press {
                button: Button::SpeedDial,
                long: false,
            },
        ),
        (
            "press volume_down",
            Request::Press {
                button: Button::VolumeDown,
                long: false,
            },
        ),
        (
            "volume up",
            Request::Command(Command::Volume(VolumeChange::Up)),
        ),
        (
            "volume 35%",
            Request::Command(Command::Volume(VolumeChange::Set(35))),
        ),
    ];
    for (line, want) in expect {
        let req = ctl_request(&args(line)).unwrap();
        let mut answer = None;
        for _ in 0..100 {
            if let Ok(a) = request(&path, &req).await {
                answer = Some(a);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(answer.unwrap(), serde_json::json!({"ok": true}), "{line}");
        assert_eq!(rx.recv().await.unwrap(), want, "{line}");
    }
    let bad = request(&path, r#"{"cmd":"explode"}"#).await.unwrap();
    assert!(
        bad["error"].as_str().unwrap().contains("known: status"),
        "{bad}"
    );
    let bad = request(&path, r#"{"cmd":"dial"}"#).await.unwrap();
    assert!(bad["error"].as_str().unwrap().contains("identity"), "{bad}");
    assert!(
        ctl_request(&args("press elbow"))
            .unwrap_err()
            .contains("speed_dial")
    );
    assert!(
        ctl_request(&args("dnd maybe"))
            .unwrap_err()
            .contains("usage")
    );
    assert!(
        ctl_request(&args("volume 101"))
            .unwrap_err()
            .contains("0 to 100"),
    );
    let bad = request(&path, r#"{"cmd":"volume","level":"loud"}"#)
        .await
        .unwrap();
    assert!(bad["error"].as_str().unwrap().contains("up, down"), "{bad}");
    // A line longer than the limit is refused and does not take the daemon down:
    // the next connection is served.
    let huge = format!(r#"{{"cmd":"dial","identity":"{}"}}"#, "a".repeat(100_000));
    let bad = request(&path, &huge).await.unwrap();
    assert_eq!(
        bad["error"],
        format!("request longer than {MAX_REQUEST_BYTES} bytes")
    );
    let ok = request(&path, r#"{"cmd":"answer"}"#).await.unwrap();
    assert_eq!(ok, serde_json::json!({"ok": true}));
    server.abort();
}

#[tokio::test]
async fn no_daemon_is_a_clear_error() {
    let err = query_status(Path::new("/nonexistent/callbox.sock"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/callbox.sock") && err.contains("callbox run"),
        "{err}"
    );
}
