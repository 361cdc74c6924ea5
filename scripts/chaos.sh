#!/usr/bin/env bash
# Chaos run (perf/src/bin/chaos.rs): the real gateway and worker binaries against the local
# Redis and RabbitMQ, their broker links through proxies the run owns on loopback; crash loop,
# broker cuts, broker stalls and slow clients, each bounded. Prints "nothing lost" and exits 0
# when every accepted job ended done. Never touches the shared services themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh
[ -f model-weights/demo/sample1.jpg ] || scripts/fetch-weights.sh
cargo build -p gateway -p gpu-worker -p facematch-perf --bin gateway --bin gpu-worker --bin chaos
timeout 1200 target/debug/chaos "$@"
