//! Recovery: the box's network cut mid-call through the fault matrix's harness, and
//! the time from its return to media at both ends.

use std::time::Duration;

use serde_json::{Value, json};

use crate::p50_p95;
use crate::support;

/// Prints the recovery figure and returns it for the report.
pub(crate) fn recovery_report((to_box, to_caller, ended): &(Vec<f64>, Vec<f64>, usize)) -> Value {
    let runs = to_box.len() + ended;
    if runs == 0 {
        println!(
            "bench: recovery: not measured (CALL_BENCH_CUTS=0, or no network namespace: run as root with nftables)"
        );
        return json!({"cuts": 0});
    }
    if to_box.is_empty() {
        println!("bench: recovery: all {runs} network cuts of 5 s ended the call");
        return json!({"cut_s": 5, "cuts": runs, "calls_ended": ended});
    }
    let (b50, b95) = p50_p95(to_box);
    let (c50, c95) = p50_p95(to_caller);
    let worst = |xs: &[f64]| xs.iter().copied().fold(0.0, f64::max);
    println!(
        "bench: recovery after a 5 s network cut mid-call ({runs} cuts, {ended} ended the call): \
         media back at the box p50 {b50:.0} ms, max {:.0} ms; at the caller p50 {c50:.0} ms, max {:.0} ms",
        worst(to_box),
        worst(to_caller)
    );
    json!({
        "cut_s": 5, "cuts": runs, "calls_ended": ended,
        "network_return_to_box_media": {"p50_ms": b50, "p95_ms": b95, "samples_ms": to_box},
        "network_return_to_caller_media": {"p50_ms": c50, "p95_ms": c95, "samples_ms": to_caller},
    })
}

/// Recovery: `runs` 5 s cuts of the box's network mid-call (the fault matrix's
/// [`support::netfault::cut_mid_call`], the box in a network namespace of its own):
/// ms from the network's return to the box's first new frame of the caller (its status
/// polled every 20 ms) and to the caller's 5th new frame of the box (polled every
/// 50 ms). Empty where no namespace can be made (not root, no nftables).
pub(crate) fn recovery(runs: usize) -> (Vec<f64>, Vec<f64>, usize) {
    use support::netfault::{Outcome, cut_mid_call, world_in_netns};
    let (mut to_box, mut to_caller, mut ended) = (vec![], vec![], 0);
    if runs == 0 {
        return (to_box, to_caller, ended);
    }
    let Some(w) = world_in_netns("call_bench recovery") else {
        return (to_box, to_caller, ended);
    };
    for _ in 0..runs {
        let cut = cut_mid_call(&w, Duration::from_secs(5));
        // Both sides' logs, to read where the time goes (the last run's).
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench");
        let _ = std::fs::copy(w.lk.log_path(), dir.join("recovery-livekit.log"));
        let _ = std::fs::copy(&w.daemon_log, dir.join("recovery-box.log"));
        match cut {
            Outcome::MediaBack { box_ms, caller_ms } => {
                to_box.push(box_ms as f64);
                to_caller.push(caller_ms as f64);
            }
            Outcome::Ended { .. } => ended += 1,
        }
    }
    (to_box, to_caller, ended)
}
