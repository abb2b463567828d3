# syntax=docker/dockerfile:1
# iron-proxy (C++) image: build on Debian 12 with the project's own scripts, run on debian:12-slim.
#
#   docker build -f examples/docker-compose/Dockerfile -t iron-proxy:local .     # from the repo root
#   docker run --rm iron-proxy:local version
#
# The build context is the repository root; Dockerfile.dockerignore (next to this file, BuildKit)
# keeps the local build*/ trees, .git and caches out of it.

# --- build ---------------------------------------------------------------------------------------
FROM debian:12 AS build
WORKDIR /src
# Dependencies first, so editing sources does not re-run apt. install-deps.sh installs everything
# the project's build, tests and benchmarks use; only this stage has them.
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# Release build of the binary only (no unit tests), with a ccache kept between image builds.
ENV BUILD_DIR=/src/build-image CMAKE_BUILD_TYPE=Release CCACHE_DIR=/root/.cache/ccache
RUN --mount=type=cache,target=/root/.cache/ccache \
    scripts/build.sh -DIRON_BUILD_TESTS=OFF \
 && strip --strip-unneeded build-image/iron-proxy \
 && build-image/iron-proxy version

# --- runtime -------------------------------------------------------------------------------------
FROM debian:12-slim
# Shared libraries of the binary (ldd build/iron-proxy: OpenSSL 3, yaml-cpp, c-ares, ldns, gRPC C++
# and protobuf for the grpc transform; Boost is header-only here), the system trust store for upstream TLS, and nftables for the optional
# egress lock-down init container (examples/kubernetes/sidecar.yaml).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libssl3 libyaml-cpp0.7 libc-ares2 libldns3 libgrpc++1.51 libprotobuf32 ca-certificates nftables \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin iron-proxy \
 && install -d -o iron-proxy -g iron-proxy -m 0750 /certs \
 && install -d -o iron-proxy -g iron-proxy -m 0755 /ca-public \
 && install -d -m 0755 /etc/iron-proxy
COPY --from=build /src/build-image/iron-proxy /usr/local/bin/iron-proxy
COPY examples/docker-compose/proxy.yaml /etc/iron-proxy/proxy.yaml
COPY examples/nftables/sandbox.nft /etc/iron-proxy/sandbox.nft
# Ports 53/80/443 as a non-root user: Docker (>= 20.10) sets net.ipv4.ip_unprivileged_port_start=0
# in the container's namespace; the compose file sets it explicitly as well.
USER iron-proxy
EXPOSE 53/udp 53/tcp 80/tcp 443/tcp 8080/tcp
ENTRYPOINT ["/usr/local/bin/iron-proxy"]
CMD ["-config", "/etc/iron-proxy/proxy.yaml"]
