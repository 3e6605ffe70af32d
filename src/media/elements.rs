//! Which GStreamer elements the box needs and which Debian package provides each, so a
//! missing plugin is reported as "install X", not as a failed link.

use super::MediaError;

/// Element factory name → Debian package that ships it (bookworm).
const PACKAGES: &[(&str, &str)] = &[
    ("videotestsrc", "gstreamer1.0-plugins-base"),
    ("audiotestsrc", "gstreamer1.0-plugins-base"),
    ("videoconvert", "gstreamer1.0-plugins-base"),
    ("videoscale", "gstreamer1.0-plugins-base"),
    ("videoconvertscale", "gstreamer1.0-plugins-base"),
    ("videorate", "gstreamer1.0-plugins-base"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("volume", "gstreamer1.0-plugins-base"),
    ("capsfilter", "libgstreamer1.0-0"),
    ("queue", "libgstreamer1.0-0"),
    ("fakesink", "libgstreamer1.0-0"),
    ("decodebin3", "gstreamer1.0-plugins-base"),
    ("opusenc", "gstreamer1.0-plugins-base"),
    ("opusdec", "gstreamer1.0-plugins-base"),
    ("v4l2src", "gstreamer1.0-plugins-good"),
    ("jpegdec", "gstreamer1.0-plugins-good"),
    ("libcamerasrc", "gstreamer1.0-libcamera"),
    ("rtpopuspay", "gstreamer1.0-plugins-good"),
    ("rtph264pay", "gstreamer1.0-plugins-good"),
    ("rtph264depay", "gstreamer1.0-plugins-good"),
    ("autovideosink", "gstreamer1.0-plugins-good"),
    ("autoaudiosink", "gstreamer1.0-plugins-good"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("avdec_h264", "gstreamer1.0-libav"),
    ("alsasrc", "gstreamer1.0-alsa"),
    ("alsasink", "gstreamer1.0-alsa"),
    ("webrtcbin", "gstreamer1.0-plugins-bad"),
    ("rtpbin", "gstreamer1.0-plugins-good"),
    ("nicesrc", "gstreamer1.0-nice"),
    ("nicesink", "gstreamer1.0-nice"),
    ("dtlssrtpenc", "gstreamer1.0-plugins-bad"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("kmssink", "gstreamer1.0-plugins-bad"),
    ("compositor", "gstreamer1.0-plugins-base"),
    ("textoverlay", "gstreamer1.0-x"),
    ("intervideosrc", "gstreamer1.0-plugins-bad"),
    ("intervideosink", "gstreamer1.0-plugins-bad"),
    ("tee", "libgstreamer1.0-0"),
    ("pngenc", "gstreamer1.0-plugins-good"),
    ("v4l2h264enc", "gstreamer1.0-plugins-good"),
    (
        "livekitwebrtcsink",
        "built into callbox (gst-plugin-webrtc)",
    ),
    ("livekitwebrtcsrc", "built into callbox (gst-plugin-webrtc)"),
];

/// The Debian package that provides `element`, when known.
pub fn package_for(element: &str) -> Option<&'static str> {
    PACKAGES
        .iter()
        .find(|(e, _)| *e == element)
        .map(|(_, p)| *p)
}

/// The call screen's elements (media::screen) and the self-view's.
pub const SCREEN: &[&str] = &[
    "compositor",
    "videoconvertscale",
    "textoverlay",
    "intervideosrc",
    "intervideosink",
    "tee",
];

/// Elements every call needs besides the configured sources and sinks: WebRTC
/// transport, H.264 and Opus.
pub const CORE: &[&str] = &[
    "livekitwebrtcsink",
    "livekitwebrtcsrc",
    "webrtcbin",
    "nicesrc",
    "nicesink",
    "dtlssrtpenc",
    "rtpbin",
    "videoconvert",
    "audioconvert",
    "audioresample",
    "volume",
    "queue",
    "capsfilter",
    "decodebin3",
    "h264parse",
    "rtph264pay",
    "rtph264depay",
    "opusenc",
    "opusdec",
    "rtpopuspay",
];

/// Checks that every element in `names` is registered.
///
/// Errors: [`MediaError::MissingElement`] for the first missing one, with its package.
pub fn require(names: &[&str]) -> Result<(), MediaError> {
    for name in names {
        if gst::ElementFactory::find(name).is_none() {
            return Err(MediaError::MissingElement {
                element: (*name).to_owned(),
                package: package_for(name).unwrap_or("unknown package"),
            });
        }
    }
    Ok(())
}

/// Checks that at least one H.264 encoder and decoder are present.
pub fn require_h264() -> Result<(), MediaError> {
    let any = |names: &[&str]| names.iter().any(|n| gst::ElementFactory::find(n).is_some());
    if !any(&[
        "x264enc",
        "v4l2h264enc",
        "openh264enc",
        "vah264enc",
        "vaapih264enc",
    ]) {
        return Err(MediaError::MissingElement {
            element: "an H.264 encoder (x264enc)".into(),
            package: "gstreamer1.0-plugins-ugly",
        });
    }
    if !any(&["avdec_h264", "v4l2h264dec", "openh264dec", "vah264dec"]) {
        return Err(MediaError::MissingElement {
            element: "an H.264 decoder (avdec_h264)".into(),
            package: "gstreamer1.0-libav",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_element_names_itself_and_its_package() {
        gst::init().unwrap();
        let err = require(&["videoconvert", "kmssink-from-the-future"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("`kmssink-from-the-future` is missing"),
            "{err}"
        );
        assert_eq!(
            package_for("alsasrc"),
            Some("gstreamer1.0-alsa"),
            "the installer is told what to apt-get"
        );
        let msg = MediaError::MissingElement {
            element: "x264enc".into(),
            package: package_for("x264enc").unwrap(),
        }
        .to_string();
        assert!(
            msg.contains("install the Debian package gstreamer1.0-plugins-ugly"),
            "{msg}"
        );
    }
}
