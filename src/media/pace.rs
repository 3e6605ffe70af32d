//! The call screen's pace: the composed frame rate (`screen.framerate` while a video
//! tile shows, [`STILL_FRAMERATE`] otherwise), and which composed frame is the first
//! to show a scene change, for [`super::screen::Screen::snapshot_png`]. Both are
//! decided on the compositor's src pad, on its streaming thread.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::screen::{STILL_FRAMERATE, composed_caps};

/// Frames composed after a scene change is marked before the one a snapshot takes:
/// the first may have been composed (its tiles blended, its background's alpha read)
/// while the media thread was still applying the change; only its texts, added
/// downstream, are sure to be new.
const FRAMES_BEFORE_FRESH: u8 = 2;

/// The composed frame rate, and which composed frame is the first to show a scene
/// change. The media thread says whether anything moves; the compositor's streaming
/// thread sets the output capsfilter before its next frame, so
/// no caps event of the old rate can be on its way to the filter (the race
/// [`super::tile`] explains); the reconfigure that setting the filter sends makes the
/// compositor renegotiate, and GStreamer's videoaggregator restarts its frame count at
/// the new rate from the current position.
pub(super) struct Pace {
    shared: Arc<PaceShared>,
}

struct PaceShared {
    filter: gst::Element,
    width: u32,
    height: u32,
    /// `screen.framerate`, ≥ 1.
    moving_fps: u32,
    /// Whether a video tile shows (set by the media thread).
    moving: AtomicBool,
    /// The rate the filter was last set to (by the streaming thread).
    applied: AtomicU32,
    /// The last scene change ([`Pace::mark_change`]); one lock, so a frame counted
    /// for an older change cannot stand for a newer one.
    change: Mutex<Change>,
}

/// Where the composed frames are after the last scene change.
#[derive(Default)]
struct Change {
    /// Frames still to come before the first that surely shows it.
    to_come: u8,
    /// That frame's PTS, once it came.
    first: Option<gst::ClockTime>,
}

impl Pace {
    /// Still at first; `moving_fps`: `screen.framerate`.
    pub(super) fn new(filter: gst::Element, width: u32, height: u32, moving_fps: u32) -> Self {
        let shared = PaceShared {
            filter,
            width,
            height,
            moving_fps,
            moving: false.into(),
            applied: 0.into(),
            change: Mutex::default(),
        };
        shared.applied.store(shared.fps(false), Ordering::Relaxed);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The caps of the rate last applied.
    pub(super) fn caps(&self) -> gst::Caps {
        let s = &self.shared;
        composed_caps(s.width, s.height, s.applied.load(Ordering::Relaxed))
    }

    /// Applies a change of pace on `pad`'s streaming thread, before each frame.
    pub(super) fn apply_on(&self, pad: &gst::Pad) {
        let weak = Arc::downgrade(&self.shared);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            super::guarded("screen pace", gst::PadProbeReturn::Ok, || {
                if let Some(s) = weak.upgrade() {
                    s.apply();
                    if let Ok(mut change) = s.change.lock()
                        && change.to_come > 0
                    {
                        change.to_come -= 1;
                        if change.to_come == 0 {
                            change.first =
                                Some(info.buffer().and_then(|b| b.pts()).unwrap_or_default());
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            })
        });
    }

    /// Marks a scene change, once everything it sets (texts, tiles, alphas) is set:
    /// the [`FRAMES_BEFORE_FRESH`]th frame the compositor composes next is the first
    /// sure to show it. (A frame's
    /// running time is no proof: the live compositor may compose a frame up to one of
    /// its sources' frames before its time, so a frame stamped after the change could
    /// carry the old texts; the `e2e_screen` ringing screenshot caught the idle one.)
    pub(super) fn mark_change(&self) {
        if let Ok(mut change) = self.shared.change.lock() {
            *change = Change {
                to_come: FRAMES_BEFORE_FRESH,
                first: None,
            };
        }
    }

    /// The PTS of the first frame composed after the last [`Pace::mark_change`];
    /// `None` while that frame has not come.
    pub(super) fn first_after_change(&self) -> Option<gst::ClockTime> {
        self.shared.change.lock().ok().and_then(|c| c.first)
    }

    /// Whether a video tile shows; takes effect from the next composed frame.
    pub(super) fn set_moving(&self, moving: bool) {
        self.shared.moving.store(moving, Ordering::Relaxed);
    }
}

impl PaceShared {
    fn fps(&self, moving: bool) -> u32 {
        if moving {
            self.moving_fps
        } else {
            STILL_FRAMERATE.min(self.moving_fps)
        }
    }

    fn apply(&self) {
        let fps = self.fps(self.moving.load(Ordering::Relaxed));
        if self.applied.swap(fps, Ordering::Relaxed) != fps {
            tracing::debug!(fps, "screen frame rate");
            self.filter
                .set_property("caps", composed_caps(self.width, self.height, fps));
        }
    }
}
