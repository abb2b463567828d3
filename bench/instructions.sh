#!/usr/bin/env bash
# Instruction-count A/B of iron-proxy builds under callgrind (docs/performance.md, "Instruction
# counts"): Ir per request for fixed workloads, repeatable on a busy machine where CPU seconds are not.
#
#   bench/instructions.sh --binary old=PATH --binary new=PATH        # A/B, N = 2000 per workload
#   bench/instructions.sh --binary old=PATH --binary new=PATH --runs 3   # medians + spread, ~5 min
#   bench/instructions.sh                                             # build/iron-proxy alone
#
# Installs what it needs (apt), runs bench/instructions.py in a private network namespace (nginx on
# its ports 80 and 443), kills everything it started on exit. BENCH_KEEP=1 keeps the work dir with
# the callgrind files (callgrind_annotate them), BENCH_MAX_SECONDS caps the run (default 1500).
# Writes bench/results/instructions-latest.{md,json}.
set -euo pipefail
export BENCH_CALLER_DIR="$PWD"   # relative --binary / --out paths are the caller's
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_install nginx valgrind curl openssl iproute2 util-linux python3
if [[ $(id -u) -ne 0 ]]; then
  echo "bench: must run as root (network and mount namespaces)" >&2
  exit 1
fi
if [[ " $* " != *" --binary"* && ! -x build/iron-proxy ]]; then
  echo "bench: build/iron-proxy missing; building"
  scripts/build.sh
fi
bench_run_driver "${BENCH_MAX_SECONDS:-1500}" bench/instructions.py "$@"
