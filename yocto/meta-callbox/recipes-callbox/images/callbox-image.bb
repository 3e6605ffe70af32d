SUMMARY = "callbox appliance image"
DESCRIPTION = "A minimal systemd image that boots into the callbox daemon, with \
               the GStreamer plugins it needs. The installer edits \
               /etc/callbox/callbox.toml (hub URL, device credential, board) \
               before or after flashing."
SECTION = "image"
LICENSE = "MIT"

IMAGE_INSTALL = "packagegroup-core-boot packagegroup-callbox ${CORE_IMAGE_EXTRA_INSTALL}"
IMAGE_LINGUAS = ""

inherit core-image

# Room (KiB) for the daemon's GStreamer registry cache and the journal.
IMAGE_ROOTFS_EXTRA_SPACE = "262144"
