//! The daemon as systemd runs it (`systemd/callbox.service`, `Type=notify`), with real
//! parts: livekit-server, the hub, the `callbox` binary and a Python SDK caller. The
//! test plays systemd's side of sd_notify(3): it owns the `NOTIFY_SOCKET` datagram
//! socket and sets `WATCHDOG_USEC`/`WATCHDOG_PID` as the service manager would.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::World;

/// Watchdog timeout given to the daemon (µs): it must ping every 200 ms.
const WATCHDOG_USEC: u64 = 400_000;
/// How long the fail point wedges the supervisor loop (ms).
const WEDGE_MS: u64 = 3_000;

/// Everything the daemon sent to the notify socket, with arrival times.
#[derive(Clone, Default)]
struct Notifications(Arc<Mutex<Vec<(Instant, String)>>>);

impl Notifications {
    /// Binds `path` and records datagrams on a thread until the test ends.
    fn listen(path: &Path) -> Self {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        let log = Notifications::default();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.0.lock().unwrap().push((Instant::now(), text));
            }
        });
        log
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.0.lock().unwrap().clone()
    }

    /// `STATUS=` values in order.
    fn statuses(&self) -> Vec<String> {
        self.all()
            .iter()
            .flat_map(|(_, m)| m.lines().map(str::to_owned).collect::<Vec<_>>())
            .filter_map(|l| l.strip_prefix("STATUS=").map(str::to_owned))
            .collect()
    }

    /// Arrival times of `WATCHDOG=1`.
    fn pings(&self) -> Vec<Instant> {
        self.all()
            .into_iter()
            .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(t, _)| t)
            .collect()
    }

    /// Waits until some message satisfies `pred`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> Instant {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((t, _)) = self.all().into_iter().find(|(_, m)| pred(m)) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "no notification {what} within {timeout:?}; got: {:?}",
                self.all().iter().map(|(_, m)| m).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_pings(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.pings().len() < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} watchdog pings within {timeout:?}: {}",
                self.pings().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn start_under_notify(w: &mut World, extra_env: &[(&str, &str)]) -> Notifications {
    let sock = w.dir.path().join("notify.sock");
    let notes = Notifications::listen(&sock);
    let usec = WATCHDOG_USEC.to_string();
    let mut env = vec![
        ("NOTIFY_SOCKET", sock.to_str().unwrap()),
        ("WATCHDOG_USEC", usec.as_str()),
    ];
    env.extend_from_slice(extra_env);
    let cred = w.box_credential.clone();
    w.start_daemon_env(&cred, "", &env);
    notes
}

#[test]
fn systemd_gets_ready_status_and_pings_until_the_supervisor_loop_hangs() {
    let mut w = World::start();
    let wedge = format!("supervisor-event=sleep({WEDGE_MS})");
    let notes = start_under_notify(&mut w, &[("FAILPOINTS", wedge.as_str())]);

    let ready = notes.wait_for("READY=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    // READY=1 means the control socket answers: `systemctl start` returning is enough
    // for an installer to run `callbox status`.
    assert!(w.status().is_some(), "control socket up at READY=1");
    notes.wait_for("`idle, hub online`", Duration::from_secs(20), |m| {
        m.contains("STATUS=idle, hub online")
    });
    let first_status = &notes.statuses()[0];
    assert!(first_status.starts_with("idle"), "{first_status}");

    // Pings come every WATCHDOG_USEC/2 while the loop runs.
    notes.wait_pings(5, Duration::from_secs(20));
    assert!(notes.pings()[0] >= ready, "no ping before READY=1");

    // A control command reaches the supervisor loop, where the fail point wedges it.
    let before = notes.pings().len();
    let t_cmd = Instant::now();
    let answer = w.ctl(&["mute"]);
    assert_eq!(answer["ok"], true, "{answer}");
    // Wait for the loop to come back: pings resume after the wedge.
    let deadline = Instant::now() + Duration::from_secs(30);
    while notes.pings().iter().filter(|t| **t > t_cmd).count() < 3 {
        assert!(
            Instant::now() < deadline,
            "pings never resumed after the wedge"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pings = notes.pings();
    let longest_gap = pings[before.saturating_sub(1)..]
        .windows(2)
        .map(|p| p[1] - p[0])
        .max()
        .unwrap();
    callbox_testkit::report!(
        "service summary: READY after start, watchdog period {} ms, longest gap while the \
         loop was wedged {} ms",
        WATCHDOG_USEC / 2000,
        longest_gap.as_millis()
    );
    assert!(
        longest_gap >= Duration::from_millis(WEDGE_MS - 100),
        "pings went on while the supervisor loop was stuck (longest gap {longest_gap:?}): \
         they must come from the loop itself"
    );
    assert!(
        longest_gap > Duration::from_micros(WATCHDOG_USEC),
        "systemd would have seen the watchdog expire"
    );
    // And the daemon is still itself afterwards.
    w.wait_status("idle after the wedge", Duration::from_secs(10), |s| {
        s.state == "idle" && s.hub_online
    });
    // Its stderr is a file here, as it is a journald stream under systemd: plain text.
    let log = w.daemon_log();
    assert!(log.contains("callbox running"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "ANSI escape codes in the log:\n{log}"
    );
}

#[test]
fn sigterm_mid_call_hangs_up_so_the_caller_sees_call_ended() {
    let mut w = World::start();
    let notes = start_under_notify(&mut w, &[]);
    w.wait_status("online and idle", Duration::from_secs(30), |s| {
        s.hub_online && s.state == "idle"
    });

    // --watch-hub: the caller listens on the hub WebSocket, as a caller app does.
    let args = "--min-video-frames 30 --timeout 60 --no-hangup --watch-hub";
    let caller = w.dial("box1", &args.split(' ').collect::<Vec<_>>());
    caller.expect_event("media_ok", Duration::from_secs(60));
    let s = w.wait_status("in call", Duration::from_secs(30), |s| s.state == "in_call");
    notes.wait_for("`in call with alice`", Duration::from_secs(10), |m| {
        m.contains("STATUS=in call with alice")
    });

    // What `systemctl stop callbox` does (KillMode=mixed: SIGTERM to the main process).
    let mut daemon = w.daemon.take().unwrap();
    let t_term = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let ended = caller.expect_event("call_ended", Duration::from_secs(15));
    assert_eq!(ended["callId"].as_str(), s.call_id.as_deref());
    assert_eq!(ended["reason"], "device_shutdown", "{ended}");

    // Within the unit's TimeoutStopSec=20s, or systemd would SIGKILL it.
    let deadline = t_term + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = daemon.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "daemon still running 20 s after SIGTERM; log:\n{}",
            w.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stop_ms = t_term.elapsed().as_millis();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert!(
        notes.all().iter().any(|(_, m)| m.contains("STOPPING=1")),
        "STOPPING=1 sent"
    );
    let history = w.get("/api/calls/history?limit=1");
    assert_eq!(history[0]["status"], "ended", "{history}");
    callbox_testkit::report!(
        "service summary: SIGTERM mid-call → caller saw call_ended, daemon exited in {stop_ms} ms"
    );
}
