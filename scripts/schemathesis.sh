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

# Keys required, as deployed: schemathesis sends the bootstrap admin key (every scope), and
# checks that a missing or made-up key is refused.
key_file=$(mktemp)
echo "fmk_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$key_file"
key=$(cat "$key_file")
FACEMATCH_ADMIN_KEY_FILE="$key_file" FACEMATCH_AUTH_FAILURES_PER_MINUTE=0 FACEMATCH_LISTEN="127.0.0.1:$PORT" FACEMATCH_AMQP_PREFIX="$id." \
  FACEMATCH_KEY_PREFIX="$id:" RUST_LOG=warn "$GATEWAY" &
pid=$!

cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # Fuzzed filenames hold any character: delete by pattern inside Redis, not through a shell.
  redis-cli EVAL "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1" \
    0 "$id:*" >/dev/null
  rm -f "$key_file"
  for q in facematch.scan.v2 facematch.scan facematch.dead; do
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

# One real image, so GET /images/{hash} is checked on a 200 and not only on 404s. No worker
# runs, so it is marked final by hand: a long-poll on it answers at once.
hash=$(curl -fsS -H "Authorization: Bearer $key" --data-binary @model-weights/demo/sample1.jpg \
  "http://127.0.0.1:$PORT/scan/image/sample1.jpg" | sed -E 's/.*"hash":"([0-9a-f]{32})".*/\1/')
redis-cli HSET "$id:{default}:image:$hash" state failed error "fixture: never processed" >/dev/null
config=$(mktemp --suffix=.toml)
trap 'rm -f "$config"; cleanup' EXIT
cat >"$config" <<EOF
[[operations]]
include-name = "GET /images/{hash}"
parameters = { "hash" = "$hash" }

# Schema-valid bytes that are not an image are rightly 415: a JSON schema cannot say "an image";
# a filename of control characters, "." or ".." is rightly 400 invalid_filename (the regex
# dialect of the spec cannot say "not . or ..").
[[operations]]
include-name = "POST /scan/image/{filename}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "409", "415", "429", "5xx"]

# A URL of 8192 four-byte characters makes a request line over 64 KiB: the HTTP parser answers
# 414 (documented) before the gateway could answer 400.
[[operations]]
include-name = "GET /urls"
checks.negative_data_rejection.expected-statuses = ["400", "401", "403", "404", "414", "429"]

# `default` is a valid name that is never deleted: 400 default_collection.
[[operations]]
include-name = "DELETE /collections/{name}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "429", "5xx"]
EOF

"$ST" --config-file "$config" run "http://127.0.0.1:$PORT/openapi.json" --checks all \
  --header "Authorization: Bearer $key" --exclude-path /scan/url "$@"
