#!/usr/bin/env bash
# Soak / reliability run (docs/performance.md, "Soak"):
#
#   bench/soak.sh                                   # 10,000 keep-alive MITM connections, 60 s of load
#   bench/soak.sh --conns 500 --duration 10 --think-min 0.5 --think-max 1.5   # quick look
#   bench/soak.sh --binary /path/to/iron-proxy      # another build
#   bench/soak.sh --waves 3 --malloc-trim           # RSS after each of 3 waves and after malloc_trim
#
# Installs what it needs (apt), builds build/iron-proxy if missing, raises the fd limit and runs
# bench/soak.py in a private network namespace (loopback only; port 443 free for nginx). Every
# process it starts is killed on exit. BENCH_NETNS=0 runs on the host's loopback (needs
# 127.0.0.1:443 free, or --upstream-port), BENCH_KEEP=1 keeps the work dir (configs, logs, audit
# file), BENCH_MAX_SECONDS changes the hard time limit (default 1200). Writes
# bench/results/soak-latest.{md,json}; exits non-zero if any request failed, a reload failed or
# the audit file does not account for every request exactly once. `python3 bench/soak.py --help`
# lists the options.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_install nginx curl openssl iproute2 python3
bench_prepare
bench_run_driver "${BENCH_MAX_SECONDS:-1200}" bench/soak.py "$@"
