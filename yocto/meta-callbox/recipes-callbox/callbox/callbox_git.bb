# nooelint: oelint.var.bbclassextend - a target daemon with units, a user and udev rules: no native/nativesdk variant
SUMMARY = "callbox: firmware daemon of a LiveKit video-call appliance"
DESCRIPTION = "The callbox daemon answers and places video calls through a callbox \
               hub and LiveKit, with GStreamer media (camera, microphone, HDMI screen \
               through KMS), GPIO buttons and LEDs, and a local control socket."

# GStreamer libraries the Rust bindings link (gstreamer-webrtc-1.0 is in -bad);
# aws-lc-sys (rustls, pulled in by gst-plugin-webrtc's signalling) falls back to
# cmake when its cc build cannot be used. alsa-lib: the speaker's mixer control.
DEPENDS += "alsa-lib cmake-native glib-2.0 gstreamer1.0 gstreamer1.0-plugins-bad gstreamer1.0-plugins-base"

# Must be the version of the `callbox` package in Cargo.lock (checked by
# scripts/yocto-crates.py --check).
PV = "0.1.0+git"

require callbox.inc

inherit pkgconfig useradd

# Raspberry Pi GPIO through rppal (Cargo feature `rpi`); the Pi kas files turn it on.
PACKAGECONFIG[rpi] = "--features rpi"

# The service user (systemd/callbox.service: User=callbox, SupplementaryGroups=video
# audio render gpio). Scarthgap creates users at rootfs time from these parameters and
# only checks the sysusers.d snippet installed below against them, so both must say
# the same: user and group callbox, home /var/lib/callbox, the four groups. `render`
# normally comes from udev and `gpio` from nowhere; creating an existing group is a
# no-op.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system gpio; --system render"
USERADD_PARAM:${PN} = "--system --user-group --home-dir ${localstatedir}/lib/callbox --no-create-home \
                       --shell ${base_sbindir}/nologin --groups video,audio,render,gpio \
                       --comment 'callbox video-call appliance' callbox"

do_install:append() {
    # Holds the device credential: the unit reads it as root (LoadCredential=).
    install -d ${D}${sysconfdir}/callbox ${D}${nonarch_libdir}/sysusers.d ${D}${nonarch_base_libdir}/udev/rules.d
    install -m 0600 ${S}/config/callbox.example.toml ${D}${sysconfdir}/callbox/callbox.toml
    install -m 0644 ${S}/systemd/sysusers.d/callbox.conf ${D}${nonarch_libdir}/sysusers.d/callbox.conf
    install -m 0644 ${S}/systemd/udev/60-callbox-gpio.rules ${D}${nonarch_base_libdir}/udev/rules.d/60-callbox-gpio.rules
}

FILES:${PN} += "${nonarch_libdir}/sysusers.d"
CONFFILES:${PN} = "${sysconfdir}/callbox/callbox.toml"
