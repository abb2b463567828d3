#!/usr/bin/env bash
# Install dependencies, build, run the unit tests (ctest) and the end-to-end suite (pytest), then
# the fuzz smoke run and the ASan + UBSan run. Extra arguments go to the main pytest run, e.g.:
#   scripts/test.sh -k tunnel    scripts/test.sh -x -v
#
# Phases: build, unit, e2e, fuzz and asan are all on by default (CI runs them). With ccache warm the
# whole run takes about 20 minutes on 2 cores; a cold ccache makes the ASan build alone ~40 minutes
# (docs/testing.md, Sanitizers).
#   IRON_TEST_FUZZ=0   skip the fuzz smoke: every libFuzzer target over its seeds for a fixed number
#                      of runs with a fixed seed (scripts/fuzz.sh smoke; clang, build-fuzz/)
#   IRON_TEST_ASAN=0   skip the sanitizer run: build-asan/ (gcc, -DIRON_SANITIZE=ON, only iron-proxy
#                      and unit_tests), its unit tests and the e2e files of ASAN_E2E_FILES below,
#                      failing on any ASan/LSan/UBSan report
# Exits non-zero if anything failed; the last line printed says which phases passed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=/usr/bin/python3   # Debian's python: it has python3-pytest & co (a pyenv python may not)

# The e2e files run against the sanitizer build: every listener (plain, HTTPS/MITM, tunnel), CONNECT
# and SOCKS5, sni-only, HTTP/2, WebSocket, secrets with response redaction and the canary, request
# framing, DNS, config errors, upstream errors, Proxy-Status replies, the OTLP exporter's thread. Left out: the slow transfers (`slow` marker:
# 100 MiB / 1 GiB) and the tests bounding the proxy's RSS (ASAN_E2E_DESELECT): under ASan they take
# minutes and measure the sanitizer's quarantine, not the proxy.
ASAN_E2E_FILES=(
  tests/e2e/test_http_listener.py tests/e2e/test_https_listener.py tests/e2e/test_tunnel.py
  tests/e2e/test_socks5.py tests/e2e/test_sni_only.py tests/e2e/test_http2.py tests/e2e/test_websocket.py
  tests/e2e/test_secrets.py tests/e2e/test_redaction.py tests/e2e/test_canary.py
  tests/e2e/test_request_framing.py tests/e2e/test_dns.py tests/e2e/test_config.py
  tests/e2e/test_upstream_errors.py tests/e2e/test_proxy_status.py tests/e2e/test_otel_export.py
)
# The RSS-bounded tests of those files (rapid reset, stalled stream, redaction of a large body).
ASAN_E2E_DESELECT="not bounded and not flow_controlled"
# -O1 -g1 instead of RelWithDebInfo's -O2 -g: gcc compiles the Asio/Beast-heavy sources with ASan
# and UBSan 2.5-3 times faster (h2/server.cpp: 270 s -> 100 s), and -g1's line tables are all a
# sanitizer stack needs. Benchmarks are off; only the two targets the phase runs are built.
ASAN_CMAKE_ARGS=(-DIRON_SANITIZE=ON -DIRON_BUILD_BENCH=OFF "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG")
# Sanitizer reports stop the process (UBSan too) and name every frame; LSan checks leaks at exit.
SANITIZER_ENV=(
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
)

phase_start=$SECONDS
declare -a summary=()
failed=0
# phase_done NAME STATUS: one word per phase for the last line, with how long it took.
phase_done() {
  local name=$1 status=$2
  local took=$((SECONDS - phase_start))
  phase_start=$SECONDS
  if [[ $status -eq 0 ]]; then
    summary+=("$name ok (${took}s)")
  else
    summary+=("$name FAILED (${took}s)")
    failed=1
  fi
  echo "test.sh: phase $name took ${took} s (exit $status)"
}

pytest_timeout_args() {
  if "$PYTHON" -c 'import pytest_timeout' 2>/dev/null; then
    echo "--timeout=$1"
  else
    echo "(pytest-timeout not installed: conftest.py enforces a per-test limit itself)" >&2
  fi
}

scripts/install-deps.sh || { echo "test.sh: installing dependencies failed" >&2; exit 1; }

echo "== build"
if ! scripts/build.sh; then
  echo "test.sh: build failed" >&2
  exit 1
fi
phase_done build 0

echo "== unit tests (ctest)"
ctest_status=0
timeout --foreground -k 30 900 ctest --test-dir build --output-on-failure -j2 --timeout 120 \
  || ctest_status=$?
phase_done unit "$ctest_status"

echo "== end-to-end tests (pytest)"
mapfile -t timeout_args < <(pytest_timeout_args 120)
pytest_status=0
# The whole e2e run is bounded too; the per-test limit normally fires long before this.
timeout --foreground -k 30 1500 "$PYTHON" -m pytest -q tests/e2e "${timeout_args[@]}" "$@" || pytest_status=$?
phase_done e2e "$pytest_status"

if [[ ${IRON_TEST_FUZZ:-1} != 0 ]]; then
  echo "== fuzz smoke (scripts/fuzz.sh smoke)"
  fuzz_status=0
  timeout --foreground -k 30 900 scripts/fuzz.sh smoke || fuzz_status=$?
  phase_done fuzz "$fuzz_status"
else
  echo "== fuzz smoke skipped (IRON_TEST_FUZZ=0)"
fi

if [[ ${IRON_TEST_ASAN:-1} != 0 ]]; then
  echo "== ASan + UBSan build (build-asan)"
  if BUILD_DIR=build-asan BUILD_TARGETS="iron-proxy unit_tests" scripts/build.sh "${ASAN_CMAKE_ARGS[@]}"; then
    phase_done asan-build 0
    echo "== ASan + UBSan unit tests"
    # One process for all tests, not ctest's one per test: a sanitizer runtime starts in ~1 s, which
    # made the ctest run 8 minutes instead of well under one.
    asan_unit=0
    env "${SANITIZER_ENV[@]}" timeout --foreground -k 30 900 build-asan/unit_tests --gtest_brief=1 || asan_unit=$?
    phase_done asan-unit "$asan_unit"
    echo "== ASan + UBSan end-to-end subset"
    mapfile -t timeout_args < <(pytest_timeout_args 300)
    asan_e2e=0
    env "${SANITIZER_ENV[@]}" IRON_PROXY_BIN="$PWD/build-asan/iron-proxy" IRON_E2E_TEST_TIMEOUT=300 \
      timeout --foreground -k 30 1200 "$PYTHON" -m pytest -q -m "not slow" -k "$ASAN_E2E_DESELECT" \
      -p no:cacheprovider "${timeout_args[@]}" "${ASAN_E2E_FILES[@]}" || asan_e2e=$?
    phase_done asan-e2e "$asan_e2e"
  else
    phase_done asan-build 1
  fi
else
  echo "== ASan + UBSan skipped (IRON_TEST_ASAN=0)"
fi

echo "test.sh: ${summary[*]}"
exit $failed
