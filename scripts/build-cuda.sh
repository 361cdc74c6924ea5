#!/usr/bin/env bash
# Builds (or only type-checks) facematch's `cuda` feature on a machine with no GPU and no system
# CUDA toolkit. The toolkit comes from NVIDIA's CUDA 13 wheels on PyPI, installed once into a
# cache folder; the type-check needs nothing at all: a stand-in `nvcc` writes empty kernels.
#
#   scripts/build-cuda.sh [--check] [cargo args...]
#     (default cargo args: -p gpu-worker; a build is `cargo build --release`)
#   scripts/build-cuda.sh -p gpu-worker                       # the CUDA worker, release
#   scripts/build-cuda.sh -p facematch-perf --bin gpu-check   # the GPU check binary
#   scripts/build-cuda.sh --check -p gpu-worker --all-targets # type-check, no download
#
# Environment:
#   CUDA_COMPUTE_CAP   GPU generation the kernels are compiled for (default 90: H100, H200)
#   CUDA_WHEELS        cache folder for the wheels (default ~/.cache/facematch/cuda-13)
#   CUDA_WHEEL_VERSION cuda-toolkit wheel version (default 13.0.3.0); keep it at or below the
#                      CUDA version of the GPU machine's driver, whose JIT must read the PTX
#   CUDA_FEATURE       cargo feature to build (default cuda; cudnn needs cuDNN, see README)
#   CARGO_TARGET_DIR   default target/cuda (a build) or target/cuda-check (--check), so the
#                      CPU build in target/ is never invalidated
#
# The binary links the driver library libcuda.so.1 dynamically. It is not in any wheel: a link
# stub (every entry point answers "stub library") stands in for it at link time and the GPU
# machine's driver is loaded at run time. The CUDA runtime libraries the binary needs at run
# time (cudart, cublas, curand) are in $CUDA_WHEELS/nvidia/cu13/lib; scripts/gpu-check.sh finds
# them in python's nvidia wheels on a GPU machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
[ $# -gt 0 ] || set -- -p gpu-worker
feature=${CUDA_FEATURE:-cuda}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
started=$SECONDS

if [ "$check" = 1 ]; then
  # candle-kernels and cudarc run `nvcc` from their build scripts even for `cargo check`. The
  # stand-in answers --version and writes empty PTX, objects and archives where asked.
  stand_in=$(mktemp -d)
  trap 'rm -rf "$stand_in"' EXIT
  cat > "$stand_in/nvcc" <<'NVCC'
#!/bin/sh
for arg in "$@"; do
  if [ "$arg" = --version ]; then
    # Shaped like the real answer: cudarc's build script reads the release from line 4.
    echo "nvcc: stand-in for type-checks (no CUDA toolkit)"
    echo "facematch scripts/build-cuda.sh --check"
    echo "Built on -"
    echo "Cuda compilation tools, release 13.0, V13.0.0"
    exit 0
  fi
done
kind= output= folder= source= last=
for arg in "$@"; do
  case $last in -o) output=$arg ;; --output-directory) folder=$arg ;; esac
  case $arg in --ptx) kind=ptx ;; --lib) kind=lib ;; -c) kind=object ;; *.cu) source=$arg ;; esac
  last=$arg
done
case $kind in
  ptx) : > "${output:-$folder/$(basename "$source" .cu).ptx}" ;;
  object) : > "$output" ;;
  lib) rm -f "$output" && ar rc "$output" ;;
esac
NVCC
  chmod +x "$stand_in/nvcc"
  export PATH="$stand_in:$PATH"
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/cuda-check}
  cargo ${CARGO_CMD:-check} --features "$feature" "$@"
  exit
fi

# ---- the toolkit, from PyPI, once --------------------------------------------------------------
wheels=${CUDA_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/facematch/cuda-13}
cuda=$wheels/nvidia/cu13
if [ ! -x "$cuda/bin/nvcc" ]; then
  echo "build-cuda: installing the CUDA ${CUDA_WHEEL_VERSION:-13.0.3.0} wheels into $wheels (once)"
  python3 -m pip install --quiet --no-cache-dir --target "$wheels" \
    "cuda-toolkit[nvcc,cudart,cublas,curand,nvrtc,cccl]==${CUDA_WHEEL_VERSION:-13.0.3.0}"
fi

# The wheels ship versioned libraries only (libcublas.so.13); the linker wants the bare name.
for name in cudart cublas cublasLt curand nvrtc; do
  versioned=$(cd "$cuda/lib" && ls "lib$name.so."* 2> /dev/null | grep -E "^lib$name\.so\.[0-9]+$" | head -n1)
  [ -n "$versioned" ] || { echo "build-cuda: lib$name.so.N missing in $cuda/lib" >&2; exit 1; }
  ln -sfn "$versioned" "$cuda/lib/lib$name.so"
done

# The driver's libcuda.so, for the linker only: every cu* symbol of cuda.h, each returning 34
# (CUDA_ERROR_STUB_LIBRARY), under the real library's soname.
stub=$cuda/lib/stubs
if [ ! -f "$stub/libcuda.so" ]; then
  mkdir -p "$stub"
  gcc -E -P "$cuda/include/cuda.h" | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' |
    tr -d ' \t(' | sort -u | sed 's/.*/int &(void) { return 34; }/' > "$stub/libcuda-stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/libcuda-stub.c"
fi

# cudarc's build script finds the toolkit through CUDA_ROOT (and adds lib/ and lib/stubs to the
# link search); candle-kernels runs nvcc from PATH with CUDA_COMPUTE_CAP.
export CUDA_ROOT=$cuda CUDA_HOME=$cuda CUDA_PATH=$cuda
export PATH="$cuda/bin:$PATH"
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-$(nproc)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target/cuda}
echo "build-cuda: $(nvcc --version | tail -n1), compute capability $CUDA_COMPUTE_CAP"
cargo ${CARGO_CMD:-build --release} --features "$feature" "$@"
echo "build-cuda: done in $((SECONDS - started)) s; binaries in $CARGO_TARGET_DIR"
