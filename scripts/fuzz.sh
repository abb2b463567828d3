#!/usr/bin/env bash
# Build and run the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, build dir build-fuzz).
#
#   scripts/fuzz.sh list                 # the targets
#   scripts/fuzz.sh build                # only build them
#   scripts/fuzz.sh smoke [SECONDS]      # every target over its seeds for SECONDS (default 10) each;
#                                        # what CI runs (scripts/test.sh). Writes nothing to the tree.
#   scripts/fuzz.sh all SECONDS          # a campaign: every target for SECONDS each, one after another
#   scripts/fuzz.sh NAME [SECONDS]       # one target (default 60 s)
#
# Campaigns keep what they find in fuzz-out/<target>/ (git-ignored): corpus/ (new inputs, reused by
# the next run) and crashes/ (crash-*, leak-*, timeout-*, oom-* inputs). Reproduce one with
# `build-fuzz/<target>_fuzz fuzz-out/<target>/crashes/crash-…`. At the end a table gives each
# target's executions, coverage (cov: edges, ft: features), corpus size and outcome.
# IRON_FUZZ_JOBS=N runs each target in N processes (libFuzzer -fork=N). The exit status is 1 when
# any target crashed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BUILD_DIR=${IRON_FUZZ_BUILD_DIR:-build-fuzz}
OUT_DIR=${IRON_FUZZ_OUT:-fuzz-out}
FUZZ_DIR=tests/fuzz

targets() {
  for f in "$FUZZ_DIR"/*_fuzz.cpp; do
    f=${f##*/}
    echo "${f%_fuzz.cpp}"
  done
}

build() {
  local start=$SECONDS
  # Clang for libFuzzer; ccache (build.sh) keeps rebuilds cheap.
  BUILD_DIR=$BUILD_DIR CC=${CC:-clang-14} CXX=${CXX:-clang++-14} scripts/build.sh -DIRON_BUILD_FUZZ=ON >&2 ||
    { echo "fuzz.sh: build failed" >&2; return 1; }
  echo "fuzz.sh: build took $((SECONDS - start)) s" >&2
}

# Per-target libFuzzer options: input size cap (large enough for each format's limits to be
# reached) and a dictionary when there is one.
target_options() {
  local t=$1
  local max_len=4096
  case $t in
    http1_request) max_len=16384 ;;
    client_hello) max_len=20000 ;;
    dns_codec) max_len=2048 ;;
    config) max_len=8192 ;;
  esac
  echo "-max_len=$max_len"
  [[ -f $FUZZ_DIR/dict/$t.dict ]] && echo "-dict=$FUZZ_DIR/dict/$t.dict"
}

# run_target NAME SECONDS CORPUS_DIR: fuzz for SECONDS over CORPUS_DIR (written to) and the seeds
# (read only); prints one summary row.
run_target() {
  local t=$1 seconds=$2 corpus=$3
  local bin=$BUILD_DIR/${t}_fuzz log=$OUT_DIR/$t/last-run.log
  mkdir -p "$corpus" "$OUT_DIR/$t/crashes"
  local opts
  mapfile -t opts < <(target_options "$t")
  [[ -n ${IRON_FUZZ_JOBS:-} ]] && opts+=("-fork=$IRON_FUZZ_JOBS" -ignore_crashes=0)
  local status=0
  "$bin" "${opts[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT_DIR/$t/crashes/" ${IRON_FUZZ_SEED:+-seed=$IRON_FUZZ_SEED} \
    "$corpus" "$FUZZ_DIR/corpus/$t" >"$log" 2>&1 || status=$?
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  local outcome=ok
  if [[ $status -ne 0 ]]; then
    outcome="FAILED (exit $status): $(grep -m1 -E 'ERROR: |runtime error:|==[0-9]+== ' "$log" | cut -c1-100)"
  fi
  printf '%-14s %10s execs  %-34s %s\n' "$t" "${execs:-?}" "${cov:-cov: ?}" "$outcome"
  if [[ $status -ne 0 ]]; then
    echo "  log: $log (last lines below)"
    tail -30 "$log" | sed 's/^/  | /'
    return 1
  fi
}

# run_many SECONDS SMOKE TARGET...: SMOKE=1 writes new inputs to a temporary dir (dropped after).
run_many() {
  local seconds=$1 smoke=$2
  shift 2
  local failed=0 tmp=""
  [[ $smoke == 1 ]] && tmp=$(mktemp -d /tmp/iron-fuzz-smoke.XXXXXX)
  echo "== fuzz: $* (${seconds} s each)"
  for t in "$@"; do
    local corpus=$OUT_DIR/$t/corpus
    [[ $smoke == 1 ]] && corpus=$tmp/$t
    run_target "$t" "$seconds" "$corpus" || failed=1
  done
  [[ -n $tmp ]] && rm -rf "$tmp"
  return $failed
}

cmd=${1:-}
case $cmd in
  list)
    targets
    ;;
  build)
    build
    ;;
  smoke)
    build || exit 1
    # A fixed seed: a smoke failure reproduces with the same command.
    IRON_FUZZ_SEED=${IRON_FUZZ_SEED:-1} run_many "${2:-10}" 1 $(targets)
    ;;
  all)
    [[ -n ${2:-} ]] || { echo "usage: scripts/fuzz.sh all SECONDS" >&2; exit 2; }
    build || exit 1
    run_many "$2" 0 $(targets)
    ;;
  ""|-h|--help|help)
    sed -n '2,18p' "$0"
    ;;
  *)
    if ! targets | grep -qx "$cmd"; then
      echo "fuzz.sh: unknown target '$cmd' (scripts/fuzz.sh list)" >&2
      exit 2
    fi
    build || exit 1
    run_many "${2:-60}" 0 "$cmd"
    ;;
esac
