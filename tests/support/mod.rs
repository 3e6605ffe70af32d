//! The end-to-end test world shared by the e2e test files: livekit-server on loopback,
//! the hub on a temporary SQLite file, and the `callbox` daemon binary with test sources.

#![allow(dead_code)]

pub mod browser;
pub mod netfault;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callbox::control::{Status, query_status};
use callbox_hub::{HubConfig, LiveKitConfig, PrincipalKind, RunningHub, add_principal};
use callbox_testkit::{LiveKit, LiveKitOptions, NetNs, PyPeer, file_tail};
use serde_json::Value;

/// A running system: LiveKit, hub, and (optionally) the daemon as `box1`.
pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub lk_api: (String, String, String),
    pub hub: Option<RunningHub>,
    pub hub_url: String,
    pub alice: String,
    pub bob: String,
    pub grandma: String,
    /// A user allowed to call nobody.
    pub stranger: String,
    /// A user allowed to ring box1, not trusted (box1 on `answer = "auto"` rings).
    pub neighbour: String,
    pub box_credential: String,
    pub daemon: Option<Child>,
    pub daemon_log: PathBuf,
    pub socket: PathBuf,
    /// Extra lines for the daemon's `[media]` section (before `start_daemon*`).
    pub media_extra: String,
    pub dir: tempfile::TempDir,
    /// The hub's config, to start it again after [`World::stop_hub`].
    pub hub_config: HubConfig,
    pub lk: LiveKit,
    /// The box's own network namespace ([`World::start_in_netns`]); the daemon runs in
    /// it, and the hub and LiveKit listen on its veth peer's address.
    pub netns: Option<NetNs>,
}

pub const RING_TIMEOUT_SECS: f64 = 8.0;
/// Long enough for the box's first rejoin (1 s back-off + new pipelines).
pub const REJOIN_GRACE_SECS: f64 = 6.0;

impl World {
    pub fn start() -> World {
        Self::start_on(None)
    }

    /// A world whose box runs in `netns`: the hub and LiveKit listen on the namespace's
    /// veth peer (and LiveKit on loopback too, for the callers).
    pub fn start_in_netns(netns: NetNs) -> World {
        Self::start_on(Some(netns))
    }

    fn start_on(netns: Option<NetNs>) -> World {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bind = netns.as_ref().map_or("127.0.0.1", |n| n.host_ip.as_str());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(format!("{bind}:0")))
            .unwrap();
        let hub_addr = listener.local_addr().unwrap();
        let lk = LiveKit::start(LiveKitOptions {
            webhook_urls: vec![format!("http://{hub_addr}/livekit/webhook")],
            host: netns
                .as_ref()
                .map(|n| (n.host_ip.clone(), n.host_if.clone())),
            ..Default::default()
        });
        let db = dir.path().join("hub.sqlite3");
        let box_credential = add_principal(&db, "box1", PrincipalKind::Device).unwrap();
        add_principal(&db, "ghost-box", PrincipalKind::Device).unwrap();
        let bob = add_principal(&db, "bob", PrincipalKind::User).unwrap();
        let grandma = add_principal(&db, "grandma", PrincipalKind::User).unwrap();
        let alice = add_principal(&db, "alice", PrincipalKind::User).unwrap();
        let stranger = add_principal(&db, "stranger", PrincipalKind::User).unwrap();
        let neighbour = add_principal(&db, "neighbour", PrincipalKind::User).unwrap();
        // Who may call whom: the test's household all call each other, trusted.
        let household = ["box1", "ghost-box", "bob", "grandma", "alice"];
        for callee in household {
            for caller in household.iter().filter(|c| **c != callee) {
                callbox_hub::allow_caller(&db, callee, caller, true).unwrap();
            }
        }
        callbox_hub::allow_caller(&db, "box1", "neighbour", false).unwrap();
        callbox_hub::set_display_name(&db, "neighbour", Some("Mrs Jones next door")).unwrap();
        let mut config = HubConfig::new(
            &db,
            LiveKitConfig::new(&lk.ws_url, &lk.api_key, &lk.api_secret),
        );
        config.ring_timeout_secs = RING_TIMEOUT_SECS;
        // The ring-latency bench dials the box dozens of times a minute.
        config.max_invites_per_minute = 1000;
        config.rejoin_grace_secs = REJOIN_GRACE_SECS;
        config.listen = hub_addr;
        let hub = rt
            .block_on(callbox_hub::start_with_listener(config.clone(), listener))
            .unwrap();
        let socket = dir.path().join("control.sock");
        World {
            lk_api: (
                lk.http_url.clone(),
                lk.api_key.clone(),
                lk.api_secret.clone(),
            ),
            hub_url: hub.url(),
            hub: Some(hub),
            rt,
            alice,
            bob,
            grandma,
            stranger,
            neighbour,
            box_credential,
            daemon: None,
            daemon_log: dir.path().join("callbox.log"),
            socket,
            media_extra: String::new(),
            dir,
            hub_config: config,
            lk,
            netns,
        }
    }

    /// Stops the hub (as systemd's stop does: WebSockets closed, requests finished).
    pub fn stop_hub(&mut self) {
        if let Some(hub) = self.hub.take() {
            self.rt.block_on(hub.shutdown());
        }
    }

    /// Starts the hub again on the same address and database.
    pub fn restart_hub(&mut self) {
        assert!(self.hub.is_none(), "stop the hub first");
        let hub = self
            .rt
            .block_on(callbox_hub::start(self.hub_config.clone()))
            .expect("the hub starts again on its address");
        self.hub = Some(hub);
    }

    /// Starts `callbox run` as `box1` with test sources and fake sinks.
    /// A world with the daemon running as `box1` (config `extra` appended; `[media]`
    /// lines from `media_extra`), online with the hub and idle.
    pub fn with_online_box(media_extra: &str, extra: &str) -> World {
        let mut w = World::start();
        w.media_extra = media_extra.to_owned();
        let cred = w.box_credential.clone();
        w.start_daemon_with(&cred, extra);
        w.wait_status("online", Duration::from_secs(20), |s| {
            s.hub_online && s.state == "idle"
        });
        w
    }

    pub fn start_daemon(&mut self, credential: &str) {
        self.start_daemon_with(credential, "");
    }

    /// Like [`World::start_daemon`], with extra TOML appended (e.g. a `[call]` section).
    pub fn start_daemon_with(&mut self, credential: &str, extra: &str) {
        self.start_daemon_env(credential, extra, &[]);
    }

    /// Like [`World::start_daemon_with`], with extra environment variables. With
    /// `WATCHDOG_USEC` among them the daemon is started as systemd does, with
    /// `WATCHDOG_PID` set to its own pid (through `sh -c 'exec …'`).
    pub fn start_daemon_env(&mut self, credential: &str, extra: &str, env: &[(&str, &str)]) {
        let config = self.write_config(credential, extra);
        let log = File::create(&self.daemon_log).unwrap();
        let bin = env!("CARGO_BIN_EXE_callbox");
        let mut cmd = if let Some(ns) = &self.netns {
            ns.command(bin)
        } else if env.iter().any(|(k, _)| *k == "WATCHDOG_USEC") {
            let mut c = Command::new("sh");
            c.args(["-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", bin]);
            c
        } else {
            Command::new(bin)
        };
        let child = cmd
            .args(["run", "--config"])
            .arg(&config)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("callbox binary runs");
        self.daemon = Some(child);
    }

    /// Writes the daemon's config (`callbox.toml` in the world's directory) for
    /// `credential`, with `extra` TOML appended; returns its path.
    pub fn write_config(&self, credential: &str, extra: &str) -> PathBuf {
        let config = self.dir.path().join("callbox.toml");
        std::fs::write(
            &config,
            format!(
                r#"[hub]
url = "{hub}"
credential = "{credential}"
reconnect_min_ms = 200
reconnect_max_ms = 2000

[media]
video_source = "test"
audio_source = "test"
video_sink = "fakesink"
audio_sink = "fakesink"
ice_local_addresses = ["{ice}"]
{media_extra}

[control]
socket = "{socket}"

[log]
level = "info,callbox=debug"

{extra}
"#,
                hub = self.hub_url,
                socket = self.socket.display(),
                ice = self
                    .netns
                    .as_ref()
                    .map_or("127.0.0.1", |n| n.box_ip.as_str()),
                media_extra = self.media_extra
            ),
        )
        .unwrap();
        config
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(&self.daemon_log).unwrap_or_default()
    }

    pub fn status(&self) -> Option<Status> {
        self.rt.block_on(query_status(&self.socket)).ok()
    }

    /// What became of the daemon's process, for a failure message: `running`, or
    /// `exited` (a zombie: it ended and has not been reaped), from `/proc`.
    pub fn daemon_process(&self) -> String {
        let Some(pid) = self.daemon.as_ref().map(|c| c.id()) else {
            return "not started".into();
        };
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => match stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
            {
                Some("Z") => format!("pid {pid} exited"),
                Some(st) => format!("pid {pid} running (state {st})"),
                None => format!("pid {pid}: unreadable stat"),
            },
            Err(_) => format!("pid {pid} gone"),
        }
    }

    /// Polls the daemon's status until `pred` holds.
    pub fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Status) -> bool,
    ) -> Status {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status();
            if let Some(s) = s.as_ref().filter(|s| pred(s)) {
                return s.clone();
            }
            assert!(
                Instant::now() < deadline,
                "daemon never reached `{what}` within {timeout:?}; last status: {s:?}; \
                 daemon process: {}\ndaemon log (tail):\n{}",
                self.daemon_process(),
                file_tail(&self.daemon_log, 40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Dials `box1` for an audio-only call in which the caller measures the level it
    /// receives at each frequency of `hz` (`tone_levels_db` in its counts) from
    /// `after_s` seconds after its first audio; `media_ok` after `min_audio_frames`.
    /// The caller stays until told to hang up.
    pub fn dial_audio_levels(&self, hz: &[&str], after_s: &str, min_audio_frames: &str) -> PyPeer {
        let mut args = vec!["--call-type", "audio", "--audio-only", "--tone-level-hz"];
        args.extend_from_slice(hz);
        args.extend([
            "--tone-level-after",
            after_s,
            "--min-remote-audio-frames",
            min_audio_frames,
            "--timeout",
            "60",
            "--no-hangup",
        ]);
        self.dial("box1", &args)
    }

    pub fn dial(&self, callee: &str, extra: &[&str]) -> PyPeer {
        self.dial_as(&self.alice, callee, extra)
    }

    /// Dials `callee` with the Python caller, logged in with `credential`.
    pub fn dial_as(&self, credential: &str, callee: &str, extra: &[&str]) -> PyPeer {
        let mut args = vec![
            "dial",
            "--hub",
            &self.hub_url,
            "--credential",
            credential,
            "--callee",
            callee,
        ];
        args.extend_from_slice(extra);
        PyPeer::spawn("caller.py", args)
    }

    /// `POST path` with `credential` and a JSON body: the status and the JSON body.
    pub fn post_as(&self, credential: &str, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.hub_url);
        self.rt.block_on(async {
            let resp = reqwest::Client::new()
                .post(&url)
                .bearer_auth(credential)
                .json(&body)
                .send()
                .await
                .expect("the hub answers");
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    /// `GET path` with `credential`: the status and the JSON body.
    pub fn get_as(&self, credential: &str, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.hub_url);
        self.rt.block_on(async {
            let resp = reqwest::Client::new()
                .get(&url)
                .bearer_auth(credential)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    pub fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.hub_url);
        self.rt.block_on(async {
            reqwest::Client::new()
                .get(&url)
                .bearer_auth(&self.alice)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }
}

impl World {
    /// Runs `callbox ctl ARGS…` against the daemon and returns its JSON answer.
    pub fn ctl(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_callbox"))
            .arg("ctl")
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("callbox ctl runs");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "callbox ctl {args:?}: {e}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

/// Dials box1 as alice (trusted: the box answers by itself) for a call that lasts until
/// the test hangs up, watching the hub's events (`call_ended`); returns once both sides
/// have media.
pub fn call_box(w: &World) -> PyPeer {
    let caller = w.dial(
        "box1",
        &[
            "--min-video-frames",
            "30",
            "--timeout",
            "240",
            "--no-hangup",
            "--watch-hub",
        ],
    );
    caller.expect_event("media_ok", Duration::from_secs(60));
    w.wait_status("in call", Duration::from_secs(30), |s| {
        s.state == "in_call" && s.video_frames_received > 0
    });
    caller
}

/// The caller's decoded video frames so far.
pub fn caller_video(caller: &mut PyPeer) -> u64 {
    caller_counts(caller)["video_frames"].as_u64().unwrap_or(0)
}

/// Asks the caller for its counters and returns the `status` event it prints back.
pub fn caller_counts(caller: &mut PyPeer) -> Value {
    let before = caller.events().len();
    caller.send_line("status");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(e) = caller
            .events()
            .into_iter()
            .skip(before)
            .find(|e| e["event"] == "status")
        {
            return e;
        }
        assert!(Instant::now() < deadline, "caller did not answer status");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn hang_up(w: &World, mut caller: PyPeer) {
    caller.send_line("hangup");
    caller.expect_event("hung_up", Duration::from_secs(15));
    let _ = caller.wait_exit(Duration::from_secs(20));
    w.wait_status("idle", Duration::from_secs(15), |s| s.state == "idle");
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            // SIGTERM: the daemon leaves its call and stops media cleanly.
            let _ = Command::new("kill")
                .args(["-TERM", &d.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- tail of the daemon's log ({}) ---\n{}",
                self.daemon_log.display(),
                file_tail(&self.daemon_log, 60)
            );
        }
        if let Some(hub) = self.hub.take() {
            self.rt.block_on(hub.shutdown());
        }
    }
}

/// A decoded screenshot: RGB, 8 bits per channel.
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// Where the e2e tests leave their screenshots (`target/screen/*.png`).
pub fn screen_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screen");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Picture {
    /// Decodes a PNG file with GStreamer (`filesrc ! pngdec ! videoconvert`).
    pub fn load(file: &std::path::Path) -> Picture {
        use gst::prelude::*;
        gst::init().unwrap();
        let pipeline = gst::parse::launch(&format!(
            "filesrc location=\"{}\" ! pngdec ! videoconvert ! video/x-raw,format=RGB ! fakesink name=out enable-last-sample=true sync=false",
            file.display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(10),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("PNG decodes within 10 s");
        assert!(
            matches!(msg.view(), gst::MessageView::Eos(_)),
            "decoding {}: {msg:?}",
            file.display()
        );
        let sample = pipeline
            .by_name("out")
            .unwrap()
            .property::<Option<gst::Sample>>("last-sample")
            .expect("a decoded frame");
        pipeline.set_state(gst::State::Null).unwrap();
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let map = sample.buffer().unwrap().map_readable().unwrap();
        let (w, h, stride) = (
            info.width() as usize,
            info.height() as usize,
            info.stride()[0] as usize,
        );
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            rgb.extend_from_slice(&map[y * stride..y * stride + w * 3]);
        }
        Picture {
            width: w,
            height: h,
            rgb,
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The share of a 24×16 grid of samples inside the rectangle (fractions of the
    /// width and height: x0, y0, x1, y1) for which `pred` holds.
    pub fn share(
        &self,
        (x0, y0, x1, y1): (f64, f64, f64, f64),
        pred: impl Fn([u8; 3]) -> bool,
    ) -> f64 {
        let (mut n, mut hit) = (0, 0);
        for j in 0..16 {
            for i in 0..24 {
                let x = ((x0 + (x1 - x0) * (i as f64 + 0.5) / 24.0) * self.width as f64) as usize;
                let y = ((y0 + (y1 - y0) * (j as f64 + 0.5) / 16.0) * self.height as f64) as usize;
                n += 1;
                if pred(self.pixel(x.min(self.width - 1), y.min(self.height - 1))) {
                    hit += 1;
                }
            }
        }
        hit as f64 / n as f64
    }
}

/// The test peers' bars (tests/peers/pictures.py "caller-bars") without black and
/// white: saturated colours nothing else on the screen has.
pub fn is_caller_colour(p: [u8; 3]) -> bool {
    const BARS: [[i32; 3]; 6] = [
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
    ];
    BARS.iter()
        .any(|c| (0..3).all(|k| (c[k] - p[k] as i32).abs() <= 40))
}

impl World {
    /// `callbox screenshot` into `target/screen/<name>.png`, decoded.
    pub fn screenshot(&self, name: &str) -> Picture {
        let file = screen_dir().join(format!("{name}.png"));
        let out = Command::new(env!("CARGO_BIN_EXE_callbox"))
            .arg("screenshot")
            .arg("--socket")
            .arg(&self.socket)
            .arg(&file)
            .output()
            .expect("callbox screenshot runs");
        assert!(
            out.status.success(),
            "callbox screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Picture::load(&file)
    }
}
