//! The harness itself against the real livekit-server and Python.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use callbox_testkit::{LiveKit, LiveKitOptions, PyPeer};

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn livekit_starts_on_loopback_and_stops_on_drop() {
    let started = Instant::now();
    let mut lk = LiveKit::start(LiveKitOptions {
        webhook_urls: vec!["http://127.0.0.1:9/webhook".into()],
        ..Default::default()
    });
    eprintln!("livekit-server up in {:?}", started.elapsed());
    assert!(lk.ws_url.starts_with("ws://127.0.0.1:"));
    let reply = http_get(lk.port, "/");
    assert!(reply.starts_with("HTTP/1.0 200"), "{reply}");
    assert!(lk.is_running());
    let config = std::fs::read_to_string(lk.config_path()).unwrap();
    assert!(config.contains("node_ip: 127.0.0.1"));
    assert!(config.contains("http://127.0.0.1:9/webhook"));
    let port = lk.port;
    lk.kill();
    assert!(!lk.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!lk.log_tail(200).is_empty());
}

#[test]
fn two_servers_run_side_by_side() {
    let a = LiveKit::start(LiveKitOptions::default());
    let b = LiveKit::start(LiveKitOptions::default());
    assert_ne!(a.port, b.port);
    assert_ne!(a.rtc_udp_port, b.rtc_udp_port);
    assert!(http_get(a.port, "/").starts_with("HTTP/1.0 200"));
    assert!(http_get(b.port, "/").starts_with("HTTP/1.0 200"));
}

#[test]
fn pypeer_collects_json_events_and_takes_commands() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("echo_peer.py");
    std::fs::write(
        &script,
        r#"import json, sys
print(json.dumps({"event": "ready", "argv": sys.argv[1:]}))
print("a plain log line")
for line in sys.stdin:
    if line.strip() == "quit":
        break
    print(json.dumps({"event": "echo", "line": line.strip()}))
print("to stderr", file=sys.stderr)
sys.exit(3)
"#,
    )
    .unwrap();
    let mut peer = PyPeer::spawn(script.to_str().unwrap(), ["x", "y"]);
    let ready = peer.expect_event("ready", Duration::from_secs(20));
    assert_eq!(ready["argv"], serde_json::json!(["x", "y"]));
    peer.send_line("hello");
    let echo = peer.expect_event("echo", Duration::from_secs(10));
    assert_eq!(echo["line"], "hello");
    // Events seen earlier are found again.
    assert!(peer.wait_event("ready", Duration::ZERO).is_some());
    assert!(
        peer.wait_event("never", Duration::from_millis(100))
            .is_none()
    );
    peer.send_line("quit");
    let status = peer
        .wait_exit(Duration::from_secs(10))
        .expect("the peer exits");
    assert_eq!(status.code(), Some(3));
    assert_eq!(peer.log_lines(), vec!["a plain log line".to_owned()]);
    assert!(peer.stderr_tail(5).contains("to stderr"));
    // After exit, waiting ends at once.
    assert!(peer.wait_event("never", Duration::from_secs(30)).is_none());
}

#[test]
fn pypeer_is_killed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("sleeper.py");
    std::fs::write(
        &script,
        "import json, time\nprint(json.dumps({'event': 'up'}))\ntime.sleep(600)\n",
    )
    .unwrap();
    let peer = PyPeer::spawn(script.to_str().unwrap(), Vec::<String>::new());
    peer.expect_event("up", Duration::from_secs(20));
    let pid = peer.pid().unwrap();
    drop(peer);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
