#!/usr/bin/env bash
# Measures the worker's face pipeline against a single-file reference port of face-api (a
# candle program that is not part of this repository) in one run: reference, ours, reference
# again, on the six demo images, and prints the speed ratio.
#
#   REFERENCE_PORT=DIR scripts/bench-vs-reference.sh            # batches 1,4,8
#   REFERENCE_PORT=DIR BENCH_BATCHES=4 scripts/bench-vs-reference.sh
#
# DIR is the reference port's cargo project. Without it the script says so and exits 0: it is a
# tool for developers who have one, never a test. It is built from a copy (REFERENCE_WORK,
# default $TMPDIR/facematch-reference); nothing of it enters the repository. Its end-to-end timing
# covers pad/resize, SSD, NMS, crops, landmarks and descriptor per image, without JPEG decode,
# so ours is compared on the "images/s (models)" column, which excludes decode too.
#   needs: scripts/fetch-weights.sh already run, cargo, awk
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
reference=${REFERENCE_PORT:-}
golden=${REFERENCE_GOLDEN:-$root/gpu-worker/tests/golden/faceapi/image-rs}
work=${REFERENCE_WORK:-${TMPDIR:-/tmp}/facematch-reference}
model="$root/model-weights/cache/package/model"

if [ -z "$reference" ] || [ ! -f "$reference/Cargo.toml" ]; then
  echo "bench-vs-reference: skipped: set REFERENCE_PORT to the reference port's cargo project" \
    "(${reference:-not set}); it is not part of this repository" >&2
  exit 0
fi
[ -d "$model" ] || { echo "bench-vs-reference: run scripts/fetch-weights.sh first" >&2; exit 1; }

mkdir -p "$work"
cp -r "$reference/." "$work/src-copy"
echo "bench-vs-reference: building the reference port in $work"
CARGO_TARGET_DIR="$work/target" cargo build --quiet --release --manifest-path "$work/src-copy/Cargo.toml" \
  2> "$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
bin=$(find "$work/target/release" -maxdepth 1 -type f -name 'reference-port' | head -n1)

# The reference reads raw RGB: the pixels the `image` crate decodes, which it writes as PPM
# before its end-to-end part (that part fails on this first run, with no RGB files yet).
mkdir -p "$work/ppm" "$work/rgb"
[ -n "$bin" ] || { echo "bench-vs-reference: the reference port did not build a binary" >&2; exit 1; }
PPM_OUT="$work/ppm" RGB_DIR="$work/rgb" "$bin" "$model" "$golden" > "$work/first-run.log" 2>&1 || true
for i in 1 2 3 4 5 6; do
  [ -s "$work/ppm/sample$i.ppm" ] ||
    { echo "bench-vs-reference: the reference wrote no sample$i.ppm (see $work/first-run.log)" >&2; exit 1; }
  header=$(head -c 64 "$work/ppm/sample$i.ppm" | head -n 3 | wc -c)
  tail -c +$((header + 1)) "$work/ppm/sample$i.ppm" > "$work/rgb/sample$i.rgb"
done

# Mean "e2e time" of the six images, in ms.
reference_ms() {
  RGB_DIR="$work/rgb" "$bin" "$model" "$golden" > "$work/run.log" 2>&1 ||
    { echo "bench-vs-reference: the reference port failed (see $work/run.log)" >&2; return 1; }
  awk '/e2e time/ { t = $NF; v = t + 0;
                    if (t ~ /ns$/) v /= 1e6; else if (t ~ /µs$/) v /= 1000;
                    else if (t ~ /ms$/) v += 0; else if (t ~ /s$/) v *= 1000;
                    sum += v; n++ }
       END { if (n != 6) exit 1; printf "%.1f", sum / n }' "$work/run.log" ||
    { echo "bench-vs-reference: expected six e2e times in $work/run.log" >&2; return 1; }
}

first=$(reference_ms)
echo "reference port: $first ms/image"
BENCH_ROUNDS=${BENCH_ROUNDS:-3} BENCH_BATCHES=${BENCH_BATCHES:-1,4,8} \
  cargo bench --quiet -p gpu-worker --bench pipeline > "$work/ours.log" 2> "$work/ours.err" ||
  { cat "$work/ours.err" >&2; exit 1; }
cat "$work/ours.log"
ours=$(awk -F'|' '/^\| [0-9]/ && $3 + 0 > 0 { print $2 + 0, $3 + 0 }' "$work/ours.log")
[ -n "$ours" ] || { echo "bench-vs-reference: no results from the pipeline bench" >&2; exit 1; }
second=$(reference_ms)
echo "reference port again: $second ms/image"
awk -v a="$first" -v b="$second" -v ours="$ours" 'BEGIN {
  ref = (a + b) / 2
  printf "\nreference: %.1f ms/image (mean of both runs)\n", ref
  printf "| batch | ours ms/image (models) | times faster than the reference |\n|---|---|---|\n"
  n = split(ours, f, /[ \n]+/)
  for (i = 1; i + 1 <= n; i += 2) if (f[i] != "") printf "| %s | %.1f | %.1f |\n", f[i], 1000 / f[i + 1], ref * f[i + 1] / 1000
}'
