#!/usr/bin/env bash
# Builds the two base images the Dockerfiles take as build arguments, on a host that cannot
# pull from a container registry but reaches Debian's package archive:
#   facematch-local/debian:bookworm   RUNTIME_IMAGE  (debootstrap minbase + ca-certificates)
#   facematch-local/rust:bookworm     RUST_IMAGE     (the above + gcc, pkg-config, this host's
#                                                     Rust toolchain, Node.js and npm)
# and, for compose (REDIS_IMAGE, RABBITMQ_IMAGE), stand-ins for the services' official images
# from Debian's packages: facematch-local/redis:bookworm, facematch-local/rabbitmq:bookworm.
# Then: docker build --build-arg RUST_IMAGE=facematch-local/rust:bookworm \
#         --build-arg RUNTIME_IMAGE=facematch-local/debian:bookworm -f docker/… .
# Where registries can be pulled from, skip this: the Dockerfiles default to the official images.
#   needs: root, debootstrap, docker; env: DEBIAN_MIRROR (default: the host's apt source),
#   WORK (default /tmp/facematch-local-base)
set -euo pipefail

work=${WORK:-/tmp/facematch-local-base}
suite=bookworm
# The host's own Debian mirror, read from its apt sources so nothing names a host here.
mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)}
[ -n "$mirror" ] || { echo "local-base: set DEBIAN_MIRROR" >&2; exit 1; }
rootfs=$work/rootfs

if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
  echo "local-base: debootstrap $suite (minbase) into $rootfs"
  rm -rf "$rootfs"
  mkdir -p "$work"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log"
fi
# The host's trust store, so TLS to the registries works inside builds as it does on the host
# (a TLS-inspecting egress proxy adds its own CA there).
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

echo "local-base: importing facematch-local/debian:$suite"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' - "facematch-local/debian:$suite" >/dev/null

# Builder: compilers from Debian, Rust and Node.js copied from this host (neither can be
# downloaded from inside a build here).
builder=$work/builder
rm -rf "$builder"
mkdir -p "$builder"
toolchain=$(rustc --print sysroot)
node=$(command -v node)
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
cat >"$builder/Dockerfile" <<EOF
FROM facematch-local/debian:$suite
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config \\
    && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    CARGO_HOME=/usr/local/cargo
# Node.js trusts only its own CA list unless told; the host's trust store is the one to use.
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
EOF
echo "local-base: copying the Rust toolchain ($toolchain) and Node.js ($node)"
cp -a "$toolchain" "$builder/rust"
rm -rf "$builder/rust/share/doc"
cp "$node" "$builder/node"
cp -a "$npm_dir" "$builder/npm"
echo "local-base: building facematch-local/rust:$suite"
DOCKER_BUILDKIT=0 docker build -q -t "facematch-local/rust:$suite" "$builder" >/dev/null
rm -rf "$builder"

# build_service NAME < DOCKERFILE: a stand-in service image from Debian's packages.
build_service() {
  local dir=$work/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  cat >"$dir/Dockerfile"
  echo "local-base: building facematch-local/$1:$suite"
  DOCKER_BUILDKIT=0 docker build -q -t "facematch-local/$1:$suite" "$dir" >/dev/null
  rm -rf "$dir"
}
build_service redis <<EOF
FROM facematch-local/debian:$suite
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \\
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
CMD ["redis-server", "--dir", "/data"]
EOF
# The official image lets guest log in from other hosts; so does this one.
build_service rabbitmq <<EOF
FROM facematch-local/debian:$suite
RUN apt-get update && apt-get install -y --no-install-recommends rabbitmq-server \\
    && rm -rf /var/lib/apt/lists/* \\
    && echo 'loopback_users = none' >/etc/rabbitmq/rabbitmq.conf \\
    && rabbitmq-plugins enable --offline rabbitmq_management
USER rabbitmq
CMD ["rabbitmq-server"]
EOF
echo "local-base: done (facematch-local/{debian,rust,redis,rabbitmq}:$suite)"
