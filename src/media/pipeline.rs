//! One call's two pipelines: camera + microphone → `livekitwebrtcsink` (publisher
//! identity), and `livekitwebrtcsrc` (hidden subscriber identity) → decode → screen and
//! speaker. Used only from the media thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use callbox_protocol::JoinInfo;
use gst::glib;
use gst::prelude::*;

use super::audio;
use super::codecs::{self, TrackCodecSource};
use super::nested;
use super::{Counters, MediaError, MediaEvent, MediaPlan, SourceKind};

/// A running call's media.
pub struct Session {
    call_id: String,
    publish: super::OwnedPipeline,
    subscribe: super::OwnedPipeline,
    /// Set by `livekitwebrtcsink`'s `consumer-added`: the SFU session exists.
    joined: Arc<AtomicBool>,
    /// The remote videos playing, in the order they appeared: (the source pad's name,
    /// its `intervideosink` channel); the screen shows one tile each.
    remote_channels: RemoteVideos,
    started_reported: bool,
    failed: bool,
    /// What the call's statistics say about the network.
    meter: super::quality::Meter,
}

/// The remote videos of a call: (source pad name, channel), oldest first.
type RemoteVideos = Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// The first remote video slot ([`super::screen::remote_channel`]) not in `list`; past
/// the screen's pool, a channel no tile shows.
fn free_channel(list: &[(String, String)]) -> String {
    (0..)
        .map(super::screen::remote_channel)
        .find(|c| !list.iter().any(|(_, used)| used == c))
        .expect("an unbounded range has a free slot")
}

fn build_err(which: &'static str) -> impl Fn(glib::BoolError) -> MediaError {
    move |e| MediaError::Build {
        which,
        detail: e.to_string(),
    }
}

pub(super) fn make(factory: &str, which: &'static str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| MediaError::Build {
            which,
            detail: format!("element {factory}: {e}"),
        })
}

/// Counts buffers passing `pad` into the counter `pick` selects.
fn probe_count(pad: &gst::Pad, counters: &Arc<Counters>, pick: fn(&Counters) -> &AtomicU64) {
    let counters = counters.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        super::guarded("count-probe", gst::PadProbeReturn::Ok, || {
            let before = pick(&counters).fetch_add(1, Ordering::Relaxed);
            if before == 0 && std::ptr::eq(pick(&counters), &counters.video_frames_received) {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                counters
                    .first_video_received_unix_ms
                    .store(now, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        })
    });
}

/// How a call's media starts.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions {
    /// The microphone starts muted.
    pub mic_muted: bool,
    /// Publish the camera (a video call); an audio call never opens it.
    pub video: bool,
    /// The software speaker volume, 0.0–1.0 (1.0 when an ALSA mixer does it).
    pub speaker_gain: f64,
}

impl Session {
    /// Builds both pipelines and sets them to PLAYING. `video`: publish the camera; an
    /// audio-only call (`false`) never opens it. `track_codecs` tells the subscriber
    /// which codec each offered video track is sent in (see [`codecs`]).
    pub fn start(
        plan: &MediaPlan,
        call_id: &str,
        join: &JoinInfo,
        options: CallOptions,
        counters: Arc<Counters>,
        track_codecs: Arc<dyn TrackCodecSource>,
    ) -> Result<Self, MediaError> {
        let CallOptions {
            mic_muted,
            video,
            speaker_gain,
        } = options;
        let (Some(publisher), Some(subscriber)) = (&join.publisher, &join.subscriber) else {
            return Err(MediaError::NoDeviceTokens {
                call_id: call_id.to_owned(),
            });
        };
        let joined = Arc::new(AtomicBool::new(false));
        let remote_channels = Arc::new(std::sync::Mutex::new(Vec::new()));
        // The subscriber first: it holds the echo canceller's probe, which the
        // publisher's `webrtcdsp` looks up by name (media::audio).
        let subscribe = super::OwnedPipeline::new(build_subscriber(
            plan,
            call_id,
            (&join.url, &subscriber.token),
            &publisher.identity,
            (&counters, &remote_channels),
            track_codecs,
        )?);
        let publish = super::OwnedPipeline::new(build_publisher(
            plan,
            &join.url,
            &publisher.token,
            video,
            &counters,
            &joined,
        )?);
        let session = Self {
            call_id: call_id.to_owned(),
            publish,
            subscribe,
            joined,
            remote_channels,
            started_reported: false,
            failed: false,
            meter: Default::default(),
        };
        session.set_mic_muted(mic_muted);
        session.set_speaker_gain(speaker_gain);
        // One clock and one base time for both pipelines: the echo canceller compares
        // the running times of the speaker's buffers (the probe, in the subscriber)
        // with the microphone's (in the publisher).
        let clock = gst::SystemClock::obtain();
        let base_time = clock.time();
        for p in [&session.publish, &session.subscribe] {
            p.use_clock(Some(&clock));
            p.set_start_time(gst::ClockTime::NONE);
            p.set_base_time(base_time);
        }
        for which in ["publish", "subscribe"] {
            let p = if which == "publish" {
                &session.publish
            } else {
                &session.subscribe
            };
            if let Err(e) = p.set_state(gst::State::Playing) {
                let detail = first_error(p).unwrap_or_else(|| e.to_string());
                session.stop();
                return Err(MediaError::StateChange { which, detail });
            }
        }
        tracing::info!(
            call_id,
            room = %join.room_name,
            publisher = %publisher.identity,
            subscriber = %subscriber.identity,
            camera = video,
            "media starting"
        );
        Ok(session)
    }

    /// Mutes or unmutes the published microphone (the `mic-volume` element): silence
    /// keeps flowing, so the track stays up and unmuting is instant.
    pub fn set_mic_muted(&self, muted: bool) {
        if let Some(v) = self.publish.by_name("mic-volume") {
            v.set_property("mute", muted);
            tracing::info!(call_id = %self.call_id, muted, "microphone");
        }
    }

    /// Sets the software speaker volume (the speaker path's `volume` element), 0.0–1.0.
    pub fn set_speaker_gain(&self, gain: f64) {
        if let Some(v) = self.subscribe.by_name(super::audio::SPEAKER_VOLUME) {
            v.set_property("volume", gain.clamp(0.0, 1.0));
        }
    }

    /// Drains both buses; returns at most one `Started` and one `Failed` per session.
    pub fn poll(&mut self) -> Vec<MediaEvent> {
        let mut out = Vec::new();
        for (which, p) in [("publish", &self.publish), ("subscribe", &self.subscribe)] {
            let Some(bus) = p.bus() else { continue };
            while let Some(msg) = bus.pop() {
                match msg.view() {
                    gst::MessageView::Error(err) => {
                        let src = msg
                            .src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default();
                        let error = format!(
                            "{which} pipeline: {src}: {} ({})",
                            err.error(),
                            err.debug().map(|d| d.to_string()).unwrap_or_default()
                        );
                        tracing::error!(call_id = %self.call_id, %error, "media error");
                        if !self.failed {
                            self.failed = true;
                            out.push(MediaEvent::Failed {
                                call_id: self.call_id.clone(),
                                error,
                            });
                        }
                    }
                    gst::MessageView::Warning(w) => {
                        tracing::warn!(call_id = %self.call_id, pipeline = which, warning = %w.error(), "media warning");
                    }
                    // An element's latency changed (a remote track's jitter buffer and
                    // decoder joined, an encoder started): the application redistributes
                    // it (GstBin docs, gst_bin_recalculate_latency), as gst-launch does.
                    // Without it the sinks keep the latency of the PLAYING transition.
                    gst::MessageView::Latency(_) => {
                        let _ = p.recalculate_latency();
                        let mut q = gst::query::Latency::new();
                        if p.query(&mut q) {
                            let (live, min, max) = q.result();
                            tracing::debug!(
                                call_id = %self.call_id,
                                pipeline = which,
                                live,
                                min_ms = min.mseconds(),
                                max_ms = max.map(|m| m.mseconds()),
                                "pipeline latency"
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        if !self.started_reported && !self.failed && self.joined.load(Ordering::Acquire) {
            self.started_reported = true;
            tracing::info!(call_id = %self.call_id, "media up: publishing to the room");
            out.push(MediaEvent::Started {
                call_id: self.call_id.clone(),
            });
        }
        out
    }

    /// The network since the last call of this (every [`INTERVAL`]); `None` until a
    /// remote track has been received for two samples.
    ///
    /// [`INTERVAL`]: super::quality::INTERVAL
    pub fn sample_network(&mut self) -> Option<super::quality::Link> {
        let t0 = std::time::Instant::now();
        let reading = super::stats::sample(&self.publish, &self.subscribe)?;
        let cost_us = t0.elapsed().as_micros() as u64;
        let link = self.meter.update(std::time::Instant::now(), reading)?;
        tracing::debug!(
            call_id = %self.call_id,
            quality = ?link.quality,
            receive_loss_pct = link.receive_loss_pct,
            send_loss_pct = link.send_loss_pct,
            rtt_ms = link.rtt_ms,
            jitter_ms = link.jitter_ms,
            send_kbps = link.send_kbps,
            cost_us,
            "network"
        );
        Some(link)
    }

    /// The `intervideosink` channels of the remote videos playing, oldest first.
    pub fn remote_channels(&self) -> Vec<String> {
        self.remote_channels
            .lock()
            .map(|l| l.iter().map(|(_, c)| c.clone()).collect())
            .unwrap_or_default()
    }

    /// Sets both pipelines to NULL (leaves the room).
    pub fn stop(self) {
        for p in [&self.publish, &self.subscribe] {
            let _ = p.set_state(gst::State::Null);
        }
    }
}

/// The first error message waiting on `p`'s bus, with its debug detail.
pub(super) fn first_error(p: &gst::Pipeline) -> Option<String> {
    let bus = p.bus()?;
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(format!(
                "{} ({})",
                err.error(),
                err.debug().map(|d| d.to_string()).unwrap_or_default()
            ));
        }
    }
    None
}

/// The publisher's congestion control: webrtcsink's own controller (`homegrown`,
/// gst-plugins-rs 0.15 `webrtcsink/homegrown_cc.rs`), which reads the SFU's transport-wide
/// congestion control feedback (TWCC: loss, sent against received bitrate, the growth of
/// inter-arrival delays) and sets the encoder's bitrate between
/// [`MIN_VIDEO_BITRATE_KBPS`] and `max_kbps`. webrtcsink's mitigation modes go with the
/// rate (`default_configure_mitigation_mode`): under 2000 kbit/s at most 720 lines,
/// under 1000 kbit/s 360 lines, under 500 kbit/s half the frame rate. A call starts at
/// [`START_VIDEO_BITRATE_KBPS`], or `max_kbps` if lower.
///
/// webrtcsink's default, `gcc`, needs `rtpgccbwe` (gst-plugin-rtp), which the box does not
/// build: without it webrtcsink did no congestion control and left a software encoder at
/// its 2048 kbit/s start bitrate whatever `max-bitrate` said. A hardware encoder whose
/// bitrate webrtcsink cannot set (`v4l2h264enc`) gets no TWCC and keeps the bitrate
/// `media::encoder` gives it.
pub(super) fn rate_control(sink: &gst::Element, max_kbps: u32) {
    let max = max_kbps.saturating_mul(1000);
    sink.set_property_from_str("congestion-control", "homegrown");
    sink.set_property("min-bitrate", MIN_VIDEO_BITRATE_KBPS.min(max_kbps) * 1000);
    sink.set_property("max-bitrate", max);
    sink.set_property("start-bitrate", (START_VIDEO_BITRATE_KBPS * 1000).min(max));
}

/// The lowest video bitrate congestion control goes down to, kbit/s: below it a
/// 320x240 picture is mush (webrtcsink's own floor is 1).
pub const MIN_VIDEO_BITRATE_KBPS: u32 = 100;
/// The video bitrate a call starts at, kbit/s (at most `media.max_video_bitrate_kbps`);
/// congestion control moves it from there. Above 1000, where webrtcsink scales the
/// picture down to 360 lines, so that the first small step down does not.
pub const START_VIDEO_BITRATE_KBPS: u32 = 1200;

fn build_publisher(
    plan: &MediaPlan,
    url: &str,
    token: &str,
    video: bool,
    counters: &Arc<Counters>,
    joined: &Arc<AtomicBool>,
) -> Result<gst::Pipeline, MediaError> {
    const W: &str = "publish";
    let cfg = &plan.config;
    let pipeline = gst::Pipeline::with_name("publish");
    let sink = make("livekitwebrtcsink", W)?;
    let signaller = sink.property::<glib::Object>("signaller");
    signaller.set_property("ws-url", url);
    signaller.set_property("auth-token", token);
    nested::set_ice_servers(&sink, plan);
    nested::hand_off_without_deadline(&sink);
    sink.set_property("video-caps", gst::Caps::builder("video/x-h264").build());
    sink.set_property("audio-caps", gst::Caps::builder("audio/x-opus").build());
    rate_control(&sink, cfg.max_video_bitrate_kbps);
    // webrtcsink runs each session's webrtcbin in a pipeline of its own; it announces
    // it here, in READY, before negotiating.
    let flag = joined.clone();
    let addresses = plan.config.ice_local_addresses.clone();
    sink.connect("consumer-added", false, move |args| {
        super::guarded("consumer-added", None, || {
            if let Some(webrtcbin) = args.get(2).and_then(|v| v.get::<gst::Element>().ok()) {
                nested::add_local_addresses(&webrtcbin, &addresses);
                nested::pace_ice_checks_inside(&webrtcbin);
            }
            flag.store(true, Ordering::Release);
            None
        })
    });
    // webrtcsink builds the encoder itself (by rank; media.hardware_encoder raises one):
    // note which, for `callbox status` and the log. `false`: its own set-up still runs.
    // Set up the board's encoder (media::encoder) where webrtcsink cannot.
    let seen = counters.clone();
    let enc_plan = plan.encoder();
    sink.connect("encoder-setup", false, move |args| {
        super::guarded("encoder-setup", Some(false.to_value()), || {
            let consumer = args.get(1).and_then(|v| v.get::<String>().ok());
            let Some(encoder) = args.get(3).and_then(|v| v.get::<gst::Element>().ok()) else {
                return Some(false.to_value());
            };
            let name = encoder
                .factory()
                .map(|f| f.name().to_string())
                .unwrap_or_default();
            let ours = enc_plan.element.as_deref() == Some(name.as_str());
            if ours {
                for (property, value) in &enc_plan.properties {
                    if encoder.find_property(property).is_some() {
                        encoder.set_property_from_str(property, value);
                    }
                }
            }
            if consumer.as_deref() != Some("discovery")
                && (name.contains("264") || name.contains("vp8"))
            {
                tracing::info!(encoder = %name, "video encoder");
                if let Ok(mut e) = seen.video_encoder.lock() {
                    *e = Some(name);
                }
                if let Ok(mut list) = seen.video_encoders.lock() {
                    list.retain(|e| e.upgrade().is_some());
                    list.push(encoder.downgrade());
                }
                super::keyframe_start::add_start_keyframes(&encoder);
            }
            Some((ours && enc_plan.complete).to_value())
        })
    });
    pipeline.add(&sink).map_err(build_err(W))?;

    if video {
        add_camera(&pipeline, &sink, plan, counters)?;
    }

    // Audio: source → [`audio::add_microphone`] (48 kHz mono, echo cancellation and
    // noise suppression, the mute volume) → sink.audio_%u
    let asrc = match &plan.audio_source {
        SourceKind::Device(dev) => {
            let e = make("alsasrc", W)?;
            e.set_property("device", dev);
            e
        }
        // Never an audio source: resolved for video only.
        SourceKind::Test | SourceKind::Libcamera => {
            let e = make("audiotestsrc", W)?;
            e.set_property("is-live", true);
            e.set_property("freq", 523.25f64);
            e.set_property("volume", 0.3f64);
            e
        }
    };
    let audio_plan = audio::AudioPlan::new(cfg, plan.audio_source == SourceKind::Test);
    let mic_out = audio::add_microphone(&pipeline, asrc, &audio_plan)?;
    let apad = sink
        .request_pad_simple("audio_%u")
        .ok_or_else(|| MediaError::Build {
            which: W,
            detail: "livekitwebrtcsink gave no audio pad".into(),
        })?;
    mic_out
        .static_pad("src")
        .expect("queue has a src pad")
        .link(&apad)
        .map_err(|e| MediaError::Build {
            which: W,
            detail: format!("linking audio to the sink: {e:?}"),
        })?;
    Ok(pipeline)
}

/// The camera branch of the publisher: source → convert/scale/rate → caps → tee → queue
/// → `sink.video_%u`, and from the tee the self-view to the call screen. Only video
/// calls have it.
fn add_camera(
    pipeline: &gst::Pipeline,
    sink: &gst::Element,
    plan: &MediaPlan,
    counters: &Arc<Counters>,
) -> Result<(), MediaError> {
    const W: &str = "publish";
    let cfg = &plan.config;
    // What a V4L2 camera is asked for (media::camera): raw or MJPEG, from what it offers.
    let mut capture = None;
    let vsrc = match &plan.video_source {
        SourceKind::Device(dev) => {
            let e = make("v4l2src", W)?;
            e.set_property("device", dev);
            if let Some(offered) = super::camera::probe(&e) {
                let c = super::camera::choose(&offered, cfg.width, cfg.height, cfg.framerate);
                tracing::info!(device = %dev, format = %c.caps, why = %c.why, "camera format");
                capture = Some(c);
            }
            e
        }
        // libcamera's ISP scales to the caps asked for; raw only.
        SourceKind::Libcamera => make("libcamerasrc", W)?,
        SourceKind::Test => {
            let e = make("videotestsrc", W)?;
            e.set_property("is-live", true);
            e.set_property_from_str("pattern", cfg.test_pattern.nick());
            e
        }
    };
    let mut caps = gst::Caps::builder("video/x-raw")
        .field("width", cfg.width as i32)
        .field("height", cfg.height as i32)
        .field("framerate", gst::Fraction::new(cfg.framerate as i32, 1))
        .build();
    let vcaps = make("capsfilter", W)?;
    let stamp = super::stamp::enabled();
    if stamp {
        // The benchmark's capture-time code is drawn on an I420 luma plane.
        caps.get_mut().expect("new caps").set("format", "I420");
    }
    vcaps.set_property("caps", &caps);
    let tee = make("tee", W)?;
    // `videorate` holds each frame until the next arrives (one frame interval of
    // latency): only where the source may not deliver the configured rate by itself.
    // videotestsrc and a V4L2 camera asked for the exact rate do (media::camera);
    // libcamerasrc keeps it, untested on hardware here.
    let needs_rate = match &plan.video_source {
        SourceKind::Device(_) => capture.as_ref().is_none_or(|c| !c.exact_rate),
        SourceKind::Libcamera => true,
        SourceKind::Test => false,
    };
    let mut vchain = vec![vsrc];
    if let Some(c) = capture {
        let f = make("capsfilter", W)?;
        f.set_property("caps", &c.caps);
        vchain.push(f);
        if c.jpeg {
            vchain.push(make("jpegdec", W)?);
        }
    }
    let queue = make("queue", W)?;
    let convert = make("videoconvert", W)?;
    if stamp {
        // Right after capture and conversion, before any `videorate`: the stamp sees
        // every stage of the box's own.
        super::stamp::stamp_on(&convert.static_pad("src").expect("videoconvert src"));
    }
    vchain.extend([convert, make("videoscale", W)?]);
    if needs_rate {
        vchain.push(make("videorate", W)?);
    }
    vchain.extend([vcaps, tee.clone(), queue.clone()]);
    pipeline.add_many(&vchain).map_err(build_err(W))?;
    gst::Element::link_many(&vchain).map_err(build_err(W))?;
    // The self-view: the same frames to the call screen, never holding up the call.
    let self_view = gst::parse::bin_from_description(
        &format!(
            "queue leaky=downstream max-size-buffers=2 ! intervideosink sync=false channel={}",
            super::screen::SELF_CHANNEL
        ),
        true,
    )
    .map_err(|e| MediaError::Build {
        which: W,
        detail: format!("self-view branch: {e}"),
    })?;
    pipeline.add(&self_view).map_err(build_err(W))?;
    tee.link(&self_view).map_err(build_err(W))?;
    let vpad = sink
        .request_pad_simple("video_%u")
        .ok_or_else(|| MediaError::Build {
            which: W,
            detail: "livekitwebrtcsink gave no video pad".into(),
        })?;
    let vq_src = queue.static_pad("src").expect("queue has a src pad");
    vq_src.link(&vpad).map_err(|e| MediaError::Build {
        which: W,
        detail: format!("linking video to the sink: {e:?}"),
    })?;
    probe_count(&vq_src, counters, |c| &c.video_frames_sent);

    Ok(())
}

/// The subscriber: `(url, token)` to join with, our own publisher's identity (never
/// subscribed to), and where to count frames and list the remote video channels.
fn build_subscriber(
    plan: &MediaPlan,
    call_id: &str,
    (url, token): (&str, &str),
    own_publisher: &str,
    (counters, remote_channels): (&Arc<Counters>, &RemoteVideos),
    track_codecs: Arc<dyn TrackCodecSource>,
) -> Result<gst::Pipeline, MediaError> {
    const W: &str = "subscribe";
    let pipeline = gst::Pipeline::with_name("subscribe");
    nested::configure(&pipeline, nested::NestedSettings::subscriber(plan));
    let src = make("livekitwebrtcsrc", W)?;
    let signaller = src.property::<glib::Object>("signaller");
    signaller.set_property("ws-url", url);
    signaller.set_property("auth-token", token);
    // Our own publisher is a participant of the room too; never subscribe to ourselves.
    signaller.set_property(
        "excluded-producer-peer-ids",
        gst::Array::new([own_publisher]),
    );
    nested::set_ice_servers(&src, plan);
    let preference = plan.config.receive_video_codec;
    if let Err(e) = codecs::answer_with_the_offered_codec(&src, call_id, track_codecs, preference) {
        tracing::warn!(
            call_id, error = %e, codec = preference.encoding_name(),
            "cannot choose the video codec per offer; answering with media.receive_video_codec only"
        );
    }
    pipeline.add(&src).map_err(build_err(W))?;

    let speaker = make(plan.audio_sink, W)?;
    speaker.set_property("name", REMOTE_SINK);
    SinkSettings::from_config(&plan.config).apply(&speaker);
    if plan.audio_sink == "fakesink" {
        // Tests and headless boxes: don't throttle, just count.
        speaker.set_property("sync", false);
    }
    let audio_plan = audio::AudioPlan::new(&plan.config, plan.audio_source == SourceKind::Test);
    let remote_audio = audio::add_speaker(&pipeline, speaker, &audio_plan)?;
    let counters = counters.clone();
    let channels = remote_channels.clone();
    let weak_pipeline = pipeline.downgrade();
    src.connect_pad_added(move |_, pad| {
        super::guarded("pad-added", (), || {
            // Tests break this callback (`FAILPOINTS=media-pad-added=1*panic`) to prove a
            // panic here costs the track, not the process.
            fail::fail_point!("media-pad-added");
            let Some(pipeline) = weak_pipeline.upgrade() else {
                return;
            };
            let name = pad.name();
            let mut channel = None;
            let (desc, pick): (String, fn(&Counters) -> &AtomicU64) = if name.starts_with("video") {
                // To the call screen, which composes it (media::screen).
                let c = channels
                    .lock()
                    .map(|l| free_channel(&l))
                    .unwrap_or_else(|_| super::screen::remote_channel(0));
                let desc =
                    format!("queue name=remote-video-queue ! videoconvert ! intervideosink name={REMOTE_SINK} channel={c}");
                channel = Some(c);
                (desc, |c| &c.video_frames_received)
            } else if name.starts_with("audio") {
                // To the speaker path's mixer (every remote participant, one echo reference).
                ("queue name=remote-audio-queue ! audioconvert ! audioresample".to_owned(), |c| {
                    &c.audio_buffers_received
                })
            } else {
                return;
            };
            let bin = match gst::parse::bin_from_description(&desc, true) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(pad = %name, error = %e, "cannot build the playback branch");
                    return;
                }
            };
            if pipeline.add(&bin).is_err() {
                return;
            }
            if channel.is_none() {
                let Some(mixer_pad) = remote_audio.request_pad_simple("sink_%u") else {
                    tracing::error!(pad = %name, "the speaker mixer gave no pad");
                    return;
                };
                let linked = bin.static_pad("src").map(|src| src.link(&mixer_pad));
                if !matches!(linked, Some(Ok(_))) {
                    tracing::error!(pad = %name, "cannot link remote audio to the speaker");
                    return;
                }
            }
            let sinkpad = bin.static_pad("sink").expect("ghost sink pad");
            probe_count(&sinkpad, &counters, pick);
            if channel.is_some() && super::stamp::enabled() {
                super::stamp::read_on(&sinkpad, "decoded");
            }
            if let Err(e) = pad.link(&sinkpad) {
                tracing::error!(pad = %name, error = ?e, "cannot link remote track");
                return;
            }
            let _ = bin.sync_state_with_parent();
            if let (Some(c), Ok(mut list)) = (channel, channels.lock()) {
                let on_return = super::keyframe::ask_own_encoders(counters.clone());
                super::keyframe::watch(&pipeline, pad, &sinkpad, &name, on_return);
                tracing::info!(pad = %name, channel = %c, "remote video playing");
                list.push((name.to_string(), c));
            }
            tracing::info!(pad = %name, "remote track playing");
        })
    });
    // A remote video that ends (its participant left) frees its tile.
    let channels = remote_channels.clone();
    src.connect_pad_removed(move |_, pad| {
        super::guarded("pad-removed", (), || {
            if let Ok(mut list) = channels.lock() {
                list.retain(|(p, _)| p != pad.name().as_str());
            }
        })
    });
    Ok(pipeline)
}

/// The name of the sink element in a playback branch (see [`SinkSettings`]).
const REMOTE_SINK: &str = "remote-sink";

/// The `[media]` settings of the playback sinks, set as properties (not spliced into a
/// launch line, so no quoting issue with device names such as `plughw:CARD=Loopback,DEV=0`).
#[derive(Debug, Clone)]
pub(super) struct SinkSettings {
    /// `alsasink device=`, from `media.audio_output_device`.
    alsa_device: String,
    /// `kmssink driver-name=`, from `media.kms_driver`.
    kms_driver: String,
}

impl SinkSettings {
    pub(super) fn from_config(config: &crate::config::MediaConfig) -> Self {
        Self {
            alsa_device: config.audio_output_device.clone(),
            kms_driver: config.kms_driver.clone(),
        }
    }

    pub(super) fn apply(&self, sink: &gst::Element) {
        let factory = sink
            .factory()
            .map(|f| f.name().to_string())
            .unwrap_or_default();
        match factory.as_str() {
            "alsasink" if !self.alsa_device.is_empty() => {
                sink.set_property("device", &self.alsa_device)
            }
            "kmssink" if !self.kms_driver.is_empty() => {
                sink.set_property("driver-name", &self.kms_driver)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `media.kms_driver` and `media.audio_output_device` reach the playback sinks: the
    /// lab's vkms needs `driver-name=vkms`, and the caller's voice must play on the
    /// configured card, not ALSA's default.
    #[test]
    fn sink_settings_reach_the_sink_elements() {
        gst::init().expect("gstreamer");
        let config: crate::config::MediaConfig = toml::from_str(
            "kms_driver = \"vkms\"\naudio_output_device = \"plughw:CARD=Loopback,DEV=0\"",
        )
        .expect("config");
        let settings = SinkSettings::from_config(&config);
        for (factory, property, want) in [
            ("kmssink", "driver-name", "vkms"),
            ("alsasink", "device", "plughw:CARD=Loopback,DEV=0"),
        ] {
            let Ok(sink) = gst::ElementFactory::make(factory).build() else {
                println!("skipped: no {factory} element on this machine");
                continue;
            };
            settings.apply(&sink);
            assert_eq!(
                sink.property::<Option<String>>(property).as_deref(),
                Some(want)
            );
        }
        // Empty settings leave the element's defaults alone.
        let defaults = SinkSettings::from_config(&Default::default());
        if let Ok(sink) = gst::ElementFactory::make("kmssink").build() {
            defaults.apply(&sink);
            assert_eq!(sink.property::<Option<String>>("driver-name"), None);
        }
    }

    /// The cap reaches webrtcsink's congestion control as its ceiling, and the call
    /// starts at or under it: before, x264 started (and stayed) at webrtcsink's 2048
    /// kbit/s whatever `max_video_bitrate_kbps` said.
    #[test]
    fn the_bitrate_cap_bounds_congestion_control() {
        gst::init().expect("gstreamer");
        // A second registration in this process only says "already registered".
        let _ = gstrswebrtc::plugin_register_static();
        let sink = gst::ElementFactory::make("livekitwebrtcsink")
            .build()
            .expect("livekitwebrtcsink");
        let kbps = |p: &str| sink.property::<u32>(p) / 1000;
        for (max, start, min) in [(1500, 1200, 100), (300, 300, 100), (100, 100, 100)] {
            rate_control(&sink, max);
            assert_eq!(
                (
                    kbps("max-bitrate"),
                    kbps("start-bitrate"),
                    kbps("min-bitrate")
                ),
                (max, start, min),
                "max_video_bitrate_kbps = {max}"
            );
        }
        let cc = sink.property_value("congestion-control");
        let nick = glib::EnumValue::from_value(&cc).map(|(_, v)| v.nick().to_owned());
        assert_eq!(nick.as_deref(), Some("homegrown"));
    }
}
