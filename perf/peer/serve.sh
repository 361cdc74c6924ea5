#!/usr/bin/env bash
# Starts the peer's REST server (gunicorn, 2 sync workers as the seed ran it) in the
# foreground; PEER_LISTEN, PEER_WORKERS, PEER_PREFIX and PEER_VENV may be set.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${PEER_VENV:-$here/.venv}"
cd "$here"
exec "$venv/bin/gunicorn" --workers "${PEER_WORKERS:-2}" --bind "${PEER_LISTEN:-127.0.0.1:18080}" \
    --log-level warning peer_app:app
