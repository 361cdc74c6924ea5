# facematch gateway: no models, no GPU.
#   docker build -f docker/gateway.Dockerfile -t facematch/gateway .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p gateway

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/gateway /usr/local/bin/gateway
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/gateway"]
