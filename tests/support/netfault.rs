//! The box's network cut mid-call, shared by the fault matrix (`tests/e2e_netfaults.rs`)
//! and the benchmark's recovery figure (`benches/call_bench/`): the box in a network
//! namespace of its own (testkit's `NetNs`), its traffic cut and restored.

use std::time::{Duration, Instant};

use callbox_testkit::{NetNs, PyPeer, report};

use super::*;

/// A world whose box runs in its own network namespace, online and idle; `None` (and a
/// SKIP line) where namespaces cannot be made.
pub fn world_in_netns(test: &str) -> Option<World> {
    world_in_netns_with(test, "")
}

/// [`world_in_netns`] with `media_extra` in the box's `[media]` section.
pub fn world_in_netns_with(test: &str, media_extra: &str) -> Option<World> {
    let ns = match NetNs::create() {
        Ok(ns) => ns,
        Err(e) => {
            report!("SKIP {test}: no network namespace for the box ({e}); run as root");
            return None;
        }
    };
    if let Err(e) = ns.restore().and_then(|()| ns.drop_percent(0)) {
        report!(
            "SKIP {test}: cannot filter the box's packets ({e}); `make setup` installs nftables"
        );
        return None;
    }
    let mut w = World::start_in_netns(ns);
    w.media_extra = media_extra.to_owned();
    let cred = w.box_credential.clone();
    w.start_daemon(&cred);
    w.wait_status("online", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    Some(w)
}

/// Whether the caller is still running (it exits when the hub ends its call).
pub fn alive(caller: &mut PyPeer) -> bool {
    caller.wait_exit(Duration::ZERO).is_none()
}

/// How a call came out of a network cut.
pub enum Outcome {
    /// Media flows again both ways: ms from the network's return to the box's first
    /// new frame, and to the caller's.
    MediaBack { box_ms: u128, caller_ms: u128 },
    /// The call ended: the box is idle and the hub has no call (ms to idle).
    Ended { idle_ms: u128 },
}

/// Cuts the box's network for `cut` mid-call, restores it, and waits (up to 90 s)
/// for one of the two allowed outcomes. Panics on anything else (a stuck state).
pub fn cut_mid_call(w: &World, cut: Duration) -> Outcome {
    let ns = w.netns.as_ref().unwrap();
    let mut caller = call_box(w);
    ns.cut().unwrap();
    std::thread::sleep(cut);
    let frozen = w.status().unwrap();
    // The hub may have ended the call already (the caller then left).
    let caller_frozen = alive(&mut caller).then(|| caller_video(&mut caller));
    ns.restore().unwrap();
    let t0 = Instant::now();
    let mut box_ms = None;
    let outcome = loop {
        let s = w.status().expect("the daemon answers");
        let elapsed = t0.elapsed();
        if box_ms.is_none()
            && s.state == "in_call"
            && s.video_frames_received > frozen.video_frames_received
        {
            box_ms = Some(elapsed.as_millis());
        }
        if let (Some(box_ms), Some(caller_frozen)) = (box_ms, caller_frozen) {
            // Only the box's side so far: the caller's comes next.
            let mut caller_ms = None;
            while t0.elapsed() < Duration::from_secs(90) && alive(&mut caller) {
                if caller_video(&mut caller) > caller_frozen + 5 {
                    caller_ms = Some(t0.elapsed().as_millis());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if let Some(caller_ms) = caller_ms {
                break Outcome::MediaBack { box_ms, caller_ms };
            }
        }
        if s.state == "idle" {
            break Outcome::Ended {
                idle_ms: elapsed.as_millis(),
            };
        }
        assert!(
            elapsed < Duration::from_secs(90),
            "90 s after the network returned the box is still `{}` with {} frames \
             (stuck); log tail:\n{}",
            s.state,
            s.video_frames_received,
            callbox_testkit::file_tail(&w.daemon_log, 40)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    match outcome {
        Outcome::MediaBack { .. } => {
            hang_up(w, caller);
        }
        Outcome::Ended { .. } => {
            // The hub agrees: no call left for the caller.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let active = w.get("/api/calls/active");
                if active.as_array().is_some_and(|a| a.is_empty()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the box is idle but the hub still has the call: {active}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            let mut caller = caller;
            caller.kill();
        }
    }
    // Whatever happened, the box is back online and the next call works.
    w.wait_status("idle and online", Duration::from_secs(60), |s| {
        s.hub_online && s.state == "idle"
    });
    let caller = call_box(w);
    hang_up(w, caller);
    outcome
}
