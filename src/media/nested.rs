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
    /// Depayloaders and libav decoders recover from loss ([`recover_settings`]).
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
        if factory.name() == "webrtcbin" {
            add_local_addresses(element, &self.ice_local_addresses);
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

/// Never show a corrupt picture, and get a clean one soon after loss:
/// - depayloaders (`rtph264depay`, `rtpvp8depay`, `rtpvp9depay`): `wait-for-keyframe`
///   (output nothing after a lost packet until a keyframe) and `request-keyframe` (ask
///   the sender for one, RTCP PLI), both off by default in GStreamer 1.22;
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
}
