# facematch worker on the CPU, with the verified model weights baked in.
#   docker build -f docker/worker.Dockerfile -t facematch/worker .
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p gpu-worker \
    && FACEMATCH_CONVERTER=target/release/gpu-worker scripts/fetch-weights.sh

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/gpu-worker /usr/local/bin/gpu-worker
COPY --from=build /src/model-weights/*.safetensors /src/model-weights/manifest.json \
     /src/model-weights/LICENSE.face-api /app/model-weights/
ENV FACEMATCH_WEIGHTS_DIR=/app/model-weights FACEMATCH_DEVICE=cpu
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/gpu-worker"]
CMD ["serve"]
