//! Where the box's latency goes, by GStreamer element: a call with GStreamer's
//! latency tracer in the box.

use serde_json::{Value, json};

use crate::cost::cost_with;
use crate::{p50_p95, percentiles};

/// The value of `key=(type)value` in a GStreamer tracer record (`None`: not in it).
fn tracer_field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    let start = record.find(&format!(" {key}=("))? + key.len() + 3;
    let rest = &record[start..];
    let value = &rest[rest.find(')')? + 1..];
    Some(value.split([',', ';']).next()?.trim_matches('"'))
}

/// Median and count of each series, ms; those under `min_ms` or with fewer than 20
/// buffers are left out; largest first.
pub(crate) fn medians(
    series: std::collections::BTreeMap<String, Vec<f64>>,
    min_ms: f64,
) -> Vec<(String, f64, usize)> {
    let mut out: Vec<(String, f64, usize)> = series
        .into_iter()
        .filter(|(_, xs)| xs.len() >= 20)
        .map(|(k, xs)| {
            let (p50, _) = p50_p95(&xs);
            (k, p50, xs.len())
        })
        .filter(|(_, p50, _)| *p50 >= min_ms)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Where the box's latency goes, by GStreamer element: one stamped call at `w`x`h`
/// with GStreamer's latency tracer in the box (`GST_TRACERS=latency(flags=pipeline+
/// element)`, its records in `target/bench/trace-WxH.log`). `pipelines`: from each
/// source to each sink of a pipeline; `elements`: from a buffer entering an element
/// to it leaving (a queue's is the time buffers wait in it); medians, ms. The tracer
/// costs CPU, so this call is not one of the cost figures' calls.
pub(crate) fn latency_stages(w_px: u32, h_px: u32, secs: u64, dir: &std::path::Path) -> Value {
    let log = dir.join(format!("trace-{w_px}x{h_px}.log"));
    let _ = std::fs::remove_file(&log);
    let c = cost_with(
        w_px,
        h_px,
        secs,
        dir,
        &[
            ("GST_TRACERS", "latency(flags=pipeline+element)"),
            ("GST_DEBUG", "GST_TRACER:7"),
            ("GST_DEBUG_NO_COLOR", "1"),
            ("GST_DEBUG_FILE", log.to_str().unwrap()),
        ],
    );
    let mut pipelines = std::collections::BTreeMap::<String, Vec<f64>>::new();
    let mut elements = std::collections::BTreeMap::<String, Vec<f64>>::new();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for line in text.lines() {
        let ms = |r: &str| {
            tracer_field(r, "time")
                .and_then(|t| t.parse::<f64>().ok())
                .map(|ns| ns / 1e6)
        };
        if let Some(i) = line.find(":: latency, ") {
            let r = &line[i + 2..];
            if let (Some(from), Some(to), Some(ms)) = (
                tracer_field(r, "src-element"),
                tracer_field(r, "sink-element"),
                ms(r),
            ) {
                pipelines
                    .entry(format!("{from} → {to}"))
                    .or_default()
                    .push(ms);
            }
        } else if let Some(i) = line.find(":: element-latency, ") {
            let r = &line[i + 2..];
            if let (Some(element), Some(ms)) = (tracer_field(r, "element"), ms(r)) {
                elements.entry(element.to_owned()).or_default().push(ms);
            }
        }
    }
    let as_json = |rows: Vec<(String, f64, usize)>, what: &str| {
        for (k, p50, n) in &rows {
            println!(
                "bench: {w_px}x{h_px} latency tracer, {what} {k}: median {p50:.1} ms ({n} buffers)"
            );
        }
        rows.into_iter()
            .map(|(k, p50, n)| json!({"what": k, "median_ms": p50, "buffers": n}))
            .collect::<Vec<_>>()
    };
    let (g50, _, _) = percentiles(&c.g2g_box_to_peer);
    println!(
        "bench: {w_px}x{h_px} latency tracer call: box → Python SDK peer p50 {g50:.0} ms (with the tracer on)"
    );
    json!({
        "size": format!("{w_px}x{h_px}"),
        "pipelines": as_json(medians(pipelines, 0.0), "pipeline"),
        "elements": as_json(medians(elements, 0.3), "element"),
        "peer_receiver_of_box": c.peer_receiver,
    })
}
