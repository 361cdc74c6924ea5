#!/usr/bin/env bash
# What API keys cost an upload: two release gateways on the same broker and Redis, one with
# FACEMATCH_AUTH=off and one with keys required (uploads sent with a `scan` key), measured in
# one run, alternating off/on for ROUNDS rounds of closed-loop uploads at concurrency 16
# (100 KB bodies, each distinct). The queue is purged after every point; no worker runs.
#
#   perf/load/auth-overhead.sh            (env: ROUNDS=3 SECS=15 CONC=16 SIZE=102400)
# Prints each point and the mean uploads/s of each mode; writes results under
# target/auth-overhead/. Needs Redis and RabbitMQ (scripts/services.sh) and the weights' demo
# photo (scripts/fetch-weights.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3} secs=${SECS:-15} conc=${CONC:-16} size=${SIZE:-102400}
bin=target/release
if [ -z "${PERF_SKIP_BUILD:-}" ]; then
  cargo build --release -q -p gateway -p facematch-client -p facematch-load \
    --bin gateway --bin facematch --bin upload-load --bin sbs-admin
fi
out=target/auth-overhead
mkdir -p "$out"
: > "$out/uploads.jsonl"
run="auth-$(date +%s)-$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for m in off on; do
    $bin/sbs-admin cleanup --amqp-prefix "$run.$m." --key-prefix "$run.$m:" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

admin=$($bin/facematch keys generate)
printf '%s\n' "$admin" > "$out/admin.key"
declare -A port pid
for m in off on; do
  port[$m]=$(free_port)
  if [ $m = off ]; then auth=(FACEMATCH_AUTH=off); else auth=(FACEMATCH_ADMIN_KEY_FILE="$out/admin.key"); fi
  env "${auth[@]}" FACEMATCH_LISTEN=127.0.0.1:${port[$m]} FACEMATCH_AMQP_PREFIX="$run.$m." \
    FACEMATCH_KEY_PREFIX="$run.$m:" RUST_LOG=warn $bin/gateway 2>"$out/gateway-$m.log" &
  pids+=($!); pid[$m]=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:${port[$m]}/readyz" -o /dev/null && break; sleep 0.1; done
done
key=$(FACEMATCH_API_KEY=$admin $bin/facematch --gateway "http://127.0.0.1:${port[on]}" \
  keys create --collection default --scopes scan)
broker=$(pgrep -o -f beam.smp || true)
echo "== $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); $rounds rounds, c$conc, $size B, $secs s"
for r in $(seq 1 "$rounds"); do
  for m in off on; do
    keyarg=()
    [ $m = on ] && keyarg=(--key "$key")
    $bin/upload-load --system "auth-$m" --addr "127.0.0.1:${port[$m]}" --pids "${pid[$m]}" \
      --broker-pids "$broker" --sizes "$size" --concurrency "$conc" --seconds "$secs" --warmup 2 \
      --out "$out/uploads.jsonl" "${keyarg[@]}" | tail -n 1
    $bin/sbs-admin purge "$run.$m.facematch.scan.v2" >/dev/null
  done
done
python3 - "$out/uploads.jsonl" <<'PY'
import json, sys, statistics
points = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for p in points:
    by.setdefault(p["system"], []).append(p)
for system, ps in sorted(by.items()):
    rates = [p["throughput"] for p in ps]
    errors = sum(sum(p["errors"].values()) for p in ps)
    p50 = statistics.mean(p["p50_ms"] for p in ps)
    print(f"{system}: {statistics.mean(rates):.0f} uploads/s mean of {len(ps)} ({', '.join(f'{r:.0f}' for r in rates)}), p50 {p50:.2f} ms, errors {errors}")
off = statistics.mean(p["throughput"] for p in by["auth-off"])
on = statistics.mean(p["throughput"] for p in by["auth-on"])
print(f"keys on / off: {on / off:.3f} ({(on / off - 1) * 100:+.1f} %)")
PY
