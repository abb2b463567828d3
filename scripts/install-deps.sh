#!/usr/bin/env bash
# Installs every Debian package the build, the unit tests and the e2e tests need (the benchmarks
# install theirs themselves: bench_install in bench/lib.sh).
# Idempotent and fast when everything is present: apt is only touched when dpkg says something is
# missing. Non-interactive (safe for CI with no stdin).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  # libraries (Boost 1.81, not 1.74: the two -dev packages conflict)
  libboost1.81-dev libboost-url1.81-dev libboost-json1.81-dev
  libssl-dev libyaml-cpp-dev libnghttp2-dev libldns-dev libc-ares-dev
  # fuzz targets (scripts/fuzz.sh): clang with the libFuzzer and sanitizer runtimes
  clang-14 libclang-rt-14-dev
  # unit tests and micro-benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # e2e clients and fixtures
  curl openssl dnsutils
  python3-pytest python3-pytest-timeout python3-requests python3-dnspython
  python3-cryptography python3-websockets
  # HTTP/2 and gRPC e2e: h2 upstream and client, gRPC server and client, nghttp (+ nghttpd as a
  # conforming reference server in test_harness_h2.py)
  python3-h2 python3-grpcio nghttp2-client nghttp2-server
  # OTLP export: zlib (gzip), the schema compiler and runtime for the unit tests, and Python's
  # protobuf for the e2e collectors (they decode with modules protoc generates at test time)
  zlib1g-dev protobuf-compiler libprotobuf-dev python3-protobuf
  # secret stores e2e: an independent SigV4 implementation verifies what the proxy signs
  python3-botocore
  # the grpc transform: gRPC C++ and protoc's grpc_cpp_plugin (the client is generated at build
  # time from proto/transform/v1); its e2e service uses python3-grpcio and python3-protobuf above
  libgrpc++-dev protobuf-compiler-grpc
  # network-namespace scenarios
  iproute2 nftables
  # MCP e2e: the official MCP TypeScript SDK runs on node (npm ci below installs it)
  nodejs
  # upstream proxy chaining e2e: a real Squid as the parent proxy (the openssl flavour, which
  # conflicts with plain `squid`; either provides /usr/sbin/squid and basic_ncsa_auth)
  squid-openssl
  # packaging (#17): the .deb (dpkg-shlibdeps), `systemd-analyze verify` of the unit, a clean
  # Debian 12 root for `dpkg -i` (debootstrap), and the Helm chart's render test: Go's
  # text/template + sprig (the engine helm uses; no helm in Debian 12) and the schema check
  dpkg-dev systemd debootstrap
  golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev python3-jsonschema
  # allowlist groups / sandbox workflow e2e: the real clients (git clone, pip download; npm is
  # installed below when missing)
  git python3-pip
)

# The MCP e2e tests' npm packages (tests/e2e/mcp/package-lock.json), when not installed yet.
install_mcp_sdk() {
  local dir
  dir="$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/mcp"
  if ! command -v npm >/dev/null; then
    # Debian packages npm apart from nodejs (NodeSource's nodejs bundles it, and conflicts with
    # Debian's npm: so only when no npm is there).
    echo "install-deps: installing npm"
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm </dev/null
  fi
  if [[ ! -d "$dir/node_modules/@modelcontextprotocol/sdk" ]]; then
    echo "install-deps: npm ci in tests/e2e/mcp"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  install_mcp_sdk
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  SUDO=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}" </dev/null
echo "install-deps: done"
install_mcp_sdk
