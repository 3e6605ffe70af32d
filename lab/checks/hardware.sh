#!/bin/bash
# Runs in the lab's guest (lab/boot.sh lab/checks/hardware.sh): proves the box's
# hardware is there on real kernel drivers, and, when the callbox package is installed,
# that callbox.service is up on it. Prints every check as PASS/FAIL and ends with
# "N passed, N failed"; the exit status is the number of failures (0: all passed).
set -u
export SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat LC_ALL=C.UTF-8
pass=0 failed=0
section() { printf '\n=== %s\n' "$*"; }
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
up() { cut -d' ' -f1 /proc/uptime; }
mono_s() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1e6 }'; }

section "boot"
systemd-analyze time 2>/dev/null | head -1 || true
echo "guest uptime now: $(up) s"

installed=0
if systemctl cat callbox.service >/dev/null 2>&1; then installed=1; fi
if [ "$installed" = 1 ]; then
  section "callbox.service at boot"
  # Type=notify: active means the daemon sent READY=1.
  for _ in $(seq 60); do
    state=$(systemctl show -p ActiveState --value callbox)
    [ "$state" = activating ] || break
    sleep 1
  done
  systemctl status callbox --no-pager -n 15 || true
  state=$(systemctl show -p ActiveState --value callbox)
  if [ "$state" = active ]; then
    t=$(systemctl show -p ActiveEnterTimestampMonotonic --value callbox)
    ok "callbox.service active (READY=1) at guest uptime $(mono_s "$t") s"
    [ -z "${LAB_SHARE:-}" ] || mono_s "$t" >"$LAB_SHARE/boot-ready-s"
  else
    bad "callbox.service is $state (result $(systemctl show -p Result --value callbox), exit $(systemctl show -p ExecMainStatus --value callbox))"
    journalctl -u callbox --no-pager -n 30 -o cat || true
  fi
  id callbox || true
  # Give the devices back for the raw checks; started again at the end.
  systemctl stop callbox
fi

section "device nodes and their groups"
ls -l /dev/video* /dev/snd/ /dev/dri/ /dev/gpiochip* 2>&1
# shellcheck disable=SC2317 # called through check
grp() { [ "$(stat -c %G "$1" 2>/dev/null)" = "$2" ]; }
check "/dev/video0 group video" grp /dev/video0 video
check "/dev/dri/card0 group video" grp /dev/dri/card0 video
check "/dev/snd/controlC0 group audio" grp /dev/snd/controlC0 audio
if getent group gpio >/dev/null; then
  for c in /dev/gpiochip*; do check "$c group gpio (60-callbox-gpio.rules)" grp "$c" gpio; done
else
  echo "(no gpio group: the callbox package is not installed, /dev/gpiochip* stay root-only)"
fi

section "camera: vivid"
v4l2-ctl --list-devices
check "vivid is /dev/video0" sh -c 'v4l2-ctl -d /dev/video0 --info | grep -q "Driver name *: vivid"'
v4l2-ctl -d /dev/video0 --list-formats-ext | grep -A8 "640x360" | grep -m1 -B8 "30.000 fps" || true
t0=$(up)
check "gst v4l2src 30 buffers of 640x360@30" timeout 60 gst-launch-1.0 -q --no-position v4l2src device=/dev/video0 num-buffers=30 \
  ! video/x-raw,width=640,height=360,framerate=30/1 ! fakesink
echo "(30 frames in $(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }') s, pipeline start included)"

section "sound: snd-aloop"
aplay -l
arecord -l
check "Loopback playback card" sh -c 'aplay -l | grep -q "Loopback"'
check "Loopback capture card" sh -c 'arecord -l | grep -q "Loopback"'
# A tone played into hw:Loopback,0,0 comes out of hw:Loopback,1,0.
rm -f /tmp/loop.raw
timeout 20 gst-launch-1.0 -q --no-position audiotestsrc wave=sine freq=440 volume=0.5 num-buffers=100 \
  ! audio/x-raw,format=S16LE,rate=48000,channels=2 ! alsasink device=hw:Loopback,0,0 &
player=$!
timeout 10 arecord -q -D hw:Loopback,1,0 -f S16_LE -r 48000 -c 2 -d 1 -t raw /tmp/loop.raw
wait $player
nonzero=$(od -An -v -tx1 /tmp/loop.raw 2>/dev/null | tr -s ' ' '\n' | grep -cv '^\(00\)\?$')
echo "recorded $(stat -c %s /tmp/loop.raw 2>/dev/null || echo 0) bytes, $nonzero non-zero"
check "tone through the loopback (non-silent capture)" test "${nonzero:-0}" -gt 1000

section "GPIO: gpio-sim"
gpiodetect
chip=$(gpiodetect | awk '/\[callbox-lab\]/ { print $1 }')
gpioinfo "$chip"
check "gpio-sim chip callbox-lab with 10 lines" sh -c "gpiodetect | grep -q 'callbox-lab] (10 lines)'"
sim=$(echo /sys/devices/platform/gpio-sim.*/"$chip")
echo pull-down >"$sim/sim_gpio0/pull"
v_pressed=$(gpioget "$chip" 0)
echo pull-up >"$sim/sim_gpio0/pull"
v_released=$(gpioget "$chip" 0)
echo "line 0 (call button) pulled down: $v_pressed, pulled up: $v_released"
check "a simulated button press reads on the cdev" test "$v_pressed$v_released" = 01
gpioset --mode=time --sec=3 "$chip" 5=1 &
setter=$!
sleep 1
v_led=$(cat "$sim/sim_gpio5/value")
wait $setter
echo "line 5 (status LED) set to 1 by gpioset, simulator reads $v_led"
check "an LED line set through the cdev reads back in the simulator" test "$v_led" = 1

section "display: vkms"
modetest -M vkms -c | head -12
check "vkms connector Virtual-1 connected" sh -c 'modetest -M vkms -c | grep -Eq "connected[[:space:]]+Virtual-1"'
check "kmssink driver-name=vkms shows 30 frames" timeout 60 gst-launch-1.0 -q --no-position videotestsrc num-buffers=30 \
  ! video/x-raw,width=640,height=360 ! kmssink driver-name=vkms
if timeout 30 gst-launch-1.0 -q --no-position videotestsrc num-buffers=5 ! kmssink >/tmp/kms.log 2>&1; then
  echo "(kmssink without driver-name found vkms by itself)"
else
  echo "(kmssink without driver-name fails, as design §4 says: $(grep -m1 -i "error" /tmp/kms.log | cut -c1-160))"
fi

if [ "$installed" = 1 ]; then
  section "callbox.service on the lab hardware"
  t0=$(up)
  systemctl start callbox
  state=$(systemctl show -p ActiveState --value callbox)
  echo "systemctl start took $(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }') s: $state"
  check "callbox.service active again" test "$state" = active
  journalctl -u callbox --no-pager -o cat -n 12 | cut -c1-240
  callbox status 2>&1 | head -20 || true
  # The call button through the daemon: a press on the simulator shows in its log.
  if [ "$state" = active ]; then
    since=$(date '+%Y-%m-%d %H:%M:%S')
    sleep 1
    echo pull-down >"$sim/sim_gpio0/pull"; sleep 0.3; echo pull-up >"$sim/sim_gpio0/pull"; sleep 1
    journalctl -u callbox -o cat --no-pager --since "$since" | grep -i "press" | cut -c1-200
    check "callbox saw the call button press" sh -c "journalctl -u callbox -o cat --no-pager --since '$since' | grep -q 'press='"
    # The idle pattern (heartbeat: 100 ms lit every 2 s) on the status LED line, read
    # back from the simulator: count the samples that saw it lit.
    leds=""
    for _ in $(seq 150); do leds+=$(cat "$sim/sim_gpio5/value"); sleep 0.02; done
    lit=$(echo "$leds" | tr -cd 1 | wc -c)
    echo "status LED ($(callbox status 2>/dev/null | tr -d '\n ' | grep -o '"status":{[^}]*' | head -1)): lit in $lit of 150 samples"
    check "callbox drives the status LED (lit now and then, not stuck)" test "$lit" -gt 0 -a "$lit" -lt 150
  fi
fi

if [ "$installed" = 1 ]; then
  section "the service's sandbox (callbox.service's user, groups and device policy)"
  # design §4 asks whether PrivateUsers=yes keeps the device groups working: the same
  # properties as the unit, on the camera, the sound card, the display and the GPIO chip.
  props=(-p User=callbox -p Group=callbox -p "SupplementaryGroups=video audio render gpio"
    -p PrivateUsers=yes -p DevicePolicy=closed -p "DeviceAllow=char-video4linux rw"
    -p "DeviceAllow=char-alsa rw" -p "DeviceAllow=char-drm rw" -p "DeviceAllow=char-gpiochip rw"
    -p NoNewPrivileges=yes -p ProtectSystem=strict -p ProtectHome=yes -p PrivateTmp=yes
    -p "Environment=GST_REGISTRY=/var/cache/callbox/gstreamer-registry.bin")
  sb() { systemd-run --quiet --wait --pipe --collect "${props[@]}" "$@"; }
  sb id
  check "sandbox: v4l2src 10 frames from /dev/video0" sb timeout 60 gst-launch-1.0 -q --no-position v4l2src device=/dev/video0 num-buffers=10 \
    ! video/x-raw,width=640,height=360,framerate=30/1 ! fakesink
  check "sandbox: alsasrc from the Loopback card" sb timeout 30 gst-launch-1.0 -q --no-position alsasrc device=hw:Loopback,1,1 num-buffers=10 ! fakesink
  # The daemon's call screen holds the display (DRM master) while it runs: another
  # kmssink can open vkms but not set a plane ("drmModeSetPlane failed: Permission
  # denied"). Stop it for this check.
  systemctl stop callbox
  check "sandbox: kmssink on vkms" sb timeout 60 gst-launch-1.0 -q --no-position videotestsrc num-buffers=10 ! kmssink driver-name=vkms
  systemctl start callbox
  check "sandbox: gpiodetect sees the chip" sb sh -c 'gpiodetect | grep -q callbox-lab'
fi

if systemctl cat callbox-hub.service >/dev/null 2>&1; then
  section "callbox-hub in the guest"
  systemctl status callbox-hub --no-pager -n 5 | cut -c1-200 || true
  check "callbox-hub.service active" systemctl is-active -q callbox-hub
  online=false
  for _ in $(seq 30); do
    online=$(callbox status 2>/dev/null | sed -n 's/.*"hub_online": *\(true\|false\).*/\1/p')
    [ "$online" = true ] && break
    sleep 1
  done
  check "callbox is online with the hub (callbox status: hub_online)" test "$online" = true
fi

if [ -n "${LAB_SHARE:-}" ] && [ -f "$LAB_SHARE/expect-host-check" ]; then
  section "host -> guest port forward"
  # lab/lab.sh polls the hub's /health through its --fwd port and writes the answer here.
  for _ in $(seq 60); do [ -s "$LAB_SHARE/host-check" ] && break; sleep 1; done
  cat "$LAB_SHARE/host-check" 2>/dev/null; echo
  check "the host reached the guest's hub through 127.0.0.1:$(cat "$LAB_SHARE/expect-host-check")" test -s "$LAB_SHARE/host-check"
fi

echo
echo "$pass passed, $failed failed"
exit "$failed"
