//! Readings of a process from `/proc`: its CPU time and resident set, where its
//! resident memory is (`smaps`), and both sampled over a call.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::World;

/// CPU time (user + system) of `pid` so far, s, and its resident set, KiB.
fn cpu_rss(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((ticks as f64 / clock_ticks(), rss))
}

/// Where `pid`'s resident memory is, from `/proc/PID/smaps`, MiB: anonymous memory
/// (the heap, frame pools, thread stacks) in mappings of at least 1 MiB, in smaller
/// ones, and file-backed memory (the binary and its libraries: shared with any other
/// process using them, but counted in RSS), with the five largest files.
pub(crate) fn rss_breakdown(pid: u32) -> Option<Value> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let (mut anon_large, mut anon_small, mut file) = (0u64, 0u64, 0u64);
    let mut by_file: std::collections::HashMap<String, u64> = Default::default();
    let mut path = String::new();
    let mut size_kib = 0u64;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range perms offset dev inode [path].
            path = f.nth(4).unwrap_or_default().to_owned();
        } else if first == "Size:" {
            size_kib = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if first == "Rss:" {
            let rss: u64 = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            if path.starts_with('/') {
                file += rss;
                *by_file.entry(path.clone()).or_default() += rss;
            } else if size_kib >= 1024 {
                anon_large += rss;
            } else {
                anon_small += rss;
            }
        }
    }
    let mut top: Vec<(String, u64)> = by_file.into_iter().collect();
    top.sort_by_key(|f| std::cmp::Reverse(f.1));
    let mib = |k: u64| (k as f64 / 1024.0 * 10.0).round() / 10.0;
    Some(json!({
        "anon_in_mappings_of_1_mib_or_more_mib": mib(anon_large),
        "anon_in_smaller_mappings_mib": mib(anon_small),
        "file_backed_mib": mib(file),
        "largest_files": top.iter().take(5).map(|(p, k)| json!({
            "file": p.rsplit('/').next().unwrap_or(p), "mib": mib(*k)
        })).collect::<Vec<_>>(),
    }))
}

/// One line of [`rss_breakdown`] for the console.
pub(crate) fn rss_line(who: &str, b: &Value) -> String {
    let files: Vec<String> = b["largest_files"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| format!("{} {}", f["file"].as_str().unwrap_or("?"), f["mib"]))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{who}: anonymous {} MiB in mappings of ≥ 1 MiB, {} MiB in smaller ones; files {} MiB ({})",
        b["anon_in_mappings_of_1_mib_or_more_mib"],
        b["anon_in_smaller_mappings_mib"],
        b["file_backed_mib"],
        files.join(", ")
    )
}

/// `sysconf(_SC_CLK_TCK)`: the unit of `/proc/PID/stat`'s times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU and peak RSS of two processes over `secs` s, sampled every 500 ms.
pub(crate) struct Samples {
    pub(crate) a_cpu_s_per_min: f64,
    pub(crate) a_peak_mib: f64,
    pub(crate) b_cpu_s_per_min: f64,
    pub(crate) b_peak_mib: f64,
    pub(crate) secs: f64,
    /// `t_s,a_cpu_pct,a_rss_mib,b_cpu_pct,b_rss_mib` lines.
    pub(crate) csv: String,
}

pub(crate) fn sample(a: u32, b: u32, secs: u64) -> Samples {
    let (a0, _) = cpu_rss(a).unwrap();
    let (b0, _) = cpu_rss(b).unwrap();
    let mut csv = String::new();
    let (mut a_peak, mut b_peak) = (0u64, 0u64);
    let t0 = Instant::now();
    let (mut last_t, mut last_a, mut last_b) = (0.0, a0, b0);
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        let t = t0.elapsed().as_secs_f64();
        let (ac, ar) = cpu_rss(a).unwrap();
        let (bc, br) = cpu_rss(b).unwrap();
        a_peak = a_peak.max(ar);
        b_peak = b_peak.max(br);
        let dt = t - last_t;
        csv.push_str(&format!(
            "{t:.2},{:.1},{:.1},{:.1},{:.1}\n",
            (ac - last_a) / dt * 100.0,
            ar as f64 / 1024.0,
            (bc - last_b) / dt * 100.0,
            br as f64 / 1024.0
        ));
        (last_t, last_a, last_b) = (t, ac, bc);
    }
    let t = t0.elapsed().as_secs_f64();
    Samples {
        a_cpu_s_per_min: (last_a - a0) / t * 60.0,
        a_peak_mib: a_peak as f64 / 1024.0,
        b_cpu_s_per_min: (last_b - b0) / t * 60.0,
        b_peak_mib: b_peak as f64 / 1024.0,
        secs: t,
        csv,
    }
}

/// The box idle for `secs` s: CPU % of one core and RSS, MiB.
pub(crate) fn idle(secs: u64) -> (f64, f64) {
    let w = World::with_online_box("", "");
    std::thread::sleep(Duration::from_secs(2));
    let pid = w.daemon.as_ref().unwrap().id();
    let (c0, _) = cpu_rss(pid).unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, rss) = cpu_rss(pid).unwrap();
    (
        (c1 - c0) / t0.elapsed().as_secs_f64() * 100.0,
        rss as f64 / 1024.0,
    )
}
