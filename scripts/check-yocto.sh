#!/usr/bin/env bash
# Static checks of the Yocto layer and kas files (yocto/). No Yocto source is fetched
# and nothing is built; see yocto/README.md for what that does and does not prove.
#
#   1. crates: yocto/meta-callbox/.../callbox-crates.inc is what scripts/yocto-crates.py
#      generates from Cargo.lock (and the recipes' PV/HOMEPAGE match Cargo).
#   2. oelint: oelint-adv over every recipe, bbappend and .conf of the layer, with the
#      pinned rule set yocto/oelint-rules.json, for scarthgap.
#   3. kas: every yocto/kas/*.yml against the schema that ships with kas, loaded and
#      merged with its includes by kas's own code (scripts/yocto-kas-check.py).
#
# Installs the pinned tools (yocto/check-requirements.txt) into a venv under
# $CALLBOX_CACHE the first time (like scripts/setup.sh §3), then reuses it. Prints one
# summary line per check; exits non-zero if any check fails.
# Environment: CALLBOX_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/callbox).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

CALLBOX_CACHE=${CALLBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callbox}
req=yocto/check-requirements.txt
venv="$CALLBOX_CACHE/yocto-venv-$(sha256sum "$req" | cut -c1-12)"

log() { printf 'check-yocto: %s\n' "$*" >&2; }

# --- the venv ------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  log "creating venv with kas and oelint-adv at $venv"
  mkdir -p "$CALLBOX_CACHE"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  touch "$venv/.complete"
fi
py="$venv/bin/python"

failed=0
summary=()
result() { # name status detail
  summary+=("$(printf '%-7s %-4s %s' "$1" "$2" "$3")")
  [ "$2" = PASS ] || failed=1
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# --- 1. crate list in sync with Cargo.lock ----------------------------------------
if "$py" scripts/yocto-crates.py --check >"$out" 2>&1; then
  result crates PASS "$(tail -n1 "$out")"
else
  cat "$out" >&2
  result crates FAIL "callbox-crates.inc or a recipe's PV/HOMEPAGE is out of date: run python3 scripts/yocto-crates.py"
fi

# --- 2. oelint-adv ---------------------------------------------------------------------
# Rules not applied, each with its reason (the rest of yocto/oelint-rules.json, i.e.
# every default rule of oelint-adv 9.11.2 for scarthgap in --mode all, is enforced at
# every severity, info included):
#   - oelint.vars.homepageping is left out of oelint-rules.json: it fetches HOMEPAGE
#     over the network, which CI must not do (and HOMEPAGE is Cargo.toml's placeholder).
#   - oelint.var.suggestedvar.BUGTRACKER: the project has no public bug tracker, and an
#     invented URL would be worse than none.
#   - oelint.var.suggestedvar.CVE_PRODUCT: callbox has no CVE product of its own; the
#     cve-check default (the recipe name) is already right, and images have none.
# Inline `# nooelint:` suppressions in the layer carry their reasons next to them:
# SRCREV = AUTOREV (callbox.inc), BBCLASSEXTEND (the two recipes), the require of
# poky.conf (conf/distro/callbox.conf), and the whitespace layout of oe-core's crates
# .inc (callbox-crates.inc, generated).
suppress=(
  --suppress oelint.var.suggestedvar.BUGTRACKER
  --suppress oelint.var.suggestedvar.CVE_PRODUCT
)
mapfile -t files < <(cd yocto/meta-callbox && find . \( -name '*.bb' -o -name '*.bbappend' -o -name '*.conf' \) | sort)
if (cd yocto/meta-callbox && OELINT_SKIP_CONFIG=1 "$venv/bin/oelint-adv" \
      --release scarthgap --mode all --quiet --relpaths --jobs 2 \
      --rulefile ../oelint-rules.json --constantmods +../oelint-constants.json \
      --extra-layer openembedded-layer multimedia-layer meta-python yocto \
      "${suppress[@]}" -- "${files[@]}") >"$out" 2>&1 && [ ! -s "$out" ]; then
  result oelint PASS "oelint-adv $("$venv/bin/oelint-adv" --version | awk '{print $NF}'): ${#files[@]} files clean (scarthgap, yocto/oelint-rules.json)"
else
  sed 's/^/  /' "$out" >&2
  result oelint FAIL "oelint-adv: $(grep -c . "$out" || true) findings in yocto/meta-callbox (listed above)"
fi

# --- 3. kas files ------------------------------------------------------------------------
if "$py" scripts/yocto-kas-check.py >"$out" 2>&1; then
  result kas PASS "$(tail -n1 "$out" | sed 's/^yocto-kas-check: //')"
else
  cat "$out" >&2
  result kas FAIL "kas files invalid (listed above)"
fi

printf '%s\n' "${summary[@]}"
exit "$failed"
