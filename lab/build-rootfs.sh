#!/usr/bin/env bash
# lab/build-rootfs.sh [CALLBOX_DEB [CALLBOX_HUB_DEB]]: the hardware lab's root disk
# (design §6), cached in
#   $CALLBOX_CACHE/lab/rootfs-<hash>/   (and the link $CALLBOX_CACHE/lab/rootfs)
#     rootfs.img   ext4 (mkfs.ext4 -d): Debian bookworm, systemd + udev, the test tools
#                  (gpiod, v4l-utils, alsa-utils, gstreamer1.0-tools, libdrm-tests),
#                  the box's .deb installed with apt (so its Depends: are what is
#                  tested), callbox.service enabled with lab/guest/callbox.toml, the
#                  GStreamer registry pre-built; the lab's units from lab/guest/
#     packages     dpkg -l of the image;  info: sizes and timings
# The image is booted read-only (lab/boot.sh gives QEMU snapshot=on): it stays pristine.
# The hash covers this script, lab/lib.sh, lab/guest/ and the sha256 of the .debs.
# Without a .deb (before `make deb`), the image has everything but the box.
# Prints the step's directory on stdout.  Env: LAB_REBUILD=1.
set -euo pipefail
# shellcheck source=lab/lib.sh
. "$(dirname "$0")/lib.sh"

box_deb=${1:-} hub_deb=${2:-}
for d in "$box_deb" "$hub_deb"; do
  [ -z "$d" ] || [ -f "$d" ] || lab_die "no such package: $d"
done
command -v mmdebstrap >/dev/null || lab_die "mmdebstrap missing (host packages: see lab/README.md)"
[ "$(id -u)" = 0 ] || lab_die "run as root (mmdebstrap --mode=root, mkfs.ext4 -d keeps ownership)"

# What the tests need in the guest, besides the box's own Depends:.
packages=(
  systemd systemd-sysv udev dbus kmod iproute2 procps
  gpiod v4l-utils alsa-utils libdrm-tests python3
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-alsa
)
deb_sum() { [ -n "$1" ] && echo "$(basename "$1") $(sha256sum <"$1")" || echo none; }
hash=$(lab_hash "$0" "$LAB_DIR/lib.sh" "$LAB_DIR/guest" "${packages[*]}" \
  "box $(deb_sum "$box_deb")" "hub $(deb_sum "$hub_deb")")
lab_step rootfs "$hash" rootfs || exit 0
T=$STEP_TMP
t_start=$(lab_now)
lab_log "rootfs: building in $T (box: ${box_deb:-none}, hub: ${hub_deb:-none})"

# Downloaded .debs are shared with scripts/deb-check.sh (apt's cache, synced in and out).
apt_cache="$CALLBOX_CACHE/apt-archives/bookworm-amd64"
mkdir -p "$apt_cache" "$T/in"
cached_before=$(du -sb "$apt_cache" | cut -f1)
G=$LAB_DIR/guest
install_debs=()
for d in "$box_deb" "$hub_deb"; do
  [ -n "$d" ] || continue
  cp "$d" "$T/in/"
  install_debs+=("/root/lab-debs/$(basename "$d")")
done

# One customize script, run by mmdebstrap with the chroot's path as $1.
cat >"$T/in/customize.sh" <<EOF
#!/bin/bash
set -euo pipefail
r=\$1
ch() { chroot "\$r" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "\$@"; }
echo callbox-lab >"\$r/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 callbox-lab\n' >"\$r/etc/hosts"
printf '/dev/vda / ext4 rw,noatime 0 1\n' >"\$r/etc/fstab"
mkdir -p "\$r/usr/lib/modules" "\$r/usr/local/sbin" "\$r/etc/systemd/system/serial-getty@ttyS0.service.d"
install -m 0755 "$G/lab-hw" "$G/lab-run" "\$r/usr/local/sbin/"
install -m 0644 "$G/lab-hw.service" "$G/lab-run.service" "\$r/etc/systemd/system/"
install -m 0644 "$G/network.network" "\$r/etc/systemd/network/20-lab.network"
install -m 0644 "$G/autologin.conf" "\$r/etc/systemd/system/serial-getty@ttyS0.service.d/"
install -m 0644 "$G/asound.conf" "\$r/etc/asound.conf"
ch passwd -d root >/dev/null
ch systemctl enable lab-hw.service lab-run.service systemd-networkd.service >/dev/null 2>&1
# Nothing in the lab needs these at boot; they only cost time under TCG.
# (no display: no getty on tty1)
ch systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  e2scrub_reap.service systemd-timesyncd.service getty@tty1.service >/dev/null 2>&1 || true
if [ ${#install_debs[@]} -gt 0 ]; then
  mkdir -p "\$r/root/lab-debs"
  cp "$T"/in/*.deb "\$r/root/lab-debs/"
  ch apt-get install -y -q -o APT::Install-Recommends=false ${install_debs[*]} >"$T/apt-install.log" 2>&1 ||
    { cat "$T/apt-install.log" >&2; exit 1; }
  rm -rf "\$r/root/lab-debs"
fi
if [ -f "\$r/usr/bin/callbox" ]; then
  install -m 0600 "$G/callbox.toml" "\$r/etc/callbox/callbox.toml"
  # A daemon built with hardware/lab.toml (board "lab") uses it instead of generic + chip.
  if grep -q 'callbox hardware lab (gpio-sim)' "\$r/usr/bin/callbox"; then
    sed -i -e 's/^board = "generic"/board = "lab"/' -e '/^backend = "cdev"/d' -e '/^chip = "callbox-lab"/d' \
      "\$r/etc/callbox/callbox.toml"
  fi
  if [ -f "\$r/usr/bin/callbox-hub" ]; then
    # The hub in the guest: reachable through QEMU's port forwards (listens on the NIC
    # too), a lab key pair for a LiveKit server in the guest, a device credential for
    # the box and a user credential for a test's caller (/root/lab-caller.credential).
    sed -i -e 's/^listen = .*/listen = "0.0.0.0:8080"/' \
      -e 's/^api_key = .*/api_key = "lab-key"/' \
      -e 's/^api_secret = .*/api_secret = "lab-secret-not-for-production-0123456789"/' \
      "\$r/etc/callbox-hub/hub.toml"
    db=\$(sed -n 's/^database = "\(.*\)"/\1/p' "\$r/etc/callbox-hub/hub.toml")
    mkdir -p "\$r\$(dirname "\$db")"
    cred=\$(ch callbox-hub add-device --config /etc/callbox-hub/hub.toml --identity lab-box 2>/dev/null)
    [ -n "\$cred" ] || { echo "callbox-hub add-device printed no credential" >&2; exit 1; }
    sed -i "s|^credential = .*|credential = \"\$cred\"|" "\$r/etc/callbox/callbox.toml"
    ch callbox-hub add-user --config /etc/callbox-hub/hub.toml --identity lab-caller >"\$r/root/lab-caller.credential" 2>/dev/null
    chmod 0600 "\$r/root/lab-caller.credential"
    # Who may call whom: the lab's caller may ring the lab box (trusted: answer = "auto"
    # answers it by itself).
    ch callbox-hub allow --config /etc/callbox-hub/hub.toml --box lab-box --caller lab-caller --trusted >/dev/null
  fi
  ch systemctl enable callbox.service >/dev/null 2>&1
  ch systemctl is-enabled callbox.service >&2
  # The registry the unit uses (GST_REGISTRY=%C/callbox/...), owned by the service user.
  mkdir -p "\$r/var/cache/callbox"
  ch env HOME=/var/lib/callbox GST_REGISTRY=/var/cache/callbox/gstreamer-registry.bin gst-inspect-1.0 >/dev/null
  ch chown -R callbox:callbox /var/cache/callbox
  ch chmod 0750 /var/cache/callbox
fi
# root's registry, for the tests' gst-launch-1.0.
ch env HOME=/root gst-inspect-1.0 >/dev/null
rm -rf "\$r"/tmp/* "\$r"/etc/machine-id
: >"\$r/etc/machine-id"
ch dpkg-query -W -f='\${Package} \${Version}\n' >"$T/packages"
EOF
chmod +x "$T/in/customize.sh"

lab_scratch "$T/root" 4g
t0=$(lab_now)
# shellcheck disable=SC2016 # $1 is mmdebstrap's hook argument (the chroot)
nice -n 10 mmdebstrap --quiet --variant=minbase --arch=amd64 --mode=root \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-include=/usr/share/doc/callbox*' \
  --skip=download/empty --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $apt_cache /var/cache/apt/archives/" \
  --customize-hook="$T/in/customize.sh \"\$1\"" \
  --customize-hook="sync-out /var/cache/apt/archives $apt_cache" \
  --customize-hook='chroot "$1" apt-get clean && rm -rf "$1"/var/lib/apt/lists/*' \
  bookworm "$T/root" \
  "deb $LAB_MIRROR bookworm main" \
  "deb $LAB_MIRROR bookworm-updates main" \
  "deb $LAB_SECURITY_MIRROR bookworm-security main"
t_debootstrap=$(lab_since "$t0")
cached_after=$(du -sb "$apt_cache" | cut -f1)

t0=$(lab_now)
used=$(du -sm "$T/root" | cut -f1)
# Room for logs and whatever a test writes (into QEMU's snapshot overlay, not this file).
size=$((used * 11 / 10 + 512))
mkfs.ext4 -q -F -L callbox-root -d "$T/root" "$T/rootfs.img" "${size}M" >/dev/null
t_mkfs=$(lab_since "$t0")
t0=$(lab_now)
lab_unscratch
rm -rf "$T/root" "$T/in"
t_cleanup=$(lab_since "$t0")
cat >"$T/info" <<EOF
box_deb=${box_deb:+$(basename "$box_deb") $(sha256sum <"$box_deb" | cut -c1-64)}
hub_deb=${hub_deb:+$(basename "$hub_deb") $(sha256sum <"$hub_deb" | cut -c1-64)}
packages_installed=$(wc -l <"$T/packages")
downloaded_bytes=$((cached_after - cached_before))
tree_mib=$used
image_bytes=$(stat -c %s "$T/rootfs.img")
image_used_bytes=$(du -B1 "$T/rootfs.img" | cut -f1)
mmdebstrap_s=$t_debootstrap
mkfs_s=$t_mkfs
cleanup_s=$t_cleanup
total_s=$(lab_since "$t_start")
EOF
lab_step_done rootfs
lab_log "rootfs: built in $(lab_since "$t_start")s (${used} MiB) -> $STEP_DIR"
echo "$STEP_DIR"
