#!/usr/bin/env bash
# One command for the whole-proxy benchmark (docs/performance.md):
#
#   bench/run.sh                       # 3 runs, 3 s per phase, 10,000 idle connections
#   bench/run.sh --runs 5 --duration 5 # more/longer runs
#   bench/run.sh --targets direct,iron --idle-conns 1000 --runs 1   # quick look
#
# Installs what it needs (apt), builds build/iron-proxy if missing, raises the fd limit, then runs
# bench/bench.py inside a private network namespace (only its own loopback exists there, so
# nothing else on the machine is disturbed and port 443 is free for nginx). Every process it
# starts is killed on exit. Set BENCH_NETNS=0 to run on the host's loopback instead (needs
# 127.0.0.1:443 free), BENCH_KEEP=1 to keep the work dir (configs, logs), BENCH_MAX_SECONDS to
# change the overall time limit (default 1800). Writes bench/results/latest.{md,json}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BENCH_PACKAGES=(nginx squid-openssl mitmproxy hey curl openssl iproute2 python3)
missing=()
for p in "${BENCH_PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "bench: installing ${missing[*]}"
  SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo -n)
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  # policy-rc.d-less machines would start the packaged nginx/squid services: we never need them.
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
  for svc in nginx squid; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      "${SUDO[@]}" systemctl stop "$svc" || true
    fi
  done
fi

if [[ ! -x build/iron-proxy ]]; then
  echo "bench: build/iron-proxy missing; building"
  scripts/build.sh
fi

# 10,000 idle connections need > 20,000 descriptors in the proxy (client + upstream side) and
# 10,000 in the client; root may raise the hard limit.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
echo "bench: fd limit $(ulimit -n)"

if [[ $(id -u) -ne 0 ]]; then
  echo "bench: must run as root (network namespace, squid's user switch, fd limits)" >&2
  exit 1
fi

WORK=$(mktemp -d /tmp/iron-bench.XXXXXX)
chmod 755 "$WORK"   # squid runs as `proxy` and must reach its files below
touch "$WORK/pgids"
CHILD=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$CHILD" ]]; then kill -TERM "$CHILD" 2>/dev/null || true; fi
  # bench.py records the session id of everything it starts; kill whatever survived.
  while read -r sid; do
    [[ -n "$sid" ]] || continue
    kill -KILL -- "-$sid" 2>/dev/null || true
    for p in $(ps -o pid= -s "$sid" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  done < "$WORK/pgids"
  if [[ -n "$CHILD" ]]; then wait "$CHILD" 2>/dev/null || true; fi
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench: work dir kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

CMD=(python3 bench/bench.py --work "$WORK" "$@")
if [[ "${BENCH_NETNS:-1}" == 1 ]]; then
  CMD=(unshare --net -- "${CMD[@]}" --netns)
fi
timeout --signal=TERM --kill-after=30 "${BENCH_MAX_SECONDS:-1800}" "${CMD[@]}" &
CHILD=$!
wait "$CHILD"
