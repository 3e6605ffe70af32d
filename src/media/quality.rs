//! The call's network quality, from WebRTC statistics: packet loss both ways, the
//! round-trip time and the received bitrate, summed up as good / fair / poor for the
//! screen's indicator and `callbox status`.
//!
//! Pure: the media thread reads the numbers (`media::stats`: the subscriber's
//! jitterbuffers, `livekitwebrtcsink`'s `stats`) and feeds them here every
//! [`INTERVAL`]:
//! - received: packets pushed and lost by the jitterbuffers (cumulative, summed over
//!   tracks) and their average jitter, the worst track's;
//! - sent: bytes sent, and the SFU's RTCP receiver reports' `fraction-lost` (0–1) and
//!   round-trip time when it sends them. webrtcbin 1.22 has no RTT on the receiving
//!   side nor on its candidate pairs, and LiveKit 1.13 sent no receiver reports to
//!   the box's publisher here, so the RTT is often unknown and the summary rests on
//!   loss and jitter.

use std::time::{Duration, Instant};

/// How often the media thread samples the statistics.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Loss (%) at or above which the link is fair; RTT (ms) likewise.
pub const FAIR_LOSS_PCT: f64 = 3.0;
/// See [`FAIR_LOSS_PCT`].
pub const FAIR_RTT_MS: f64 = 250.0;
/// Loss (%) at or above which the link is poor (video freezes, speech breaks up).
pub const POOR_LOSS_PCT: f64 = 10.0;
/// RTT (ms) at or above which the link is poor (people talk over each other).
pub const POOR_RTT_MS: f64 = 500.0;
/// Interarrival jitter (ms) at or above which the link is fair.
pub const FAIR_JITTER_MS: f64 = 30.0;
/// Interarrival jitter (ms) at or above which the link is poor.
pub const POOR_JITTER_MS: f64 = 100.0;

/// The summary shown to the person at the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Loss under 3 %, RTT under 250 ms, jitter under 30 ms.
    Good,
    /// Loss under 10 %, RTT under 500 ms, jitter under 100 ms.
    Fair,
    /// Worse.
    Poor,
}

impl Quality {
    /// The on-screen indicator: `Network ●●● good`, `●●○ fair`, `●○○ poor`.
    pub fn label(self) -> &'static str {
        match self {
            Quality::Good => "Network ●●● good",
            Quality::Fair => "Network ●●○ fair",
            Quality::Poor => "Network ●○○ poor",
        }
    }
}

/// One reading of the cumulative counters and the latest RTCP figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// RTP packets received, all remote tracks.
    pub packets_received: u64,
    /// RTP packets lost on the way in (may go down when late packets arrive).
    pub packets_lost: i64,
    /// Bytes the publisher sent, all tracks.
    pub bytes_sent: u64,
    /// The worst received track's jitter, ms.
    pub jitter_ms: Option<f64>,
    /// The worst `fraction-lost` the SFU reports for what the box sends, 0–1.
    pub sent_fraction_lost: Option<f64>,
    /// The publisher's round-trip time to the SFU, ms.
    pub rtt_ms: Option<f64>,
}

/// The link over the last interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    /// Packets lost on the way in, % of those expected.
    pub receive_loss_pct: f64,
    /// Packets lost on the way out, % (the SFU's receiver reports).
    pub send_loss_pct: Option<f64>,
    /// Round-trip time, ms, when the SFU reports it.
    pub rtt_ms: Option<f64>,
    /// The worst received track's jitter, ms.
    pub jitter_ms: Option<f64>,
    /// Sent bitrate, kbit/s (the camera and microphone as they leave the box).
    pub send_kbps: f64,
    /// The summary.
    pub quality: Quality,
}

/// good / fair / poor from the worse loss of the two directions, the RTT and the jitter
/// (an unknown figure counts as fine).
pub fn classify(loss_pct: f64, rtt_ms: Option<f64>, jitter_ms: Option<f64>) -> Quality {
    let rtt = rtt_ms.unwrap_or(0.0);
    let jitter = jitter_ms.unwrap_or(0.0);
    if loss_pct >= POOR_LOSS_PCT || rtt >= POOR_RTT_MS || jitter >= POOR_JITTER_MS {
        Quality::Poor
    } else if loss_pct >= FAIR_LOSS_PCT || rtt >= FAIR_RTT_MS || jitter >= FAIR_JITTER_MS {
        Quality::Fair
    } else {
        Quality::Good
    }
}

/// Turns successive [`Reading`]s into a [`Link`] per interval.
#[derive(Debug, Default)]
pub struct Meter {
    prev: Option<(Instant, Reading)>,
}

impl Meter {
    /// Takes the reading made at `at`; the link since the previous reading, or `None`
    /// for the first one (nothing to compare with yet) and when time did not advance.
    pub fn update(&mut self, at: Instant, r: Reading) -> Option<Link> {
        let prev = self.prev.replace((at, r));
        let (t0, p) = prev?;
        let secs = at.saturating_duration_since(t0).as_secs_f64();
        if secs <= 0.0 {
            return None;
        }
        let received = r.packets_received.saturating_sub(p.packets_received) as f64;
        let lost = (r.packets_lost - p.packets_lost).max(0) as f64;
        let receive_loss_pct = if received + lost > 0.0 {
            100.0 * lost / (received + lost)
        } else {
            0.0
        };
        let send_loss_pct = r.sent_fraction_lost.map(|f| 100.0 * f.clamp(0.0, 1.0));
        let loss = receive_loss_pct.max(send_loss_pct.unwrap_or(0.0));
        Some(Link {
            receive_loss_pct,
            send_loss_pct,
            rtt_ms: r.rtt_ms,
            jitter_ms: r.jitter_ms,
            send_kbps: r.bytes_sent.saturating_sub(p.bytes_sent) as f64 * 8.0 / 1000.0 / secs,
            quality: classify(loss, r.rtt_ms, r.jitter_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_loss_and_rtt() {
        assert_eq!(classify(0.0, Some(20.0), Some(5.0)), Quality::Good);
        assert_eq!(classify(2.9, Some(249.0), Some(29.0)), Quality::Good);
        assert_eq!(classify(3.0, None, None), Quality::Fair);
        assert_eq!(classify(0.0, Some(250.0), None), Quality::Fair);
        assert_eq!(classify(0.0, None, Some(30.0)), Quality::Fair);
        assert_eq!(classify(10.0, Some(20.0), None), Quality::Poor);
        assert_eq!(classify(0.5, Some(600.0), None), Quality::Poor);
        assert_eq!(classify(0.5, None, Some(100.0)), Quality::Poor);
    }

    #[test]
    fn the_meter_measures_each_interval_from_the_counters() {
        let t0 = Instant::now();
        let mut m = Meter::default();
        let r0 = Reading {
            packets_received: 1000,
            packets_lost: 10,
            bytes_sent: 500_000,
            ..Reading::default()
        };
        assert_eq!(
            m.update(t0, r0),
            None,
            "the first reading has nothing to compare"
        );
        // 2 s: 190 received, 10 lost (5 %), 250 000 bytes (1000 kbit/s), RTT 40 ms,
        // 1 % lost on the way out.
        let r1 = Reading {
            packets_received: 1190,
            packets_lost: 20,
            bytes_sent: 750_000,
            sent_fraction_lost: Some(0.01),
            rtt_ms: Some(40.0),
            jitter_ms: Some(4.0),
        };
        let l = m.update(t0 + INTERVAL, r1).unwrap();
        assert!((l.receive_loss_pct - 5.0).abs() < 1e-9, "{l:?}");
        assert!((l.send_kbps - 1000.0).abs() < 1e-9, "{l:?}");
        assert_eq!(l.send_loss_pct, Some(1.0));
        assert_eq!(l.quality, Quality::Fair);
        // A clean interval is good again; late packets lowering the lost count are not
        // negative loss.
        let r2 = Reading {
            packets_received: 1390,
            packets_lost: 18,
            bytes_sent: 1_000_000,
            sent_fraction_lost: Some(0.0),
            rtt_ms: Some(40.0),
            jitter_ms: Some(4.0),
        };
        let l = m.update(t0 + 2 * INTERVAL, r2).unwrap();
        assert_eq!(l.receive_loss_pct, 0.0);
        assert_eq!(l.quality, Quality::Good);
        assert_eq!(Quality::Poor.label(), "Network ●○○ poor");
    }
}
