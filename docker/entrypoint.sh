#!/usr/bin/env bash
# Entrypoint of the rangekv image: turns KV_* environment variables into the
# flags of kvnode, kvcoord, kvrepl or kvbench and exec's the program, so the
# program itself is PID 1 and gets the SIGTERM of `docker stop` (kvnode then
# finishes its in-flight writes and closes its stores before exiting).
#
#   rangekv-entrypoint node  [FLAG...]     kvnode (cluster mode; KV_STANDALONE=1: standalone)
#   rangekv-entrypoint coord [FLAG...]     kvcoord
#   rangekv-entrypoint repl  [FLAG...]     kvrepl (e.g. -c "put k v")
#   rangekv-entrypoint bench [FLAG...]     kvbench (e.g. --duration 10 --workload b)
#   rangekv-entrypoint health node|coord   exit 0 when the program in this container answers
#   rangekv-entrypoint help                this text
#   rangekv-entrypoint COMMAND [ARG...]    anything else runs as given (bash, kvnode --help)
#
# FLAGs after the role go to the program after the mapped ones.
# An empty variable counts as unset. Refuses (status 2) when a required one is missing.
#
# node and coord:
#   KV_ZK                   ZooKeeper connect string, host:port[,host:port...][/chroot] (required)
#   KV_CLUSTER              cluster name under /rangekv/ (--cluster)
#   KV_ID                   node id (required for node) / coordinator id (--id)
#   KV_ADMIN                serve Prometheus metrics, HOST:PORT (--admin)
#   KV_SESSION_TIMEOUT_MS   KV_LOG_LEVEL
# node:
#   KV_ADVERTISE            HOST:PORT others dial, e.g. the service name n1:7000 (required:
#                           a container's own host name is not one the others can resolve)
#   KV_LISTEN               address to serve on (default 0.0.0.0:7000)
#   KV_ADVERTISE_ADMIN      (default, when KV_ADMIN's host is a wildcard: KV_ADVERTISE's host
#                           with KV_ADMIN's port)
#   KV_DATA                 data directory (default /var/lib/rangekv/data, on the volume)
#   KV_REPLACE  KV_LEASE_MS  KV_ISR_LAG_MS  KV_SPLIT_BYTES  KV_SPLIT_QPS
#   KV_SPLIT_LOAD_WINDOW_MS  KV_MOVE_RATE  KV_MERGE_DELAY_MS  KV_SEGMENT_BYTES
#   KV_SNAPSHOT_AFTER_BYTES  KV_KEEP_LOG_RECORDS  KV_FSYNC  KV_FSYNC_INTERVAL_MS  KV_IO_THREADS
#   KV_STANDALONE=1         own the whole key space without ZooKeeper (KV_ZK must be unset)
# coord:
#   KV_RF  KV_MIN_INSYNC  KV_RANGES  KV_INITIAL_SPLITS  KV_FAILURE_TIMEOUT_MS
#   KV_RECONCILE_PERIOD_MS  KV_REPLACE_AFTER  KV_EXPECT_NODES  KV_BALANCE  KV_MOVES_PER_NODE
# repl and bench:
#   KV_ZK or KV_NODE (HOST:PORT of one node)   KV_CLUSTER   KV_TIMEOUT_MS
# Each variable stands for the flag of the same name: KV_LEASE_MS is --lease-ms.
set -euo pipefail

me=rangekv-entrypoint

die() { echo "$me: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

args=()
# opt VAR: when $VAR is set and not empty, pass it as the flag derived from
# VAR's name, so the table of variables cannot drift from the flags.
opt() {
  local var="$1" name
  [ -n "${!var:-}" ] || return 0
  name="${var#KV_}"; name="${name,,}"
  args+=("--${name//_/-}" "${!var}")
}
# need VAR WHY: refuse unless VAR is set.
need() { [ -n "${!1:-}" ] || die "missing $1: $2 (see: $me help)"; }

# HOST:PORT -> HOST / PORT; HOST keeps an IPv6 address's brackets.
host_of() { printf '%s' "${1%:*}"; }
port_of() { printf '%s' "${1##*:}"; }
wildcard() { case "$1" in ''|0.0.0.0|'[::]'|'*') return 0 ;; *) return 1 ;; esac; }
# The address to probe a server bound to $1 at, from inside its container.
local_addr() {
  local host; host=$(host_of "$1")
  case "$host" in
    '[::]') host='[::1]' ;;
    ''|0.0.0.0|'*') host=127.0.0.1 ;;
  esac
  printf '%s:%s' "$host" "$(port_of "$1")"
}

# kvnode creates the data directory, but a volume or bind mount owned by
# another user only shows up as its error deep in the log; say what to do.
check_writable() {
  local d="$1"
  while [ ! -e "$d" ]; do d=$(dirname "$d"); done
  if [ ! -d "$d" ] || [ ! -w "$d" ]; then
    die "KV_DATA=$1: $d is not a directory writable by uid $(id -u); mount a volume there" \
        "that this user owns (a new named volume at /var/lib/rangekv is)"
  fi
}

node() {
  if [ "${KV_STANDALONE:-0}" = 1 ]; then
    [ -z "${KV_ZK:-}" ] ||
      die "KV_STANDALONE=1 runs without ZooKeeper; unset KV_ZK or KV_STANDALONE"
    args+=(--standalone)
  else
    need KV_ZK "the ZooKeeper connect string, e.g. zk1:2181,zk2:2181,zk3:2181"
    need KV_ID "the node's id, e.g. n1 (it must stay the same across restarts)"
    need KV_ADVERTISE "the HOST:PORT other containers reach this node at, e.g. n1:7000"
    if [ -n "${KV_ADMIN:-}" ] && [ -z "${KV_ADVERTISE_ADMIN:-}" ] &&
       wildcard "$(host_of "$KV_ADMIN")"; then
      KV_ADVERTISE_ADMIN="$(host_of "$KV_ADVERTISE"):$(port_of "$KV_ADMIN")"
    fi
    local v
    for v in KV_ZK KV_CLUSTER KV_ADVERTISE KV_ADVERTISE_ADMIN KV_SESSION_TIMEOUT_MS KV_REPLACE \
             KV_LEASE_MS KV_ISR_LAG_MS KV_SPLIT_BYTES KV_SPLIT_QPS KV_SPLIT_LOAD_WINDOW_MS \
             KV_MOVE_RATE KV_MERGE_DELAY_MS; do
      opt "$v"
    done
  fi
  KV_LISTEN="${KV_LISTEN:-0.0.0.0:7000}"
  KV_DATA="${KV_DATA:-/var/lib/rangekv/data}"
  check_writable "$KV_DATA"
  local v
  for v in KV_ID KV_LISTEN KV_DATA KV_ADMIN KV_SEGMENT_BYTES KV_SNAPSHOT_AFTER_BYTES \
           KV_KEEP_LOG_RECORDS KV_FSYNC KV_FSYNC_INTERVAL_MS KV_IO_THREADS KV_LOG_LEVEL; do
    opt "$v"
  done
  exec kvnode "${args[@]}" "$@"
}

coord() {
  need KV_ZK "the ZooKeeper connect string, e.g. zk1:2181,zk2:2181,zk3:2181"
  local v
  for v in KV_ZK KV_CLUSTER KV_ID KV_RF KV_MIN_INSYNC KV_RANGES KV_INITIAL_SPLITS \
           KV_SESSION_TIMEOUT_MS KV_FAILURE_TIMEOUT_MS KV_RECONCILE_PERIOD_MS KV_REPLACE_AFTER \
           KV_EXPECT_NODES KV_BALANCE KV_MOVES_PER_NODE KV_ADMIN KV_LOG_LEVEL; do
    opt "$v"
  done
  exec kvcoord "${args[@]}" "$@"
}

# repl and bench reach the cluster the same way: through ZooKeeper, or one node.
client() {
  local program="$1"; shift
  if [ -n "${KV_NODE:-}" ]; then
    opt KV_NODE
  else
    need KV_ZK "the ZooKeeper connect string (or KV_NODE=HOST:PORT for a single node)"
    opt KV_ZK
    opt KV_CLUSTER
  fi
  opt KV_TIMEOUT_MS
  exec "$program" "${args[@]}" "$@"
}

# Compose health checks: no curl or nc in the image, so the node is asked
# with kvrepl and the coordinator's metrics endpoint with bash's /dev/tcp.
health() {
  case "${1:-}" in
    node)
      local addr out
      addr=$(local_addr "${KV_LISTEN:-0.0.0.0:7000}")
      out=$(kvrepl --node "$addr" --timeout-ms 2000 -c ping 2>&1) || true
      if [ "$out" != PONG ]; then
        echo "node at $addr does not answer: $out" >&2
        exit 1
      fi
      ;;
    coord)
      need KV_ADMIN "the coordinator's health is its metrics endpoint"
      local addr host port status
      addr=$(local_addr "$KV_ADMIN"); host=$(host_of "$addr"); port=$(port_of "$addr")
      host="${host#[}"; host="${host%]}"
      # shellcheck disable=SC2016  # expanded by the inner bash, from its arguments
      status=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" >&3
        head -n 1 <&3' _ "$host" "$port" 2>/dev/null) || true
      case "$status" in
        "HTTP/1."?" 200"*) ;;
        *) echo "metrics endpoint $addr: ${status:-no answer}" >&2; exit 1 ;;
      esac
      ;;
    *) die "health wants node or coord" ;;
  esac
}

role="${1:-help}"
[ $# -gt 0 ] && shift
case "$role" in
  node) node "$@" ;;
  coord) coord "$@" ;;
  repl) client kvrepl "$@" ;;
  bench) client kvbench "$@" ;;
  health) health "$@" ;;
  help|-h|--help) usage ;;
  *) exec "$role" "$@" ;;
esac
