//! Reads a call's statistics out of GStreamer for [`quality`](super::quality), without
//! asking webrtcbin: its `get-stats` runs on webrtcbin's operation queue, the one that
//! also applies offers and answers, and a sample every 2 s made the lab box (QEMU TCG)
//! slow to negotiate and decode (< 30 frames in 60 s in three runs; 30 with sampling
//! off). So:
//! - received: each `rtpjitterbuffer`'s `stats` property in the subscriber (GStreamer
//!   1.22: `num-pushed`, `num-lost` u64; `avg-jitter` u64 ns), a short lock each;
//! - sent: `livekitwebrtcsink`'s `stats` property, which the sink refreshes from its
//!   webrtcbins every 100 ms anyway (gst-plugins-rs 0.15 `webrtcsink/imp.rs`:
//!   `application/x-webrtcsink-stats`, one field per session, each an
//!   `application/x-webrtc-stats`): `outbound-rtp` `bytes-sent` (u64), and
//!   `remote-inbound-rtp` `fraction-lost` (0–1), `round-trip-time` (s) when the SFU
//!   sends receiver reports.

use gst::prelude::*;

use super::quality::Reading;

/// The counters now; `None` while the subscriber has no jitterbuffer yet (no remote
/// track: nothing to judge the network by).
pub fn sample(publish: &gst::Pipeline, subscribe: &gst::Pipeline) -> Option<Reading> {
    let jitterbuffers = all(subscribe, "rtpjitterbuffer");
    if jitterbuffers.is_empty() {
        return None;
    }
    let mut reading = Reading::default();
    for jb in jitterbuffers {
        let s = jb.property::<gst::Structure>("stats");
        reading.packets_received += s.get::<u64>("num-pushed").unwrap_or(0);
        reading.packets_lost += s.get::<u64>("num-lost").unwrap_or(0) as i64;
        if let Ok(ns) = s.get::<u64>("avg-jitter") {
            let ms = ns as f64 / 1e6;
            reading.jitter_ms = Some(reading.jitter_ms.unwrap_or(0.0).max(ms));
        }
    }
    if let Some(sink) = all(publish, "livekitwebrtcsink").into_iter().next() {
        let stats = sink.property::<gst::Structure>("stats");
        for session in substructures(&stats) {
            for s in substructures(&session) {
                match s.name().as_str() {
                    "outbound-rtp" => {
                        reading.bytes_sent += s.get::<u64>("bytes-sent").unwrap_or(0);
                    }
                    "remote-inbound-rtp" => {
                        if let Ok(f) = s.get::<f64>("fraction-lost") {
                            reading.sent_fraction_lost =
                                Some(reading.sent_fraction_lost.unwrap_or(0.0).max(f));
                        }
                        if let Ok(rtt) = s.get::<f64>("round-trip-time") {
                            reading.rtt_ms = Some(reading.rtt_ms.unwrap_or(0.0).max(rtt * 1000.0));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Some(reading)
}

/// Every element made by `factory` anywhere in `bin`.
fn all(bin: &gst::Pipeline, factory: &str) -> Vec<gst::Element> {
    bin.iterate_recurse()
        .into_iter()
        .flatten()
        .filter(|e| e.factory().is_some_and(|f| f.name() == factory))
        .collect()
}

/// The fields of `s` that are structures themselves.
fn substructures(s: &gst::StructureRef) -> Vec<gst::Structure> {
    s.iter()
        .filter_map(|(_, v)| v.get::<gst::Structure>().ok())
        .collect()
}
