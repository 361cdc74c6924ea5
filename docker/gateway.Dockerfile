# facematch gateway, plus the `facematch` command-line client that the logs listener runs
# (`facematch logs`). No models, no GPU.
#   docker build -f docker/gateway.Dockerfile -t facematch/gateway .
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
    && cargo build --release --locked -p gateway -p facematch-client \
    && install -D -m 0755 target/release/gateway target/release/facematch -t /out/

FROM ${RUNTIME_IMAGE}
# ca-certificates: `POST /scan/url` fetches https URLs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gateway"]
