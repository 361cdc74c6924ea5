#!/usr/bin/env bash
# The project's test command (README): services up, model weights present, then format,
# lints, every test on the CPU, and a type-check of the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh
scripts/fetch-weights.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
scripts/check-cuda.sh
