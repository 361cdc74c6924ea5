# facematch worker on NVIDIA GPUs (candle's CUDA kernels compiled for CUDA_COMPUTE_CAP).
#   docker build -f docker/worker-cuda.Dockerfile --build-arg CUDA_COMPUTE_CAP=90 \
#     -t facematch/worker-cuda .
ARG CUDA_VERSION=13.0.0
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
ARG CUDA_COMPUTE_CAP=90
RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates \
      build-essential pkg-config npm git \
    && rm -rf /var/lib/apt/lists/*
RUN curl -sSf https://sh.rustup.rs | sh -s -- -y --default-toolchain 1.95.0 --profile minimal
ENV PATH=/root/.cargo/bin:$PATH CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP}
WORKDIR /src
COPY . .
RUN cargo build --release -p gpu-worker --features cuda \
    && FACEMATCH_CONVERTER=target/release/gpu-worker scripts/fetch-weights.sh

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04
WORKDIR /app
COPY --from=build /src/target/release/gpu-worker /usr/local/bin/gpu-worker
COPY --from=build /src/model-weights/*.safetensors /src/model-weights/manifest.json \
     /src/model-weights/LICENSE.face-api /app/model-weights/
ENV FACEMATCH_WEIGHTS_DIR=/app/model-weights FACEMATCH_DEVICE=cuda
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/gpu-worker"]
CMD ["serve"]
