//! Benchmark: time from a caller's invite reaching the hub to the box's status LED
//! starting the ringing pattern (issue #3 goal: ≤ 50 ms p99). Prints numbers; asserts
//! nothing. Real parts: livekit-server, the hub, the `callbox` binary (manual policy,
//! simulated GPIO), measured from the box's own LED driver timestamps.
//!
//! Run: `make bench` (release build). `RING_BENCH_N` sets the number of rings (default 40).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

fn unix_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

fn post(w: &support::World, path: &str, body: Value) -> Value {
    let url = format!("{}{path}", w.hub_url);
    w.rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&w.alice)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        resp.json().await.unwrap()
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let n: usize = std::env::var("RING_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut w = support::World::start();
    let cred = w.box_credential.clone();
    w.start_daemon_with(&cred, "[call]\nanswer = \"manual\"\n");
    w.wait_status("online", Duration::from_secs(30), |s| {
        s.hub_online && s.state == "idle"
    });
    let ringing = "cadence:400/200/400/2000";
    let (mut to_led, mut invite_rtt) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = unix_ms_f64();
        let call = post(&w, "/api/calls/invite", json!({"invitees": ["box1"]}));
        let t1 = unix_ms_f64();
        let s = w.wait_status("ringing LED", Duration::from_secs(10), |s| {
            s.leds["status"]["pattern"] == ringing
        });
        let started = s.leds["status"]["started_unix_ms"].as_f64().unwrap();
        // The hub pushes `call_invitation` before it answers the invite, after creating
        // the LiveKit room; both bounds are printed.
        to_led.push(started - t0);
        invite_rtt.push(t1 - t0);
        post(&w, "/api/calls/end", json!({"callId": call["callId"]}));
        w.wait_status("idle LED", Duration::from_secs(10), |s| {
            s.state == "idle" && s.leds["status"]["pattern"] != ringing
        });
    }
    for v in [&mut to_led, &mut invite_rtt] {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    }
    let line = |name: &str, v: &[f64]| {
        println!(
            "{name:<44} n={:<3} p50={:>6.1} ms  p90={:>6.1} ms  p99={:>6.1} ms  max={:>6.1} ms",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 0.99),
            v[v.len() - 1]
        )
    };
    line("invite sent → ringing LED pattern started", &to_led);
    line("  of which invite round trip (room creation)", &invite_rtt);
    println!(
        "goal: ringing LED ≤ 50 ms p99 after the hub sends call_invitation \
         (upper bound above includes LiveKit room creation; LED times have 1 ms resolution)"
    );
}
