#!/usr/bin/env bash
# make deb-check: installs the packages from `make deb` into a clean Debian bookworm
# (mmdebstrap --variant=minbase) with apt, as an installer would, so the packages'
# Depends: are what is tested; then runs packaging/deb/check-installed.sh inside it,
# and checks that an edited config survives an upgrade.
#
# Downloaded .debs are kept in $CALLBOX_CACHE/apt-archives/ (apt's own cache, synced in
# and out), so a second run downloads nothing but the package lists.
# Usage: scripts/deb-check.sh [arch]   (default: the host's, amd64 here)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/paths.sh
. scripts/paths.sh

arch=${1:-$(dpkg --print-architecture)}
pick() { ls -t target/debian/"$1"_*_"$arch".deb 2>/dev/null | grep -v upgradetest | head -1; }
box=$(pick callbox) hub=$(pick callbox-hub)
[ -n "$box" ] && [ -n "$hub" ] || { echo "deb-check: no $arch packages in target/debian; run \`make deb\`" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "deb-check: mmdebstrap missing; run \`make setup\`" >&2; exit 1; }

# An upgrade: the same package under a higher version (same conffile content).
version=$(dpkg-deb -f "$box" Version)
upgrade_dir=target/debian/upgrade
rm -rf "$upgrade_dir"; mkdir -p "$upgrade_dir"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
dpkg-deb -R "$box" "$work/pkg"
sed -i "s/^Version: .*/Version: ${version}+upgradetest/" "$work/pkg/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/pkg" "$upgrade_dir/callbox_${version}+upgradetest_${arch}.deb" >/dev/null

cache="$CALLBOX_CACHE/apt-archives/bookworm-$arch"
mkdir -p "$cache"
rootfs="$root/target/deb-check/rootfs-$arch"
rm -rf "$rootfs"; mkdir -p "$(dirname "$rootfs")"

t0=$(date +%s)
# shellcheck disable=SC2016 # $1 is mmdebstrap's hook argument (the chroot)
mmdebstrap --quiet --variant=minbase --arch="$arch" --mode=root \
  --aptopt='APT::Install-Recommends "false"' \
  --skip=download/empty --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $cache /var/cache/apt/archives/" \
  --customize-hook="copy-in $box $hub packaging/deb/check-installed.sh /root/" \
  --customize-hook='mkdir -p "$1"/root/upgrade' \
  --customize-hook="copy-in $upgrade_dir/callbox_${version}+upgradetest_${arch}.deb /root/upgrade/" \
  --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/'"$(basename "$box") /root/$(basename "$hub")"' >/dev/null' \
  --customize-hook='chroot "$1" sh /root/check-installed.sh' \
  --customize-hook='sed -i "s/^credential = .*/credential = \"kept-across-upgrades\"/" "$1"/etc/callbox/callbox.toml' \
  --customize-hook='chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q /root/upgrade/'"callbox_${version}+upgradetest_${arch}.deb"' >/dev/null' \
  --customize-hook='grep -q "^credential = \"kept-across-upgrades\"" "$1"/etc/callbox/callbox.toml || { echo "deb-check: FAIL: the upgrade replaced the edited config" >&2; exit 1; }' \
  --customize-hook='echo "deb-check: upgraded to $(chroot "$1" dpkg-query -W -f="\${Version}" callbox); edited /etc/callbox/callbox.toml kept"' \
  --customize-hook="sync-out /var/cache/apt/archives $cache" \
  bookworm "$rootfs" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main"
t1=$(date +%s)
echo "deb-check: $arch packages installed and checked in a clean bookworm in $((t1 - t0)) s"
rm -rf "$rootfs"
