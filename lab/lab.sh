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
# Free ports on the host's 127.0.0.1: TCP for the hub's forward, TCP and UDP (the same
# numbers in the guest) for LiveKit's signalling and RTC.
free_ports() {
  python3 - <<'PY'
import socket
tcp = []
while len(tcp) < 2:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); tcp.append(s)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(tcp[0].getsockname()[1], tcp[1].getsockname()[1], u.getsockname()[1])
PY
}
boot_args=() poller="" scenario="" in_ns=()
call=0
if [ -n "$hub" ] && [ -n "$box" ] && [ "${LAB_NO_CALL:-0}" != 1 ]; then call=1; fi
mkdir -p "$LAB_CACHE/runs"
run_dir=$(mktemp -d "$LAB_CACHE/runs/$(date +%Y%m%d-%H%M%S)-XXXX")
share="$run_dir/share"
mkdir -p "$share"
puts=("$LAB_DIR/checks/hardware.sh")
if [ -n "$box" ]; then
  # The daemon's unit tests, for its gpiocdev tests on the guest's gpio-sim chip.
  tests_bin=$(cd "$LAB_ROOT" && cargo test --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "callbox" and "lib" in m["target"]["kind"]:
        print(m["executable"])') || true
  [ -n "$tests_bin" ] || lab_die "cannot build the daemon's unit tests (cargo test --lib --no-run)"
  cp "$tests_bin" "$share/callbox-lib-tests"
fi
if [ "$call" = 1 ]; then
  # shellcheck source=scripts/paths.sh
  . "$LAB_ROOT/scripts/paths.sh"
  [ -x "$LIVEKIT_SERVER" ] || lab_die "no $LIVEKIT_SERVER (scripts/setup.sh installs it)"
  [ -x "$CALLBOX_VENV/bin/python" ] || lab_die "no $CALLBOX_VENV (scripts/setup.sh makes it)"
  # The call runs in a network namespace made for it (design §6, the network rule):
  # QEMU, the caller and the poller below see only its loopback and a veth pair.
  # - The caller's libwebrtc gathers no loopback candidates: it sends from 198.18.0.1
  #   (lab0), and QEMU's restrict=on would drop the guest's answers to that address, so
  #   this namespace is the fence instead (boot.sh --open-net).
  # - LiveKit in the guest advertises the guest's address 10.0.2.15 and one UDP port;
  #   10.0.2.15 is also on this namespace's loopback, with QEMU's forward of that port
  #   bound to it: the caller and the box both reach 10.0.2.15:port.
  ns=callbox-lab-$$
  ip netns add "$ns" || lab_die "cannot make network namespace $ns (root and iproute2 needed)"
  # shellcheck disable=SC2064
  trap "ip netns del $ns 2>/dev/null || true" EXIT
  ip -n "$ns" link set lo up
  # (veth: this host's kernel has no dummy links; both ends stay in the namespace.)
  ip -n "$ns" link add lab0 type veth peer name lab1
  ip -n "$ns" addr add 198.18.0.1/24 dev lab0   # RFC 2544's test range, in this namespace only
  ip -n "$ns" link set lab1 up
  ip -n "$ns" link set lab0 up
  ip -n "$ns" addr add 10.0.2.15/32 dev lo   # QEMU's guest address (slirp's default)
  in_ns=(ip netns exec "$ns")
  read -r hub_port lk_port lk_udp < <("${in_ns[@]}" bash -c "$(declare -f free_ports); free_ports")
  mkdir -p "$share/call/rpc"
  printf 'LK_PORT=%s\nLK_UDP=%s\nGST_DEBUG=%q\n' "$lk_port" "$lk_udp" "${LAB_GST_DEBUG:-}" >"$share/call/env"
  cp "$LIVEKIT_SERVER" "$share/livekit-server"
  puts+=("$LAB_DIR/checks/call-guest.sh" "$LAB_DIR/checks/call-lib.sh" "$LAB_DIR/checks/drm-capture.py")
  boot_args+=(--open-net --fwd "tcp:$hub_port:8080" --fwd "tcp:$lk_port" --fwd "udp:$lk_udp@10.0.2.15")
  echo "$hub_port" >"$share/expect-host-check"
  # The hub's /health through the forward, for hardware.sh's "host -> guest" check.
  "${in_ns[@]}" bash -c '
    for _ in $(seq 600); do
      if out=$(curl -fsS --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null); then
        printf "host: GET http://127.0.0.1:%s/health -> %s\n" "$1" "$out" >"$2/host-check"
        exit 0
      fi
      sleep 1
    done' _ "$hub_port" "$share" </dev/null >/dev/null 2>&1 &
  poller=$!
  lab_log "call: hub on 127.0.0.1:$hub_port, LiveKit on 127.0.0.1:$lk_port (RTC: UDP 10.0.2.15:$lk_udp), forwarded into the guest (namespace $ns)"
fi
for f in "${puts[@]}"; do cp "$f" "$share/"; done
out_dir="$LAB_ROOT/target/lab"
mkdir -p "$out_dir"
rm -f "$out_dir"/*.png "$out_dir/summary.json"
t2=$(lab_now)
rc=0 src=0
if [ "$call" = 1 ]; then
  # The host half of the call, alongside the guest (it waits for call/ready).
  "${in_ns[@]}" "$CALLBOX_VENV/bin/python" "$LAB_DIR/call_scenario.py" --run-dir "$run_dir" \
    --hub-port "$hub_port" --out "$out_dir" 2>&1 | sed -u 's/^/host: /' &
  scenario=$!
fi
"${in_ns[@]}" "$LAB_DIR/boot.sh" --kernel "$kernel" --rootfs "$rootfs" --run-dir "$run_dir" --timeout 1500 \
  "${boot_args[@]}" "$LAB_DIR/checks/lab-guest.sh" || rc=$?
[ -z "$poller" ] || kill "$poller" 2>/dev/null || true
if [ -n "$scenario" ]; then
  wait "$scenario" || src=$?
  [ -f "$out_dir/summary.json" ] || src=1
  cp "$share/journal.txt" "$out_dir/journal.txt" 2>/dev/null || true
fi
total=$(lab_since "$t0")
lab_log "kernel step ${t_kernel}s, rootfs step ${t_rootfs}s, boot + checks $(lab_since "$t2")s, total ${total}s"
if [ -f "$out_dir/summary.json" ]; then
  python3 - "$out_dir/summary.json" "$total" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); c = s.get("call1", {})
s["lab_wall_s"] = round(float(sys.argv[2])); json.dump(s, open(sys.argv[1], "w"), indent=2)
print(f"lab summary: call answered by the gpio-sim call button; caller decoded {c.get('pattern_frames')} "
      f"frames of vivid's bars ({c.get('video_fps')} fps) and {c.get('audio_frames_at_tone')} tone frames; "
      f"box screen: caller's video {'drawn' if s.get('screen', {}).get('plane', {}).get('bars', {}).get('ok') else 'NOT drawn'}, "
      f"colours {'match' if s.get('screen', {}).get('colours_match') else 'do NOT match'} -> target/lab/box-screen.png; "
      f"box speaker: caller's tone {'heard' if s.get('speaker', {}).get('ok') else 'NOT heard'}; "
      f"invite -> first frame {s.get('invite_to_first_frame_ms')} ms, answer -> first frame "
      f"{s.get('answer_to_first_frame_ms')} ms; boot -> READY {s.get('boot_to_ready_s')} s; "
      f"SIGKILL -> online {s.get('sigkill_to_online_ms')} ms; lab wall time {s['lab_wall_s']} s; "
      f"{s.get('passed')} host checks passed, {len(s.get('failed', []))} failed")
PY
fi
[ "$rc" = 0 ] || exit "$rc"
exit "$src"
