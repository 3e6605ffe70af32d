#!/usr/bin/env bash
# Cross-compiles callbox and callbox-hub for 64-bit Raspberry Pi OS / Debian arm64
# (aarch64-unknown-linux-gnu, release) against the bookworm arm64 sysroot that
# scripts/arm64-sysroot.sh builds and caches, then proves the binaries run under
# qemu-aarch64 (user mode) with the sysroot's libraries and GStreamer plugins:
# `--version` of both, `callbox check` on two throwaway configs (every plugin of the
# sysroot must load), `callbox-hub add-device` and `serve` answering GET /health.
#
# Everything cross-specific is passed here through the environment of one cargo
# command, with target-scoped names only (CARGO_TARGET_AARCH64_*, CC_aarch64_*,
# PKG_CONFIG_*_aarch64_*): the host build (`cargo build`, target/debug, target/release)
# is not changed. Output: target/aarch64-unknown-linux-gnu/release/{callbox,callbox-hub}
# (under $CARGO_TARGET_DIR if that is set).
#
# Usage: scripts/cross-arm64.sh [--no-build] [--deb] [extra cargo args...]
#   --no-build   only run the checks on binaries built before.
#   --deb        then package them: scripts/deb.sh --target aarch64-unknown-linux-gnu
#                --no-build (cargo-deb; target/debian/*_arm64.deb).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf 'cross-arm64: %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

build=1 deb=0
while (($#)); do
  case "$1" in
    --no-build) build=0; shift ;;
    --deb) deb=1; shift ;;
    *) break ;;
  esac
done

triple=aarch64-unknown-linux-gnu
gnu=aarch64-linux-gnu

# --- sysroot (and host tools) ---------------------------------------------------
t0=$(now)
real_sysroot=$(bash "$root/scripts/arm64-sysroot.sh")
log "timing: sysroot $(since "$t0") s ($real_sysroot)"
# The stable link to it, so a new sysroot does not change the flags below (cargo would
# then rebuild every crate).
# shellcheck source=scripts/paths.sh
. "$root/scripts/paths.sh"
sysroot="$CALLBOX_CACHE/arm64-sysroot"
[ "$(cd "$sysroot" && pwd -P)" = "$(cd "$real_sysroot" && pwd -P)" ] || {
  log "$sysroot does not point at $real_sysroot"
  exit 1
}

# --- cross build ------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$root/target}
out="$target_dir/$triple/release"
if ((build)); then
  multiarch="$sysroot/usr/lib/$gnu"
  # rustc links with the cross gcc; --sysroot makes gcc and ld look for crt1.o, libc,
  # libgstreamer-1.0.so … in the sysroot (ld also prefixes the absolute paths inside
  # the sysroot's libc.so/libm.so linker scripts with it).
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C link-arg=--sysroot=$sysroot"
  # C code built by cc-rs (ring, aws-lc-sys, libsqlite3-sys bundled): cross gcc, bookworm
  # arm64 headers from the sysroot.
  export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
  export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
  export CFLAGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
  # No crate compiles C++ today; if one does, install g++-aarch64-linux-gnu.
  export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
  export CXXFLAGS_aarch64_unknown_linux_gnu="--sysroot=$sysroot"
  # pkg-config (via system-deps) for the gstreamer*-sys / glib*-sys crates: only the
  # sysroot's .pc files, with -I/-L prefixed by the sysroot.
  export PKG_CONFIG_ALLOW_CROSS=1
  export PKG_CONFIG_SYSROOT_DIR_aarch64_unknown_linux_gnu="$sysroot"
  export PKG_CONFIG_LIBDIR_aarch64_unknown_linux_gnu="$multiarch/pkgconfig:$sysroot/usr/share/pkgconfig"
  export PKG_CONFIG_PATH_aarch64_unknown_linux_gnu=""

  t0=$(now)
  log "cargo build --release --target $triple -p callbox -p callbox-hub --bins $*"
  cargo build --release --target "$triple" -p callbox -p callbox-hub --bins "$@"
  log "timing: build $(since "$t0") s"
fi

for bin in callbox callbox-hub; do
  f="$out/$bin"
  [ -x "$f" ] || { log "missing $f"; exit 1; }
  machine=$(readelf -h "$f" | awk -F: '/Machine:/ { gsub(/^ +/, "", $2); print $2 }')
  [ "$machine" = "AArch64" ] || { log "$f: ELF machine is '$machine', not AArch64"; exit 1; }
  log "$(file -b "$f" | cut -d, -f1-2,5-6); $(du -h "$f" | cut -f1)"
done

# --- run them under qemu-aarch64 ----------------------------------------------------
# -L: the guest's /lib/ld-linux-aarch64.so.1, /usr/lib/aarch64-linux-gnu … are the
# sysroot's (the sysroot has no ld.so.cache; Debian's loader searches the multiarch
# folders by itself). The host's LD_LIBRARY_PATH/LD_PRELOAD must not reach the guest.
# There is no binfmt_misc handler here, so GStreamer cannot exec its (aarch64) plugin
# scanner ("External plugin loader failed" and a slower fallback): GST_REGISTRY_FORK=no
# scans the sysroot's plugins in-process, into a throwaway registry.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gst_dir="$sysroot/usr/lib/$gnu/gstreamer-1.0"
# (env execs qemu-aarch64: `"${qemu[@]}" … &` gives the emulator's own pid.)
qemu=(
  env -u LD_LIBRARY_PATH -u LD_PRELOAD -u GST_PLUGIN_PATH -u GST_PLUGIN_PATH_1_0
  GST_REGISTRY_FORK=no
  GST_REGISTRY_1_0="$work/registry.aarch64.bin"
  GST_PLUGIN_SYSTEM_PATH_1_0="$gst_dir"
  GST_PLUGIN_SCANNER_1_0="$sysroot/usr/lib/$gnu/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner"
  qemu-aarch64 -L "$sysroot"
)
qemu() { "${qemu[@]}" "$@"; }

t0=$(now)
v=$(qemu "$out/callbox" --version)
log "qemu: $v"
[[ $v == callbox\ * ]] || { log "unexpected callbox --version output"; exit 1; }
v=$(qemu "$out/callbox-hub" --version)
log "qemu: $v"
[[ $v == callbox-hub\ * ]] || { log "unexpected callbox-hub --version output"; exit 1; }
log "timing: qemu --version (both) $(since "$t0") s"

# A desktop-less test config, and a box-like one (camera, ALSA, KMS): `check` only
# looks the elements up, it opens no device.
cat >"$work/test.toml" <<'EOF'
[hub]
url = "http://127.0.0.1:9"
credential = "x"
[media]
video_source = "test"
audio_source = "test"
video_sink = "fakesink"
audio_sink = "fakesink"
EOF
cat >"$work/box.toml" <<'EOF'
[hub]
url = "http://127.0.0.1:9"
credential = "x"
[media]
video_source = "v4l2"
audio_source = "alsa"
video_sink = "kmssink"
audio_sink = "alsasink"
EOF
for cfg in test box; do
  t0=$(now)
  # The first run scans every plugin of the sysroot into the registry (slow under
  # qemu); the second reuses it.
  # No camera, sound card or hub here: the check's "gstreamer" line is what counts
  # (every element the box uses is there); the report's other lines say what is absent.
  res=$(qemu "$out/callbox" check --offline --config "$work/$cfg.toml" 2>&1) || true
  printf '%s\n' "$res" >&2
  grep -q "^ok   gstreamer" <<<"$res" || { log "callbox check ($cfg config): GStreamer elements missing"; exit 1; }
  # `check` can pass with a plugin missing (e.g. openh264dec stands in for avdec_h264):
  # every plugin of the sysroot must load, or the sysroot is incomplete.
  if grep -q "Failed to load plugin" <<<"$res"; then
    log "a GStreamer plugin of the sysroot did not load under qemu"
    exit 1
  fi
  log "timing: qemu callbox check ($cfg config) $(since "$t0") s"
done

# The hub: its bundled SQLite (C, cross-compiled by cc-rs) and its HTTP server.
t0=$(now)
cat >"$work/hub.toml" <<EOF
listen = "127.0.0.1:0"
database = "$work/hub/hub.sqlite3"
[livekit]
url = "ws://127.0.0.1:9"
api_key = "cross-check"
api_secret = "cross-check-secret-cross-check-secret"
EOF
cred=$(qemu "$out/callbox-hub" add-device --config "$work/hub.toml" --identity box1 2>/dev/null)
[[ $cred =~ ^[0-9a-f]{32,}$ ]] || { log "callbox-hub add-device printed '$cred'"; exit 1; }
"${qemu[@]}" "$out/callbox-hub" serve --config "$work/hub.toml" >"$work/hub.log" 2>&1 &
hub_pid=$!
trap 'kill "$hub_pid" 2>/dev/null; rm -rf "$work"' EXIT
health=""
for _ in $(seq 100); do
  addr=$(sed -n 's/.*hub listening addr=\([0-9.:]*\).*/\1/p' "$work/hub.log")
  if [ -n "$addr" ] && health=$(curl -fsS --max-time 5 "http://$addr/health" 2>/dev/null); then
    break
  fi
  kill -0 "$hub_pid" 2>/dev/null || break
  sleep 0.1
done
kill "$hub_pid" 2>/dev/null || true
wait "$hub_pid" || true
trap 'rm -rf "$work"' EXIT
[[ $health == *'"ok"'* ]] || { cat "$work/hub.log" >&2; log "callbox-hub serve: no healthy /health"; exit 1; }
log "qemu: callbox-hub add-device + serve: GET /health -> $health"
log "timing: qemu callbox-hub add-device + serve $(since "$t0") s"

log "OK: $out/callbox and $out/callbox-hub are aarch64 and run against bookworm arm64"

# --- Debian packages ---------------------------------------------------------------
if ((deb)); then
  t0=$(now)
  # cargo-deb strips with <gnu triple>-strip (binutils-aarch64-linux-gnu) and rewrites
  # the target/release/ asset paths to target/aarch64-unknown-linux-gnu/release/.
  bash "$root/scripts/deb.sh" --target "$triple" --no-build
  for f in "$target_dir"/debian/*_arm64.deb; do
    a=$(dpkg-deb -f "$f" Architecture)
    [ "$a" = arm64 ] || { log "$f: Architecture $a"; exit 1; }
    # The packaged binaries must be the aarch64 ones.
    rm -rf "$work/deb" && dpkg-deb -x "$f" "$work/deb"
    for b in "$work"/deb/usr/bin/*; do
      readelf -h "$b" | grep -q 'Machine:.*AArch64' || { log "$f: $b is not aarch64"; exit 1; }
    done
    log "$(basename "$f"): $(du -h "$f" | cut -f1), Depends: $(dpkg-deb -f "$f" Depends | cut -c1-80)…"
  done
  log "timing: packaging $(since "$t0") s"
fi
