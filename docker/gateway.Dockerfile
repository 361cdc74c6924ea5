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
# The crate registry and target/ live in BuildKit cache mounts: a rebuild after a source change
# compiles only the workspace, not its ~400 dependencies.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p gateway -p facematch-client \
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
