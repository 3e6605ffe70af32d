#!/bin/bash
# Runs in the lab's guest after hardware.sh (lab/lab.sh): the guest half of the call
# scenario whose host half is lab/call_scenario.py.
#  1. livekit-server (the host's binary, from the share) in the guest: signalling on
#     LK_PORT (forwarded from the host's 127.0.0.1:LK_PORT), media on one UDP port
#     LK_UDP advertised at the guest's address 10.0.2.15, which lab.sh forwards from
#     10.0.2.15:LK_UDP in the call's network namespace: the box and the host's caller
#     both reach 10.0.2.15:LK_UDP (the same-address trick of design §6);
#  2. the hub in the guest pointed at it, the box switched to answer = "manual";
#  3. call/ready in the share (the caller's credential, the box's boot -> READY);
#  4. then serves the host's requests until call/stop appears: each call/rpc/N.sh is run
#     (in the background, with lab/checks/call-lib.sh sourced) and answered with
#     call/rpc/N.out and call/rpc/N.rc.
# Settings from the host: call/env (LK_PORT, LK_UDP; GST_DEBUG from LAB_GST_DEBUG).
set -u
export SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat LC_ALL=C.UTF-8
share=${LAB_SHARE:?no LAB_SHARE}
dir=$share/call
say() { echo "call-guest: $*"; }
fail() { say "FAIL $*"; echo "$*" >"$dir/failed"; exit 1; }
[ -f "$dir/env" ] || fail "no $dir/env from the host"
# shellcheck disable=SC1091
. "$dir/env"
: "${LK_PORT:?}" "${LK_UDP:?}"

# 1. livekit-server.
install -m 0755 "$share/livekit-server" /usr/local/bin/livekit-server ||
  fail "no livekit-server in the share"
cat >/etc/livekit-lab.yaml <<EOF
# The hardware lab's LiveKit server (lab/checks/call-guest.sh): reached from the host
# through QEMU's port forwards, advertising the guest's own address (no loopback
# candidate: the host's forward is bound to 10.0.2.15).
port: $LK_PORT
rtc:
  udp_port: $LK_UDP
  tcp_port: 0
  node_ip: 10.0.2.15
  use_external_ip: false
  enable_loopback_candidate: false
turn:
  enabled: false
keys:
  lab-key: lab-secret-not-for-production-0123456789
webhook:
  api_key: lab-key
  urls: ["http://127.0.0.1:8080/livekit/webhook"]
logging:
  level: info
EOF
systemd-run --quiet --unit=livekit-lab --property=Restart=no \
  /usr/local/bin/livekit-server --config /etc/livekit-lab.yaml ||
  fail "cannot start livekit-server"
up=0
for _ in $(seq 120); do
  if (echo >"/dev/tcp/127.0.0.1/$LK_PORT") 2>/dev/null; then up=1; break; fi
  sleep 0.5
done
[ "$up" = 1 ] || { journalctl -u livekit-lab -o cat -n 20; fail "livekit-server not listening on $LK_PORT"; }
say "livekit-server $(/usr/local/bin/livekit-server --version 2>/dev/null | awk '{print $NF}') up on :$LK_PORT, RTC UDP :$LK_UDP"

# 2. The hub uses it; the box rings for a person to answer.
sed -i "s|^url = .*|url = \"ws://127.0.0.1:$LK_PORT\"|" /etc/callbox-hub/hub.toml
systemctl restart callbox-hub || fail "callbox-hub did not restart"
sed -i 's/^answer = .*/answer = "manual"/' /etc/callbox/callbox.toml
if [ -n "${GST_DEBUG:-}" ]; then
  # LAB_GST_DEBUG on the host: the box's GStreamer log into the journal.
  mkdir -p /run/systemd/system/callbox.service.d
  printf '[Service]\nEnvironment=GST_DEBUG=%s GST_DEBUG_NO_COLOR=1\n' "$GST_DEBUG" \
    >/run/systemd/system/callbox.service.d/lab-debug.conf
  systemctl daemon-reload
fi
systemctl restart callbox || fail "callbox did not restart (journalctl -u callbox)"
online=false
for _ in $(seq 60); do
  online=$(callbox status 2>/dev/null | sed -n 's/.*"hub_online": *\(true\|false\).*/\1/p')
  [ "$online" = true ] && break
  sleep 0.5
done
[ "$online" = true ] || { journalctl -u callbox -o cat -n 30; fail "the box is not online with the hub"; }
say "callbox online with the hub, answer = manual"
# The installer's diagnostic on real drivers: vivid's formats, snd-aloop, vkms' mode,
# the gpio-sim chip, the hub and the credential. It must find the box able to take calls.
check_out=$(callbox check 2>&1) || fail "callbox check says the box cannot take calls: $check_out"
while IFS= read -r line; do say "  check: $line"; done <<<"$check_out"
# The sound cards come from the alsa crate, the camera's formats from v4l2 ioctls.
grep -q 'ALSA capture: .*hw:[0-9]*,1 "Loopback' <<<"$check_out" ||
  fail "callbox check does not list snd-aloop's capture device hw:N,1"
grep -q 'camera .*/dev/video' <<<"$check_out" || fail "callbox check does not list vivid's camera"

# 3. Ready.
mkdir -p "$dir/rpc"
{
  echo "credential=$(cat /root/lab-caller.credential)"
  echo "box=lab-box"
  echo "boot_ready_s=$(cat "$share/boot-ready-s" 2>/dev/null || echo "")"
} >"$dir/ready.tmp"
mv "$dir/ready.tmp" "$dir/ready"

# 4. Requests. The loop polls the 9p share (no inotify across 9p) every 50 ms.
cd "$dir/rpc" || exit 1
deadline=$((SECONDS + ${CALL_GUEST_TIMEOUT:-900}))
while [ ! -e "$dir/stop" ]; do
  if ((SECONDS > deadline)); then fail "no call/stop from the host in ${CALL_GUEST_TIMEOUT:-900} s"; fi
  for req in *.sh; do
    [ -e "$req" ] || continue
    id=${req%.sh}
    mv "$req" "$id.run"
    (
      bash -c ". '$share/call-lib.sh'; . './$id.run'" >"$id.out" 2>&1
      echo $? >"$id.rc.tmp"
      mv "$id.rc.tmp" "$id.rc"
    ) </dev/null &
  done
  sleep 0.05
done
wait
say "host said stop"
rc=0
[ -e "$dir/result-ok" ] || rc=1
exit "$rc"
