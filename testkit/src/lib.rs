//! Test harness for callbox: a real `livekit-server` on loopback and Python SDK peers.
//!
//! Everything here is for tests (design §5): failures panic with a message that says
//! what to do (usually `make setup`) and the tail of the relevant log.
//!
//! - [`LiveKit::start`] runs `livekit-server` from the set-up cache with a generated
//!   config that keeps signalling *and* media on 127.0.0.1, on ports picked per run.
//! - [`PyPeer::spawn`] runs a script from `tests/peers/` with the set-up venv's Python
//!   and collects the JSON lines it prints.

#![warn(missing_docs)]

mod delay;
mod livekit;
mod netns;
mod pypeer;

pub use delay::{Link, UdpDelay};
pub use livekit::{LiveKit, LiveKitOptions};
pub use netns::NetNs;
pub use pypeer::PyPeer;

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The livekit-server version that `scripts/setup.sh` installs (keep in step with
/// `scripts/paths.sh`).
pub const LIVEKIT_VERSION: &str = "v1.13.5";

/// The repository root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the repository root")
        .to_path_buf()
}

/// `tests/peers/` in the repository: the Python peer scripts.
pub fn peers_dir() -> PathBuf {
    repo_root().join("tests").join("peers")
}

/// The set-up cache folder: `$CALLBOX_CACHE`, else `$XDG_CACHE_HOME/callbox`, else
/// `~/.cache/callbox` (as in `scripts/paths.sh`).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("CALLBOX_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(xdg) = non_empty_env("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("callbox");
    }
    let home = non_empty_env("HOME").expect("HOME is not set; set CALLBOX_CACHE instead");
    PathBuf::from(home).join(".cache").join("callbox")
}

/// The `livekit-server` binary: `$LIVEKIT_SERVER`, else the one `make setup` builds into
/// the cache (`<cache>/livekit-server-v1.13.5/livekit-server`).
///
/// # Panics
/// When the binary is missing, with a message telling the user to run `make setup`.
pub fn livekit_server_path() -> PathBuf {
    let path = match non_empty_env("LIVEKIT_SERVER") {
        Some(p) => PathBuf::from(p),
        None => cache_dir()
            .join(format!("livekit-server-{LIVEKIT_VERSION}"))
            .join("livekit-server"),
    };
    if !path.is_file() {
        panic!(
            "livekit-server not found at {}.\n\
             Run `make setup` (or `bash scripts/setup.sh`) once to build it, \
             or point LIVEKIT_SERVER at a livekit-server {LIVEKIT_VERSION} binary.",
            path.display()
        );
    }
    path
}

/// The Python interpreter of the set-up venv (which has the LiveKit Python SDK):
/// `$CALLBOX_PYTHON`, else `$CALLBOX_VENV/bin/python` as computed by
/// `scripts/paths.sh` (the venv is keyed by the hash of `tests/peers/requirements.txt`).
///
/// # Panics
/// When the interpreter is missing, with a message telling the user to run `make setup`.
pub fn python_path() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = non_empty_env("CALLBOX_PYTHON") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            panic!("CALLBOX_PYTHON={} does not exist", p.display());
        }
        return p;
    }
    let venv = VENV.get_or_init(venv_dir);
    let python = venv.join("bin").join("python");
    if !python.is_file() || !venv.join(".complete").is_file() {
        panic!(
            "the Python test venv is missing or incomplete at {}.\n\
             Run `make setup` (or `bash scripts/setup.sh`) to create it \
             (tests/peers/requirements.txt changed since the last set-up?), \
             or point CALLBOX_PYTHON at a Python that has livekit and livekit-api.",
            venv.display()
        );
    }
    python
}

/// Asks `scripts/paths.sh` where the venv is, so there is one definition of it.
fn venv_dir() -> PathBuf {
    let root = repo_root();
    let out = Command::new("bash")
        .arg("-c")
        .arg(". scripts/paths.sh >/dev/null && printf %s \"$CALLBOX_VENV\"")
        .current_dir(&root)
        .output()
        .unwrap_or_else(|e| panic!("could not run bash to source scripts/paths.sh: {e}"));
    let dir = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || dir.is_empty() {
        panic!(
            "sourcing {}/scripts/paths.sh failed ({}): {}",
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    PathBuf::from(dir)
}

/// A port that is currently free on 127.0.0.1 for both TCP and UDP.
///
/// Never returns the same port twice within one process, so the ports of several
/// servers started by one test binary do not collide. Another process may still
/// take the port before it is used; [`LiveKit::start`] retries with fresh ports
/// when that happens.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(Default::default);
    for _ in 0..200 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0 (TCP)");
        let port = tcp.local_addr().expect("local_addr").port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            continue;
        }
        if handed_out.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("could not find a port free for both TCP and UDP on 127.0.0.1");
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The last `max_lines` lines of a (log) file, for panic messages.
pub fn file_tail(path: &Path, max_lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(max_lines);
            lines[start..].join("\n")
        }
        Err(e) => format!("<could not read {}: {e}>", path.display()),
    }
}

/// Writes one line of a test's figures (frame counts, times, a skip) to stderr so that
/// it shows in `make test`'s output even when the test passes: libtest captures what
/// `println!`/`eprintln!` print, not writes to the stderr handle. Prefixed `figure: `.
pub fn report_line(line: &str) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "figure: {line}");
}

/// `format!`-style [`report_line`]: `report!("box decoded {n} frames")`.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {
        $crate::report_line(&format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
        UdpSocket::bind((Ipv4Addr::LOCALHOST, b)).unwrap();
    }

    #[test]
    fn repo_root_holds_the_scripts() {
        assert!(repo_root().join("scripts").join("paths.sh").is_file());
        assert!(peers_dir().join("requirements.txt").is_file());
    }
}
