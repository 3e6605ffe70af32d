#!/usr/bin/env bash
# Builds (once) a Debian bookworm arm64 sysroot to cross-compile callbox against, and
# prints its path on stdout (progress goes to stderr).
#
# Why a sysroot and not `dpkg --add-architecture arm64`: bookworm's
# libgstreamer-plugins-base1.0-dev is not Multi-Arch: same, so its :arm64 version
# cannot be installed beside the amd64 one (design §4, "Packaging facts").
#
# What it does, idempotently:
#   1. installs the host tools if missing: the aarch64 cross gcc, qemu-user (to run the
#      result), mmdebstrap, file; and rustup's aarch64-unknown-linux-gnu target.
#   2. unless already cached, extracts (mmdebstrap --variant=extract: nothing in it is
#      configured or run) the arm64 -dev packages the build links against, plus the
#      GStreamer plugin packages `callbox check` looks for, into
#      $CALLBOX_CACHE/arm64-sysroot-<hash>; <hash> covers the package list, the
#      mirrors and this script. Absolute symlinks are made relative so the linker and
#      qemu resolve them inside the sysroot. $CALLBOX_CACHE/arm64-sysroot links to it.
# Prints the sysroot's path; a second run does nothing else.
#
# Environment: CALLBOX_CACHE (see scripts/paths.sh), CALLBOX_DEBIAN_MIRROR,
# CALLBOX_DEBIAN_SECURITY_MIRROR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/paths.sh
. "$root/scripts/paths.sh"

log() { printf 'arm64-sysroot: %s\n' "$*" >&2; }

suite=bookworm
mirror=${CALLBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${CALLBOX_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# Host tools. qemu-user without its Recommends (qemu-user-binfmt): nothing here relies
# on binfmt_misc, and registering handlers on the host is not ours to do.
host_debs=(gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user mmdebstrap file pkg-config)

# arm64 packages: what the build links against (pkg-config + libraries + libc) ...
sysroot_dev=(
  libc6-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libasound2-dev libudev-dev
)
# ... and what `callbox check` needs at run time under qemu (design §4).
sysroot_runtime=(
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice gstreamer1.0-alsa
  gstreamer1.0-x fonts-dejavu-core
)

# --- 1. host prerequisites ----------------------------------------------------
missing=()
for p in "${host_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing host packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if command -v rustup >/dev/null; then
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    log "adding rustup target aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu >&2
  fi
else
  log "warning: no rustup; the aarch64-unknown-linux-gnu std must come from elsewhere"
fi

# --- 2. the sysroot -----------------------------------------------------------
key=$(
  {
    printf '%s\n' "$suite" "$mirror" "$security_mirror" "${sysroot_dev[@]}" "${sysroot_runtime[@]}"
    cat "${BASH_SOURCE[0]}"
  } | sha256sum | cut -c1-12
)
sysroot="$CALLBOX_CACHE/arm64-sysroot-$key"

# Builds use the stable name $CALLBOX_CACHE/arm64-sysroot (a link to the current one),
# so that a new sysroot does not change RUSTFLAGS/CFLAGS and force a full rebuild.
link="$CALLBOX_CACHE/arm64-sysroot"
point_link() {
  [ "$(readlink "$link" 2>/dev/null)" = "$(basename "$sysroot")" ] && return
  ln -sfn "$(basename "$sysroot")" "$link.tmp.$$"
  mv -T "$link.tmp.$$" "$link"
}

if [ -f "$sysroot/.complete" ]; then
  point_link
  printf '%s\n' "$sysroot"
  exit 0
fi

log "creating $sysroot (bookworm arm64, once)"
start=$(date +%s)
tmp="$CALLBOX_CACHE/.arm64-sysroot-$key.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"

# bookworm + updates + security, main only: the versions a Pi OS bookworm box has.
pkgs=$(IFS=,; echo "${sysroot_dev[*]},${sysroot_runtime[*]}")
mmdebstrap --quiet --variant=extract --arch=arm64 --mode=auto \
  --include="$pkgs" \
  "$suite" "$tmp" \
  "deb $mirror $suite main" \
  "deb $mirror $suite-updates main" \
  "deb $security_mirror $suite-security main" >&2

# Relative symlinks: `/lib/aarch64-linux-gnu/libfoo.so.1` would otherwise point at the
# host (the linker and qemu -L would then miss or, worse, pick an amd64 file).
fixed=0
while IFS= read -r -d "" sl; do
  target=$(readlink "$sl")
  case $target in
    /*)
      rel=$(realpath -s -m --relative-to="$(dirname "$sl")" "$tmp$target")
      ln -sfn "$rel" "$sl"
      fixed=$((fixed + 1))
      ;;
  esac
done < <(find "$tmp" -type l -print0)
log "made $fixed absolute symlinks relative"

# update-alternatives never ran: give the loader the links libblas3/liblapack3's
# postinst would make (libgstlibav.so -> libavfilter -> … -> libblas.so.3 fails without).
for alt in blas lapack; do
  for f in "$tmp/usr/lib/aarch64-linux-gnu/$alt"/lib*.so.*; do
    [ -e "$f" ] || continue
    l="$tmp/usr/lib/aarch64-linux-gnu/$(basename "$f")"
    [ -e "$l" ] || [ -L "$l" ] || ln -s "$alt/$(basename "$f")" "$l"
  done
done

# Nothing reads these: documentation, and static archives that have a shared library
# beside them (a dynamic link never picks libfoo.a over libfoo.so in the same folder;
# archives without one, like glibc's libpthread.a and libc_nonshared.a, stay).
rm -rf "$tmp"/usr/share/{doc,man,info,locale,lintian,bug} "$tmp"/var/cache/apt/archives/*.deb
while IFS= read -r -d '' a; do
  [ -e "${a%.a}.so" ] && rm -f "$a"
done < <(find "$tmp" -name 'lib*.a' -type f -print0)

touch "$tmp/.complete"
rm -rf "$sysroot"
mv "$tmp" "$sysroot"
trap - EXIT
point_link
# Sysroots of earlier versions of this script or package list are ~1 GB each.
for old in "$CALLBOX_CACHE"/arm64-sysroot-*; do
  [ "$old" = "$sysroot" ] || { log "removing stale $old"; rm -rf "$old"; }
done
log "sysroot ready in $(($(date +%s) - start)) s, $(du -sh "$sysroot" | cut -f1)"
printf '%s\n' "$sysroot"
