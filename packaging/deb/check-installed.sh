#!/bin/sh
# Runs inside the clean Debian that scripts/deb-check.sh made, after
# `apt install ./callbox_*.deb ./callbox-hub_*.deb`. Checks what an installer relies on;
# prints `deb-check: …` lines, exits non-zero at the first failure.
set -eu
fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
say() { echo "deb-check: $*"; }

say "$(callbox --version), $(callbox-hub --version)"

# Every GStreamer element a real box uses (camera, microphone, speaker, HDMI), found by
# the daemon's own check in a system that has only what the package's Depends pulled.
cat > /tmp/check.toml <<'TOML'
[hub]
url = "http://127.0.0.1:9"
credential = "deb-check"
[media]
video_source = "v4l2"
audio_source = "alsa"
video_sink = "kmssink"
audio_sink = "alsasink"
TOML
# No camera, sound card or hub in this container: the report's "gstreamer" line is what
# counts (every element the box uses is installed).
out=$(callbox check --offline --config /tmp/check.toml 2>&1) || true
echo "$out" | grep -q "^ok   gstreamer" || fail "callbox check: $out"
say "callbox check: $out"

# As installed, the config is the example: the daemon says what to set and exits 78
# (the unit's RestartPreventExitStatus), instead of retrying forever.
set +e
msg=$(callbox check 2>&1); code=$?
set -e
[ "$code" = 78 ] || fail "callbox check with the installed config exited $code: $msg"
echo "$msg" | grep -q "hub.credential" || fail "no hint about hub.credential: $msg"
say "installed config refused with exit 78: $msg"

# The service user, its device groups, private config files.
for g in video audio render gpio; do
  id -nG callbox | tr ' ' '\n' | grep -qx "$g" || fail "callbox is not in group $g: $(id callbox)"
done
say "user: $(id callbox)"
for f in /etc/callbox/callbox.toml /etc/callbox-hub/hub.toml; do
  mode=$(stat -c '%a %U' "$f")
  [ "$mode" = "600 root" ] || fail "$f is $mode, want 600 root (it holds a secret)"
done
dpkg-query -W -f='${Conffiles}\n' callbox | grep -q /etc/callbox/callbox.toml \
  || fail "/etc/callbox/callbox.toml is not a conffile"
dpkg-query -W -f='${Conffiles}\n' callbox-hub | grep -q /etc/callbox-hub/hub.toml \
  || fail "/etc/callbox-hub/hub.toml is not a conffile"

# The units: enabled, valid, hardened.
for u in callbox callbox-hub; do
  [ "$(systemctl is-enabled "$u.service")" = enabled ] || fail "$u.service not enabled"
done
verify=$(systemd-analyze verify callbox.service callbox-hub.service 2>&1) \
  || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify complained: $verify"
say "systemd-analyze verify: clean"
for u in callbox callbox-hub; do
  level=$(systemd-analyze security --offline=true "/usr/lib/systemd/system/$u.service" 2>&1 \
    | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  [ -n "$level" ] || fail "no exposure level for $u.service"
  say "systemd-analyze security $u.service: $level"
done
say "OK"
