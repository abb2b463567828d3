#!/usr/bin/env bash
# Build and run the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, build dir build-fuzz).
#
#   scripts/fuzz.sh list                 # the targets
#   scripts/fuzz.sh build                # only build them
#   scripts/fuzz.sh smoke                # what CI runs (scripts/test.sh): every target over its seeds
#                                        # for a fixed number of runs (smoke_runs) with a fixed seed, so
#                                        # every run does the same work whatever the load; 60 s per
#                                        # target at most as a safety net. Writes nothing to the tree.
#   scripts/fuzz.sh all SECONDS          # a campaign: every target for SECONDS each, one after another
#   scripts/fuzz.sh NAME [SECONDS]       # one target (default 60 s)
#
# Campaigns keep what they find in fuzz-out/<target>/ (git-ignored): corpus/ (new inputs, reused by
# the next run) and crashes/ (crash-*, leak-*, timeout-*, oom-* inputs). Reproduce one with
# `build-fuzz/<target>_fuzz fuzz-out/<target>/crashes/crash-…`. At the end a table gives each
# target's executions, coverage (cov: edges, ft: features), corpus size and outcome.
# IRON_FUZZ_JOBS=N runs each campaign target in N processes (libFuzzer -fork=N; the smoke stays in
# one process to stay deterministic). IRON_FUZZ_SEED=N changes the seed (smoke: 1; campaigns:
# libFuzzer's random one). The exit status is 1 when any target crashed.
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

# The smoke's runs per target, sized so each takes about 5-20 s on a loaded 2-core CI machine and
# the whole smoke about 2 minutes (measured 2 min 05 s with the load of other jobs around it): the
# slow targets (config parses YAML and builds a pipeline, the secrets pipeline, dns_codec decodes
# every answer with ldns) get fewer runs, SOCKS5's tiny state machine and the CONNECT line many more.
smoke_runs() {
  case $1 in
    config) echo 30000 ;;
    secrets_scan | dns_codec) echo 100000 ;;
    tunnel_connect) echo 300000 ;;
    socks5) echo 1000000 ;;
    *) echo 200000 ;;
  esac
}
SMOKE_SECONDS_CAP=60

# run_target NAME CORPUS_DIR LIMIT...: fuzz over CORPUS_DIR (written to) and the seeds (read only)
# until the libFuzzer LIMIT options (-max_total_time=S, or -runs=N with a time cap) stop it;
# prints one summary row.
run_target() {
  local t=$1 corpus=$2
  shift 2
  local limits=("$@")
  local bin=$BUILD_DIR/${t}_fuzz log=$OUT_DIR/$t/last-run.log
  mkdir -p "$corpus" "$OUT_DIR/$t/crashes"
  local opts
  mapfile -t opts < <(target_options "$t")
  [[ -n ${IRON_FUZZ_JOBS:-} && ${limits[0]} != -runs=* ]] && opts+=("-fork=$IRON_FUZZ_JOBS" -ignore_crashes=0)
  # The smoke runs with address-space randomisation off: libFuzzer hashes code addresses into its
  # comparison tables, so with ASLR the same seed still mutates differently from run to run.
  local launcher=()
  [[ ${limits[0]} == -runs=* ]] && setarch -R true 2>/dev/null && launcher=(setarch -R)
  local status=0 start=$SECONDS
  "${launcher[@]}" "$bin" "${opts[@]}" "${limits[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT_DIR/$t/crashes/" ${IRON_FUZZ_SEED:+-seed=$IRON_FUZZ_SEED} \
    "$corpus" "$FUZZ_DIR/corpus/$t" >"$log" 2>&1 || status=$?
  local took=$((SECONDS - start))
  local execs cov
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
  local outcome=ok
  if [[ $status -ne 0 ]]; then
    outcome="FAILED (exit $status): $(grep -m1 -E 'ERROR: |runtime error:|==[0-9]+== ' "$log" | cut -c1-100)"
  elif [[ ${limits[0]} == -runs=* && ${execs:-0} -lt ${limits[0]#-runs=} ]]; then
    # Not a failure (nothing crashed) but less work than CI is meant to do: say so.
    outcome="ok, but the ${SMOKE_SECONDS_CAP} s cap stopped it before ${limits[0]#-runs=} runs"
  fi
  printf '%-14s %10s execs %4s s  %-34s %s\n' "$t" "${execs:-?}" "$took" "${cov:-cov: ?}" "$outcome"
  if [[ $status -ne 0 ]]; then
    echo "  log: $log (last lines below)"
    tail -30 "$log" | sed 's/^/  | /'
    return 1
  fi
}

# run_campaign SECONDS TARGET...: each target for SECONDS, its corpus kept in fuzz-out/.
run_campaign() {
  local seconds=$1 failed=0
  shift
  echo "== fuzz: $* (${seconds} s each)"
  for t in "$@"; do
    run_target "$t" "$OUT_DIR/$t/corpus" -max_total_time="$seconds" || failed=1
  done
  return $failed
}

# run_smoke TARGET...: smoke_runs runs each, new inputs in a temporary dir (dropped after).
run_smoke() {
  local failed=0 tmp
  tmp=$(mktemp -d /tmp/iron-fuzz-smoke.XXXXXX)
  echo "== fuzz smoke: $* (fixed runs, seed ${IRON_FUZZ_SEED}, ${SMOKE_SECONDS_CAP} s cap each)"
  for t in "$@"; do
    run_target "$t" "$tmp/$t" -runs="$(smoke_runs "$t")" -max_total_time="$SMOKE_SECONDS_CAP" || failed=1
  done
  rm -rf "$tmp"
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
    [[ -z ${2:-} ]] || { echo "fuzz.sh: smoke takes no SECONDS (a fixed number of runs per target)" >&2; exit 2; }
    build || exit 1
    # A fixed seed and run count: a smoke failure reproduces with the same command.
    IRON_FUZZ_SEED=${IRON_FUZZ_SEED:-1} run_smoke $(targets)
    ;;
  all)
    [[ -n ${2:-} ]] || { echo "usage: scripts/fuzz.sh all SECONDS" >&2; exit 2; }
    build || exit 1
    run_campaign "$2" $(targets)
    ;;
  ""|-h|--help|help)
    sed -n '2,21p' "$0"
    ;;
  *)
    if ! targets | grep -qx "$cmd"; then
      echo "fuzz.sh: unknown target '$cmd' (scripts/fuzz.sh list)" >&2
      exit 2
    fi
    build || exit 1
    run_campaign "${2:-60}" "$cmd"
    ;;
esac
