#!/usr/bin/env bash
# Builds iron-proxy (scripts/build.sh) and makes the Debian package from that same build:
#   cpack --config build/CPackConfig.cmake -G DEB
# The .deb lands in $OUT_DIR (default build/packages/) and its path is the last line printed.
# The package's version is the project's (CMakeLists.txt), the one `iron-proxy version` prints.
# BUILD_DIR=dir packages another build directory. Needs dpkg-dev (dpkg-shlibdeps, in
# scripts/install-deps.sh); CPack itself writes the archive with root-owned entries.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/packages}

BUILD_DIR=$BUILD_DIR scripts/build.sh
mkdir -p "$OUT_DIR"
cpack --config "$BUILD_DIR/CPackConfig.cmake" -G DEB -B "$OUT_DIR" >&2
rm -rf "$OUT_DIR/_CPack_Packages"
version=$("$BUILD_DIR/iron-proxy" version | head -n1)
deb="$OUT_DIR/iron-proxy_${version}_$(dpkg --print-architecture).deb"
[[ -f $deb ]] || { echo "package.sh: expected $deb" >&2; exit 1; }
echo "$deb"
