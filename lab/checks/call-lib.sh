# shellcheck shell=bash
# Sourced by every request lab/call_scenario.py sends into the guest (call-guest.sh):
# the hands and eyes of a person at the box, on the lab's real drivers.
#   press BUTTON [MS]     pull a gpio-sim button line low for MS (200) ms, then release
#   led NAME              1 if the LED line is lit, 0 if not (status, mute, privacy)
#   sample_leds SECONDS   print "t_ms status privacy" at every change of either line
#   wait_state STATE S    wait up to S seconds for `callbox status` to show STATE
#   state                 the state `callbox status` shows
#   wait_frames_received N S  wait up to S seconds for the box to have decoded N frames
#   play_tone HZ SECONDS  play a sine into hw:Loopback,0,1: the box's microphone
#   record_speaker S FILE record what the box plays (hw:Loopback,1,0), raw S16LE 48 kHz mono
#   capture_screen DIR    drm-capture.py: every vkms plane's framebuffer into DIR
#   dpms                  the connected connector's DPMS state (On, Off), from sysfs
#   wait_dpms STATE S     wait up to S seconds for dpms to show STATE
LAB_SHARE=${LAB_SHARE:-/run/lab}
lines_of() {
  case "$1" in
    call) echo 0 ;; hangup) echo 1 ;; mute) echo 2 ;; dnd) echo 3 ;; speed-dial) echo 4 ;;
    status) echo 5 ;; mute-led) echo 6 ;; privacy) echo 7 ;;
    volume-up) echo 8 ;; volume-down) echo 9 ;;
    *) echo "unknown line $1" >&2; return 1 ;;
  esac
}
sim_dir() {
  local chip
  chip=$(gpiodetect | awk '/\[callbox-lab\]/ { print $1 }')
  echo /sys/devices/platform/gpio-sim.*/"$chip"
}
press() {
  local sim line
  sim=$(sim_dir); line=$(lines_of "$1") || return 1
  echo pull-down >"$sim/sim_gpio$line/pull"
  sleep "$(awk -v ms="${2:-200}" 'BEGIN { print ms / 1000 }')"
  echo pull-up >"$sim/sim_gpio$line/pull"
}
led() {
  local sim line
  sim=$(sim_dir); line=$(lines_of "$1") || return 1
  cat "$sim/sim_gpio$line/value"
}
# Bash builtins only in the loop (read, EPOCHREALTIME): a fork per sample would be
# tens of ms under TCG, coarser than the ringing cadence's 200 ms steps.
sample_leds() {
  local sim s p last="" t0 now end
  sim=$(sim_dir)
  t0=${EPOCHREALTIME/./}
  end=$((t0 + ${1:?seconds} * 1000000))
  while :; do
    now=${EPOCHREALTIME/./}
    ((now < end)) || break
    read -r s <"$sim/sim_gpio5/value"
    read -r p <"$sim/sim_gpio7/value"
    if [ "$s $p" != "$last" ]; then
      echo "$(((now - t0) / 1000)) $s $p"
      last="$s $p"
    fi
  done
  echo "$(((now - t0) / 1000)) end"
}
dpms() {
  local c
  for c in /sys/class/drm/card*-*; do
    [ "$(cat "$c/status" 2>/dev/null)" = connected ] && { cat "$c/dpms"; return 0; }
  done
  echo "no connected connector" >&2
  return 1
}
wait_dpms() {
  local want=$1 s end=$((SECONDS + ${2:-30}))
  while [ $SECONDS -lt $end ]; do
    s=$(dpms)
    [ "$s" = "$want" ] && { echo "$s after $((SECONDS - end + ${2:-30})) s"; return 0; }
    sleep 0.5
  done
  echo "the display's DPMS is ${s:-unknown}, not $want" >&2
  return 1
}
state() { callbox status 2>/dev/null | sed -n 's/.*"state": *"\([a-z_]*\)".*/\1/p'; }
wait_state() {
  local want=$1 s
  for _ in $(seq $((${2:-30} * 5))); do
    s=$(state)
    [ "$s" = "$want" ] && { echo "$s"; return 0; }
    sleep 0.2
  done
  echo "state is ${s:-unknown}, not $want" >&2
  return 1
}
# A deadline in seconds, not a count of polls: under TCG one `callbox status` takes
# a good part of a second.
wait_frames_received() {
  local n end=$((SECONDS + ${2:-30}))
  while ((SECONDS < end)); do
    n=$(callbox status 2>/dev/null | sed -n 's/.*"video_frames_received": *\([0-9]*\).*/\1/p')
    [ "${n:-0}" -ge "$1" ] && return 0
    sleep 0.2
  done
  echo "the box decoded ${n:-0} frames in ${2:-30} s, not $1"
  return 1
}
play_tone() {
  gst-launch-1.0 -q --no-position audiotestsrc wave=sine freq="$1" volume=0.5 \
    num-buffers=$(($2 * 100)) samplesperbuffer=480 \
    ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! alsasink device=hw:Loopback,0,1
}
record_speaker() {
  arecord -q -D plughw:Loopback,1,0 -f S16_LE -r 48000 -c 1 -d "$1" -t raw "$2"
}
capture_screen() { python3 "$LAB_SHARE/drm-capture.py" "$1"; }
