#!/usr/bin/env bash
# Type-checks gpu-worker with `--features cuda` on a machine without CUDA: scripts/build-cuda.sh
# --check, whose stand-in nvcc downloads and links nothing. Its own target dir
# (target/cuda-check) keeps the main build valid.
#   usage: scripts/check-cuda.sh [extra cargo args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "$root/scripts/build-cuda.sh" --check -p gpu-worker --all-targets "$@"
