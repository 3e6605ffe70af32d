//! The call screen: one persistent pipeline on the media thread that composes the
//! current [`Scene`] onto the configured video sink (`kmssink` on the box).
//!
//! ```text
//! videotestsrc (background) ─┐
//! intervideosrc remote-N ────┼─ compositor ─ textoverlay (headline) ─ textoverlay
//! intervideosrc self ────────┘      (bottom line) ─ videoconvert ─ queue ─ <video sink>
//! ```
//!
//! A call's subscriber pipeline ends each remote video in an `intervideosink` with its
//! own channel, the publisher tees the camera into the `self` channel; the screen has
//! one `intervideosrc` tile per channel, built at start and shown or hidden, placed by
//! [`screen::layout`], fitted with the
//! compositor pad's `sizing-policy=keep-aspect-ratio` (letterboxed). Texts are set on
//! the two `textoverlay`s (`auto-resize`: the font scales with the width) once a
//! second. [`Screen::snapshot_png`] encodes the sink's last frame (`last-sample`).
//! On `kmssink` a blank screen also turns the display off (DPMS, [`super::display`]):
//! the `valve` stops frames first, since `kmssink` cannot render to an inactive CRTC.

use std::time::{Duration, Instant};

use gst::prelude::*;

use super::pace::Pace;
use super::tile::Tile;
use super::{MediaError, MediaPlan};
use crate::screen::{self, Scene, ScreenConfig};

/// The `intervideosink`/`intervideosrc` channel of the box's own camera.
pub const SELF_CHANNEL: &str = "callbox-self";
/// The most remote videos the screen shows at once: the hub allows 8 participants in
/// a call, 7 besides the box. A call's subscriber numbers its remote videos into the
/// slots `0..MAX_REMOTE_VIDEOS` ([`remote_channel`]); a video beyond them is received
/// but not shown.
pub const MAX_REMOTE_VIDEOS: usize = 7;

/// The `intervideosink`/`intervideosrc` channel of remote video slot `slot`
/// (`callbox-remote-0` …).
pub fn remote_channel(slot: usize) -> String {
    format!("callbox-remote-{slot}")
}
/// The name of the queue before the screen's sink.
const SCREEN_QUEUE: &str = "screen-queue";
/// Composed frames at most waiting for the sink; older ones are dropped.
const SCREEN_QUEUE_FRAMES: u32 = 2;

/// The pixel format the screen is composed in: 8-bit BGRx, i.e. DRM's XRGB8888, the
/// format of kmssink's usual primary plane, so composed frames go to the display
/// unconverted. No alpha channel: every tile is opaque, and the bands' and a hidden
/// tile's translucency is the compositor pad's `alpha`. An opaque format lets GStreamer
/// 1.22's compositor copy a pad at `alpha` 1 row by row instead of blending each pixel,
/// and skip what a pad above covers (`_pad_obscures_rectangle` counts only pads whose
/// format has no alpha), the black fill under a full-screen background included. BGRA
/// blended each tile pixel by pixel. Left open, videotestsrc's first format won the
/// negotiation (ABGR64_LE, 8 bytes a pixel: 7 MiB a 1280x720 frame, every tile
/// converted to it); a replica of the idle screen used 43 % of a core with it and 17 %
/// with BGRA. I420 (22 %) lost the self-view tile and darkened the text's shading, so
/// not that.
const COMPOSED_FORMAT: &str = "BGRx";

/// The composed frames' colorimetry, the tiles' too: sRGB, what `videotestsrc` (the
/// background) gives RGB and what a display expects. A tile in another colorimetry is
/// converted by the compositor, frame by frame ([`super::tile`]).
pub(super) const COMPOSED_COLORIMETRY: &str = "sRGB";

/// Frames per second of the composed screen while nothing on it moves (no video tile
/// shown: idle, ringing, an audio call, a blank screen), or `screen.framerate` if
/// lower. Its texts change once a second at most, and a banner (the volume bar) shows
/// within 1/10 s. Composing the idle screen at 30 fps cost a box 10 % of a core here
/// for a picture that changes once a minute.
pub const STILL_FRAMERATE: u32 = 10;

/// Background colour (ARGB): a slate blue that no test pattern uses (far from black).
const BACKGROUND: u32 = 0xff28_3060;

/// The composed screen.
pub struct Screen {
    pipeline: super::OwnedPipeline,
    /// The background's compositor pad: alpha 0 blanks the screen (the compositor's
    /// own black background shows). The background `videotestsrc` itself is never
    /// changed while running: GStreamer 1.22's videotestsrc caches a solid-colour
    /// frame and changing `foreground-color` from another thread races with its
    /// streaming thread (`gst_video_frame_map_id: assertion 'GST_IS_BUFFER (buffer)'
    /// failed`, then SIGSEGV in `gst_video_test_src_fill`; seen at start-up in the lab
    /// and once in 18 starts on a loaded host).
    background: gst::Pad,
    header: gst::Element,
    footer: gst::Element,
    sink: gst::Element,
    width: u32,
    height: u32,
    config: ScreenConfig,
    scene: Scene,
    /// When the current call was answered (for the duration shown in a call).
    since: Option<Instant>,
    /// The texts last set, to touch the overlays only on change.
    shown: (String, String),
    /// Shown instead of the scene's bottom line (the volume bar).
    banner: Option<String>,
    /// The call's network quality, under the headline in a call.
    network: Option<super::quality::Quality>,
    /// Translucent dark bands behind the headline and the bottom line in a call, so
    /// the words stay legible over any video: compositor pads of solid black sources.
    bands: [gst::Pad; 2],
    /// One tile per remote video slot ([`remote_channel`]) used so far: made when a
    /// call first needs it and never removed; a tile not in use is hidden (compositor
    /// pad alpha 0, which the compositor skips). Releasing a compositor request pad
    /// while it aggregated was the suspect of a teardown crash (`GLib-GObject-WARNING:
    /// class of invalid type '(null)'`, then the process gone, once in a CI run).
    /// Made lazily because each tile's `intervideosrc` pushes black frames all the
    /// time: a full pool at start doubled the idle screen's CPU (14 → 27 % of a core,
    /// 1280×720, debug build).
    mixer: gst::Element,
    tiles: Vec<Tile>,
    /// The slots shown, in the order of the call's remote videos.
    remotes: Vec<usize>,
    /// The self-view tile ([`SELF_CHANNEL`]), made at the first self-view, then hidden
    /// the same way.
    self_tile: Option<Tile>,
    self_view: bool,
    /// Drops frames before the sink while the display is off.
    valve: gst::Element,
    /// The composed frame rate: `screen.framerate` while a video tile shows, else
    /// [`STILL_FRAMERATE`].
    pace: Pace,
    /// The display's power (`kmssink` only, when the card opened and its connector has
    /// DPMS). Last: `kmssink` renders through its fd until the pipeline stops.
    display: Option<super::display::Display>,
}

/// The connected connector's preferred mode (`/sys/class/drm/card*-*/modes`, first
/// line), e.g. `(1920, 1080)`.
pub fn preferred_mode() -> Option<(u32, u32)> {
    let dir = std::fs::read_dir("/sys/class/drm").ok()?;
    let mut connectors: Vec<_> = dir.flatten().map(|e| e.path()).collect();
    connectors.sort();
    connectors.into_iter().find_map(|c| {
        let status = std::fs::read_to_string(c.join("status")).ok()?;
        if status.trim() != "connected" {
            return None;
        }
        let modes = std::fs::read_to_string(c.join("modes")).ok()?;
        parse_mode(modes.lines().next()?)
    })
}

/// `1920x1080` (or `1920x1080i`) → `(1920, 1080)`.
pub fn parse_mode(mode: &str) -> Option<(u32, u32)> {
    let (w, h) = mode.trim().split_once('x')?;
    let h: String = h.chars().take_while(char::is_ascii_digit).collect();
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The composed size for `config` and `video_sink`: the configured size, else the
/// connector's preferred mode with `kmssink`, else 1280×720.
pub fn composed_size(config: &ScreenConfig, video_sink: &str) -> (u32, u32) {
    if config.width > 0 && config.height > 0 {
        return (config.width, config.height);
    }
    if video_sink == "kmssink"
        && let Some(mode) = preferred_mode()
    {
        return mode;
    }
    (1280, 720)
}

/// Makes a `factory` element for the screen; [`MediaError::Build`] if it is missing.
pub(super) fn make(factory: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| MediaError::Build {
            which: "screen",
            detail: format!("element {factory}: {e}"),
        })
}

/// A [`MediaError::Build`] of the screen pipeline.
pub(super) fn build_err(e: impl std::fmt::Display) -> MediaError {
    MediaError::Build {
        which: "screen",
        detail: e.to_string(),
    }
}

impl Screen {
    /// Builds the screen on `plan`'s video sink and starts it on the idle `scene`.
    ///
    /// Errors: [`MediaError::Build`] (an element is missing), [`MediaError::StateChange`]
    /// (the sink cannot open the display).
    pub fn start(
        plan: &MediaPlan,
        config: &ScreenConfig,
        scene: Scene,
    ) -> Result<Self, MediaError> {
        let (width, height) = composed_size(config, plan.video_sink);
        let pipeline = gst::Pipeline::with_name("screen");
        let background = still_source(BACKGROUND)?;
        let framerate = config.framerate.max(1);
        let caps = composed_caps(width, height, framerate);
        let bg_caps = make("capsfilter")?;
        bg_caps.set_property("caps", &caps);
        let mixer = make("compositor")?;
        mixer.set_property_from_str("background", "black");
        let out_caps = make("capsfilter")?;
        // The output's rate is fixed here: left open, the compositor takes the highest
        // rate of its inputs (the tiles' intervideosrc run at 30 fps) and ignored
        // `screen.framerate`. The screen starts still ([`Pace`]).
        let pace = Pace::new(out_caps.clone(), width, height, framerate);
        out_caps.set_property("caps", pace.caps());
        let mixer_src = mixer
            .static_pad("src")
            .ok_or_else(|| build_err("the compositor has no src pad"))?;
        pace.apply_on(&mixer_src);
        let header = make("textoverlay")?;
        let footer = make("textoverlay")?;
        for t in [&header, &footer] {
            t.set_property("shaded-background", true);
            t.set_property("auto-resize", true);
            t.set_property_from_str("wrap-mode", "word");
        }
        footer.set_property_from_str("valignment", "bottom");
        footer.set_property_from_str("halignment", "center");
        footer.set_property("font-desc", "Sans 13");
        let convert = make("videoconvert")?;
        // The display takes the newest frame: a sink that falls behind (a busy CPU, a
        // slow display) drops the oldest queued frames instead of piling up a second's
        // worth (GStreamer's default: 200 buffers or 1 s). Each queued frame is taken
        // from a buffer pool that keeps it for good: a 1280x720 BGRx frame is 3.5 MiB,
        // and the soak saw the box's memory step up by one now and then.
        let queue = make("queue")?;
        queue.set_property("name", SCREEN_QUEUE);
        queue.set_property("max-size-buffers", SCREEN_QUEUE_FRAMES);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        queue.set_property_from_str("leaky", "downstream");
        let valve = make("valve")?;
        let sink = make(plan.video_sink)?;
        let mut display = None;
        if plan.video_sink == "kmssink" {
            match super::display::Display::open(&plan.config.kms_driver) {
                Ok(d) => {
                    // Instead of `driver-name`: kmssink ignores an fd once a driver is set.
                    sink.set_property("fd", d.raw_fd());
                    display = Some(d);
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    "the display cannot be turned off when the screen blanks (it shows black)"
                ),
            }
        }
        if display.is_none() {
            super::pipeline::SinkSettings::from_config(&plan.config).apply(&sink);
        }
        // The sink shows each composed frame as soon as it comes. The compositor is
        // live and composes each frame at its time, so the frames come paced, and
        // each video was already synchronised with the call's sound in its own
        // pipeline (the `intervideosink`). A sink that synchronised again (kmssink's
        // default) held each frame the screen pipeline's latency more, one frame of
        // its sources and the compositor plus its deadline, 87 ms at 30 fps and 253
        // ms with the 5 fps bands of before: a picture behind the voice. And with
        // [`SCREEN_QUEUE_FRAMES`] queued at most, frames waiting that long were
        // dropped: 8 of 30 a second reached a synchronising fakesink in
        // `a_remote_video_reaches_the_compositor_at_its_shown_size`.
        if sink.find_property("sync").is_some() {
            sink.set_property("sync", false);
        }
        if sink.find_property("enable-last-sample").is_some() {
            sink.set_property("enable-last-sample", true);
        }
        let chain = [
            &background,
            &bg_caps,
            &mixer,
            &out_caps,
            &header,
            &footer,
            &convert,
            &queue,
            &valve,
            &sink,
        ];
        pipeline.add_many(chain).map_err(build_err)?;
        gst::Element::link_many(chain).map_err(build_err)?;
        let [top, bottom] = band_rects(width, height);
        let bands = [
            add_band(&pipeline, &mixer, &top, framerate)?,
            add_band(&pipeline, &mixer, &bottom, framerate)?,
        ];
        add_pacer(&pipeline, &mixer, framerate)?;
        let background = bg_caps
            .static_pad("src")
            .and_then(|p| p.peer())
            .ok_or_else(|| build_err("the background has no compositor pad"))?;
        background.set_property("repeat-after-eos", true);
        let mut screen = Self {
            bands,
            pipeline: super::OwnedPipeline::new(pipeline),
            background,
            header,
            footer,
            sink,
            width,
            height,
            config: config.clone(),
            scene: scene.clone(),
            since: None,
            shown: (String::from("\u{0}"), String::new()),
            banner: None,
            network: None,
            mixer,
            tiles: Vec::new(),
            remotes: Vec::new(),
            self_tile: None,
            self_view: false,
            valve,
            display,
            pace,
        };
        screen.show(scene, None, None);
        if let Err(e) = screen.pipeline.set_state(gst::State::Playing) {
            let detail =
                super::pipeline::first_error(&screen.pipeline).unwrap_or_else(|| e.to_string());
            let _ = screen.pipeline.set_state(gst::State::Null);
            return Err(MediaError::StateChange {
                which: "screen",
                detail,
            });
        }
        if let Some(d) = screen.display.as_mut() {
            let chosen = screen.sink.property::<i32>("connector-id");
            match d.attach(chosen) {
                Ok(connector) => tracing::info!(
                    card = %d.path().display(), connector,
                    "the display turns off (DPMS) when the screen blanks"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "the display cannot be turned off when the screen blanks (it shows black)");
                    screen.display = None;
                }
            }
        }
        tracing::info!(width, height, sink = plan.video_sink, "call screen on");
        Ok(screen)
    }

    /// The composed size, px.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Shows `scene`; `since`: when the current call was answered; `banner`: a line
    /// shown instead of the scene's bottom line (the volume bar).
    pub fn show(&mut self, scene: Scene, since: Option<Instant>, banner: Option<String>) {
        self.banner = banner;
        let blank = matches!(scene, Scene::Blank);
        if !blank {
            self.set_display(true);
        }
        self.background
            .set_property("alpha", if blank { 0.0 } else { 1.0 });
        self.scene = scene;
        self.since = since;
        if !self.scene.shows_video() {
            self.set_remotes(&[]);
        }
        self.set_self_view(self.config.self_view && self.scene.shows_self_view());
        self.style();
        self.tick();
        if blank {
            self.set_display(false);
        }
        self.pace.mark_change();
    }

    /// Display power (DPMS) where there is a [`super::display::Display`]; otherwise
    /// a blank screen is a black picture. Off: the valve drops frames, then (once the
    /// sink's streaming thread has left its render: its stream lock) DPMS off. On: DPMS
    /// on, then frames again.
    fn set_display(&mut self, on: bool) {
        let Some(display) = self.display.as_mut() else {
            return;
        };
        if display.is_on() == on {
            return;
        }
        if !on {
            self.valve.set_property("drop", true);
            if let Some(pad) = self.sink.static_pad("sink") {
                drop(pad.stream_lock());
            }
        }
        match display.set_power(on) {
            Ok(()) => tracing::info!(on, "display power (DPMS)"),
            Err(e) => tracing::warn!(error = %e, on, "cannot set the display's power"),
        }
        if display.is_on() {
            self.valve.set_property("drop", false);
        }
    }

    /// Over video (a call with at least one remote video): a small headline top left
    /// and translucent bands behind the texts. Otherwise (idle, ringing, an audio call,
    /// a caller without a camera): the headline large in the middle of the background,
    /// so the caller's name shows instead of a black screen.
    fn style(&self) {
        let over_video = self.scene.shows_video() && !self.remotes.is_empty();
        let (valign, halign, font) = if over_video {
            ("top", "left", "Sans Bold 16")
        } else {
            ("center", "center", "Sans Bold 26")
        };
        self.header.set_property_from_str("valignment", valign);
        self.header.set_property_from_str("halignment", halign);
        self.header.set_property_from_str("line-alignment", halign);
        self.header.set_property("font-desc", font);
        let alpha = if over_video { BAND_ALPHA } else { 0.0 };
        for band in &self.bands {
            band.set_property("alpha", alpha);
        }
    }

    /// The call's network quality for the indicator (`None`: not known / no call).
    pub fn set_network(&mut self, quality: Option<super::quality::Quality>) {
        if self.network != quality {
            self.network = quality;
            self.tick();
        }
    }

    /// Updates the texts (clock, call duration); call about once a second.
    pub fn tick(&mut self) {
        let scene = match (&self.scene, self.since) {
            (Scene::InCall { .. }, Some(since)) => {
                let mut s = self.scene.clone();
                if let Scene::InCall { elapsed, .. } = &mut s {
                    *elapsed = since.elapsed();
                }
                s
            }
            _ => self.scene.clone(),
        };
        let clock = chrono::Local::now().format("%H:%M").to_string();
        let mut texts = scene.texts(&clock);
        if let Some(b) = &self.banner {
            texts.1 = b.clone();
        }
        if let (Scene::InCall { .. }, Some(q)) = (&scene, self.network) {
            texts.0 = format!("{}\n{}", texts.0, q.label());
        }
        if texts != self.shown {
            self.header.set_property("text", &texts.0);
            self.footer.set_property("text", &texts.1);
            self.header.set_property("silent", texts.0.is_empty());
            self.footer.set_property("silent", texts.1.is_empty());
            self.shown = texts;
        }
    }

    /// Shows one tile per remote video channel (`intervideosink channel=`, see
    /// [`remote_channel`]), in order; the others are hidden. Only in a call: other
    /// scenes show no remote video. A channel outside the pool is not shown.
    pub fn set_remotes(&mut self, channels: &[String]) {
        let slots: Vec<usize> = if self.scene.shows_video() {
            channels
                .iter()
                .filter_map(|c| (0..MAX_REMOTE_VIDEOS).find(|&s| remote_channel(s) == *c))
                .collect()
        } else {
            Vec::new()
        };
        if slots == self.remotes {
            return;
        }
        let needed = slots.iter().max().map_or(0, |m| m + 1);
        while self.tiles.len() < needed {
            let channel = remote_channel(self.tiles.len());
            match Tile::add(&self.pipeline, &self.mixer, &channel, 1, COMPOSED_FORMAT) {
                Ok(tile) => self.tiles.push(tile),
                Err(e) => {
                    tracing::error!(channel, error = %e, "cannot show a remote video");
                    break;
                }
            }
        }
        let slots: Vec<usize> = slots
            .into_iter()
            .filter(|&s| s < self.tiles.len())
            .collect();
        self.remotes = slots;
        self.place();
        self.style();
        tracing::info!(remote_videos = self.remotes.len(), "screen layout");
    }

    fn set_self_view(&mut self, on: bool) {
        if on && self.self_tile.is_none() {
            match Tile::add(
                &self.pipeline,
                &self.mixer,
                SELF_CHANNEL,
                2,
                COMPOSED_FORMAT,
            ) {
                Ok(tile) => self.self_tile = Some(tile),
                Err(e) => tracing::error!(error = %e, "cannot show the self-view"),
            }
        }
        self.self_view = on && self.self_tile.is_some();
        self.place();
    }

    fn place(&self) {
        let corner = self.self_view.then_some(self.config.self_view_corner);
        let layout = screen::layout(self.remotes.len(), self.width, self.height, corner);
        let bands = band_rects(self.width, self.height);
        for (pad, rect) in self.bands.iter().zip(&bands) {
            set_rect(pad, rect);
        }
        for (slot, tile) in self.tiles.iter().enumerate() {
            let at = self.remotes.iter().position(|&s| s == slot);
            tile.place(at.and_then(|i| layout.remotes.get(i).copied()));
        }
        if let Some(tile) = &self.self_tile {
            tile.place(layout.self_view.filter(|_| self.self_view));
        }
        self.pace
            .set_moving(!self.remotes.is_empty() || self.self_view);
    }

    /// The last composed frame as a PNG file's bytes: the first frame composed after
    /// the last scene change (waits up to [`SNAPSHOT_WAIT`] for it), so a snapshot
    /// taken right after a state change shows the new state.
    ///
    /// Errors: the sink has shown no frame yet, or PNG encoding (`pngenc`) failed.
    pub fn snapshot_png(&self) -> Result<Vec<u8>, String> {
        let deadline = Instant::now() + SNAPSHOT_WAIT;
        let sample = loop {
            let sample = self.sink.property::<Option<gst::Sample>>("last-sample");
            let fresh = match (&sample, self.pace.first_after_change()) {
                (Some(s), Some(first)) => {
                    s.buffer().and_then(|b| b.pts()).is_some_and(|t| t >= first)
                }
                (Some(_), None) => false,
                (None, _) => false,
            };
            if fresh || Instant::now() >= deadline {
                break sample.ok_or("the screen has not shown a frame yet")?;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let png = gst_video::convert_sample(
            &sample,
            &gst::Caps::builder("image/png").build(),
            Some(gst::ClockTime::from_seconds(5)),
        )
        .map_err(|e| format!("encoding the frame as PNG: {e}"))?;
        let buffer = png.buffer().ok_or("the PNG sample has no buffer")?;
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        Ok(map.as_slice().to_vec())
    }

    /// Drains the bus; returns the first error, for the log. A LATENCY message (the
    /// compositor's latency is one frame at the composed rate, so it changes with the
    /// [`Pace`]) makes the pipeline redistribute its latency, as the call pipelines do.
    pub fn poll(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        let mut first = None;
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Latency(_) = msg.view() {
                let _ = self.pipeline.recalculate_latency();
                let mut q = gst::query::Latency::new();
                if self.pipeline.query(&mut q) {
                    let (_, min, _) = q.result();
                    tracing::debug!(min_ms = min.mseconds(), "screen latency");
                }
            }
            if let gst::MessageView::Error(err) = msg.view() {
                let e = format!(
                    "{}: {} ({})",
                    msg.src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    err.error(),
                    err.debug().map(|d| d.to_string()).unwrap_or_default()
                );
                first.get_or_insert(e);
            }
        }
        first
    }

    /// Stops the screen (the display goes dark; a display turned off is turned back
    /// on, for the console or the next start).
    pub fn stop(mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(d) = self.display.as_mut() {
            let _ = d.set_power(true);
        }
    }
}

/// Opacity of the bands behind the texts in a call (0–1).
const BAND_ALPHA: f64 = 0.6;

/// The bands behind the texts on a `w`×`h` screen: the headline's (two lines: the
/// caller and the duration, the network indicator) and the bottom line's.
fn band_rects(w: u32, h: u32) -> [screen::Rect; 2] {
    let (w, h) = (w as i32, h as i32);
    [
        screen::Rect {
            x: 0,
            y: 0,
            w,
            h: h / 4,
        },
        screen::Rect {
            x: 0,
            y: h - h / 10,
            w,
            h: h / 10,
        },
    ]
}

/// A solid black source on its own compositor pad, above the videos, transparent until
/// [`Screen::show`] sets its alpha. Made at the band's size (`rect`), so the compositor
/// blends it as it is: a 16x16 source scaled up by the compositor cost a conversion
/// into a newly mapped frame for each band in every composed frame (in a
/// `gst-launch-1.0` replica of the screen, ~1.4 ms a composed frame at 1280x720 for the
/// two, ~4 % of a core at 30 fps).
/// The composed frames' caps: [`COMPOSED_FORMAT`], `w`×`h` px at `fps`.
pub(super) fn composed_caps(w: u32, h: u32, fps: u32) -> gst::Caps {
    gst::Caps::builder("video/x-raw")
        .field("format", COMPOSED_FORMAT)
        .field("colorimetry", COMPOSED_COLORIMETRY)
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(fps as i32, 1))
        .build()
}

/// Adds the compositor's pacer: a live 16x16 source at `fps`, never shown (pad alpha 0,
/// which the compositor skips). With every pad at EOS (the background and the bands
/// drawn once, no tile) GStreamer 1.22's live compositor stopped waiting for the clock
/// and composed frames as fast as it could; a live pad makes it compose each frame at
/// its time, and its one frame of latency is the compositor's, as the bands' was.
fn add_pacer(pipeline: &gst::Pipeline, mixer: &gst::Element, fps: u32) -> Result<(), MediaError> {
    let src = make("videotestsrc")?;
    src.set_property("is-live", true);
    src.set_property_from_str("pattern", "black");
    let pad = add_source(pipeline, mixer, &src, 16, 16, fps)?;
    pad.set_property("alpha", 0.0f64);
    Ok(())
}

/// Adds `src` to `pipeline` as `width`x`height` [`COMPOSED_FORMAT`] at `fps`, linked
/// to a new `mixer` pad, which it returns.
fn add_source(
    pipeline: &gst::Pipeline,
    mixer: &gst::Element,
    src: &gst::Element,
    width: i32,
    height: i32,
    fps: u32,
) -> Result<gst::Pad, MediaError> {
    let caps = make("capsfilter")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", COMPOSED_FORMAT)
            .field("width", width.max(1))
            .field("height", height.max(1))
            .field("framerate", gst::Fraction::new(fps as i32, 1))
            .build(),
    );
    pipeline.add_many([src, &caps]).map_err(build_err)?;
    src.link(&caps).map_err(build_err)?;
    let pad = mixer
        .request_pad_simple("sink_%u")
        .ok_or_else(|| build_err("compositor gave no sink pad"))?;
    caps.static_pad("src")
        .expect("capsfilter has a src pad")
        .link(&pad)
        .map_err(|e| build_err(format!("linking {} to the compositor: {e:?}", src.name())))?;
    Ok(pad)
}

/// A solid `argb` picture drawn once: a live `videotestsrc` that sends one frame and
/// then EOS, for a compositor pad with `repeat-after-eos` (GstVideoAggregatorPad, since
/// GStreamer 1.16), which composes that frame into every output frame. For the
/// background and the bands: a live pad must stay to pace the compositor
/// ([`add_pacer`]).
///
/// The background drawn into a new 1280x720 frame 30 times a second kept ~5 frames
/// (17.6 MiB) of the box's memory in a 640x480 call (`scripts/rss-by-site.py`) and
/// cost a copy of each. In a `gst-launch-1.0` replica (that background and one moving
/// 320x240 tile, 10 s) drawing it once took the process from 39 to 28 MiB and from 63
/// to 44 CPU ticks. The frame's rate in its caps still sets the source's latency (one
/// frame), as before.
fn still_source(argb: u32) -> Result<gst::Element, MediaError> {
    let src = make("videotestsrc")?;
    src.set_property("is-live", true);
    src.set_property_from_str("pattern", "solid-color");
    src.set_property("foreground-color", argb);
    src.set_property("num-buffers", 1i32);
    Ok(src)
}

/// Adds a band (a solid black picture at `fps`, drawn once: [`still_source`], hidden)
/// on a new `mixer` pad.
///
/// `fps` is the screen's own rate (`screen.framerate`), not less: a live source's
/// latency is one of its frames, and the compositor's is its sources' largest. At 5 fps
/// (what the bands ran at before) the screen pipeline's latency was 253 ms instead of
/// 87 ms at 30 fps (`GST_DEBUG=bin:5`, "configured latency"): what a synchronising sink
/// held each frame, and how long the live compositor waits for a late tile.
fn add_band(
    pipeline: &gst::Pipeline,
    mixer: &gst::Element,
    rect: &screen::Rect,
    fps: u32,
) -> Result<gst::Pad, MediaError> {
    let src = still_source(0xff00_0000)?;
    let pad = add_source(pipeline, mixer, &src, rect.w, rect.h, fps)?;
    pad.set_property("zorder", 3u32);
    pad.set_property("alpha", 0.0f64);
    pad.set_property("repeat-after-eos", true);
    Ok(pad)
}

/// How long a snapshot waits for a frame composed after the last scene change.
pub const SNAPSHOT_WAIT: Duration = Duration::from_secs(1);

fn set_rect(pad: &gst::Pad, r: &screen::Rect) {
    pad.set_property("xpos", r.x);
    pad.set_property("ypos", r.y);
    pad.set_property("width", r.w);
    pad.set_property("height", r.h);
}

/// How long the media thread waits between screen ticks.
pub const TICK: Duration = Duration::from_millis(500);

#[cfg(test)]
#[path = "screen_tests.rs"]
mod tests;
