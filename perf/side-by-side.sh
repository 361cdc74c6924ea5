#!/usr/bin/env bash
# Side by side: facematch against the peer (the seed's Flask + face_recognition design,
# perf/peer) on this machine, same RabbitMQ and Redis. Runs
#   1. gateway uploads: distinct bodies, closed loop at concurrency 1/16/64 and open loop at
#      fixed rates, 100 KB and 2 MB, no worker consuming (the queue is purged between points);
#   2. end to end: the 30-image set through facematch's worker and the peer's (1 and 2
#      processes): time until every image is final, faces and match pairs;
#   3. matching scale: one new face against 10^4..10^6 stored faces;
# then writes perf/results/side-by-side.md, the PNG plots beside it, and that section of
# perf/RESULTS.md.
#
# usage: perf/side-by-side.sh [--quick]     (--quick: short points, fewer of them, < 5 min
#                                            once built)
#        PERF_PROFILE=dev perf/side-by-side.sh   (dev-profile binaries: dependencies optimised,
#                                            our code at opt-level 1; when a release build
#                                            does not fit the time)
# Everything it creates on the broker and in Redis carries a per-run prefix and is deleted at
# the end, even on failure. Needs: cargo, python3 (the peer's venv), curl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=0
[ "${1:-}" = --quick ] && quick=1
if [ $quick = 1 ]; then
  secs=5; warm=1; conc="1 16 64"; rates="500 1000"; big_conc="16"; sizes_index="10000,100000,1000000"; repeats=5
else
  secs=30; warm=2; conc="1 16 64"; rates="250 500 1000 2000"; big_conc="1 16"; sizes_index="10000,100000,1000000"; repeats=20
fi

out=target/side-by-side
rm -rf "$out"; mkdir -p "$out"
run="sbs$(date +%s)"
fm_amqp="$run."; fm_keys="$run:"; gw_port=18081; peer_port=18082

echo "== building (release) and installing the peer"
scripts/services.sh
perf/peer/install.sh
FACEMATCH_CONVERTER=${FACEMATCH_CONVERTER:-} scripts/fetch-weights.sh
profile=${PERF_PROFILE:-release}
case $profile in
  release) build=(--release); bin=target/release ;;
  dev) build=(); bin=target/debug ;;
  *) echo "PERF_PROFILE is release or dev" >&2; exit 2 ;;
esac
# PERF_SKIP_BUILD=1: measure the binaries already in $bin (a missing index-search skips the
# facematch side of the matching table).
if [ -z "${PERF_SKIP_BUILD:-}" ]; then
  nice -n 10 cargo build "${build[@]}" -q -p gateway -p gpu-worker -p facematch-load -p facematch-perf \
    --bin gateway --bin gpu-worker --bin upload-load --bin e2e --bin sbs-admin --bin sbs-report \
    --bin index-search
fi
venv=perf/peer/.venv

pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  $bin/sbs-admin cleanup --amqp-prefix "$fm_amqp" --key-prefix "$fm_keys" >/dev/null || true
  for p in "$run.peer." "$run.peer1." "$run.peer2."; do
    (cd perf/peer && PEER_PREFIX="$p" .venv/bin/python peer_common.py cleanup >/dev/null) || true
  done
}
trap cleanup EXIT

wait_http() { # port
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$1/healthz" -o /dev/null 2>&1 && return 0
    curl -s "http://127.0.0.1:$1/" -o /dev/null 2>&1 && return 0; sleep 0.1; done
  echo "nothing answers on port $1" >&2; return 1
}

start_gateway() {
  FACEMATCH_AUTH=${FACEMATCH_AUTH:-off} FACEMATCH_LISTEN=127.0.0.1:$gw_port FACEMATCH_AMQP_PREFIX="$fm_amqp" FACEMATCH_KEY_PREFIX="$fm_keys" \
    $bin/gateway >"$out/gateway.log" 2>&1 &
  pids+=($!); gw_pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$gw_port/readyz" -o /dev/null && return 0; sleep 0.1; done
  echo "gateway not ready" >&2; return 1
}

start_peer() { # prefix
  PEER_PREFIX="$1" PEER_LISTEN=127.0.0.1:$peer_port perf/peer/serve.sh >"$out/peer-$1log" 2>&1 &
  pids+=($!); peer_pid=$!
  wait_http $peer_port
}

point() { # system addr pid queue args...
  local system=$1 addr=$2 pid=$3 queue=$4; shift 4
  $bin/upload-load --system "$system" --addr "$addr" --pids "$pid" --broker-pids "$broker" \
    --seconds $secs --warmup $warm --out "$out/uploads.jsonl" "$@" | tail -n 1
  $bin/sbs-admin purge "$queue" >/dev/null
}

broker=$(pgrep -o -f beam.smp || true)
echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. gateway uploads ($secs s per point)"
start_gateway
start_peer "$run.peer."
for system in facematch peer; do
  if [ $system = facematch ]; then addr=127.0.0.1:$gw_port; pid=$gw_pid; queue="${fm_amqp}facematch.scan.v2"
  else addr=127.0.0.1:$peer_port; pid=$peer_pid; queue="$run.peer.scan"; fi
  for c in $conc; do point $system $addr $pid "$queue" --sizes 102400 --concurrency "$c"; done
  for r in $rates; do point $system $addr $pid "$queue" --sizes 102400 --rates "$r"; done
  for c in $big_conc; do point $system $addr $pid "$queue" --sizes 2097152 --concurrency "$c"; done
  point $system $addr $pid "$queue" --sizes 102400 --concurrency 16 --same-bytes
done
stop_all
# What the seed's design pays to make the same promise as facematch (a 200 only once the
# broker has the job): the peer with publisher confirms.
PEER_CONFIRMS=1 start_peer "$run.peer."
for c in 1 16; do
  point peer-confirms 127.0.0.1:$peer_port $peer_pid "$run.peer.scan" --sizes 102400 --concurrency "$c"
done
stop_all

echo "== 2. end to end (30 images)"
start_gateway
FACEMATCH_AMQP_PREFIX="$fm_amqp" FACEMATCH_KEY_PREFIX="$fm_keys" FACEMATCH_DEVICE=cpu \
  FACEMATCH_METRICS_LISTEN=127.0.0.1:0 $bin/gpu-worker serve >"$out/worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "consuming" "$out/worker.log" && break; sleep 0.1; done
$bin/e2e --system facematch --addr 127.0.0.1:$gw_port --out "$out/e2e.jsonl"
stop_all
for n in 1 2; do
  prefix="$run.peer$n."
  start_peer "$prefix"
  for i in $(seq 1 $n); do
    (cd perf/peer && PEER_PREFIX="$prefix" exec .venv/bin/python peer_worker.py) >"$out/peer-worker-$n-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in $(seq 1 $n); do
    for _ in $(seq 1 300); do grep -q ready "$out/peer-worker-$n-$i.log" && break; sleep 0.1; done
  done
  $bin/e2e --system peer --label "peer-$n" --peer-prefix "$prefix" --addr 127.0.0.1:$peer_port \
    --out "$out/e2e.jsonl"
  stop_all
done

echo "== 3. matching scale"
if [ -x $bin/index-search ]; then
  $bin/index-search --sizes "$sizes_index" --repeats $repeats | tee "$out/index.md"
else
  echo "no $bin/index-search: facematch's side of the matching table skipped"
fi
(cd perf/peer && MATCH_REPEATS=$repeats .venv/bin/python match_scale.py ${sizes_index//,/ }) | tee "$out/peer-match.jsonl"

echo "== report"
$bin/sbs-report --dir "$out" --quick "$quick" --profile "$profile" \
  --command "${PERF_PROFILE:+PERF_PROFILE=$PERF_PROFILE }perf/side-by-side.sh${1:+ $1}" \
  --results perf/RESULTS.md --plots perf/plots
