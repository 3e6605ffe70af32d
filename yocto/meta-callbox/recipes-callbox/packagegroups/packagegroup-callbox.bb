SUMMARY = "callbox daemon with the GStreamer elements it needs at run time"
DESCRIPTION = "Everything the callbox daemon loads at run time: the daemon itself, \
               the GStreamer plugins behind every element it creates (see \
               src/media/elements.rs) and a few tools an installer uses to check \
               camera, sound and GPIO wiring."
SECTION = "multimedia"

inherit packagegroup

PACKAGES = "${PN} ${PN}-gstreamer ${PN}-tools"

RDEPENDS:${PN} = "${PN}-gstreamer callbox"

# Element -> plugin -> package. Package names are gstreamer1.0-plugins-<set>-<plugin
# file without libgst>; the PACKAGECONFIGs that build the plugins are switched on by
# this layer's bbappends (recipes-multimedia, recipes-support), under DISTRO=callbox-os.
#   gstreamer1.0 (coreelements): queue capsfilter fakesink filesrc tee identity clocksync
#   -base: videotestsrc audiotestsrc videoconvert videoscale (plugin videoconvertscale
#     since 1.22) videorate audioconvert audioresample volume audiomixer; decodebin3,
#     decodebin, parsebin (playback); opusenc opusdec (opus); appsrc appsink (app, used
#     by webrtcsink); alsasrc alsasink (alsa); typefind functions for decodebin
#   -good: v4l2src v4l2h264enc v4l2h264dec (video4linux2); rtpopuspay rtph264pay
#     rtph264depay rtpopusdepay (rtp); rtpbin rtpfunnel (rtpmanager); autovideosink
#     autoaudiosink (autodetect); wavparse (a ringtone file); jpegdec (jpeg, a USB
#     camera's MJPEG)
#   -bad: webrtcbin (webrtc); dtlssrtpenc (dtls) with srtpenc (srtp); sctpenc (sctp,
#     data channels); h264parse (videoparsersbad); kmssink (kms); webrtcdsp and
#     webrtcechoprobe (webrtcdsp); errorignore (debugutilsbad, used by webrtcsink)
#   -ugly: x264enc (x264); gstreamer1.0-libav: avdec_h264
#   the call screen: compositor (-base compositor), textoverlay (-base pango, with a
#     font: ttf-bitstream-vera from oe-core), intervideosrc intervideosink (-bad
#     inter), tee (coreelements); screenshots: pngenc (-good png); VP8 callers: vp8dec
#     (-good vpx)
#   libnice: nicesrc nicesink (libnice's own GStreamer plugin, in the main package)
RDEPENDS:${PN}-gstreamer = "\
    gstreamer1.0 \
    gstreamer1.0-libav \
    gstreamer1.0-plugins-bad-debugutilsbad \
    gstreamer1.0-plugins-bad-dtls \
    gstreamer1.0-plugins-bad-inter \
    gstreamer1.0-plugins-bad-kms \
    gstreamer1.0-plugins-bad-sctp \
    gstreamer1.0-plugins-bad-srtp \
    gstreamer1.0-plugins-bad-videoparsersbad \
    gstreamer1.0-plugins-bad-webrtc \
    gstreamer1.0-plugins-bad-webrtcdsp \
    gstreamer1.0-plugins-base-alsa \
    gstreamer1.0-plugins-base-app \
    gstreamer1.0-plugins-base-audioconvert \
    gstreamer1.0-plugins-base-audiomixer \
    gstreamer1.0-plugins-base-audioresample \
    gstreamer1.0-plugins-base-audiotestsrc \
    gstreamer1.0-plugins-base-compositor \
    gstreamer1.0-plugins-base-opus \
    gstreamer1.0-plugins-base-pango \
    gstreamer1.0-plugins-base-playback \
    gstreamer1.0-plugins-base-typefindfunctions \
    gstreamer1.0-plugins-base-videoconvertscale \
    gstreamer1.0-plugins-base-videorate \
    gstreamer1.0-plugins-base-videotestsrc \
    gstreamer1.0-plugins-base-volume \
    gstreamer1.0-plugins-good-autodetect \
    gstreamer1.0-plugins-good-jpeg \
    gstreamer1.0-plugins-good-png \
    gstreamer1.0-plugins-good-rtp \
    gstreamer1.0-plugins-good-rtpmanager \
    gstreamer1.0-plugins-good-video4linux2 \
    gstreamer1.0-plugins-good-vpx \
    gstreamer1.0-plugins-good-wavparse \
    gstreamer1.0-plugins-ugly-x264 \
    libnice \
    ttf-bitstream-vera \
"

# For installers checking the wiring: aplay and arecord (alsa-utils-aplay), v4l2-ctl,
# gpioinfo/gpioset; gst-inspect-1.0 comes with gstreamer1.0.
RDEPENDS:${PN}-tools = "\
    alsa-utils-aplay \
    libgpiod-tools \
    v4l-utils \
"

RRECOMMENDS:${PN} = "${PN}-tools"
