//! Which H.264 encoder the board's camera is encoded with, and how it is set up for
//! real time. `livekitwebrtcsink` builds the encoder itself, by rank; the plan raises
//! the chosen element's rank and its `encoder-setup` handler sets the properties.
//!
//! - `rpi4`: the VideoCore's V4L2 M2M encoder, `v4l2h264enc`. webrtcsink does not know
//!   its bitrate control (design §4), so the box sets it entirely through
//!   `extra-controls`: SPS/PPS repeated on every keyframe (a subscriber joining late,
//!   or recovering from loss, needs them), the bitrate, a keyframe every 2 s, the
//!   level (4.0 covers 1080p30) and the constrained-baseline profile browsers decode.
//! - `rpi5`: no H.264 hardware; `x264enc`, which webrtcsink tunes for real time
//!   itself (`tune=zerolatency`, `speed-preset=ultrafast`, no B-frames).
//! - `generic`: VA-API (`vah264enc`, else `vaapih264enc`) when a render node is there,
//!   else `x264enc`.
//! - no board: GStreamer's choice by rank (`x264enc` on a desktop).
//!
//! `media.hardware_encoder` overrides the board.

use crate::config::MediaConfig;
use crate::gpio::Board;

/// The encoder for a board, and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderPlan {
    /// The element webrtcsink is to build; `None`: leave it to the ranks.
    pub element: Option<String>,
    /// Properties set in `encoder-setup`, as `set_property_from_str` takes them.
    pub properties: Vec<(&'static str, String)>,
    /// The box configures the encoder entirely (webrtcsink's own set-up is skipped).
    pub complete: bool,
    /// Why this encoder, for the log and `callbox check`.
    pub reason: String,
}

/// `v4l2h264enc`'s `extra-controls` (bcm2835-codec's V4L2 controls) for `config`.
pub fn v4l2_controls(config: &MediaConfig) -> String {
    format!(
        "controls,repeat_sequence_header=(int)1,video_bitrate=(int){},\
         h264_i_frame_period=(int){},h264_level=(int)11,h264_profile=(int)1",
        config.max_video_bitrate_kbps.saturating_mul(1000),
        config.framerate.saturating_mul(2).max(1)
    )
}

/// The plan for `board` and `config`; `available(element)`: whether the element exists
/// (and can run: VA-API needs a render node).
pub fn plan(board: Board, config: &MediaConfig, available: &dyn Fn(&str) -> bool) -> EncoderPlan {
    let configured = config.hardware_encoder.trim();
    let v4l2 = |reason: String| EncoderPlan {
        element: Some("v4l2h264enc".into()),
        properties: vec![("extra-controls", v4l2_controls(config))],
        complete: true,
        reason,
    };
    let software = |reason: &str| EncoderPlan {
        element: Some("x264enc".into()),
        properties: Vec::new(),
        complete: false,
        reason: reason.to_owned(),
    };
    if configured == "v4l2h264enc" {
        return v4l2("media.hardware_encoder".into());
    }
    if !configured.is_empty() {
        return EncoderPlan {
            element: Some(configured.to_owned()),
            properties: Vec::new(),
            complete: false,
            reason: "media.hardware_encoder".into(),
        };
    }
    match board {
        Board::Rpi4 if available("v4l2h264enc") => {
            v4l2("board rpi4: the VideoCore's hardware encoder".into())
        }
        Board::Rpi4 => software(
            "board rpi4, but no v4l2h264enc (is /dev/video11 there? dtoverlay=vc4-kms-v3d): software",
        ),
        Board::Rpi5 => software("board rpi5: no H.264 hardware; software, tuned for real time"),
        Board::Generic => ["vah264enc", "vaapih264enc"]
            .into_iter()
            .find(|e| available(e))
            .map(|e| EncoderPlan {
                element: Some(e.to_owned()),
                properties: Vec::new(),
                complete: false,
                reason: "board generic: VA-API hardware encoder".into(),
            })
            .unwrap_or_else(|| software("board generic: no VA-API encoder; software")),
        Board::None | Board::Lab => EncoderPlan {
            element: None,
            properties: Vec::new(),
            complete: false,
            reason: "no board: GStreamer's choice by rank".into(),
        },
    }
}

/// Whether `element` can encode here: it is registered, and VA-API elements also need
/// a DRM render node.
pub fn available(element: &str) -> bool {
    gst::ElementFactory::find(element).is_some()
        && (!element.starts_with("va") || std::path::Path::new("/dev/dri/renderD128").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MediaConfig {
        MediaConfig::default()
    }

    #[test]
    fn rpi4_encodes_in_hardware_with_what_webrtc_needs() {
        let p = plan(Board::Rpi4, &cfg(), &|e| e == "v4l2h264enc");
        assert_eq!(p.element.as_deref(), Some("v4l2h264enc"));
        assert!(p.complete, "webrtcsink cannot set v4l2h264enc's bitrate");
        let (name, controls) = &p.properties[0];
        assert_eq!(*name, "extra-controls");
        gst::init().unwrap();
        let s: gst::Structure = controls.parse().expect("a GstStructure");
        assert_eq!(
            s.get::<i32>("repeat_sequence_header"),
            Ok(1),
            "SPS/PPS on keyframes"
        );
        assert_eq!(
            s.get::<i32>("video_bitrate"),
            Ok(1_500_000),
            "max_video_bitrate_kbps"
        );
        assert_eq!(
            s.get::<i32>("h264_i_frame_period"),
            Ok(60),
            "a keyframe every 2 s at 30 fps"
        );
        assert_eq!(s.get::<i32>("h264_level"), Ok(11), "level 4.0");
        assert_eq!(s.get::<i32>("h264_profile"), Ok(1), "constrained baseline");
        // Without the encoder device, software, and the reason says what to look at.
        let p = plan(Board::Rpi4, &cfg(), &|_| false);
        assert_eq!(p.element.as_deref(), Some("x264enc"));
        assert!(p.reason.contains("/dev/video11"), "{}", p.reason);
    }

    #[test]
    fn rpi5_and_generic_without_va_encode_in_software() {
        let all = |_: &str| true;
        let p = plan(Board::Rpi5, &cfg(), &all);
        assert_eq!((p.element.as_deref(), p.complete), (Some("x264enc"), false));
        let p = plan(Board::Generic, &cfg(), &|e| e == "vaapih264enc");
        assert_eq!(p.element.as_deref(), Some("vaapih264enc"));
        let p = plan(Board::Generic, &cfg(), &|e| e.starts_with("va"));
        assert_eq!(
            p.element.as_deref(),
            Some("vah264enc"),
            "the newer VA plugin first"
        );
        let p = plan(Board::Generic, &cfg(), &|_| false);
        assert_eq!(p.element.as_deref(), Some("x264enc"));
        assert_eq!(plan(Board::None, &cfg(), &all).element, None);
    }

    #[test]
    fn the_configured_encoder_wins_over_the_board() {
        let mut c = cfg();
        c.hardware_encoder = "openh264enc".into();
        let p = plan(Board::Rpi4, &c, &|_| true);
        assert_eq!(p.element.as_deref(), Some("openh264enc"));
        c.hardware_encoder = "v4l2h264enc".into();
        c.framerate = 15;
        let p = plan(Board::None, &c, &|_| true);
        assert!(p.complete && p.properties[0].1.contains("h264_i_frame_period=(int)30"));
    }

    /// The properties of the software plan exist on the element this machine has.
    #[test]
    fn x264enc_is_the_software_encoder_here() {
        gst::init().unwrap();
        if gst::ElementFactory::find("x264enc").is_none() {
            println!("skipped: no x264enc here (gstreamer1.0-plugins-ugly)");
            return;
        }
        assert!(available("x264enc"));
        assert!(!available("no-such-encoder"));
    }
}
