#!/usr/bin/env bash
# One command for the whole-proxy benchmark (docs/performance.md):
#
#   bench/run.sh                       # 3 runs, 3 s per phase, 10,000 idle connections
#   bench/run.sh --runs 5 --duration 5 # more/longer runs
#   bench/run.sh --targets direct,iron --idle-conns 1000 --runs 1   # quick look
#   bench/run.sh --targets direct,iron --binary OLD_PATH --binary NEW_PATH   # A/B two builds
#   bench/run.sh --go-binary PATH      # the Go iron-proxy for target `go` (default: found or skipped)
#
# Installs what it needs (apt), builds build/iron-proxy if missing, raises the fd limit, then runs
# bench/bench.py inside a private network namespace (only its own loopback exists there, so
# nothing else on the machine is disturbed and port 443 is free for nginx). Every process it
# starts is killed on exit. Set BENCH_NETNS=0 to run on the host's loopback instead (needs
# 127.0.0.1:443 free), BENCH_KEEP=1 to keep the work dir (configs, logs), BENCH_MAX_SECONDS to
# change the overall time limit (default 1800). Writes bench/results/latest.{md,json}.
set -euo pipefail
export BENCH_CALLER_DIR="$PWD"   # relative --binary / --go-binary / --out paths are the caller's
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_install nginx squid-openssl mitmproxy hey curl openssl iproute2 python3
bench_prepare
bench_run_driver "${BENCH_MAX_SECONDS:-1800}" bench/bench.py "$@"
