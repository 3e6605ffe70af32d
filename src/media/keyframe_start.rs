//! The box's own video sends a few keyframes of its own as it starts
//! ([`START_KEYFRAMES`]), for a subscriber that missed the first one: the publisher's
//! encoders are asked from a buffer probe ([`add_start_keyframes`]), with
//! [`super::keyframe::force_keyframe`], as a PLI would.

use std::time::Duration;

use gst::prelude::*;

use super::keyframe::force_keyframe;

/// When, after the first frame out of a publisher's video encoder, the box asks that
/// encoder for a keyframe of its own (by the frames' timestamps).
///
/// A subscriber can miss the stream's first keyframe. The caller web app (chromium,
/// `livekit-client` with one peer connection) then showed the box's first frame
/// ~0.6 s late in about one call in twelve (`make bench`'s `setup_web`). In
/// livekit-server's debug log of one: the SFU forwarded the box's keyframe 10 ms after it bound the
/// page's downtrack, the page asked for another 217 and 419 ms later, and neither
/// reached the box: livekit-server 1.13 passes at most one PLI per 500 ms to a
/// single-layer video (`pli_throttle`), and it had sent one as the downtrack was bound.
/// The third went through, 629 ms after the first keyframe. With these three keyframes
/// (three more per call, all in its first second) none of 58 calls stalled.
pub(super) const START_KEYFRAMES: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// Which of [`START_KEYFRAMES`] is due, from the timestamps of an encoder's output.
#[derive(Debug, Default)]
pub(super) struct StartKeyframes {
    first: Option<gst::ClockTime>,
    next: usize,
}

impl StartKeyframes {
    /// Notes a frame out of the encoder at `pts` (none: ignored). True when a keyframe
    /// is due: the first frame at or after the next of [`START_KEYFRAMES`] (one
    /// request even when a gap skipped several).
    pub(super) fn frame(&mut self, pts: Option<gst::ClockTime>) -> bool {
        let Some(pts) = pts else { return false };
        let Some(first) = self.first else {
            self.first = Some(pts);
            return false;
        };
        let since = Duration::from_nanos(pts.saturating_sub(first).nseconds());
        let due = START_KEYFRAMES
            .iter()
            .skip(self.next)
            .take_while(|&&at| since >= at)
            .count();
        self.next += due;
        due > 0
    }

    /// True once every one of [`START_KEYFRAMES`] was due.
    pub(super) fn done(&self) -> bool {
        self.next >= START_KEYFRAMES.len()
    }
}

/// Asks `encoder` (a video encoder of the box's publisher, as webrtcsink sets it up)
/// for the [`START_KEYFRAMES`], with [`force_keyframe`], from a buffer probe on its
/// source pad (its streaming thread; an event, no state change). The probe removes
/// itself after the last and holds the encoder weakly.
pub(super) fn add_start_keyframes(encoder: &gst::Element) {
    let Some(pad) = encoder.static_pad("src") else {
        return;
    };
    let weak = encoder.downgrade();
    let due = std::sync::Mutex::new(StartKeyframes::default());
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(mut due) = due.lock() else {
            return gst::PadProbeReturn::Remove;
        };
        if due.frame(buffer.pts()) {
            let sent = weak.upgrade().is_some_and(|e| force_keyframe(&e));
            tracing::debug!(sent, "a start keyframe of the box's video asked");
        }
        if due.done() {
            gst::PadProbeReturn::Remove
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn start_keyframes_are_due_once_each_by_timestamp() {
        let ms = |n: u64| Some(gst::ClockTime::from_mseconds(n));
        let mut due = StartKeyframes::default();
        // 30 fps from 1000 ms: due at the first frame at or after 250, 500, 1000 ms.
        let at: Vec<u64> = (0..45u64)
            .map(|i| 1000 + i * 1000 / 30)
            .filter(|&t| due.frame(ms(t)))
            .map(|t| t - 1000)
            .collect();
        assert_eq!(at, [266, 500, 1000]);
        assert!(due.done());
        assert!(!due.frame(ms(3000)), "nothing after the last");
        // Frames without a timestamp are ignored; a gap past two marks asks once.
        let mut due = StartKeyframes::default();
        assert!(!due.frame(None));
        assert!(!due.frame(ms(0)));
        assert!(due.frame(ms(600)));
        assert!(!due.done());
        assert!(due.frame(ms(1000)));
        assert!(due.done());
    }

    /// The start keyframes come out of a real x264enc: at the first frames after 250,
    /// 500 and 1000 ms (30 fps: frames 8, 15 and 30, each a frame or two later), and
    /// no other after the first (key-int-max 300).
    #[test]
    fn start_keyframes_come_out_of_the_encoder() {
        gst::init().expect("gstreamer");
        if gst::ElementFactory::find("x264enc").is_none() {
            println!("skipped: no x264enc here (gstreamer1.0-plugins-ugly)");
            return;
        }
        let pipeline = gst::parse::launch(
            "videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 \
             ! x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max=300 \
             ! fakesink name=out",
        )
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
        let enc = pipeline.by_name("enc").expect("enc");
        add_start_keyframes(&enc);
        let keyframes = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
        let record = keyframes.clone();
        let frame = Arc::new(AtomicU64::new(0));
        pipeline
            .by_name("out")
            .and_then(|o| o.static_pad("sink"))
            .expect("sink pad")
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                    let n = frame.fetch_add(1, Ordering::Relaxed);
                    if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) {
                        record.lock().unwrap().push(n);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).expect("playing");
        let bus = pipeline.bus().expect("bus");
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        pipeline.set_state(gst::State::Null).expect("null");
        assert!(
            matches!(
                msg.as_ref().map(|m| m.view()),
                Some(gst::MessageView::Eos(_))
            ),
            "the stream ends: {msg:?}"
        );
        let keyframes = keyframes.lock().unwrap().clone();
        assert_eq!(
            keyframes.len(),
            4,
            "the first and three more: {keyframes:?}"
        );
        for (got, want) in keyframes.iter().zip([0u64, 8, 15, 30]) {
            assert!(
                (want..=want + 3).contains(got),
                "a keyframe at frame {got}, expected {want} (+3): {keyframes:?}"
            );
        }
    }
}
