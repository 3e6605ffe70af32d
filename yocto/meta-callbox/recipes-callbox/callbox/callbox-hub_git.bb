# nooelint: oelint.var.bbclassextend - a target server with a systemd unit: no native/nativesdk variant
SUMMARY = "callbox-hub: reference call server for callbox appliances"
DESCRIPTION = "The callbox hub keeps invitations, contacts and call history in \
               SQLite, relays call events to the boxes over WebSocket and mints \
               LiveKit tokens. Usually run on a server, not on the box itself."

# Must be the version of the `callbox-hub` package in Cargo.lock (checked by
# scripts/yocto-crates.py --check).
PV = "0.1.0+git"

# No DEPENDS beyond the cargo class: rusqlite's `bundled` feature compiles SQLite's C
# source with the cc crate (no sqlite3 recipe), and ring is compiled the same way.
require callbox.inc

do_install:append() {
    # Holds the LiveKit API secret: the unit reads it as root (LoadCredential=) and
    # runs the server as a DynamicUser, so no user is created here.
    install -d ${D}${sysconfdir}/callbox-hub
    install -m 0600 ${S}/config/hub.example.toml ${D}${sysconfdir}/callbox-hub/hub.toml
}

CONFFILES:${PN} = "${sysconfdir}/callbox-hub/hub.toml"
