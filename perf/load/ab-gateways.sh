#!/usr/bin/env bash
# A/B of two gateway builds (or settings) on this machine's broker and Redis: 100 KB uploads,
# distinct bodies, closed loop, in ABBA order so that drift in the machine's speed falls on
# both; each point starts its gateway afresh on a new queue and key prefix, deleted after it.
#
# usage: perf/load/ab-gateways.sh A_CMD B_CMD [rounds] [seconds] [concurrency]
#   A_CMD, B_CMD: how to start each gateway, e.g. /tmp/before/gateway, or
#                 "env TOKIO_WORKER_THREADS=1 target/release/gateway"
# Needs the release `upload-load` and `sbs-admin` (cargo build --release -p facematch-load).
# Prints one table row per point (uploads/s, p50/p99/max ms, CPU gateway/broker/load tool).
set -euo pipefail
cd "$(dirname "$0")/../.."
a=$1 b=$2 rounds=${3:-3} secs=${4:-15} conc=${5:-16}
bin=target/release port=18099
broker=$(pgrep -o -f beam.smp || true)
run="ab$(date +%s)"

point() { # label command
  local prefix="$run$RANDOM"
  FACEMATCH_LISTEN=127.0.0.1:$port FACEMATCH_AMQP_PREFIX="$prefix." FACEMATCH_KEY_PREFIX="$prefix:" \
    $2 >"target/ab-gateway-$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/readyz" -o /dev/null && break; sleep 0.1; done
  $bin/upload-load --system "$1" --addr 127.0.0.1:$port --pids $pid ${broker:+--broker-pids $broker} \
    --seconds "$secs" --warmup 2 --concurrency "$conc" | tail -n 1
  kill $pid; wait $pid 2>/dev/null || true
  $bin/sbs-admin cleanup --amqp-prefix "$prefix." --key-prefix "$prefix:" >/dev/null
}

echo "== $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$rounds"); do point A "$a"; point B "$b"; point B "$b"; point A "$a"; done
