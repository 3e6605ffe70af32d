//! `make demo`: a whole call on this machine, with the real programs.
//!
//! Starts livekit-server (loopback only), `callbox-hub serve` with a demo device and a
//! demo caller, `callbox run` (the machine's camera and microphone when it has them,
//! test sources otherwise), then a scripted remote caller (LiveKit Python SDK) that
//! dials the box, and prints what both ends received. Last it prints a one-time link
//! that signs a browser in to the hub's caller app as the demo caller; on a terminal the
//! hub and the box keep running (until Enter or Ctrl-C) so you can call the box yourself.
//!
//! Usage: `callbox-demo --bin-dir target/debug [--hold SECS]`. Logs and configs stay
//! in `.demo/` at the repository root.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callbox_testkit::{LiveKit, LiveKitOptions, PyPeer, file_tail, free_port, repo_root};
use serde_json::Value;

struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, child) in self.0.iter_mut().rev() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        for (name, child) in self.0.iter_mut().rev() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if child.try_wait().ok().flatten().is_none() {
                eprintln!("demo: {name} did not stop on SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("demo: {msg}");
    std::process::exit(1);
}

fn spawn(procs: &mut Procs, name: &str, bin: &Path, args: &[&str], log: &Path) {
    let file = std::fs::File::create(log).unwrap_or_else(|e| fail(&format!("{e}")));
    let child = Command::new(bin)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", bin.display())));
    procs.0.push((name.to_owned(), child));
}

fn output(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run {}: {e}", bin.display())));
    if !out.status.success() {
        fail(&format!(
            "{} {} failed: {}",
            bin.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool, log: &Path) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() > deadline {
            fail(&format!(
                "{what} did not happen within {timeout:?}; tail of {}:\n{}",
                log.display(),
                file_tail(log, 30)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(callbox: &Path, socket: &Path) -> Option<Value> {
    let out = Command::new(callbox)
        .args(["status", "--socket"])
        .arg(socket)
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut bin_dir = repo_root().join("target/debug");
    let mut hold = "5".to_owned();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bin-dir" => bin_dir = PathBuf::from(args.next().unwrap_or_default()),
            "--hold" => hold = args.next().unwrap_or_default(),
            other => fail(&format!(
                "unknown argument {other}; usage: --bin-dir DIR [--hold SECS]"
            )),
        }
    }
    let hub_bin = bin_dir.join("callbox-hub");
    let callbox = bin_dir.join("callbox");
    let demo = repo_root().join(".demo");
    let _ = std::fs::remove_dir_all(&demo);
    std::fs::create_dir_all(&demo).unwrap();

    let hub_port = free_port();
    println!("demo: starting livekit-server (loopback only)");
    let lk = LiveKit::start(LiveKitOptions {
        webhook_urls: vec![format!("http://127.0.0.1:{hub_port}/livekit/webhook")],
        ..Default::default()
    });

    let hub_toml = demo.join("hub.toml");
    std::fs::write(
        &hub_toml,
        format!(
            "listen = \"127.0.0.1:{hub_port}\"\ndatabase = \"{db}\"\n\n[livekit]\nurl = \"{url}\"\n\
             api_key = \"{key}\"\napi_secret = \"{secret}\"\n",
            db = demo.join("hub.sqlite3").display(),
            url = lk.ws_url,
            key = lk.api_key,
            secret = lk.api_secret
        ),
    )
    .unwrap();
    let hub_cfg = hub_toml.to_str().unwrap();
    let box_cred = output(
        &hub_bin,
        &["add-device", "--config", hub_cfg, "--identity", "demo-box"],
    );
    let caller_cred = output(
        &hub_bin,
        &["add-user", "--config", hub_cfg, "--identity", "demo-caller"],
    );
    // Who may call whom: the demo caller may call the demo box, which answers it by
    // itself (trusted).
    output(
        &hub_bin,
        &[
            "allow",
            "--config",
            hub_cfg,
            "--box",
            "demo-box",
            "--caller",
            "demo-caller",
            "--trusted",
        ],
    );

    let mut procs = Procs(Vec::new());
    let hub_log = demo.join("hub.log");
    println!("demo: starting callbox-hub on http://127.0.0.1:{hub_port}");
    spawn(
        &mut procs,
        "callbox-hub",
        &hub_bin,
        &["serve", "--config", hub_cfg],
        &hub_log,
    );
    wait_until(
        "hub health check",
        Duration::from_secs(20),
        || http_ok(hub_port, "/health"),
        &hub_log,
    );

    let socket = demo.join("control.sock");
    let box_toml = demo.join("callbox.toml");
    std::fs::write(
        &box_toml,
        format!(
            "[hub]\nurl = \"http://127.0.0.1:{hub_port}\"\ncredential = \"{box_cred}\"\n\n\
             [media]\n# auto: this machine's camera/microphone when present, test sources otherwise\n\
             video_source = \"auto\"\naudio_source = \"auto\"\nvideo_sink = \"auto\"\naudio_sink = \"auto\"\n\
             # livekit-server runs on this machine, on loopback\nice_local_addresses = [\"127.0.0.1\"]\n\n\
             [control]\nsocket = \"{}\"\n",
            socket.display()
        ),
    )
    .unwrap();
    let box_log = demo.join("callbox.log");
    println!(
        "demo: starting the box: callbox run --config {}",
        box_toml.display()
    );
    spawn(
        &mut procs,
        "callbox",
        &callbox,
        &["run", "--config", box_toml.to_str().unwrap()],
        &box_log,
    );
    wait_until(
        "the box connecting to the hub",
        Duration::from_secs(30),
        || status(&callbox, &socket).is_some_and(|s| s["hub_online"] == true),
        &box_log,
    );
    let plan = std::fs::read_to_string(&box_log)
        .unwrap_or_default()
        .lines()
        .find(|l| l.contains("media plan"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_default();
    println!("demo: box online; {plan}");

    println!("demo: the caller (LiveKit Python SDK) dials demo-box through the hub…");
    let hub_url = format!("http://127.0.0.1:{hub_port}");
    let mut caller = PyPeer::spawn(
        "caller.py",
        [
            "dial",
            "--hub",
            &hub_url,
            "--credential",
            &caller_cred,
            "--callee",
            "demo-box",
            "--min-video-frames",
            "60",
            "--hold",
            &hold,
            "--timeout",
            "60",
        ],
    );
    let _ = caller.wait_exit(Duration::from_secs(90));
    let summary = caller
        .wait_event("summary", Duration::from_secs(1))
        .unwrap_or_else(|| {
            fail(&format!(
                "the caller printed no summary:\n{}",
                caller.report()
            ))
        });
    // The box keeps the last call's counters after the call.
    std::thread::sleep(Duration::from_millis(500));
    let st = status(&callbox, &socket).unwrap_or_default();

    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    println!();
    println!(
        "callbox demo result ({}):",
        summary["outcome"].as_str().unwrap_or("?")
    );
    println!(
        "  caller ← box : {} video frames ({} at {} fps), {} audio frames; first frame {} ms after the invite",
        n(&summary, "video_frames"),
        summary["video_size"].as_str().unwrap_or("?"),
        summary["video_fps"],
        n(&summary, "audio_frames"),
        n(&summary, "first_frame_ms"),
    );
    println!(
        "  box ← caller : {} video frames, {} audio buffers; box sent {} video frames",
        n(&st, "video_frames_received"),
        n(&st, "audio_buffers_received"),
        n(&st, "video_frames_sent"),
    );
    println!(
        "  box after hang-up: state {}, calls answered {}",
        st["state"].as_str().unwrap_or("?"),
        n(&st, "calls_answered")
    );
    println!(
        "  logs and configs: {}/ (hub.log, callbox.log, hub.toml, callbox.toml)",
        demo.display()
    );
    let ok = summary["media_ok"] == true && n(&st, "video_frames_received") > 0;
    if ok {
        let link = output(
            &hub_bin,
            &["invite-link", "--config", hub_cfg, "--user", "demo-caller"],
        );
        println!();
        println!("Now call the demo box yourself: open {link} in a browser");
        println!("  (signs you in as demo-caller; then press Video on demo-box).");
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            println!("The hub and the box keep running; press Enter (or Ctrl-C) to stop.");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
    }
    drop(procs);
    drop(lk);
    if !ok {
        fail("the call did not carry media both ways; see the logs above");
    }
}
