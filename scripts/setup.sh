#!/usr/bin/env bash
# Idempotent set-up for building, testing and demoing callbox on Debian/Ubuntu.
#
# Installs only what is missing:
#   1. Debian packages: GStreamer (design §4), ALSA, build tools.
#   2. livekit-server, built with `go install` into a per-user cache folder keyed
#      by version ($CALLBOX_CACHE/livekit-server-<ver>/livekit-server), so a fresh
#      clone does not rebuild it.
#   3. cargo-deb, for `make deb`, cached the same way.
#   4. A Python virtual environment with the LiveKit Python SDK (the test caller) and
#      Playwright (drives chromium for the web app's test), keyed by the hash of
#      tests/peers/requirements.txt.
#   5. With CALLBOX_ARM64=1 (make deb-arm64): the arm64 cross toolchain and sysroot
#      (scripts/arm64-sysroot.sh).
#
# Prints nothing but progress; safe to run any number of times.
# Environment: CALLBOX_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/callbox).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/paths.sh
. "$root/scripts/paths.sh"

log() { printf 'setup: %s\n' "$*" >&2; }

# --- 1. Debian packages ------------------------------------------------------
debs=(
  pkg-config cmake build-essential
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-nice gstreamer1.0-libav gstreamer1.0-alsa
  gstreamer1.0-tools libasound2-dev libudev-dev libssl-dev python3-venv
  # The call screen's text (textoverlay, in the pango plugin) and a font for it.
  gstreamer1.0-x fonts-dejavu-core
  # The caller web app's browser test (Playwright drives it; tests/peers/browser.py).
  chromium
  # make deb-check: a clean Debian to install the packages into; systemd-analyze.
  mmdebstrap systemd
  # make lab: QEMU, the initramfs, depmod, objtool's libelf, the port-forward check.
  qemu-system-x86 busybox-static kmod e2fsprogs libelf1 xz-utils debian-archive-keyring curl iproute2
  # The fault tests (tests/e2e_netfaults.rs): cuts and loss inside the box's own network
  # namespace (nft numgen; this CI kernel has no sch_netem).
  nftables
)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. livekit-server -------------------------------------------------------
if [ ! -x "$LIVEKIT_SERVER" ]; then
  command -v go >/dev/null || { log "Go is required to build livekit-server (Go >= 1.26)"; exit 1; }
  log "building livekit-server $LIVEKIT_VERSION into $(dirname "$LIVEKIT_SERVER") (a few minutes, once)"
  tmp=$(mktemp -d "$CALLBOX_CACHE/.lk-build.XXXXXX")
  GOBIN="$tmp" GOFLAGS=-trimpath go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
  mkdir -p "$(dirname "$LIVEKIT_SERVER")"
  mv "$tmp/server" "$LIVEKIT_SERVER"
  rmdir "$tmp"
fi

# --- 3. cargo-deb (make deb) --------------------------------------------------
if [ ! -x "$CARGO_DEB" ]; then
  log "installing cargo-deb $CARGO_DEB_VERSION into $(dirname "$(dirname "$CARGO_DEB")") (once)"
  cargo install --quiet --locked --version "$CARGO_DEB_VERSION" \
    --root "$(dirname "$(dirname "$CARGO_DEB")")" cargo-deb
fi

# --- 4. Python test caller ---------------------------------------------------
if [ ! -x "$CALLBOX_VENV/bin/python" ] || [ ! -f "$CALLBOX_VENV/.complete" ]; then
  log "creating Python venv with the LiveKit SDK at $CALLBOX_VENV"
  rm -rf "$CALLBOX_VENV"
  python3 -m venv "$CALLBOX_VENV"
  "$CALLBOX_VENV/bin/pip" install -q --disable-pip-version-check -r "$root/tests/peers/requirements.txt"
  touch "$CALLBOX_VENV/.complete"
fi

# --- 5. arm64 cross-build (make deb-arm64 only: CALLBOX_ARM64=1) ----------------
# gcc-aarch64-linux-gnu, qemu-user, the Rust target and a cached bookworm arm64 sysroot
# of the -dev and plugin packages (~1.1 GB), which make test does not need.
if [ "${CALLBOX_ARM64:-0}" = 1 ]; then
  bash "$root/scripts/arm64-sysroot.sh" >/dev/null
fi

log "ready: livekit-server=$LIVEKIT_SERVER python=$CALLBOX_VENV/bin/python"
