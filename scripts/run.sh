#!/usr/bin/env bash
# Install dependencies, build, and run iron-proxy with the given arguments.
#   scripts/run.sh                         # the embedded default config (loopback 8080/8443/8888)
#   scripts/run.sh -config examples/iron-proxy.yaml
#   scripts/run.sh generate-ca -outdir certs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-deps.sh >&2
scripts/build.sh >&2
exec build/iron-proxy "$@"
