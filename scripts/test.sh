#!/usr/bin/env bash
# Install dependencies, build, run the unit tests (ctest) and the end-to-end suite (pytest).
# Extra arguments go to pytest, e.g.:  scripts/test.sh -k tunnel    scripts/test.sh -x -v
# Exits non-zero if anything failed; the last line printed is pytest's summary.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=/usr/bin/python3   # Debian's python: it has python3-pytest & co (a pyenv python may not)

scripts/install-deps.sh || { echo "test.sh: installing dependencies failed" >&2; exit 1; }

echo "== build"
if ! scripts/build.sh; then
  echo "test.sh: build failed" >&2
  exit 1
fi

echo "== unit tests (ctest)"
ctest_status=0
timeout --foreground -k 30 900 ctest --test-dir build --output-on-failure -j2 --timeout 120 \
  || ctest_status=$?
if [[ $ctest_status -ne 0 ]]; then
  echo "test.sh: unit tests FAILED (ctest exit $ctest_status); running the e2e suite anyway"
fi

echo "== end-to-end tests (pytest)"
pytest_args=(-q tests/e2e)
if "$PYTHON" -c 'import pytest_timeout' 2>/dev/null; then
  pytest_args+=(--timeout=120)
else
  echo "(pytest-timeout not installed: conftest.py enforces a 120 s per-test limit itself)"
fi
pytest_status=0
# The whole e2e run is bounded too; the per-test limit normally fires long before this.
timeout --foreground -k 30 1500 "$PYTHON" -m pytest "${pytest_args[@]}" "$@" || pytest_status=$?

# Nothing is printed after pytest, so its summary stays the last line.
if [[ $ctest_status -ne 0 || $pytest_status -ne 0 ]]; then
  exit 1
fi
exit 0
