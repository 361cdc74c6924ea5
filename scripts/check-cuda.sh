#!/usr/bin/env bash
# Type-checks gpu-worker with `--features cuda` on a machine without CUDA, using the shared
# build-cuda.sh with its stand-in nvcc (FAKE_NVCC=1: nothing downloaded, nothing linked).
# Uses its own target dir so the main build is not invalidated.
#   usage: scripts/check-cuda.sh [extra cargo args]     env: FACEMATCH_SHARED (default ../shared)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${FACEMATCH_SHARED:-$root/../shared}
cd "$root"
FAKE_NVCC=1 CARGO_CMD=${CARGO_CMD:-check} CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/cuda-check} \
  "$shared/tools/build-cuda.sh" . -p gpu-worker --all-targets "$@"
