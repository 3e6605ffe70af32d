# shellcheck shell=bash
# Sourced by the lab scripts (design §6): the cache, content hashes, a private apt for
# Debian bookworm, timing. Nothing here runs anything by itself.
#
# Every step caches its result in $LAB_CACHE/<step>-<hash>, where <hash> covers the
# step's script, this file and every other input (package versions, .deb checksums,
# files copied into the guest). A step is built in <dir>.tmp.<pid> and renamed when
# complete, so an interrupted build never looks finished.

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_ROOT=$(cd "$LAB_DIR/.." && pwd)
CALLBOX_CACHE=${CALLBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callbox}
LAB_CACHE="$CALLBOX_CACHE/lab"
# Debian release and kernel ABI the lab boots; LAB_KERNEL_ABI=6.1.0-NN pins an ABI
# (default: the one linux-image-amd64 points at in bookworm today).
LAB_SUITE=bookworm
LAB_MIRROR=${LAB_MIRROR:-http://deb.debian.org/debian}
LAB_SECURITY_MIRROR=${LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Package lists of the private apt are refreshed when older than this (s); LAB_OFFLINE=1
# never refreshes them (the cached steps then boot without any network).
LAB_APT_MAX_AGE=${LAB_APT_MAX_AGE:-86400}
mkdir -p "$LAB_CACHE"

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
lab_now() { date +%s.%N; }
# lab_since T0: seconds since T0 with one decimal.
lab_since() { awk -v a="$1" -v b="$(lab_now)" 'BEGIN { printf "%.1f", b - a }'; }

# lab_hash ARG...: 16 hex digits over the arguments; an argument naming a file (or a
# directory: every file in it, sorted) stands for its path relative to the repo and its
# content, anything else for itself.
lab_hash() {
  local a f
  for a in "$@"; do
    if [ -d "$a" ]; then
      while IFS= read -r f; do
        printf 'file %s\n' "${f#"$LAB_ROOT"/}"; sha256sum <"$f"
      done < <(find "$a" -type f | LC_ALL=C sort)
    elif [ -f "$a" ]; then
      printf 'file %s\n' "$(realpath --relative-to="$LAB_ROOT" "$a" 2>/dev/null || echo "$a")"
      sha256sum <"$a"
    else
      printf 'value %s\n' "$a"
    fi
  done | sha256sum | cut -c1-16
}

# The private apt: bookworm + bookworm-security lists kept in $LAB_CACHE/apt, independent
# of the host's sources (so the lab gets the same packages on any host).
LAB_APT_DIR="$LAB_CACHE/apt"
lab_apt_opts() {
  printf '%s\n' \
    -o "Dir::State=$LAB_APT_DIR/state" \
    -o "Dir::State::Lists=$LAB_APT_DIR/lists" \
    -o "Dir::State::status=$LAB_APT_DIR/status" \
    -o "Dir::Cache=$LAB_APT_DIR/cache" \
    -o "Dir::Etc::SourceList=$LAB_APT_DIR/sources.list" \
    -o "Dir::Etc::SourceParts=$LAB_APT_DIR/sources.list.d" \
    -o "Dir::Etc::Preferences=$LAB_APT_DIR/preferences" \
    -o "Dir::Etc::PreferencesParts=$LAB_APT_DIR/preferences.d" \
    -o "APT::Architecture=amd64" \
    -o "APT::Architectures=amd64" \
    -o "APT::Sandbox::User=root" \
    -o "Acquire::Languages=none" \
    -o "Debug::NoLocking=1"
}
lab_apt() {
  local opts
  mapfile -t opts < <(lab_apt_opts)
  "$1" "${opts[@]}" "${@:2}"
}
lab_apt_update() {
  mkdir -p "$LAB_APT_DIR"/{state,lists/partial,cache/archives/partial,sources.list.d,preferences.d}
  : >"$LAB_APT_DIR/preferences"
  [ -f "$LAB_APT_DIR/status" ] || : >"$LAB_APT_DIR/status"
  local kr=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$kr" ] || lab_die "$kr missing: apt-get install debian-archive-keyring"
  cat >"$LAB_APT_DIR/sources.list" <<EOF
deb [signed-by=$kr] $LAB_MIRROR $LAB_SUITE main
deb [signed-by=$kr] $LAB_MIRROR $LAB_SUITE-updates main
deb [signed-by=$kr] $LAB_SECURITY_MIRROR $LAB_SUITE-security main
EOF
  local stamp="$LAB_APT_DIR/updated" age
  if [ -f "$stamp" ]; then
    age=$(($(date +%s) - $(stat -c %Y "$stamp")))
    if [ "${LAB_OFFLINE:-0}" = 1 ] || [ "$age" -lt "$LAB_APT_MAX_AGE" ]; then
      return 0
    fi
  elif [ "${LAB_OFFLINE:-0}" = 1 ]; then
    lab_die "LAB_OFFLINE=1 but no package lists in $LAB_APT_DIR yet"
  fi
  lab_log "refreshing the $LAB_SUITE package lists ($LAB_APT_DIR)"
  lab_apt apt-get -q update >/dev/null
  touch "$stamp"
}
# lab_apt_version PKG: the candidate version in the private apt.
lab_apt_version() {
  lab_apt apt-cache policy "$1" | awk '/Candidate:/ { print $2 }'
}
# lab_download PKG=VERSION...: .debs into $LAB_CACHE/debs (kept: a second run downloads
# nothing); prints their paths.
lab_download() {
  local d="$LAB_CACHE/debs" spec name ver file found
  mkdir -p "$d"
  for spec in "$@"; do
    name=${spec%%=*} ver=${spec#*=}
    file="$d/${name}_${ver//:/%3a}_"
    found=("$file"*.deb)
    if [ ! -f "${found[0]}" ]; then
      (cd "$d" && lab_apt apt-get -q download "$spec" >/dev/null) || lab_die "apt-get download $spec failed"
      found=("$file"*.deb)
    fi
    [ -f "${found[0]}" ] || lab_die "apt-get download $spec: no ${file}*.deb"
    echo "${found[0]}"
  done
}

# lab_scratch DIR [SIZE]: DIR on a tmpfs when we may mount one (root; LAB_TMPFS=0 says
# no): unpacking and deleting hundreds of MB of small files is much faster in memory.
LAB_MOUNTS=()
lab_scratch() {
  mkdir -p "$1"
  if [ "${LAB_TMPFS:-1}" = 1 ] && [ "$(id -u)" = 0 ] &&
    mount -t tmpfs -o "size=${2:-4g},mode=0755" lab-scratch "$1" 2>/dev/null; then
    LAB_MOUNTS+=("$1")
  fi
}
lab_unscratch() {
  local m
  for m in "${LAB_MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  LAB_MOUNTS=()
}
lab_cleanup() {
  lab_unscratch
  [ -n "${STEP_TMP:-}" ] && rm -rf "$STEP_TMP"
}

# lab_step NAME HASH LABEL: sets STEP_DIR (final) and STEP_TMP (scratch, fresh); returns 0
# when the step must be built. When it is cached: points $LAB_CACHE/NAME at it, logs
# "LABEL: cached DIR", prints DIR (the step's result) and returns 1, so a step script
# says `lab_step NAME "$hash" LABEL || exit 0`. LAB_REBUILD=1 rebuilds anyway.
lab_step() {
  STEP_DIR="$LAB_CACHE/$1-$2"
  STEP_TMP="$STEP_DIR.tmp.$$"
  if [ -f "$STEP_DIR/.done" ] && [ "${LAB_REBUILD:-0}" != 1 ]; then
    ln -sfn "$(basename "$STEP_DIR")" "$LAB_CACHE/$1"
    lab_log "$3: cached $STEP_DIR"
    echo "$STEP_DIR"
    return 1
  fi
  rm -rf "$STEP_TMP"
  mkdir -p "$STEP_TMP"
  trap lab_cleanup EXIT
  return 0
}
# lab_step_done NAME: publishes STEP_TMP as STEP_DIR, points $LAB_CACHE/NAME at it and
# removes all but the newest $LAB_KEEP (default 2) builds of the step.
lab_step_done() {
  lab_unscratch
  touch "$STEP_TMP/.done"
  if [ -f "$STEP_DIR/.done" ] && [ "${LAB_REBUILD:-0}" != 1 ]; then
    rm -rf "$STEP_TMP"   # a concurrent run finished the same step first: keep its result
  else
    rm -rf "$STEP_DIR"
    mv -T "$STEP_TMP" "$STEP_DIR"
  fi
  trap - EXIT
  ln -sfn "$(basename "$STEP_DIR")" "$LAB_CACHE/$1"
  local old
  find "$LAB_CACHE" -mindepth 1 -maxdepth 1 -type d -name "$1-*" ! -name "*.tmp.*" -printf '%T@ %p\n' |
    sort -rn | tail -n +"$((${LAB_KEEP:-2} + 1))" | cut -d' ' -f2- |
    while IFS= read -r old; do [ "$old" = "$STEP_DIR" ] || rm -rf "$old"; done
}
