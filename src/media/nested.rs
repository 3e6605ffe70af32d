//! What the box sets on the elements the LiveKit bins create inside themselves:
//! `livekitwebrtcsrc` builds its `webrtcbin`, depayloaders and decoders when the SFU
//! offers tracks, `livekitwebrtcsink` one `webrtcbin` per session. One
//! `deep-element-added` handler per pipeline applies [`NestedSettings`] to each as it
//! is added, before it negotiates or carries data.

use gst::glib;
use gst::prelude::*;

use super::MediaPlan;

/// What [`configure`] applies inside a pipeline.
#[derive(Debug, Clone, Default)]
pub(super) struct NestedSettings {
    /// `[media] ice_local_addresses`: the only host candidates each `webrtcbin` gathers.
    pub ice_local_addresses: Vec<String>,
    /// `webrtcbin`'s `latency` (ms, `[media] jitter_buffer_ms`): how long its
    /// `rtpbin`'s jitter buffers wait for a late or lost packet, and so how much later
    /// than its capture time the pipeline's sinks play each buffer; `None` leaves
    /// GStreamer's 200.
    pub jitter_buffer_ms: Option<u32>,
    /// Depayloaders and libav decoders recover from loss ([`recover_settings`]), and
    /// every keyframe request leaves `webrtcbin` as a PLI ([`super::keyframe::ask_by_pli`]).
    pub recover_from_loss: bool,
}

impl NestedSettings {
    /// The subscriber's: every setting, from the `[media]` section.
    pub(super) fn subscriber(plan: &MediaPlan) -> Self {
        Self {
            ice_local_addresses: plan.config.ice_local_addresses.clone(),
            jitter_buffer_ms: Some(plan.config.jitter_buffer_ms),
            recover_from_loss: true,
        }
    }

    /// Applies the settings that concern `element` (by its factory); others are left.
    pub(super) fn apply(&self, element: &gst::Element) {
        let Some(factory) = element.factory() else {
            return;
        };
        if factory.name() == "decodebin3" {
            share_decodebin_caps(element);
        } else if is_nice_element(element) {
            pace_ice_checks(element);
        } else if factory.name() == "webrtcbin" {
            add_local_addresses(element, &self.ice_local_addresses);
            if self.recover_from_loss {
                super::keyframe::ask_by_pli(element);
            }
            if let Some(ms) = self.jitter_buffer_ms {
                element.set_property("latency", ms);
            }
        } else if self.recover_from_loss {
            recover_settings(element);
        }
    }
}

/// Applies `settings` to every element added anywhere inside `bin`, at once (in the
/// thread that adds it), through one `deep-element-added` handler.
pub(super) fn configure(bin: &gst::Pipeline, settings: NestedSettings) {
    bin.connect_deep_element_added(move |_, _, element| {
        super::guarded("deep-element-added", (), || settings.apply(element))
    });
}

/// Makes `webrtcbin` gather host candidates on `[media] ice_local_addresses` only
/// (GstWebRTCICE's `add-local-ip-address` action signal; once any address is added,
/// libnice uses exactly those). Must run before negotiation starts.
pub(super) fn add_local_addresses(webrtcbin: &gst::Element, addresses: &[String]) {
    if addresses.is_empty() {
        return;
    }
    let agent = webrtcbin.property::<glib::Object>("ice-agent");
    for addr in addresses {
        if !agent.emit_by_name::<bool>("add-local-ip-address", &[addr]) {
            tracing::warn!(address = addr, "ICE agent refused local address");
        }
    }
}

/// libnice's connectivity-check pacing (timer Ta, ms) on the box's ICE agents.
///
/// libnice sends one check per Ta tick (its default, `NICE_AGENT_TIMER_TA_DEFAULT`, is
/// 20 ms), and `webrtcbin` runs it with regular nomination (GStreamer 1.22
/// `gstwebrtc/nice/nice.c`): after the first check succeeds the controlling side waits
/// a tick to apply its stopping criterion and another to send the check that nominates
/// the pair. Read in libnice's debug log on loopback (`NICE_DEBUG=libnice`): valid pair
/// at +0 ms, "stopping criterion" at +21, the nominating check at +42, so about 40 ms of
/// every call's set-up, on the publisher and again on the subscriber, was ticks.
/// RFC 8445 §14.2 allows Ta down to 5 ms; a box has one or two host candidates, so the
/// checks it paces are few.
pub(super) const ICE_PACING_MS: u32 = 5;

/// Sets [`ICE_PACING_MS`] on the `NiceAgent` of a `nicesrc`/`nicesink` that `webrtcbin`
/// adds for a transport (its `agent` property; libnice's `stun-pacing-timer`), before
/// its checks start. A libnice where that cannot be set after construction is left at
/// its default (logged at debug for each element).
pub(super) fn pace_ice_checks(nice_element: &gst::Element) {
    if nice_element.find_property("agent").is_none() {
        return;
    }
    let Some(agent) = nice_element.property::<Option<glib::Object>>("agent") else {
        return;
    };
    let Some(pspec) = agent.find_property("stun-pacing-timer") else {
        return;
    };
    let flags = pspec.flags();
    if !flags.contains(glib::ParamFlags::WRITABLE)
        || flags.contains(glib::ParamFlags::CONSTRUCT_ONLY)
    {
        tracing::debug!("libnice's stun-pacing-timer cannot be set here; ICE keeps its pacing");
        return;
    }
    if agent.property::<u32>("stun-pacing-timer") > ICE_PACING_MS {
        agent.set_property("stun-pacing-timer", ICE_PACING_MS);
    }
}

/// Applies [`pace_ice_checks`] to the `nicesrc`/`nicesink` elements `webrtcbin` adds
/// inside itself from now on (for a `webrtcbin` outside the pipelines [`configure`]
/// watches: `livekitwebrtcsink` runs each session in a pipeline of its own).
pub(super) fn pace_ice_checks_inside(webrtcbin: &gst::Element) {
    let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
        return;
    };
    bin.connect_deep_element_added(|_, _, element| {
        super::guarded("deep-element-added", (), || {
            if is_nice_element(element) {
                pace_ice_checks(element);
            }
        })
    });
}

/// Gives every `appsink` that `livekitwebrtcsink` adds inside itself (one per input
/// stream, behind a `clocksync`: gst-plugins-rs 0.15 `webrtcsink/imp.rs`
/// `InputStream::prepare`) a processing deadline of 0 (GstBaseSink's
/// `processing-deadline`, 20 ms by default).
///
/// Those appsinks render nothing: they hand each buffer to the session's encoder
/// pipeline. But a sink that syncs adds its deadline to the latency it reports, the
/// publisher pipeline's latency is the largest of those (a camera at 30 fps: 33 ms
/// plus 20, 53 ms), and the `clocksync` then holds every frame until its capture time
/// plus that latency: 20 ms of every frame's glass-to-glass time spent waiting. With
/// 0 the pipeline's latency is the sources' own (33 ms at 30 fps). Buffers later than
/// that are passed on at once (appsink drops no late buffer: `max-lateness` -1).
pub(super) fn hand_off_without_deadline(webrtcsink: &gst::Element) {
    let Some(bin) = webrtcsink.downcast_ref::<gst::Bin>() else {
        return;
    };
    bin.connect_element_added(|_, element| {
        super::guarded("element-added", (), || {
            if element.factory().is_some_and(|f| f.name() == "appsink")
                && element.find_property("processing-deadline").is_some()
            {
                element.set_property("processing-deadline", 0u64);
            }
        })
    });
}

/// Whether `element` is one of libnice's GStreamer elements (`nicesrc`, `nicesink`),
/// whose `agent` property is their ICE agent.
fn is_nice_element(element: &gst::Element) -> bool {
    element
        .factory()
        .is_some_and(|f| matches!(f.name().as_str(), "nicesrc" | "nicesink"))
}

/// How many distinct caps [`share_decodebin_caps`] keeps (a call has one per kind of
/// track: in practice 2, raw video and raw audio).
const SHARED_CAPS: usize = 8;

/// Gives `decodebin3` one shared caps object for its `caps` property in place of the
/// one it was given, which is then freed.
///
/// GStreamer 1.22's `decodebin3` keeps a reference to its `caps` after it is freed
/// (measured on 1.22.0: a caps set on three decodebin3s has three references more once
/// they are gone; the unit test below). `livekitwebrtcsrc` makes one decodebin3 per
/// remote track and sets its `caps` to a new copy of the playback branch's caps each
/// time (gst-plugins-rs 0.15 `webrtcsrc/imp.rs`: `peer_query_caps(None)`): every raw
/// format `videoconvert`/`audioconvert` accept, about 5.7 KiB a call by heaptrack, the
/// largest part of the soak's slow rise (#10). With one shared object per distinct
/// caps, only that object's reference count grows. Caps beyond [`SHARED_CAPS`] distinct
/// ones are left as they are.
fn share_decodebin_caps(decodebin: &gst::Element) {
    static SHARED: std::sync::Mutex<Vec<gst::Caps>> = std::sync::Mutex::new(Vec::new());
    let Some(caps) = decodebin.property::<Option<gst::Caps>>("caps") else {
        return;
    };
    let Ok(mut shared) = SHARED.lock() else {
        return;
    };
    match shared.iter().find(|c| c.is_strictly_equal(&caps)) {
        Some(same) if same.as_ptr() != caps.as_ptr() => {
            decodebin.set_property("caps", same);
        }
        Some(_) => {}
        None if shared.len() < SHARED_CAPS => shared.push(caps),
        None => {}
    }
}

/// Never show a corrupt picture, and get a clean one soon after loss:
/// - depayloaders (`rtph264depay`, `rtpvp8depay`, `rtpvp9depay`): `wait-for-keyframe`
///   (output nothing after a lost packet until a keyframe) and `request-keyframe` (ask
///   the sender for one; it asks for all headers, which `webrtcbin` sends as a PLI
///   through [`super::keyframe::ask_by_pli`]), both off by default in GStreamer 1.22;
/// - libav decoders (`avdec_h264`, …): `output-corrupt` off (gst-libav's default is on:
///   frames decoded without their reference are output, smeared and wrongly coloured).
///
/// Without these, a call whose first keyframe was damaged showed wrongly coloured bars on
/// the hardware lab's screen for as long as the caller sent no new keyframe (libwebrtc
/// sends them only on request).
fn recover_settings(element: &gst::Element) {
    let Some(factory) = element.factory() else {
        return;
    };
    let name = factory.name();
    let settings: &[(&str, bool)] = match name.as_str() {
        "rtph264depay" | "rtpvp8depay" | "rtpvp9depay" => {
            &[("request-keyframe", true), ("wait-for-keyframe", true)]
        }
        n if n.starts_with("avdec_") => &[("output-corrupt", false)],
        _ => return,
    };
    for (property, value) in settings {
        if element.find_property(property).is_some() {
            element.set_property(property, *value);
        }
    }
}

/// The STUN and TURN servers of `[media]` on a LiveKit element (`stun-server`,
/// `turn-servers`); none configured means none, not webrtcsink's public default.
pub(super) fn set_ice_servers(element: &gst::Element, plan: &MediaPlan) {
    // Default is a public STUN server; a box talks only to what the installer configured.
    let stun = Some(plan.config.stun_server.as_str()).filter(|s| !s.is_empty());
    element.set_property("stun-server", stun);
    let turn = gst::Array::new(plan.config.turn_servers.iter().map(|s| s.as_str()));
    element.set_property("turn-servers", turn);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A depayloader added anywhere inside the subscriber (as decodebin does) waits for
    /// and requests a keyframe after loss; a libav decoder outputs no corrupt frame.
    #[test]
    fn depayloaders_inside_the_subscriber_recover_from_loss() {
        gst::init().expect("gstreamer");
        let pipeline = gst::Pipeline::new();
        configure(
            &pipeline,
            NestedSettings {
                recover_from_loss: true,
                ..Default::default()
            },
        );
        let inner = gst::Bin::new();
        pipeline.add(&inner).expect("add bin");
        for factory in ["rtph264depay", "rtpvp8depay"] {
            let Ok(depay) = gst::ElementFactory::make(factory).build() else {
                println!("skipped: no {factory} element on this machine");
                continue;
            };
            assert!(
                !depay.property::<bool>("request-keyframe"),
                "{factory}: default off"
            );
            inner.add(&depay).expect("add depayloader");
            assert!(depay.property::<bool>("request-keyframe"), "{factory}");
            assert!(depay.property::<bool>("wait-for-keyframe"), "{factory}");
        }
        if let Ok(dec) = gst::ElementFactory::make("avdec_h264").build() {
            assert!(
                dec.property::<bool>("output-corrupt"),
                "gst-libav's default is on"
            );
            inner.add(&dec).expect("add decoder");
            assert!(!dec.property::<bool>("output-corrupt"));
        }
    }

    /// A caps object's reference count (GstMiniObject's `refcount`).
    fn refcount(caps: &gst::Caps) -> i32 {
        // SAFETY: `caps` is a live GstCaps; its first field is its GstMiniObject.
        unsafe { (*caps.as_ptr()).mini_object.refcount }
    }

    /// The caps `livekitwebrtcsrc` gives each track's `decodebin3` are freed once the
    /// decodebin3 is (GStreamer 1.22's decodebin3 alone keeps them forever: a slow
    /// leak of a few KiB a call), and the decodebin3 still has equal caps.
    #[test]
    fn a_decodebin3_inside_the_subscriber_lets_go_of_its_caps() {
        gst::init().expect("gstreamer");
        if gst::ElementFactory::find("decodebin3").is_none() {
            println!("skipped: no decodebin3 element on this machine");
            return;
        }
        let pipeline = gst::Pipeline::new();
        configure(&pipeline, NestedSettings::default());
        let inner = gst::Bin::new();
        pipeline.add(&inner).expect("add bin");
        // As webrtcsrc does, per track: new (equal) caps, set, then added.
        let track = |inner: &gst::Bin| {
            let caps = gst::Caps::builder("audio/x-raw")
                .field("format", gst::List::new(["S16LE", "F32LE"]))
                .field("rate", gst::IntRange::new(1, i32::MAX))
                .build();
            let decodebin = gst::ElementFactory::make("decodebin3")
                .build()
                .expect("decodebin3");
            decodebin.set_property("caps", &caps);
            inner.add(&decodebin).expect("add decodebin3");
            assert!(
                decodebin
                    .property::<gst::Caps>("caps")
                    .is_strictly_equal(&caps),
                "decodebin3 keeps the caps it was given, by value"
            );
            inner.remove(&decodebin).expect("remove decodebin3");
            drop(decodebin);
            caps
        };
        // The first becomes the shared object; every later one is freed.
        let _first = track(&inner);
        for call in 1..=3 {
            let caps = track(&inner);
            assert_eq!(
                refcount(&caps),
                1,
                "track {call}: someone else still holds the caps given to decodebin3"
            );
        }
    }

    /// `media.jitter_buffer_ms` reaches a `webrtcbin` nested inside the subscriber (as
    /// `livekitwebrtcsrc` adds one), replacing GStreamer's 200 ms.
    #[test]
    fn the_jitter_buffer_latency_reaches_a_nested_webrtcbin() {
        gst::init().expect("gstreamer");
        let Ok(webrtcbin) = gst::ElementFactory::make("webrtcbin").build() else {
            println!("skipped: no webrtcbin element on this machine");
            return;
        };
        assert_eq!(
            webrtcbin.property::<u32>("latency"),
            200,
            "GStreamer's default"
        );
        let pipeline = gst::Pipeline::new();
        configure(
            &pipeline,
            NestedSettings {
                jitter_buffer_ms: Some(60),
                ..Default::default()
            },
        );
        let inner = gst::Bin::new();
        pipeline.add(&inner).expect("add bin");
        inner.add(&webrtcbin).expect("add webrtcbin");
        assert_eq!(webrtcbin.property::<u32>("latency"), 60);
    }

    /// The ICE agent of a `webrtcbin` the box runs (in a watched pipeline, or one handed
    /// over by `livekitwebrtcsink`) paces its checks at [`ICE_PACING_MS`], not libnice's
    /// 20 ms: its transport's `nicesrc`/`nicesink` exist once it has a local description.
    #[test]
    fn a_webrtcbins_ice_checks_are_paced_at_five_ms() {
        gst::init().expect("gstreamer");
        for watched_by_pipeline in [true, false] {
            let Ok(webrtcbin) = gst::ElementFactory::make("webrtcbin").build() else {
                println!("skipped: no webrtcbin element on this machine");
                return;
            };
            let pipeline = gst::Pipeline::new();
            if watched_by_pipeline {
                configure(&pipeline, NestedSettings::default());
            } else {
                pace_ice_checks_inside(&webrtcbin);
            }
            pipeline.add(&webrtcbin).expect("add webrtcbin");
            pipeline.set_state(gst::State::Ready).expect("READY");
            webrtcbin.emit_by_name::<glib::Object>(
                "add-transceiver",
                &[
                    &gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly,
                    &gst::Caps::builder("application/x-rtp")
                        .field("media", "audio")
                        .field("encoding-name", "OPUS")
                        .field("payload", 111i32)
                        .field("clock-rate", 48000i32)
                        .build(),
                ],
            );
            let (tx, rx) = std::sync::mpsc::channel();
            let promise = gst::Promise::with_change_func(move |reply| {
                let _ = tx.send(reply.ok().flatten().map(|s| s.to_owned()));
            });
            webrtcbin.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
            let reply = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("an offer")
                .expect("a reply");
            let offer = reply
                .get::<gst_webrtc::WebRTCSessionDescription>("offer")
                .expect("offer");
            let done = gst::Promise::new();
            webrtcbin.emit_by_name::<()>("set-local-description", &[&offer, &done]);
            let _ = done.wait();
            let bin = webrtcbin.downcast_ref::<gst::Bin>().expect("a bin");
            let nice: Vec<gst::Element> = bin
                .iterate_recurse()
                .into_iter()
                .filter_map(Result::ok)
                .filter(is_nice_element)
                .collect();
            assert!(!nice.is_empty(), "webrtcbin made its ICE transport");
            for element in nice {
                let agent = element.property::<glib::Object>("agent");
                assert_eq!(
                    agent.property::<u32>("stun-pacing-timer"),
                    ICE_PACING_MS,
                    "{} (watched by the pipeline: {watched_by_pipeline})",
                    element.name()
                );
            }
            pipeline.set_state(gst::State::Null).expect("NULL");
        }
    }

    /// A 30 fps live source into an `appsink` that `livekitwebrtcsink` adds (here a bin
    /// standing for it): the pipeline's latency is the source's 33 ms, not 33 + the
    /// sink's 20 ms processing deadline, so webrtcsink's `clocksync` does not hold
    /// each frame 20 ms longer than it needs.
    #[test]
    fn the_publishers_latency_is_its_sources_own() {
        gst::init().expect("gstreamer");
        let latency_ms = |hand_off: bool| {
            let pipeline = gst::parse::launch(
                "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 \
                 ! queue name=last",
            )
            .expect("pipeline")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
            let webrtcsink = gst::Bin::new();
            if hand_off {
                hand_off_without_deadline(webrtcsink.upcast_ref());
            }
            pipeline.add(&webrtcsink).expect("add bin");
            let appsink = gst::ElementFactory::make("appsink")
                .build()
                .expect("appsink");
            webrtcsink.add(&appsink).expect("add appsink");
            let pad = gst::GhostPad::with_target(&appsink.static_pad("sink").unwrap())
                .expect("ghost pad");
            webrtcsink.add_pad(&pad).expect("add pad");
            pipeline
                .by_name("last")
                .unwrap()
                .link(&webrtcsink)
                .expect("link");
            pipeline.set_state(gst::State::Playing).expect("PLAYING");
            let (state, _, _) = pipeline.state(gst::ClockTime::from_seconds(5));
            assert!(state.is_ok(), "the pipeline plays");
            let mut q = gst::query::Latency::new();
            assert!(pipeline.query(&mut q), "latency query");
            let (live, min, _) = q.result();
            pipeline.set_state(gst::State::Null).expect("NULL");
            assert!(live);
            min.mseconds()
        };
        assert_eq!(latency_ms(false), 53, "GStreamer's default: 33 + 20 ms");
        assert_eq!(latency_ms(true), 33, "the source's own");
    }
}
