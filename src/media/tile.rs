//! One video tile of the call screen: an `intervideosrc` whose frames are converted to
//! the composed format and scaled to the size they are shown at *before* the
//! compositor, which then only blends them.
//!
//! ```text
//! intervideosrc channel=… ─ videoconvertscale ─ capsfilter (BGRx, fitted w×h) ─ compositor pad
//! ```
//!
//! Left to the compositor (its pad's own conversion, `sizing-policy=keep-aspect-ratio`),
//! GStreamer 1.22's `GstVideoAggregatorConvertPad` converted and scaled each video into
//! a newly allocated frame every time. That was most of what the box added to the bare
//! media stack: perf in a 640x480 bench call put 48 % of the box's samples in the
//! compositor's worker pool and 20 % in the kernel, mostly page faults of those frames.
//! Scaled here, the box's call at 640x480 went from 49.8 to 32.7 CPU s per call-minute
//! (`make bench`, 2 cores, 2026-11-23; the floor went 17.2 → 15.3 between the same two
//! runs). At 1280x720 the caller fills the screen unscaled and little changed (52.0 →
//! 45.5, floor 38.4 → 31.5). Peak RSS rose by ~15 MiB (161 → 177 MiB at 640x480): the
//! scaler keeps a pool of frames where the compositor mapped and unmapped one a frame.
//!
//! The size is [`crate::screen::fit`] of the video's caps into the tile's rectangle. A
//! hidden tile scales to 2×2 px: its `intervideosrc` keeps pushing (black) frames, and
//! converting them at full size would cost an idle box CPU for nothing. Only the
//! tile's streaming thread changes the size ([`Shared::apply`]).

use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::MediaError;
use super::screen::{build_err, make};
use crate::screen::{self, Rect};

/// The size a hidden tile's frames are scaled to, px.
const HIDDEN_PX: i32 = 2;

/// A tile on the screen's compositor. Made on the media thread; its caps probe runs on
/// the `intervideosrc`'s streaming thread.
pub(super) struct Tile {
    shared: Arc<Shared>,
}

/// What the media thread and the streaming thread both touch.
struct Shared {
    pad: gst::Pad,
    filter: gst::Element,
    format: &'static str,
    geometry: Mutex<Geometry>,
}

/// A frame's size and pixel aspect ratio: `(width, height, (par_n, par_d))`, px.
type VideoSize = (u32, u32, (u32, u32));

#[derive(Default, Clone, Copy, PartialEq)]
struct Geometry {
    /// Where the tile is shown; `None`: hidden. Set by the media thread.
    rect: Option<Rect>,
    /// The video's size and pixel aspect ratio, from its caps.
    video: Option<VideoSize>,
    /// The `(rect, video)` last applied by the streaming thread.
    applied: Option<(Option<Rect>, Option<VideoSize>)>,
}

impl Tile {
    /// Adds a hidden tile (alpha 0) showing `channel` to the running `pipeline`, on a
    /// new `mixer` pad at `zorder`, its frames in `format` (the composed format).
    ///
    /// Errors: [`MediaError::Build`] (an element is missing or does not link).
    pub(super) fn add(
        pipeline: &gst::Pipeline,
        mixer: &gst::Element,
        channel: &str,
        zorder: u32,
        format: &'static str,
    ) -> Result<Self, MediaError> {
        let src = make("intervideosrc")?;
        src.set_property("channel", channel);
        // Black after 2 s without frames (a frozen picture would look like a live one).
        src.set_property("timeout", 2 * gst::ClockTime::SECOND.nseconds());
        let scale = make("videoconvertscale")?;
        let filter = make("capsfilter")?;
        filter.set_property("caps", caps(format, HIDDEN_PX, HIDDEN_PX));
        pipeline
            .add_many([&src, &scale, &filter])
            .map_err(build_err)?;
        gst::Element::link_many([&src, &scale, &filter]).map_err(build_err)?;
        let pad = mixer
            .request_pad_simple("sink_%u")
            .ok_or_else(|| build_err("compositor gave no sink pad"))?;
        pad.set_property("zorder", zorder);
        pad.set_property("alpha", 0.0f64);
        // Frames arrive at the pad's size; should one not (a layout change racing a
        // frame), the compositor scales it with the aspect kept.
        pad.set_property_from_str("sizing-policy", "keep-aspect-ratio");
        filter
            .static_pad("src")
            .expect("capsfilter has a src pad")
            .link(&pad)
            .map_err(|e| build_err(format!("linking {channel}: {e:?}")))?;
        // intervideosrc answers a latency query with a maximum of 0 (GStreamer 1.22), less
        // than any source's minimum, so the compositor's query failed ("max < min") and
        // the screen kept the latency it configured before its first tile, whatever its
        // rate and sources became. It takes the channel's newest frame whenever it
        // likes and never blocks, so it can wait for any time: no maximum.
        filter
            .static_pad("src")
            .expect("capsfilter has a src pad")
            .add_probe(
                gst::PadProbeType::QUERY_UPSTREAM | gst::PadProbeType::PULL,
                |_, info| {
                    if let Some(q) = info.query_mut()
                        && let gst::QueryViewMut::Latency(l) = q.view_mut()
                    {
                        let (live, min, _) = l.result();
                        l.set(live, min, gst::ClockTime::NONE);
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        let src_pad = src.static_pad("src").expect("intervideosrc has a src pad");
        if channel != super::screen::SELF_CHANNEL && super::stamp::enabled() {
            super::stamp::read_on(&src_pad, "shown");
        }
        let shared = Arc::new(Shared {
            pad,
            filter: filter.clone(),
            format,
            geometry: Mutex::new(Geometry::default()),
        });
        let weak = Arc::downgrade(&shared);
        src_pad.add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::BUFFER,
            move |_, info| {
                super::guarded("tile", gst::PadProbeReturn::Ok, || {
                    let Some(shared) = weak.upgrade() else {
                        return gst::PadProbeReturn::Ok;
                    };
                    let video = match info.event().map(|e| e.view()) {
                        Some(gst::EventView::Caps(c)) => {
                            gst_video::VideoInfo::from_caps(c.caps()).ok().map(|v| {
                                let par = v.par();
                                (
                                    v.width(),
                                    v.height(),
                                    (par.numer() as u32, par.denom() as u32),
                                )
                            })
                        }
                        Some(_) => return gst::PadProbeReturn::Ok,
                        None => None,
                    };
                    shared.apply(video);
                    gst::PadProbeReturn::Ok
                })
            },
        );
        // Downstream first: the source must not push into an element still stopped.
        for e in [&filter, &scale, &src] {
            e.sync_state_with_parent().map_err(build_err)?;
        }
        Ok(Self { shared })
    }

    /// The tile's compositor pad.
    #[cfg(test)]
    pub(super) fn pad(&self) -> gst::Pad {
        self.shared.pad.clone()
    }

    /// Shows the tile in `rect` (the video fitted inside, aspect kept), or hides it
    /// (`None`). Hiding is immediate; the new size takes effect with the tile's next
    /// frame (within 1/30 s: its `intervideosrc` pushes frames, black ones if need
    /// be, all the time).
    pub(super) fn place(&self, rect: Option<Rect>) {
        if rect.is_none() {
            self.shared.pad.set_property("alpha", 0.0f64);
        }
        if let Ok(mut g) = self.shared.geometry.lock() {
            g.rect = rect;
        }
    }
}

impl Shared {
    /// On the tile's streaming thread, before each frame and each caps event (`video`:
    /// the size and pixel aspect ratio they bring): applies the geometry if it changed,
    /// the scaled size (capsfilter) and the pad's place and alpha.
    ///
    /// Only this thread sets the capsfilter: a layout applied from the media thread
    /// while a caps event was on its way changed the filter under it, the capsfilter
    /// refused the stale caps, and the `intervideosrc` stopped with `not-negotiated`
    /// (`e2e_screen`, about one run in five). Here no caps event can be in flight, and
    /// the reconfigure that setting the filter sends makes `videoconvertscale`
    /// renegotiate before it converts the very frame that follows.
    ///
    /// Before any frame comes through its channel, `intervideosrc` takes its caps from
    /// downstream, i.e. this filter's size: the fit of that size is the same size, so
    /// the loop settles at once; the channel's first frame brings the real caps.
    fn apply(&self, video: Option<VideoSize>) {
        let Ok(mut g) = self.geometry.lock() else {
            return;
        };
        if let Some(v) = video {
            g.video = Some(v);
        }
        if g.applied == Some((g.rect, g.video)) {
            return;
        }
        g.applied = Some((g.rect, g.video));
        let shown = match (g.rect, g.video) {
            (None, _) => None,
            (Some(r), Some((w, h, par))) => Some(screen::fit(w, h, par, &r)),
            (Some(r), None) => Some(r),
        };
        drop(g);
        tracing::debug!(pad = %self.pad.name(), ?shown, ?video, "screen tile");
        match shown {
            Some(r) => {
                self.pad.set_property("xpos", r.x);
                self.pad.set_property("ypos", r.y);
                self.pad.set_property("width", r.w);
                self.pad.set_property("height", r.h);
                self.filter
                    .set_property("caps", caps(self.format, r.w, r.h));
                self.pad.set_property("alpha", 1.0f64);
            }
            None => {
                self.pad.set_property("alpha", 0.0f64);
                self.filter
                    .set_property("caps", caps(self.format, HIDDEN_PX, HIDDEN_PX));
            }
        }
    }
}

/// Raw video in `format`, `w`×`h` px, square pixels, in the composed frames'
/// colorimetry ([`super::screen::COMPOSED_COLORIMETRY`]). Left open,
/// `videoconvertscale` gave the tiles `1:1:16:4` against the screen's sRGB, and the
/// compositor converted every tile's every frame once more ("will be converted from
/// BGRx to BGRx", `GST_DEBUG=videoaggregator:6`): a scaler copying each frame into a
/// newly mapped one in its worker threads, 77 % of the box's page faults in a call.
fn caps(format: &str, w: i32, h: i32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", format)
        .field("width", w)
        .field("height", h)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .field("colorimetry", super::screen::COMPOSED_COLORIMETRY)
        .build()
}
