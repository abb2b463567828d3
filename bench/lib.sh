# Shared by bench/run.sh and bench/soak.sh (sourced, not run): install what a driver needs, build
# the proxy if missing, raise the fd limit, then run a Python driver in a private network
# namespace under a time limit, killing everything it started on exit.
#
#   BENCH_NETNS=0        run on the host's loopback instead of a private namespace
#   BENCH_KEEP=1         keep the work dir (configs, logs, audit file)
#   BENCH_MAX_SECONDS    overall time limit (each script sets its own default)

# bench_install PACKAGE... — apt-get install whatever is missing (quietly; never starts services).
bench_install() {
  local missing=() p
  for p in "$@"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$p")
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  echo "bench: installing ${missing[*]}"
  local SUDO=()
  [[ $(id -u) -eq 0 ]] || SUDO=(sudo -n)
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  # policy-rc.d-less machines would start the packaged nginx/squid services: we never need them.
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
  local svc
  for svc in nginx squid; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      "${SUDO[@]}" systemctl stop "$svc" || true
    fi
  done
}

# bench_prepare — build build/iron-proxy if absent, raise the fd limit, insist on root.
bench_prepare() {
  if [[ ! -x build/iron-proxy ]]; then
    echo "bench: build/iron-proxy missing; building"
    scripts/build.sh
  fi
  # 10,000 connections need > 20,000 descriptors in the proxy (client + upstream side) and
  # 10,000 in the client; root may raise the hard limit.
  ulimit -Hn 1048576 2>/dev/null || true
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
  echo "bench: fd limit $(ulimit -n)"
  if [[ $(id -u) -ne 0 ]]; then
    echo "bench: must run as root (network namespace, squid's user switch, fd limits)" >&2
    exit 1
  fi
}

# bench_run_driver MAX_SECONDS DRIVER.py ARGS... — run the driver with --work DIR (and --netns
# inside `unshare --net`), bounded by MAX_SECONDS; on exit kill every session the driver recorded
# in DIR/pgids and remove DIR (unless BENCH_KEEP=1). Returns the driver's exit status.
bench_run_driver() {
  local max_seconds=$1 driver=$2
  shift 2
  BENCH_WORK=$(mktemp -d /tmp/iron-bench.XXXXXX)
  chmod 755 "$BENCH_WORK"   # squid runs as `proxy` and must reach its files below
  touch "$BENCH_WORK/pgids"
  BENCH_CHILD=""
  trap _bench_cleanup EXIT INT TERM
  local cmd=(python3 "$driver" --work "$BENCH_WORK" "$@")
  if [[ "${BENCH_NETNS:-1}" == 1 ]]; then
    cmd=(unshare --net -- "${cmd[@]}" --netns)
  fi
  timeout --signal=TERM --kill-after=30 "$max_seconds" "${cmd[@]}" &
  BENCH_CHILD=$!
  wait "$BENCH_CHILD"
}

_bench_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$BENCH_CHILD" ]]; then kill -TERM "$BENCH_CHILD" 2>/dev/null || true; fi
  # The driver records the session id of everything it starts; kill whatever survived.
  local sid p
  while read -r sid; do
    [[ -n "$sid" ]] || continue
    kill -KILL -- "-$sid" 2>/dev/null || true
    for p in $(ps -o pid= -s "$sid" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
  done < "$BENCH_WORK/pgids"
  if [[ -n "$BENCH_CHILD" ]]; then wait "$BENCH_CHILD" 2>/dev/null || true; fi
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench: work dir kept: $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
  exit "$rc"
}
