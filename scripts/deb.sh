#!/usr/bin/env bash
# make deb: release build of callbox and callbox-hub, packaged with cargo-deb as
#   target/debian/callbox_<version>_<arch>.deb
#   target/debian/callbox-hub_<version>_<arch>.deb
# What goes into each package is [package.metadata.deb] in Cargo.toml and hub/Cargo.toml.
# Usage: scripts/deb.sh [--target <rust target triple>] [--no-build]
#   --target aarch64-unknown-linux-gnu packages binaries cross-built by
#   scripts/cross-arm64.sh (which passes --no-build).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/paths.sh
. scripts/paths.sh

target=() build=1
while (($#)); do
  case "$1" in
    --target) target=(--target "$2"); shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "deb.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
[ -x "$CARGO_DEB" ] || { echo "deb.sh: cargo-deb missing; run \`make setup\`" >&2; exit 1; }

t0=$(date +%s)
if ((build)); then
  cargo build --release --locked -p callbox -p callbox-hub --bins "${target[@]}"
fi
t1=$(date +%s)
mkdir -p target/debian
for pkg in callbox callbox-hub; do
  # cargo-deb runs as `cargo deb`; put the pinned one first on PATH.
  PATH="$(dirname "$CARGO_DEB"):$PATH" cargo deb --no-build --locked -p "$pkg" \
    --output target/debian/ "${target[@]}" >/dev/null
done
t2=$(date +%s)
ls -l target/debian/*.deb | awk '{print "deb: " $NF " (" $5 " bytes)"}'
echo "deb: release build $((t1 - t0)) s, packaging $((t2 - t1)) s"
