# Sourced by scripts and the Makefile: where set-up puts things (one place).
LIVEKIT_VERSION=v1.13.5
CALLBOX_CACHE=${CALLBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callbox}
mkdir -p "$CALLBOX_CACHE"
LIVEKIT_SERVER="$CALLBOX_CACHE/livekit-server-$LIVEKIT_VERSION/livekit-server"
_req_hash=$(sha256sum "$(dirname "${BASH_SOURCE[0]}")/../tests/peers/requirements.txt" | cut -c1-12)
CALLBOX_VENV="$CALLBOX_CACHE/venv-$_req_hash"
# cargo-deb (make deb), installed by set-up with `cargo install --locked`.
CARGO_DEB_VERSION=3.8.0
CARGO_DEB="$CALLBOX_CACHE/tools/cargo-deb-$CARGO_DEB_VERSION/bin/cargo-deb"
export LIVEKIT_VERSION CALLBOX_CACHE LIVEKIT_SERVER CALLBOX_VENV CARGO_DEB_VERSION CARGO_DEB
