//! Reads a call's WebRTC statistics out of GStreamer for [`quality`](super::quality):
//! the subscriber's webrtcbin through its `get-stats` action signal (answered on
//! webrtcbin's own thread, so the media thread never waits for it: each sample uses
//! the previous answer), and the publisher's through `livekitwebrtcsink`'s `stats`
//! property (the sink polls its webrtcbins every 100 ms).
//!
//! Field names and types: GStreamer 1.22 `ext/webrtc/gstwebrtcstats.c`; gst-plugins-rs
//! 0.15 `webrtcsink/imp.rs` (`application/x-webrtcsink-stats`: one field per session,
//! each an `application/x-webrtc-stats`).

use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::quality::Reading;

/// Asks and remembers; one per call.
#[derive(Debug, Default)]
pub struct StatsProbe {
    /// webrtcbin's last `get-stats` answer.
    reply: Arc<Mutex<Option<gst::Structure>>>,
}

impl StatsProbe {
    /// The counters as of the subscriber's last answer and the publisher's RTCP
    /// figures now, then asks the subscriber again. `None` until the subscriber has
    /// answered once (no webrtcbin yet: the session has not started).
    pub fn sample(&self, publish: &gst::Pipeline, subscribe: &gst::Pipeline) -> Option<Reading> {
        let inbound = self.reply.lock().ok().and_then(|mut r| r.take());
        if let Some(webrtcbin) = find(subscribe, "webrtcbin") {
            let reply = self.reply.clone();
            let promise = gst::Promise::with_change_func(move |answer| {
                // A closed webrtcbin answers with an error structure instead.
                if let Ok(Some(s)) = answer
                    && s.name() == "application/x-webrtc-stats"
                    && let Ok(mut r) = reply.lock()
                {
                    *r = Some(s.to_owned());
                }
            });
            webrtcbin.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
        }
        let inbound = inbound?;
        let mut reading = Reading::default();
        for s in substructures(&inbound) {
            if s.name() == "inbound-rtp" {
                reading.packets_received += s.get::<u64>("packets-received").unwrap_or(0);
                reading.packets_lost += s.get::<i64>("packets-lost").unwrap_or(0);
                reading.bytes_received += s.get::<u64>("bytes-received").unwrap_or(0);
                if let Ok(j) = s.get::<f64>("jitter") {
                    reading.jitter_ms = Some(reading.jitter_ms.unwrap_or(0.0).max(j * 1000.0));
                }
            }
        }
        if let Some(sink) = find(publish, "livekitwebrtcsink") {
            let stats = sink.property::<gst::Structure>("stats");
            for session in substructures(&stats) {
                for s in substructures(&session) {
                    if s.name() != "remote-inbound-rtp" {
                        continue;
                    }
                    if let Ok(f) = s.get::<f64>("fraction-lost") {
                        reading.sent_fraction_lost =
                            Some(reading.sent_fraction_lost.unwrap_or(0.0).max(f));
                    }
                    if let Ok(rtt) = s.get::<f64>("round-trip-time") {
                        reading.rtt_ms = Some(reading.rtt_ms.unwrap_or(0.0).max(rtt * 1000.0));
                    }
                }
            }
        }
        Some(reading)
    }
}

/// The first element made by `factory` anywhere in `bin`.
fn find(bin: &gst::Pipeline, factory: &str) -> Option<gst::Element> {
    bin.iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == factory))
}

/// The fields of `s` that are structures themselves.
fn substructures(s: &gst::StructureRef) -> Vec<gst::Structure> {
    s.iter()
        .filter_map(|(_, v)| v.get::<gst::Structure>().ok())
        .collect()
}
