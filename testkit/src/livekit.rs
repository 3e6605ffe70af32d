//! A real `livekit-server` on loopback, one per test.

use std::fmt::Write as _;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{file_tail, free_port, livekit_server_path, peers_dir, python_path};

/// How long [`LiveKit::start`] waits for the server's HTTP port to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often [`LiveKit::start`] retries with fresh ports when another process took one.
const START_ATTEMPTS: usize = 3;

/// What to configure on a [`LiveKit`] beyond the loopback defaults.
#[derive(Debug, Clone, Default)]
pub struct LiveKitOptions {
    /// Webhook endpoints (e.g. the hub's `http://127.0.0.1:PORT/...`); signed with the
    /// server's API key. Empty: no `webhook` section.
    pub webhook_urls: Vec<String>,
    /// Raw YAML appended to the generated config, for top-level sections it does not
    /// write (e.g. `"room:\n  departure_timeout: 2\n"`; the room defaults are
    /// livekit-server's: empty 300 s, departure 20 s). It must not repeat a generated key
    /// (`port`, `bind_addresses`, `rtc`, `turn`, `keys`, `logging`, `webhook`):
    /// the server parses its config strictly and rejects duplicates.
    pub extra_config: String,
    /// Also offer ICE over TCP (`rtc.tcp_port`). Off by default: livekit-server listens
    /// on that port on *all* interfaces (it has no bind address for it), and over
    /// loopback UDP always works.
    pub ice_tcp: bool,
    /// Listen (signalling and media) on this address of the test's namespace instead of
    /// loopback, and advertise it as the only ICE host candidate: `(ip, interface)`,
    /// e.g. the test side of a [`crate::NetNs`] veth pair, so a box inside the
    /// namespace can reach the server. The URLs then use `ip`.
    pub host: Option<(String, String)>,
}

/// A running `livekit-server` whose signalling and media stay on 127.0.0.1.
///
/// The config file and the server's log live in a temporary folder that is removed
/// on drop, unless the thread is panicking (then the log's tail is printed and the
/// folder is kept for inspection). Dropping kills and reaps the server.
#[derive(Debug)]
pub struct LiveKit {
    /// Signalling URL for SDKs, `ws://127.0.0.1:PORT`.
    pub ws_url: String,
    /// Same port over HTTP, for the server API (Twirp) and `GET /`.
    pub http_url: String,
    /// API key in the server's `keys`.
    pub api_key: String,
    /// Its secret (40 characters).
    pub api_secret: String,
    /// HTTP/WebSocket port.
    pub port: u16,
    /// The single UDP port all WebRTC media is muxed on.
    pub rtc_udp_port: u16,
    /// The ICE/TCP port, when [`LiveKitOptions::ice_tcp`] asked for one.
    pub rtc_tcp_port: Option<u16>,
    child: Option<Child>,
    /// Where it listens (127.0.0.1, or [`LiveKitOptions::host`]).
    host_ip: Ipv4Addr,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    config_path: PathBuf,
}

impl LiveKit {
    /// Writes a config into a temporary folder, starts the server and waits (up to 20 s)
    /// until its HTTP port answers `GET /` with `200`.
    ///
    /// # Panics
    /// When the binary is missing (run `make setup`), or the server does not come up;
    /// the message has the tail of the server's log.
    pub fn start(opts: LiveKitOptions) -> LiveKit {
        let binary = livekit_server_path();
        let mut last_failure = String::new();
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(&binary, &opts) {
                Ok(lk) => return lk,
                Err(failure) => {
                    let port_clash = failure.contains("address already in use");
                    last_failure = failure;
                    if !port_clash {
                        break;
                    }
                    eprintln!(
                        "testkit: livekit-server attempt {attempt} hit a port clash; retrying"
                    );
                }
            }
        }
        panic!("{last_failure}");
    }

    fn try_start(binary: &Path, opts: &LiveKitOptions) -> Result<LiveKit, String> {
        let dir = tempfile::Builder::new()
            .prefix("callbox-livekit-")
            .tempdir()
            .expect("create a temporary folder for livekit-server");
        let port = free_port();
        let rtc_udp_port = free_port();
        let rtc_tcp_port = opts.ice_tcp.then(free_port);
        // Nothing listens here: clients are told about this STUN server instead of the
        // public ones livekit-server would otherwise hand out, and their binding
        // requests fail fast on loopback.
        let stun_port = free_port();
        let api_key = "callbox-test".to_owned();
        let api_secret = random_secret();

        let config = render_config(&ConfigParams {
            port,
            rtc_udp_port,
            rtc_tcp_port,
            stun_port,
            api_key: &api_key,
            api_secret: &api_secret,
            opts,
        });
        let config_path = dir.path().join("livekit.yaml");
        std::fs::write(&config_path, &config).expect("write livekit.yaml");
        let log_path = dir.path().join("livekit-server.log");
        let log = File::create(&log_path).expect("create livekit-server.log");

        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file handle"))
            .stderr(log)
            .current_dir(dir.path());
        // Every `LIVEKIT_*` variable (and a few others) overrides the config file.
        for (name, _) in std::env::vars_os() {
            let name_str = name.to_string_lossy();
            if name_str.starts_with("LIVEKIT_")
                || ["NODE_IP", "UDP_PORT", "REDIS_HOST", "REDIS_PASSWORD"].contains(&&*name_str)
            {
                cmd.env_remove(&name);
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", binary.display()));

        let host = opts
            .host
            .as_ref()
            .map_or("127.0.0.1", |(ip, _)| ip.as_str());
        let host_ip: Ipv4Addr = host
            .parse()
            .expect("LiveKitOptions::host is an IPv4 address");
        let mut lk = LiveKit {
            ws_url: format!("ws://{host}:{port}"),
            http_url: format!("http://{host}:{port}"),
            api_key,
            api_secret,
            port,
            rtc_udp_port,
            rtc_tcp_port,
            child: Some(child),
            host_ip,
            dir: Some(dir),
            log_path,
            config_path,
        };

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = lk.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                lk.child = None;
                return Err(format!(
                    "livekit-server exited during start-up ({status}); config:\n{config}\n\
                     --- tail of {} ---\n{}",
                    lk.log_path.display(),
                    file_tail(&lk.log_path, 40)
                ));
            }
            if http_ok(host_ip, port) {
                return Ok(lk);
            }
            if Instant::now() >= deadline {
                let tail = file_tail(&lk.log_path, 40);
                lk.kill();
                return Err(format!(
                    "livekit-server did not answer on {} within {START_TIMEOUT:?}; config:\n\
                     {config}\n--- tail of its log ---\n{tail}",
                    lk.http_url
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's combined stdout/stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The generated `livekit.yaml`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The last `lines` lines of the server's log.
    pub fn log_tail(&self, lines: usize) -> String {
        file_tail(&self.log_path, lines)
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Starts the server again after [`LiveKit::kill`], with the same config and ports
    /// (its rooms are gone: livekit-server keeps them in memory). Waits until it
    /// answers.
    ///
    /// Panics: it does not answer within the start-up timeout.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .expect("open livekit-server.log");
        let child = Command::new(livekit_server_path())
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log file handle"))
            .stderr(log)
            .spawn()
            .expect("restart livekit-server");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while !http_ok(self.host_ip, self.port) {
            assert!(
                Instant::now() < deadline && self.is_running(),
                "livekit-server did not come back; tail of its log:\n{}",
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills and reaps the server now (e.g. to test what happens when LiveKit goes
    /// away). Idempotent; the log stays readable until drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Mints a LiveKit access token for `identity` in `room` that may publish,
    /// subscribe and publish data, signed with this server's key (runs
    /// `tests/peers/mint_token.py` with the venv's Python, i.e. the `livekit-api` package).
    pub fn token(&self, room: &str, identity: &str) -> String {
        let out = Command::new(python_path())
            .arg(peers_dir().join("mint_token.py"))
            .args(["--api-key", &self.api_key, "--api-secret", &self.api_secret])
            .args(["--room", room, "--identity", identity])
            .stdin(Stdio::null())
            .output()
            .expect("run tests/peers/mint_token.py");
        assert!(
            out.status.success(),
            "tests/peers/mint_token.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("token is UTF-8")
            .trim()
            .to_owned()
    }
}

impl Drop for LiveKit {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "testkit: livekit-server log kept at {}; its tail:\n{}",
                kept.join("livekit-server.log").display(),
                file_tail(&kept.join("livekit-server.log"), 30)
            );
        }
    }
}

struct ConfigParams<'a> {
    port: u16,
    rtc_udp_port: u16,
    rtc_tcp_port: Option<u16>,
    stun_port: u16,
    api_key: &'a str,
    api_secret: &'a str,
    opts: &'a LiveKitOptions,
}

/// The YAML config (keys checked against livekit-server v1.13.5's `pkg/config`, which
/// it parses strictly).
fn render_config(p: &ConfigParams<'_>) -> String {
    let mut y = String::new();
    let _ = write!(
        y,
        "\
# Generated by callbox-testkit: signalling and media on 127.0.0.1 only.
port: {port}
bind_addresses: [{bind}]
rtc:
  udp_port: {udp}
  tcp_port: {tcp}  # 0: no ICE/TCP (livekit-server would listen on all interfaces)
  node_ip: {node_ip}
  use_external_ip: false
  enable_loopback_candidate: {loopback}
  interfaces:
    includes: [{interfaces}]
  stun_servers: [\"127.0.0.1:{stun}\"]
turn:
  enabled: false
keys:
  {key}: {secret}
logging:
  level: info
",
        port = p.port,
        // With a host address, only that one: a second UDP socket (loopback) in
        // livekit-server's multi-socket UDP mux made ICE with a box behind the veth
        // fail in 2 runs of 3 (checks arrived, none was answered).
        bind = p
            .opts
            .host
            .as_ref()
            .map_or("\"127.0.0.1\"".to_owned(), |(ip, _)| format!("\"{ip}\"")),
        loopback = p.opts.host.is_none(),
        node_ip = p
            .opts
            .host
            .as_ref()
            .map_or("127.0.0.1", |(ip, _)| ip.as_str()),
        interfaces = p
            .opts
            .host
            .as_ref()
            .map_or("\"lo\"".to_owned(), |(_, i)| format!("\"{i}\"")),
        udp = p.rtc_udp_port,
        tcp = p.rtc_tcp_port.unwrap_or(0),
        stun = p.stun_port,
        key = p.api_key,
        secret = p.api_secret,
    );
    if !p.opts.webhook_urls.is_empty() {
        let _ = writeln!(y, "webhook:\n  api_key: {}\n  urls:", p.api_key);
        for url in &p.opts.webhook_urls {
            let _ = writeln!(y, "    - {}", yaml_string(url));
        }
    }
    if !p.opts.extra_config.is_empty() {
        y.push_str(&p.opts.extra_config);
        if !y.ends_with('\n') {
            y.push('\n');
        }
    }
    y
}

/// A double-quoted YAML scalar (JSON strings are valid YAML).
fn yaml_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// 40 random alphanumeric characters (livekit-server wants secrets of 32+).
fn random_secret() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(40);
    let mut i = 0u64;
    while out.len() < 40 {
        let mut r = RandomState::new().hash_one((i, std::process::id(), Instant::now()));
        for _ in 0..8 {
            out.push(ALPHABET[(r % ALPHABET.len() as u64) as usize] as char);
            r /= ALPHABET.len() as u64;
        }
        i += 1;
    }
    out.truncate(40);
    out
}

/// `GET /` on 127.0.0.1:`port` answers `200`.
fn http_ok(ip: Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddr::from((ip, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    head.starts_with("HTTP/1.") && head.split_whitespace().nth(1) == Some("200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_webhooks_only_when_asked() {
        let opts = LiveKitOptions::default();
        let params = |opts| ConfigParams {
            port: 1,
            rtc_udp_port: 2,
            rtc_tcp_port: None,
            stun_port: 4,
            api_key: "k",
            api_secret: "s",
            opts,
        };
        let plain = render_config(&params(&opts));
        assert!(!plain.contains("webhook"));
        assert!(plain.contains("node_ip: 127.0.0.1"));
        let opts = LiveKitOptions {
            webhook_urls: vec!["http://127.0.0.1:9/hook".into()],
            extra_config: "limit:\n  num_tracks: 4".into(),
            ice_tcp: true,
            host: None,
        };
        let hooked = render_config(&params(&opts));
        assert!(
            hooked.contains("webhook:\n  api_key: k\n  urls:\n    - \"http://127.0.0.1:9/hook\"\n")
        );
        assert!(hooked.ends_with("limit:\n  num_tracks: 4\n"));
        // Behind a veth: that address only, no loopback candidate.
        let opts = LiveKitOptions {
            host: Some(("10.213.9.1".into(), "cbh1n0".into())),
            ..Default::default()
        };
        let veth = render_config(&params(&opts));
        assert!(veth.contains("bind_addresses: [\"10.213.9.1\"]"));
        assert!(veth.contains("node_ip: 10.213.9.1"));
        assert!(veth.contains("enable_loopback_candidate: false"));
        assert!(veth.contains("includes: [\"cbh1n0\"]"));
    }

    #[test]
    fn secrets_are_long_and_differ() {
        let a = random_secret();
        assert_eq!(a.len(), 40);
        assert_ne!(a, random_secret());
    }
}
