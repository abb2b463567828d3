# syntax=docker/dockerfile:1
# iron-proxy (C++) container image: built on Debian 12 with the project's own scripts, run on
# debian:12-slim with only the binary's runtime libraries, as a non-root user.
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t iron-proxy:0.1.0 .
#   iron-proxy generate-ca -outdir ca       # once; keep ca.key secret
#   docker run --rm -v "$PWD/ca:/etc/iron-proxy/tls:ro" -p 127.0.0.1:8888:8888 iron-proxy:0.1.0
#
# The image's version is the project's (CMakeLists.txt), the one the .deb carries: `docker run
# --rm iron-proxy:0.1.0 version` prints it with the commit and build flags. No Docker engine runs
# in this repository's CI: tests/e2e/test_deb_install.py runs the runtime stage's steps (these
# packages, this user, this config, the HEALTHCHECK) in a debootstrapped Debian 12 root instead.

# --- build ---------------------------------------------------------------------------------------
FROM debian:12 AS build
WORKDIR /src
# Dependencies first, so editing sources does not re-run apt.
COPY scripts/install-deps.sh scripts/install-deps.sh
COPY tests/e2e/mcp/package.json tests/e2e/mcp/package-lock.json tests/e2e/mcp/
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# The build context has no .git (.dockerignore): the commit comes in as a build argument.
ARG GIT_COMMIT=unknown
# Release build of the binary only (no unit tests, no benchmarks), ccache kept between builds.
ENV BUILD_DIR=/src/build-image CMAKE_BUILD_TYPE=Release CCACHE_DIR=/root/.cache/ccache \
    BUILD_TARGETS=iron-proxy
RUN --mount=type=cache,target=/root/.cache/ccache \
    scripts/build.sh -DIRON_BUILD_TESTS=OFF -DIRON_BUILD_BENCH=OFF -DIRON_GIT_COMMIT="$GIT_COMMIT" \
 && strip --strip-unneeded build-image/iron-proxy \
 && build-image/iron-proxy version

# --- runtime -------------------------------------------------------------------------------------
FROM debian:12-slim
# The project version (CMakeLists.txt; tests/e2e/test_packaging.py keeps the two equal).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="iron-proxy" org.opencontainers.image.version="$VERSION"
# The binary's shared libraries (the .deb's Depends, from dpkg-shlibdeps), the system trust store
# for upstream TLS, and nftables for the optional egress lock-down (examples/kubernetes).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libssl3 libyaml-cpp0.7 libc-ares2 libldns3 libnghttp2-14 libgrpc++1.51 libprotobuf32 zlib1g \
      ca-certificates nftables \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin iron-proxy \
 && install -d -m 0755 /etc/iron-proxy /etc/iron-proxy/tls
COPY --from=build /src/build-image/iron-proxy /usr/bin/iron-proxy
COPY packaging/container/proxy.yaml /etc/iron-proxy/proxy.yaml
COPY packaging/container/healthcheck.sh /usr/lib/iron-proxy/healthcheck
COPY examples/nftables/sandbox.nft /etc/iron-proxy/sandbox.nft
# The CA (ca.crt + ca.key) is a mounted secret at /etc/iron-proxy/tls, never baked in.
VOLUME ["/etc/iron-proxy/tls"]
USER 10001:10001
EXPOSE 8080/tcp 8443/tcp 8888/tcp 9090/tcp
HEALTHCHECK --interval=10s --timeout=6s --start-period=5s --retries=3 CMD ["/usr/lib/iron-proxy/healthcheck"]
# SIGTERM drains (proxy.shutdown_timeout, 10 s by default): give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/iron-proxy"]
CMD ["-config", "/etc/iron-proxy/proxy.yaml"]
