#!/usr/bin/env bash
# gpu-check.sh - the worker's CUDA path proven on a GPU machine (issue #12), in one call:
#   1. golden: the golden network and pipeline checks (gpu-worker/tests/golden_*.rs, same inputs
#      and tolerances) with the models on the device;
#   2. throughput: decode + pipeline in one process at max batch 1, 8, 32 and 64 on the six demo
#      images (images/s, ms per image per stage, peak GPU memory or peak RSS);
#   3. index: search at 10^5 and 10^6 stored faces on the device, checked against the CPU path
#      (same pairs, bit-equal distances).
# Writes every figure to --out (markdown) and exits 1 when any check fails. It runs one prebuilt
# binary, `gpu-check` (perf/src/bin/gpu-check.rs): the GPU machine may have no cargo, and one
# binary keeps the carried files small.
#
# BUILD (on a machine without a GPU, from the repository root; CUDA 13.0, sm_90 for H100/H200;
# its own target dir so the CPU build is not rebuilt):
#   scripts/build-cuda.sh -p facematch-perf --bin gpu-check      (into target/cuda)
# CARRY: the binary and the weights, packed; the golden files are in the working tree (the
# working tree and carried paths travel together, 64 MiB in all; the f32 weights alone are
# 45 MB, 12 MB gzipped):
#   c=target/gpu-carry; rm -rf $c; mkdir -p $c/bin $c/model-weights
#   cp target/cuda/release/gpu-check $c/bin/ && strip $c/bin/gpu-check
#   cp -r model-weights/*.safetensors model-weights/demo $c/model-weights/
#   tar -czf target/gpu-carry.tar.gz -C target gpu-carry && du -h target/gpu-carry.tar.gz
# The device tool sends the checkout its session started in, so this script and the archive
# must be in that checkout. RUN there (carry ["target/gpu-carry.tar.gz"], timeout_s 600):
#   tar -xzf target/gpu-carry.tar.gz -C target && c=target/gpu-carry &&
#   scripts/gpu-check.sh --bin-dir $c/bin --weights-dir $c/model-weights --out $OUT/gpu-check.md
# The CUDA libraries the binary links (cudart, cublas, curand) are taken from python3's nvidia
# wheels there when the loader does not find them. CPU DRY RUN (here):
#   cargo build --release -p facematch-perf --bin gpu-check
#   scripts/gpu-check.sh --device cpu --bin-dir target/release --out /tmp/gpu-check-cpu.md
#
# usage: gpu-check.sh [--device cuda|cpu] --bin-dir DIR --out FILE [--quick] [--images N]
#                     [--weights-dir DIR] [--golden-dir DIR]
#   --quick: 64 images per batch size and 5 index searches per size (default 384 and 20).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

device=cuda bin_dir= out= quick=0 images=
weights_dir=$root/model-weights
golden_dir=${FACEMATCH_GOLDEN_DIR:-$root/gpu-worker/tests/golden/faceapi}
usage() { sed -n '/^# usage:/,/^#   --quick/s/^# \{0,1\}//p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=${2:?}; shift 2 ;;
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --quick) quick=1; shift ;;
    --images) images=${2:?}; shift 2 ;;
    --weights-dir) weights_dir=${2:?}; shift 2 ;;
    --golden-dir) golden_dir=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "gpu-check: unknown argument $1" >&2; usage ;;
  esac
done
[ -n "$bin_dir" ] && [ -n "$out" ] || usage
case $device in cpu|cuda|cuda:[0-9]*) ;; *) echo "gpu-check: --device cuda|cpu" >&2; exit 2 ;; esac
bin=$bin_dir/gpu-check
[ -x "$bin" ] || { echo "gpu-check: $bin missing (see BUILD at the top of $0)" >&2; exit 2; }
if [ "$quick" = 1 ]; then images=${images:-64} repeats=5; else images=${images:-384} repeats=20; fi
gpu_index=0
case $device in cuda:*) gpu_index=${device#cuda:} ;; esac
tmp=$(mktemp -d)
sampler=
trap '[ -n "$sampler" ] && kill "$sampler" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"
: > "$out"
failed=()

say() { printf '%s\n' "$*" | tee -a "$out"; }

# The CUDA runtime libraries, when the loader cannot find them: from python3's nvidia wheels.
if [ "$device" != cpu ] && command -v ldd > /dev/null && ldd "$bin" | grep -q 'not found'; then
  for sp in $(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2> /dev/null); do
    for d in "$sp"/nvidia/cu13/lib "$sp"/nvidia/*/lib; do
      [ -d "$d" ] && LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    done
  done
  export LD_LIBRARY_PATH
  if ldd "$bin" | grep 'not found' >&2; then
    echo "gpu-check: libraries of $bin not found (LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-})" >&2
    exit 2
  fi
fi

gpu_mem_used() {
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu_index" 2> /dev/null |
    tr -dc '0-9'
}

# run_step NAME CMD...: the command line and its stdout (tables) into $out; its stderr shown,
# and its tail put in $out when it fails.
run_step() {
  local name=$1; shift
  local t0=$SECONDS rc
  say ""
  say '```'
  say "$(printf '%q ' "$@")"
  say '```'
  "$@" > "$tmp/stdout" 2> "$tmp/stderr"
  rc=$?
  cat "$tmp/stdout" | tee -a "$out"
  cat "$tmp/stderr" >&2
  if [ $rc -ne 0 ]; then
    failed+=("$name")
    say ""
    say "**$name failed (exit $rc)**; the start of its stderr:"
    say '```'
    head -n 20 "$tmp/stderr" | tee -a "$out"
    say '```'
  fi
  say ""
  say "($name: $((SECONDS - t0)) s)"
  return $rc
}

# ---- header ------------------------------------------------------------------------------------
say "# gpu-check: $device"
say ""
say "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
say "- commit: $(git -C "$root" rev-parse --short HEAD 2> /dev/null || echo unknown)$(
  git -C "$root" diff --quiet HEAD 2> /dev/null || echo ' (with local changes)')"
say "- binary: $bin ($(du -h "$bin" | cut -f1), sha256 $(sha256sum "$bin" | cut -c1-16)…)"
if [ "$device" = cpu ]; then
  say "- device: CPU, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(nproc) cores"
else
  say "- device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    -i "$gpu_index" 2> /dev/null || echo 'nvidia-smi failed'); host $(nproc) cores"
fi
say "- settings: $images images per batch size, $repeats index searches per size$(
  [ "$quick" = 1 ] && echo ' (--quick)')"

# ---- 1. golden ---------------------------------------------------------------------------------
say ""
say "## 1. Golden checks on $device"
say ""
say "The comparisons of gpu-worker/tests/golden_networks.rs, golden_pipeline.rs and"
say "golden_dlib_chip.rs, with their CPU tolerances; the models run on $device."
run_step golden "$bin" golden --device "$device" --weights-dir "$weights_dir" \
  --golden-dir "$golden_dir" --dlib-dir "$root/gpu-worker/tests/golden/dlib"

# ---- 2. throughput -----------------------------------------------------------------------------
say ""
say "## 2. Worker throughput on $device (in-process)"
say ""
say "Measured: the six demo JPEGs (each made unique), decoded in parallel on the CPU while the"
say "previous batch runs through detect → landmarks → align (dlib) → describe on $device, $images"
say "images per max batch, one process per batch size, after one warm-up batch. Not measured:"
say "RabbitMQ delivery/ack, the Redis writes and the index search (the GPU machine has neither"
say "broker nor store; step 3 times the search). Stage columns are wall ms per image; decode"
say "overlaps inference. GPU memory: nvidia-smi memory.used, highest sample (every ~0.1 s) while"
say "the process ran, and before it started. Peak RSS: the process's VmHWM."
t0=$SECONDS
rates=() faces=()
for batch in 1 8 32 64; do
  args=(throughput --device "$device" --weights-dir "$weights_dir" --batches "$batch" --images "$images")
  [ "$batch" = 1 ] || args+=(--no-header)
  [ "$batch" = 1 ] && { say ""; say '```'; say "$(printf '%q ' "$bin" "${args[@]}") # and --batches 8, 32, 64"; say '```'; say ""; }
  gpu=n/a
  if [ "$device" != cpu ]; then
    idle=$(gpu_mem_used)
    (while :; do gpu_mem_used; echo; sleep 0.1; done) > "$tmp/mem" &
    sampler=$!
  fi
  "$bin" "${args[@]}" > "$tmp/stdout" 2> "$tmp/stderr"
  rc=$?
  if [ -n "$sampler" ]; then
    kill "$sampler" 2> /dev/null; wait "$sampler" 2> /dev/null; sampler=
    gpu="$(grep -E '^[0-9]+$' "$tmp/mem" | sort -n | tail -n1) ($idle)"
  fi
  cat "$tmp/stderr" >&2
  awk -v gpu="$gpu" -v dev="$device" '
    /^\| max batch/ { print $0 (dev == "cpu" ? " GPU MiB |" : " GPU MiB peak (idle) |"); next }
    /^\| ---/       { print $0 " ---: |"; next }
    /^\| [0-9]/     { print $0 " " gpu " |"; next }' "$tmp/stdout" | tee -a "$out"
  row=$(grep -E '^\| [0-9]' "$tmp/stdout" | tail -n1)
  if [ $rc -ne 0 ] || [ -z "$row" ]; then
    failed+=("throughput batch $batch")
    say ""; say "**throughput at batch $batch failed (exit $rc)**:"; say '```'
    head -n 20 "$tmp/stderr" | tee -a "$out"; say '```'
    continue
  fi
  rates+=("$(echo "$row" | awk -F'|' '{gsub(/ /, "", $4); print $4}') $batch")
  faces+=("$(echo "$row" | awk -F'|' '{gsub(/ /, "", $10); print $10}')")
done
say ""
if [ ${#faces[@]} -gt 0 ]; then
  if [ "$(printf '%s\n' "${faces[@]}" | sort -u | wc -l)" = 1 ]; then
    say "Faces found: ${faces[0]} at every batch size (the same images in every run)."
  else
    failed+=("throughput: faces differ by batch size")
    say "**Faces found differ by batch size: ${faces[*]}** (same images in every run)."
  fi
  best=$(printf '%s\n' "${rates[@]}" | sort -g | tail -n1)
  say "Best: ${best% *} images/s at max batch ${best#* }. Target on an H200-class GPU: ≥ 500"
  say "images/s with decode (issue #12; a figure, not a pass/fail check here)."
fi
say ""
say "(throughput: $((SECONDS - t0)) s)"

# ---- 3. index ----------------------------------------------------------------------------------
say ""
say "## 3. Index search on $device, checked against the CPU"
say ""
say "Random stored faces (norm ≈ 1), one in 1000 planted at 0..0.84 from one of the 8 new faces,"
say "threshold 0.6. Timings: median of $repeats searches. Check: every pair found on $device is"
say "found on the CPU path and the reverse, at bit-equal f64 distances (on --device cpu: the CPU"
say "index against the matrix layout CUDA uses, computed on the CPU)."
run_step index "$bin" index --device "$device" --sizes 100000,1000000 --repeats "$repeats" \
  --check-against-cpu

# ---- result ------------------------------------------------------------------------------------
say ""
if [ ${#failed[@]} -eq 0 ]; then
  say "## Result: PASS (every check within tolerance)"
  exit 0
fi
say "## Result: FAIL: $(IFS=';'; echo "${failed[*]}")"
exit 1
