#!/usr/bin/env bash
# Fuzzes a local gateway through its own OpenAPI spec with schemathesis (`--checks all`) on
# every route but POST /scan/url, which must not be sent to hosts schemathesis makes up.
# The gateway runs under its own exchange, queue and key prefix, removed afterwards; Redis and
# RabbitMQ must be running (scripts/services.sh). Extra arguments go to `schemathesis run`.
#
#   cargo build -p gateway && ST=/tmp/st/bin/schemathesis scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ST=${ST:-schemathesis}
GATEWAY=${GATEWAY:-target/debug/gateway}
PORT=${PORT:-18080}
id="st-$(date +%s)-$$"

FACEMATCH_LISTEN="127.0.0.1:$PORT" FACEMATCH_AMQP_PREFIX="$id." FACEMATCH_KEY_PREFIX="$id:" \
  RUST_LOG=warn "$GATEWAY" &
pid=$!

cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # Fuzzed filenames hold any character: delete by pattern inside Redis, not through a shell.
  redis-cli EVAL "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1" \
    0 "$id:*" >/dev/null
  for q in facematch.scan facematch.dead; do
    rabbitmqctl -q delete_queue "$id.$q" >/dev/null 2>&1 || true
  done
  for x in toWorker facematch.dlx logs; do
    rabbitmqctl -q eval \
      "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$id.$x\">>), false, <<\"schemathesis\">>)." \
      >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done

"$ST" run "http://127.0.0.1:$PORT/openapi.json" --checks all --exclude-path /scan/url "$@"
