#!/usr/bin/env bash
# A cluster on a 3-server ZooKeeper ensemble (scripts/kvcluster
# --zk-servers 3), under a 50/50 load: the ZooKeeper leader is killed, the
# ensemble elects another, the killed server comes back, and the new
# leader is killed in turn. Every request of the load must succeed (the
# data path needs no ZooKeeper write; a node that loses its server
# reconnects to another within its session), every range keeps an owner,
# and the REPL and a fresh client reach the cluster through the remaining
# servers. Every wait is a poll with a deadline.
set -uo pipefail
src="${RANGEKV_SOURCE_DIR:?}"
export RANGEKV_BUILD_DIR="${RANGEKV_BUILD_DIR:?}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/rangekv-zk-ensemble-XXXXXX")
K() { "$src/scripts/kvcluster" --dir "$dir" "$@"; }
bench_pid=""
cleanup() {
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill "$bench_pid" 2>/dev/null; wait "$bench_pid" 2>/dev/null
  fi
  K down >/dev/null 2>&1; rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE  # through the EXIT trap: never leave a cluster behind
# shellcheck source=tests/testutil/checks.sh
. "$src/tests/testutil/checks.sh"
leader_is_not() {  # a leader serves, and it is not server $1
  local l; l=$(K zk-leader); [ "$l" != - ] && [ "$l" != "$1" ]
}
bench_ran() { grep -q '^\[ *[0-9]*s\] run' "$dir/bench.out"; }

# An even ensemble tolerates no more failures than the odd one below it:
# refused, and nothing is left behind.
check "--zk-servers 2 is refused before anything starts" bash -c \
  "! '$src/scripts/kvcluster' --dir '$dir/even' up --zk-servers 2 2>/dev/null && [ -z \"\$(ls -A '$dir/even')\" ]"

zk=$(K up --nodes 3 --rf 3 --ranges 3 --zk-servers 3 2>"$dir/up.err")
check "up prints the connect string of three servers" \
  matches "$zk" '^127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+,127\.0\.0\.1:[0-9]+$'
if [ -z "$zk" ]; then
  cat "$dir/up.err"; tail -n 5 "$dir"/zk*/zk.log "$dir"/coord*/log "$dir"/nodes/*/log 2>/dev/null
  exit 1
fi
check "status names a leader and two followers" bash -c \
  "s=\$('$src/scripts/kvcluster' --dir '$dir' status); [ \$(grep -c '(leader)' <<<\"\$s\") = 1 ] && [ \$(grep -c '(follower)' <<<\"\$s\") = 2 ]"

"$RANGEKV_BUILD_DIR/bench/kvbench" --zk "$zk" --clients 8 --workload a --keys 5000 \
  --duration 16 --warmup 0 --timeout-ms 5000 >"$dir/bench.out" 2>&1 &
bench_pid=$!
check "load runs" poll 10 bench_ran

first=$(K zk-leader)
check "a leader at the start" matches "$first" '^[123]$'
K zk-kill "$first"
check "another server leads after the leader's kill -9" poll 20 leader_is_not "$first"
check "the killed server rejoins" K zk-start "$first"
second=$(K zk-leader)
K zk-kill "$second"
check "a third election after the new leader's kill" poll 20 leader_is_not "$second"

wait "$bench_pid"; rc=$?; bench_pid=""
check "every request of the load succeeded (kvbench exit 0)" [ "$rc" = 0 ]
grep -E '^RESULT|^errors' "$dir/bench.out"
check "kvbench made progress" grep -Eq '^RESULT ops_per_sec=[1-9]' "$dir/bench.out"
# (The load may have split ranges: their count is not fixed.)
check "every range active, with an owner" poll 20 bash -c \
  "'$src/scripts/kvcluster' --dir '$dir' status | grep -Eq '^ranges: [0-9]+ total, .* 0 unavailable, 0 without owner'"
check "a new client reaches the cluster with one server down" bash -c \
  "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk '$zk' --timeout-ms 5000 -c 'put after value-after' -c 'get after' | grep -qx value-after"
K zk-start "$second"
check "zk-kill of an unknown server is refused" bash -c "! '$src/scripts/kvcluster' --dir '$dir' zk-kill 4 2>/dev/null"

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" = 0 ]
