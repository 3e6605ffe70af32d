//! The camera's capture format: what to ask a V4L2 camera for, from the formats it
//! offers (its `v4l2src` pad caps once opened), and the elements that turn it into the
//! raw video the call publishes.
//!
//! A USB (UVC) webcam typically offers raw YUYV only at small sizes or low rates over
//! USB 2 (a C920: 640x480@30 raw, but 1280x720 raw at 10 fps) and MJPEG at every size at
//! 30 fps. The rule, for the configured `width`x`height`@`framerate`:
//! 1. raw at exactly that size and at least that rate (no decode, no scaling);
//! 2. MJPEG at that size and rate, decoded by `jpegdec` (libjpeg-turbo, on every
//!    board);
//! 3. raw at any size at that rate, scaled;
//! 4. anything the camera gives (GStreamer negotiates; `videorate` and `videoscale`
//!    adapt it).
//!
//! In rules 1–3 the exact rate is asked for when the camera offers it: then the frames
//! come at the call's rate and the pipeline needs no `videorate`, which holds each
//! frame until the next one arrives (one frame interval of latency, 33 ms at 30 fps,
//! measured by `make bench`).

use gst::prelude::*;

/// What to capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Caps for the capsfilter right after the source (`ANY` for rule 4).
    pub caps: gst::Caps,
    /// The camera sends MJPEG: `jpegdec` follows.
    pub jpeg: bool,
    /// For the log: which rule and why.
    pub why: String,
    /// The caps fix the rate at the configured one: no `videorate` is needed.
    pub exact_rate: bool,
}

/// `fps` exactly, or `fps` to 120 fps (`videorate` drops the surplus).
fn rate(fps: i32, exact: bool) -> gst::glib::SendValue {
    use gst::glib::value::ToSendValue;
    if exact {
        gst::Fraction::new(fps, 1).to_send_value()
    } else {
        gst::FractionRange::new(gst::Fraction::new(fps, 1), gst::Fraction::new(120, 1))
            .to_send_value()
    }
}

/// `name` at [`rate`], any size.
fn any_size(name: &str, fps: i32, exact: bool) -> gst::Caps {
    gst::Caps::builder(name)
        .field("framerate", rate(fps, exact))
        .build()
}

/// `name` at `w`x`h`, at [`rate`].
fn fixed(name: &str, w: i32, h: i32, fps: i32, exact: bool) -> gst::Caps {
    gst::Caps::builder(name)
        .field("width", w)
        .field("height", h)
        .field("framerate", rate(fps, exact))
        .build()
}

/// Chooses what to capture from `offered` (the camera's caps) for `w`x`h`@`fps`.
pub fn choose(offered: &gst::Caps, w: u32, h: u32, fps: u32) -> Capture {
    let (w, h, fps) = (w as i32, h as i32, fps as i32);
    // Caps intersection does the field-by-field work (lists, ranges, fixed values).
    // Each rule at exactly `fps` first, then at `fps` or more.
    let want = |name: &str, sized: bool, exact: bool| {
        if sized {
            fixed(name, w, h, fps, exact)
        } else {
            any_size(name, fps, exact)
        }
    };
    let rules = [
        ("video/x-raw", true, format!("raw {w}x{h}")),
        (
            "image/jpeg",
            true,
            format!("MJPEG {w}x{h} (no raw format at that size and rate)"),
        ),
        (
            "video/x-raw",
            false,
            format!("raw in another size, scaled to {w}x{h}"),
        ),
    ];
    for (name, sized, what) in rules {
        for exact in [true, false] {
            let caps = want(name, sized, exact);
            if offered.can_intersect(&caps) {
                let at = if exact {
                    format!("at {fps} fps")
                } else {
                    format!("at {fps} fps or more (videorate drops the surplus)")
                };
                return Capture {
                    caps,
                    jpeg: name == "image/jpeg",
                    why: format!("{what} {at}"),
                    exact_rate: exact,
                };
            }
        }
    }
    Capture {
        caps: gst::Caps::new_any(),
        jpeg: false,
        why: format!("the camera offers nothing at {w}x{h}@{fps}: whatever it gives, adapted"),
        exact_rate: false,
    }
}

/// The caps `source` (a `v4l2src`) offers once opened: it goes to READY (opens the
/// device) and back to NULL. `None` when it cannot be opened (the pipeline then fails
/// with the device's own error, which names it).
pub fn probe(source: &gst::Element) -> Option<gst::Caps> {
    source.set_state(gst::State::Ready).ok()?;
    let caps = source.static_pad("src").map(|p| p.query_caps(None));
    let _ = source.set_state(gst::State::Null);
    caps.filter(|c| !c.is_any() && !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        gst::init().unwrap();
        s.parse().unwrap()
    }

    /// A Logitech C920 over USB 2 (abridged from `v4l2-ctl --list-formats-ext`).
    const C920: &str = "video/x-raw, format=YUY2, width=640, height=480, framerate={ (fraction)30/1, (fraction)15/1 }; \
         video/x-raw, format=YUY2, width=1280, height=720, framerate={ (fraction)10/1, (fraction)5/1 }; \
         image/jpeg, width=1280, height=720, framerate={ (fraction)30/1, (fraction)15/1 }; \
         image/jpeg, width=640, height=480, framerate=30/1";

    #[test]
    fn raw_when_the_camera_has_it_at_the_size_and_rate() {
        let c = choose(&caps(C920), 640, 480, 30);
        assert!(!c.jpeg, "{c:?}");
        let s = c.caps.structure(0).unwrap();
        assert_eq!(s.name(), "video/x-raw");
        assert_eq!(s.get::<i32>("width").unwrap(), 640);
    }

    #[test]
    fn mjpeg_when_raw_is_too_slow_at_that_size() {
        let c = choose(&caps(C920), 1280, 720, 30);
        assert!(c.jpeg, "{c:?}");
        assert_eq!(c.caps.structure(0).unwrap().name(), "image/jpeg");
        // And the chosen caps are what the camera can give.
        assert!(c.caps.can_intersect(&caps(C920)));
    }

    #[test]
    fn raw_ranges_as_vivid_and_libcamera_report_them() {
        let vivid = "video/x-raw, format={ YUY2, NV12 }, width=[ 16, 1920 ], height=[ 16, 1080 ], \
                     framerate=[ 1/1, 60/1 ]";
        let c = choose(&caps(vivid), 320, 180, 15);
        assert!(!c.jpeg && c.why.starts_with("raw 320x180"), "{c:?}");
    }

    #[test]
    fn the_exact_rate_is_asked_for_when_offered_so_no_videorate_is_needed() {
        let c = choose(&caps(C920), 640, 480, 30);
        assert!(c.exact_rate, "{c:?}");
        let s = c.caps.structure(0).unwrap();
        assert_eq!(
            s.get::<gst::Fraction>("framerate").unwrap(),
            gst::Fraction::new(30, 1)
        );
        let vivid = "video/x-raw, format=YUY2, width=[ 16, 1920 ], height=[ 16, 1080 ], \
                     framerate=[ 1/1, 60/1 ]";
        assert!(choose(&caps(vivid), 640, 480, 25).exact_rate);
        // Only 60 fps at that size: 60 is captured and videorate halves it.
        let fast = "video/x-raw, format=YUY2, width=640, height=480, framerate=60/1";
        let c = choose(&caps(fast), 640, 480, 30);
        assert!(!c.exact_rate && c.why.contains("videorate"), "{c:?}");
    }

    #[test]
    fn another_size_is_scaled_and_nothing_usable_is_left_to_negotiation() {
        let small = "video/x-raw, format=YUY2, width=320, height=240, framerate=30/1";
        let c = choose(&caps(small), 640, 480, 30);
        assert!(c.why.contains("scaled"), "{c:?}");
        let slow = "video/x-raw, format=YUY2, width=640, height=480, framerate=5/1";
        let c = choose(&caps(slow), 640, 480, 30);
        assert!(c.caps.is_any(), "{c:?}");
    }
}

#[cfg(test)]
mod plan_tests {
    use crate::config::MediaConfig;
    use crate::media::{MediaPlan, SourceKind};

    #[test]
    fn each_camera_source_builds_its_elements() {
        let usb: MediaConfig = toml::from_str("video_source = \"v4l2\"").unwrap();
        let plan = MediaPlan::resolve(&usb);
        assert_eq!(plan.video_source, SourceKind::Device("/dev/video0".into()));
        let e = plan.elements();
        assert!(e.contains(&"v4l2src") && e.contains(&"jpegdec"), "{e:?}");

        let csi: MediaConfig = toml::from_str("video_source = \"libcamera\"").unwrap();
        let plan = MediaPlan::resolve(&csi);
        assert_eq!(plan.video_source, SourceKind::Libcamera);
        let e = plan.elements();
        assert!(
            e.contains(&"libcamerasrc") && !e.contains(&"v4l2src"),
            "{e:?}"
        );
        // Missing on this machine: the error names the package to install.
        if gst::init().is_ok() && gst::ElementFactory::find("libcamerasrc").is_none() {
            let err = crate::media::init(&plan).unwrap_err().to_string();
            assert!(err.contains("gstreamer1.0-libcamera"), "{err}");
        }
    }
}
