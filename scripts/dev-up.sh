#!/usr/bin/env bash
# Quickstart: Redis + RabbitMQ up, weights fetched, then the gateway and one worker in the
# foreground until Ctrl-C. Extra environment (FACEMATCH_*, OTEL_EXPORTER_OTLP_ENDPOINT) is
# passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh
scripts/fetch-weights.sh
cargo build --release -p gateway -p gpu-worker -p facematch-client

pids=()
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

target/release/gateway & pids+=($!)
target/release/gpu-worker serve & pids+=($!)
echo "facematch is up: gateway on ${FACEMATCH_LISTEN:-0.0.0.0:8080} (API docs at /docs); Ctrl-C stops it"
echo "try: target/release/facematch scan model-weights/demo --wait"
wait -n "${pids[@]}"
