//! The hub's caller web app in a real browser (`tests/peers/browser.py`: Playwright and
//! Debian's headless chromium with its fake camera and microphone), one command at a
//! time; shared by `tests/e2e_web.rs` and `make bench`.

use std::path::PathBuf;
use std::time::Duration;

use callbox_testkit::PyPeer;
use serde_json::Value;

use super::World;

/// The page, driven one command at a time (see `tests/peers/browser.py`).
pub struct Browser {
    peer: PyPeer,
    sent: usize,
}

pub fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// Opens `path` (e.g. `/`) of the hub's app in a new browser.
    pub fn open(w: &World, name: &str, path: &str, extra: &[&str]) -> Browser {
        let url = format!("{}{path}", w.hub_url);
        let shots = shots_dir();
        let mut args = vec![
            "--url".to_owned(),
            url,
            "--shots".to_owned(),
            shots.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let peer = PyPeer::spawn_named(name, "browser.py", args);
        peer.expect_event("ready", Duration::from_secs(60));
        Browser { peer, sent: 0 }
    }

    /// Runs one command; returns its `done` event, or panics with the page's errors.
    pub fn run(&mut self, line: &str, timeout: Duration) -> Value {
        self.peer.send_line(line);
        self.sent += 1;
        let n = self.sent as u64;
        // browser.py numbers the commands it finishes (`n`, from 1).
        let out = self.peer.wait_for(
            |v| {
                matches!(
                    v.get("event").and_then(Value::as_str),
                    Some("done" | "failed")
                ) && v.get("n").and_then(Value::as_u64) == Some(n)
            },
            timeout,
        );
        match out {
            Some(v) if v["event"] == "done" => v,
            other => panic!(
                "browser command `{line}` did not succeed: {other:?}\npage errors: {:?}\n{}",
                self.page_errors(),
                self.peer.report()
            ),
        }
    }

    pub fn page_errors(&self) -> Vec<Value> {
        self.peer
            .events()
            .into_iter()
            .filter(|v| v["event"] == "page_error")
            .collect()
    }

    pub fn state(&mut self, state: &str, secs: u64) -> Value {
        self.run(
            &format!("state {state} {secs}"),
            Duration::from_secs(secs + 10),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.peer.send_line("quit");
    }
}
