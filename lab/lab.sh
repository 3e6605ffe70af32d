#!/usr/bin/env bash
# make lab: the hardware lab end to end (design §6): build (or reuse) the kernel and the
# root disk, boot it in QEMU and run lab/checks/hardware.sh inside: camera (vivid),
# sound (snd-aloop), GPIO (gpio-sim), display (vkms), device groups and, with the
# callbox package, callbox.service reaching READY on that hardware.
#   lab/lab.sh [CALLBOX_DEB [CALLBOX_HUB_DEB]]
# Default packages: the newest target/debian/callbox{,-hub}_*_amd64.deb (`make deb`),
# if any; LAB_NO_DEB=1 boots without them. Each step is cached under
# $CALLBOX_CACHE/lab/ (see lab/README.md): a second run only boots.
set -euo pipefail
# shellcheck source=lab/lib.sh
. "$(dirname "$0")/lib.sh"

# The newest target/debian/NAME_*_amd64.deb, not deb-check's +upgradetest copies.
pick() {
  local f best=""
  for f in "$LAB_ROOT"/target/debian/"$1"_*_amd64.deb; do
    if [ ! -f "$f" ] || [[ "$f" == *upgradetest* ]]; then continue; fi
    if [ -z "$best" ] || [ "$f" -nt "$best" ]; then best=$f; fi
  done
  echo "$best"
}
box=${1:-} hub=${2:-}
if [ -z "$box" ] && [ "${LAB_NO_DEB:-0}" != 1 ]; then
  box=$(pick callbox) hub=$(pick callbox-hub)
fi
[ -n "$box" ] || lab_log "no callbox .deb (make deb): the image has the lab without the box"

t0=$(lab_now)
kernel=$("$LAB_DIR/build-kernel.sh")
t_kernel=$(lab_since "$t0")
t1=$(lab_now)
rootfs=$("$LAB_DIR/build-rootfs.sh" ${box:+"$box"} ${hub:+"$hub"})
t_rootfs=$(lab_since "$t1")
# With the hub in the guest: forward a free host port (127.0.0.1 only) to its 8080 and
# prove the path from the host (GET /health); the guest's checks wait for the answer.
free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  lab_die "no free port on 127.0.0.1"
}
boot_args=() poller=""
if [ -n "$hub" ] && [ -n "$box" ] && command -v curl >/dev/null; then
  port=$(free_port)
  mkdir -p "$LAB_CACHE/runs"
  run_dir=$(mktemp -d "$LAB_CACHE/runs/$(date +%Y%m%d-%H%M%S)-XXXX")
  mkdir -p "$run_dir/share"
  echo "$port" >"$run_dir/share/expect-host-check"
  (
    for _ in $(seq 600); do
      if out=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null); then
        printf 'host: GET http://127.0.0.1:%s/health -> %s\n' "$port" "$out" >"$run_dir/share/host-check"
        exit 0
      fi
      sleep 1
    done
  ) </dev/null >/dev/null 2>&1 &
  poller=$!
  boot_args=(--run-dir "$run_dir" --fwd "tcp:$port:8080")
fi
t2=$(lab_now)
rc=0
"$LAB_DIR/boot.sh" --kernel "$kernel" --rootfs "$rootfs" "${boot_args[@]}" "$LAB_DIR/checks/hardware.sh" || rc=$?
[ -z "$poller" ] || kill "$poller" 2>/dev/null || true
lab_log "kernel step ${t_kernel}s, rootfs step ${t_rootfs}s, boot + checks $(lab_since "$t2")s, total $(lab_since "$t0")s"
exit "$rc"
