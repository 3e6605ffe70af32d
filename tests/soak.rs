//! Issue #10's soak: sequential calls through the real stack (livekit-server, the hub,
//! the `callbox` binary with test sources, a Python SDK caller), sampling the box's
//! resident memory, open file descriptors and threads after each call once it is idle
//! and the call's threads have ended (the time that took is the CSV's `settle_ms`).
//!
//! `make test` runs 20 calls; `make soak` runs `CALLBOX_SOAK_CALLS` (default 500). The
//! samples go to `target/soak/soak.csv` (call, rss_kib, anon_kib, file_kib, fds, threads,
//! heap_in_use_kib, heap_free_kib: glibc malloc's own figures; settle_ms) and summary lines
//! to the output. Every run checks that descriptors and threads do not grow (a leaked
//! pipeline or socket shows there at once) and that resident memory is flat after
//! warm-up (the last third of the calls within 10 % of the calls after the 2nd, by
//! medians; from 100 calls on, every sample of the last 80 % within ±5 % of their
//! median, issue #10's criterion). `CALLBOX_SOAK_ENV="K=V …"` adds environment variables to the daemon's (e.g.
//! heaptrack's `LD_PRELOAD`); `CALLBOX_SOAK_DIR` writes the CSV elsewhere.

mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::World;

/// One sample of the daemon process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_kib: u64,
    /// Of which anonymous (heap, stacks) and file-backed (mapped libraries).
    anon_kib: u64,
    file_kib: u64,
    fds: u64,
    threads: u64,
    /// glibc malloc's figures from `callbox status` (KiB): in use, and freed but kept.
    heap_in_use_kib: u64,
    heap_free_kib: u64,
}

fn sample(pid: u32, heap: Option<callbox::memory::HeapStats>) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64;
    Sample {
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
        file_kib: field("RssFile:"),
        fds,
        threads: field("Threads:"),
        heap_in_use_kib: heap.map_or(0, |h| h.in_use_kib),
        heap_free_kib: heap.map_or(0, |h| h.free_kib),
    }
}

/// A call's threads that take longer than this to end are reported by name.
const SLOW_SETTLE: Duration = Duration::from_secs(2);
/// How long the soak waits for them at most (the sample is then taken anyway).
const SETTLE_LIMIT: Duration = Duration::from_secs(90);

fn thread_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count() as u64)
        .unwrap_or(0)
}

/// The names of `pid`'s threads (`comm`), counted: `name×n, …`, most frequent first.
fn thread_names(pid: u32) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // GStreamer names streaming threads after the pad (`queue12:src`): keep the
        // element's kind, not its number, so a call's threads group.
        let kind: String = comm
            .trim()
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        *counts.entry(kind).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a call's threads ended after its teardown.
#[derive(Debug, Clone)]
struct Settle {
    at_teardown: u64,
    after: u64,
    waited: Duration,
    /// The threads alive when the wait passed [`SLOW_SETTLE`] (empty if it did not).
    names: String,
}

/// Waits (up to [`SETTLE_LIMIT`]) until `pid` has no more threads than `settled`.
/// With no figure yet (call 1), waits until the count has not changed for 3 s.
fn settle_threads(pid: u32, settled: Option<u64>) -> Settle {
    let started = Instant::now();
    let at_teardown = thread_count(pid);
    let mut names = String::new();
    let mut last = (at_teardown, Instant::now());
    loop {
        let now = thread_count(pid);
        let done = match settled {
            Some(target) => now <= target,
            None => {
                if now != last.0 {
                    last = (now, Instant::now());
                }
                last.1.elapsed() >= Duration::from_secs(3)
            }
        };
        if done || started.elapsed() >= SETTLE_LIMIT {
            return Settle {
                at_teardown,
                after: now,
                waited: if settled.is_some() {
                    started.elapsed()
                } else {
                    last.1.duration_since(started)
                },
                names,
            };
        }
        if names.is_empty() && started.elapsed() > SLOW_SETTLE {
            names = thread_names(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn calls() -> usize {
    std::env::var("CALLBOX_SOAK_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[test]
fn sequential_calls_leave_memory_descriptors_and_threads_flat() {
    let n = calls();
    let mut w = World::start();
    let cred = w.box_credential.clone();
    let env: Vec<(String, String)> = std::env::var("CALLBOX_SOAK_ENV")
        .ok()
        .into_iter()
        .flat_map(|v| {
            v.split_whitespace()
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w.start_daemon_env(&cred, "", &env);
    w.wait_status("online", Duration::from_secs(20), |s| {
        s.hub_online && s.state == "idle"
    });
    let pid = w.daemon.as_ref().unwrap().id();
    let dir = std::env::var_os("CALLBOX_SOAK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/soak"));
    std::fs::create_dir_all(&dir).unwrap();
    let csv_path = dir.join("soak.csv");
    let mut csv = std::fs::File::create(&csv_path).unwrap();
    writeln!(
        csv,
        "call,rss_kib,anon_kib,file_kib,fds,threads,heap_in_use_kib,heap_free_kib,settle_ms"
    )
    .unwrap();
    let row = |i: usize, s: &Sample| {
        format!(
            "{i},{},{},{},{},{},{},{}",
            s.rss_kib, s.anon_kib, s.file_kib, s.fds, s.threads, s.heap_in_use_kib, s.heap_free_kib
        )
    };
    let heap = |w: &World| w.status().and_then(|s| s.heap);
    let idle = sample(pid, heap(&w));
    writeln!(csv, "{},0", row(0, &idle)).unwrap();
    let started = Instant::now();
    let mut samples = Vec::with_capacity(n);
    let mut settles = Vec::with_capacity(n);
    let mut slow = Vec::new();
    // Threads once a call is over: set after call 1 (its first call starts the
    // screen's and the LiveKit runtime's threads for good).
    let mut settled_threads: Option<u64> = None;
    for i in 1..=n {
        let caller = w.dial(
            "box1",
            &["--min-video-frames", "30", "--timeout", "60", "--no-hangup"],
        );
        caller.expect_event("media_ok", Duration::from_secs(60));
        support::hang_up(&w, caller);
        let before = w.status().map_or(0, |s| s.calls_answered);
        assert!(before >= i as u64, "call {i} was answered");
        // The media thread tears the call's pipelines down after the state is idle
        // and returns memory to the system twice (at once and 2 s later); sample once
        // that is done.
        w.wait_status("media torn down", Duration::from_secs(15), |s| {
            s.state == "idle" && !s.media_active && s.memory_trims >= 2 * i as u64
        });
        // The LiveKit elements finish a session in helper threads of their own
        // (gst-plugins-rs webrtcsink/webrtcsrc `finalize_session`, spawn_blocking):
        // the call is over when they are gone too. In the 500-call soak before this
        // wait, 9 samples were taken while a call's 35 such threads still lived, ~30 s
        // after teardown (+10 % RSS until they ended). How long it took is recorded.
        let settle = settle_threads(pid, settled_threads);
        if settled_threads.is_none() || settle.waited >= SETTLE_LIMIT {
            // A thread that outlives the limit is the box's for good, and the check
            // below that threads do not grow across calls judges it.
            settled_threads = Some(settle.after);
        }
        if settle.waited > SLOW_SETTLE && slow.len() < 5 {
            slow.push((i, settle.clone()));
        }
        let s = sample(pid, heap(&w));
        writeln!(csv, "{},{}", row(i, &s), settle.waited.as_millis()).unwrap();
        settles.push(settle.waited);
        samples.push(s);
    }
    settles.sort_unstable();
    callbox_testkit::report!(
        "soak: a call's threads ended within {} ms of its teardown in {} of {n} calls; median {} ms, longest {} ms{}",
        SLOW_SETTLE.as_millis(),
        settles.iter().filter(|d| **d <= SLOW_SETTLE).count(),
        settles[settles.len() / 2].as_millis(),
        settles.last().unwrap().as_millis(),
        if settles.last().unwrap() >= &SETTLE_LIMIT {
            " (the limit: threads still running)"
        } else {
            ""
        }
    );
    for (call, settle) in &slow {
        callbox_testkit::report!(
            "soak: call {call}: {} threads at teardown, back to {} after {} ms; those waited for: {}",
            settle.at_teardown,
            settle.after,
            settle.waited.as_millis(),
            settle.names
        );
    }
    let warm = samples[samples.len().min(2) - 1];
    let last = *samples.last().unwrap();
    let peak = samples.iter().map(|s| s.rss_kib).max().unwrap();
    callbox_testkit::report!(
        "soak: {n} calls in {:.0} s; box RSS idle {} MiB, after call 2 {} MiB, after call {n} {} MiB (peak {} MiB); fds {} → {}; threads {} → {}; {}",
        started.elapsed().as_secs_f64(),
        idle.rss_kib / 1024,
        warm.rss_kib / 1024,
        last.rss_kib / 1024,
        peak / 1024,
        warm.fds,
        last.fds,
        warm.threads,
        last.threads,
        csv_path.display()
    );
    // Memory: the last third of the calls against the calls after warm-up (3rd on),
    // by medians (one call's sample varies by a few %). A leak of a few MiB a call,
    // as before the allocator's arenas were bounded (src/memory.rs), fails this.
    if n >= 9 {
        let median = |xs: &[Sample]| {
            let mut v: Vec<u64> = xs.iter().map(|s| s.rss_kib).collect();
            v.sort_unstable();
            v[v.len() / 2]
        };
        let third = n / 3;
        let early = median(&samples[2..2 + third]);
        let late = median(&samples[n - third..]);
        callbox_testkit::report!(
            "soak: median RSS of calls 3-{} {} MiB, of the last {third} calls {} MiB ({:+.1} %)",
            2 + third,
            early / 1024,
            late / 1024,
            (late as f64 / early as f64 - 1.0) * 100.0
        );
        // The spread the "within ±5 %" is about: every sample of the last
        // 80 % of the calls against their median, for RSS and its two parts.
        let tail = &samples[n / 5..];
        for (what, of) in [
            ("RSS", (|s: &Sample| s.rss_kib) as fn(&Sample) -> u64),
            ("RssAnon", |s: &Sample| s.anon_kib),
            ("RssFile", |s: &Sample| s.file_kib),
            ("malloc in use", |s: &Sample| s.heap_in_use_kib),
        ] {
            let mut v: Vec<u64> = tail.iter().map(of).collect();
            v.sort_unstable();
            if v[v.len() / 2] == 0 {
                continue; // not glibc: no allocator figures
            }
            let mid = v[v.len() / 2] as f64;
            let pct = |x: u64| (x as f64 / mid - 1.0) * 100.0;
            callbox_testkit::report!(
                "soak: {what} of the last {} calls: median {:.0} MiB, samples {:+.1} % .. {:+.1} %",
                tail.len(),
                mid / 1024.0,
                pct(v[0]),
                pct(*v.last().unwrap())
            );
        }
        // The criterion, for the soak proper (`make soak`; 20 calls are too
        // few to call the calls after the 4th "after warm-up"): every RSS sample of
        // the last 80 % within ±5 % of their median.
        if n >= 100 {
            let mut v: Vec<u64> = tail.iter().map(|s| s.rss_kib).collect();
            v.sort_unstable();
            let mid = v[v.len() / 2];
            let outside: Vec<usize> = tail
                .iter()
                .enumerate()
                .filter(|(_, s)| s.rss_kib * 100 > mid * 105 || s.rss_kib * 100 < mid * 95)
                .map(|(k, _)| n / 5 + k + 1)
                .collect();
            assert!(
                outside.is_empty(),
                "RSS after calls {outside:?} is more than 5 % from the last {} calls' median ({mid} KiB); {}",
                tail.len(),
                csv_path.display()
            );
        }
        assert!(
            late * 100 <= early * 110,
            "the box's memory grew across calls: median RSS {early} KiB early, {late} KiB late; {}",
            csv_path.display()
        );
    }
    // Fds and threads: a count may be one up for a moment (the REST client's
    // keep-alive connection to the hub comes and goes: 33/34 fds; a GStreamer task
    // thread: 52/53). Comparing maxima failed in CI when the early calls never showed
    // the 53: so the late calls' *minimum* against the early calls' maximum. A leak of
    // one a call lifts every late sample past the early maximum.
    let third = (n / 3).max(1);
    let early = &samples[1.min(n - 1)..(1 + third).min(n)];
    let late = &samples[n - third..];
    for (what, of) in [
        (
            "open descriptors",
            (|s: &Sample| s.fds) as fn(&Sample) -> u64,
        ),
        ("threads", |s: &Sample| s.threads),
    ] {
        let before = early.iter().map(of).max().unwrap();
        let after = late.iter().map(of).min().unwrap();
        assert!(
            after <= before,
            "{what} grew over {n} calls: at most {before} in calls 2-{}, at least {after} in the last {third}; {}",
            1 + third,
            csv_path.display()
        );
    }
}
