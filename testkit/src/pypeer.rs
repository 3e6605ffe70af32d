//! A Python SDK peer (`tests/peers/*.py`) that reports progress as JSON lines.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{file_tail, peers_dir, python_path, repo_root};

#[derive(Default)]
struct Output {
    /// Every stdout line that parsed as a JSON value, in order.
    events: Vec<Value>,
    /// Every other stdout line.
    log: Vec<String>,
    /// stdout reached end of file (the process exited or closed it).
    eof: bool,
}

type Shared = Arc<(Mutex<Output>, Condvar)>;

/// A running `python -u tests/peers/<script> args…` from the set-up venv.
///
/// Each stdout line that parses as JSON becomes an event (see [`PyPeer::wait_for`]);
/// other stdout lines are kept as log. Every line is echoed to the test's stderr
/// prefixed with the peer's name. The script's stderr goes to a file (see
/// [`PyPeer::stderr_path`]); its tail is printed when a test panics while the peer is
/// alive. Dropping kills and reaps the process.
pub struct PyPeer {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    shared: Shared,
    reader: Option<JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
    stderr_path: PathBuf,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for PyPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyPeer")
            .field("name", &self.name)
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("stderr_path", &self.stderr_path)
            .finish_non_exhaustive()
    }
}

impl PyPeer {
    /// Starts `tests/peers/<script>` with the venv's Python (`-u`), the repository root
    /// as working directory, stdin piped (see [`PyPeer::send_line`]). An absolute
    /// `script` path is used as is.
    ///
    /// # Panics
    /// When the venv is missing (run `make setup`) or the process cannot start.
    pub fn spawn<I, S>(script: &str, args: I) -> PyPeer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let name = Path::new(script)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| script.to_owned());
        Self::spawn_named(&name, script, args)
    }

    /// Like [`PyPeer::spawn`], with `name` as the prefix of echoed lines (useful with
    /// two peers running the same script).
    pub fn spawn_named<I, S>(name: &str, script: &str, args: I) -> PyPeer
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let script_path = peers_dir().join(script);
        assert!(
            script_path.is_file(),
            "no peer script at {}",
            script_path.display()
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("callbox-peer-{name}-"))
            .tempdir()
            .expect("create a temporary folder for the peer's log");
        let stderr_path = dir.path().join(format!("{name}.stderr.log"));
        let stderr = File::create(&stderr_path).expect("create the peer's stderr log");

        let mut child = Command::new(python_path())
            .arg("-u")
            .arg(&script_path)
            .args(args)
            .current_dir(repo_root())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", script_path.display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");

        let shared: Shared = Default::default();
        let reader = {
            let shared = Arc::clone(&shared);
            let name = name.to_owned();
            std::thread::Builder::new()
                .name(format!("pypeer-{name}"))
                .spawn(move || read_stdout(&name, stdout, &shared))
                .expect("spawn the stdout reader thread")
        };

        PyPeer {
            name: name.to_owned(),
            child: Some(child),
            stdin,
            shared,
            reader: Some(reader),
            dir: Some(dir),
            stderr_path,
            status: None,
        }
    }

    /// The name used to prefix echoed lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id, while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits up to `timeout` for an event (a JSON line) that satisfies `pred` and returns
    /// the first such one. Events seen earlier count too: the search starts at the first
    /// line the peer ever printed. Returns `None` on timeout or when stdout closes
    /// without a match.
    pub fn wait_for<F>(&self, pred: F, timeout: Duration) -> Option<Value>
    where
        F: Fn(&Value) -> bool,
    {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut out = lock.lock().unwrap();
        let mut checked = 0;
        loop {
            if let Some(v) = out.events[checked..].iter().find(|v| pred(v)) {
                return Some(v.clone());
            }
            checked = out.events.len();
            if out.eof {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            out = cvar.wait_timeout(out, deadline - now).unwrap().0;
        }
    }

    /// [`PyPeer::wait_for`] an object whose `"event"` field is `event`.
    pub fn wait_event(&self, event: &str, timeout: Duration) -> Option<Value> {
        self.wait_for(
            |v| v.get("event").and_then(Value::as_str) == Some(event),
            timeout,
        )
    }

    /// [`PyPeer::wait_event`], panicking on timeout with the events so far and the tail
    /// of the peer's stderr.
    pub fn expect_event(&self, event: &str, timeout: Duration) -> Value {
        match self.wait_event(event, timeout) {
            Some(v) => v,
            None => panic!(
                "peer `{}` printed no `{event}` event within {timeout:?}\n{}",
                self.name,
                self.report()
            ),
        }
    }

    /// Every event (JSON line) printed so far.
    pub fn events(&self) -> Vec<Value> {
        self.shared.0.lock().unwrap().events.clone()
    }

    /// Every non-JSON stdout line printed so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.shared.0.lock().unwrap().log.clone()
    }

    /// Writes `line` and a newline to the peer's stdin (e.g. `hangup`).
    ///
    /// # Panics
    /// When stdin is closed (the peer exited).
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the peer's stdin is closed");
        if let Err(e) = writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            panic!(
                "writing `{line}` to peer `{}` failed: {e}\n{}",
                self.name,
                self.report()
            );
        }
    }

    /// Closes the peer's stdin (end of file).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `timeout` for the process to exit; returns its status, or `None` if it
    /// is still running. Also waits for its stdout to be fully read, so every event
    /// printed before exit is visible afterwards.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.status {
            return Some(status);
        }
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    self.child = None;
                    if let Some(reader) = self.reader.take() {
                        let _ = reader.join();
                    }
                    return Some(status);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(None) => return None,
                Err(e) => panic!("waiting for peer `{}` failed: {e}", self.name),
            }
        }
    }

    /// Kills the process (SIGKILL) and reaps it. Idempotent.
    pub fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.status = Some(status);
            }
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// Where the peer's stderr goes.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The last `lines` lines of the peer's stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        file_tail(&self.stderr_path, lines)
    }

    /// A multi-line description for panic messages: events so far and stderr's tail.
    pub fn report(&self) -> String {
        let events: Vec<String> = self.events().iter().map(Value::to_string).collect();
        format!(
            "--- events of peer `{}` ---\n{}\n--- tail of its stderr ({}) ---\n{}",
            self.name,
            events.join("\n"),
            self.stderr_path.display(),
            self.stderr_tail(40)
        )
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("{}", self.report());
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "testkit: peer `{}` logs kept in {}",
                    self.name,
                    kept.display()
                );
            }
        }
    }
}

fn read_stdout(name: &str, stdout: impl std::io::Read, shared: &Shared) {
    let (lock, cvar) = &**shared;
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\r', '\n']);
        eprintln!("[{name}] {line}");
        let mut out = lock.lock().unwrap();
        match serde_json::from_str::<Value>(line) {
            Ok(v) => out.events.push(v),
            Err(_) => out.log.push(line.to_owned()),
        }
        cvar.notify_all();
    }
    lock.lock().unwrap().eof = true;
    cvar.notify_all();
}
