#!/usr/bin/env bash
# scripts/kvcluster end to end, the way a person uses it: up, a write through
# the REPL, kill and restart a node at a new port, pause/resume, idempotent
# start/resume, a node added that is given a range, drained, restarted on an
# empty disk (--fresh), clear errors, down. Every wait is a poll with a
# deadline.
set -uo pipefail
src="${RANGEKV_SOURCE_DIR:?}"
export RANGEKV_BUILD_DIR="${RANGEKV_BUILD_DIR:?}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/rangekv-kvcluster-XXXXXX")
K() { "$src/scripts/kvcluster" --dir "$dir" "$@"; }
cleanup() { K down >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE  # through the EXIT trap: never leave a cluster behind
# shellcheck source=tests/testutil/checks.sh
. "$src/tests/testutil/checks.sh"
repl() { "$RANGEKV_BUILD_DIR/repl/kvrepl" --zk "$zk" --timeout-ms 3000 "$@"; }

zk=$(K up --nodes 3 --rf 1 --ranges 4 2>"$dir.up-err")
check "up prints a connect string" matches "$zk" '^127\.0\.0\.1:[0-9]+$'
if [ -z "$zk" ]; then  # say why, with the processes' own words
  cat "$dir.up-err"; tail -n 5 "$dir"/zk/zk.log "$dir"/coord*/log "$dir"/nodes/*/log 2>/dev/null
fi
rm -f "$dir.up-err"
check "status shows every range active" bash -c "'$src/scripts/kvcluster' --dir '$dir' status | grep -q 'ranges: 4 total, 4 active, 0 unavailable, 0 without owner'"
# The printed connect string alone (no --cluster) reaches the cluster.
check "put through the cluster"  bash -c "$(declare -f repl); zk=$zk; repl -c 'put k1 v1' -c 'put \"\\xc1\" v2' | grep -c OK | grep -q 2"

# A cluster name that is not there fails at connect: exit 2, within the
# connect timeout, naming the clusters that are.
wrong_out=$("$RANGEKV_BUILD_DIR/repl/kvrepl" --zk "$zk" --cluster nosuch --timeout-ms 1000 -c ping 2>&1)
wrong_rc=$?
check "a wrong cluster name exits 2" [ "$wrong_rc" -eq 2 ]
check "a wrong cluster name says which clusters exist" matches "$wrong_out" "no cluster 'nosuch' in ZooKeeper at $zk \\(clusters there: default\\)"
owner=$(repl -c 'locate k1' | sed -n 's/.* owner \([^ ]*\) .*/\1/p')
check "locate names an owner" matches "$owner" '^n[123]$'
check "kill the owner" K kill "$owner"
check "its range turns unavailable" poll 20 bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c status | grep -Eq ', [1-9][0-9]* unavailable'"
newport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
check "restart at a new port" K start "$owner" --port "$newport"
check "the data is back at the new address" poll 20 bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c 'get k1' | grep -qx v1"
check "locate shows the new port" bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c 'locate k1' | grep -q ':$newport'"
check "start of a running node is a no-op" K start "$owner"
check "pause" K pause n2
check "status says paused" bash -c "'$src/scripts/kvcluster' --dir '$dir' status | grep -q '^n2 .*paused'"
check "resume" K resume n2
check "resume of a running node is a no-op" K resume n2
# A node added to the running cluster (4 ranges, rf 1, over 3 nodes) is
# given one: a replica moved to it, the ownership with it.
added=$(K add)
check "add starts the next node" [ "$added" = n4 ]
check "the added node is given a range" poll 60 bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c ranges | grep -Eq '^[0-9]+ .* n4 +n4 +n4 +active'"
check "every key still reads" poll 20 bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c 'get k1' -c 'get \"\\xc1\"' | tr '\n' ' ' | grep -qx 'v1 v2 '"
check "decommission of the added node" bash -c "'$src/scripts/kvcluster' --dir '$dir' decommission n4 | grep -q 'n4 holds no replica: safe to stop'"
check "it holds nothing" bash -c "! '$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c ranges | grep -Eq ' n4 '"
check "nodes says draining" bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c nodes | grep -q '^n4 [^ ]* draining owned 0 held 0 '"
check "every key still reads after the drain" poll 20 bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c 'get k1' -c 'get \"\\xc1\"' | tr '\n' ' ' | grep -qx 'v1 v2 '"
# --fresh: a stopped node starts on an empty data directory (a new
# incarnation); refused while it runs, and at rf 1 while it holds ranges.
inc() { sed -n 's/^incarnation //p' "$dir/nodes/$1/data/NODE"; }
before=$(inc n4)
check "--fresh of a running node is an error" bash -c "! '$src/scripts/kvcluster' --dir '$dir' start n4 --fresh 2>/dev/null"
check "stop the drained node" K kill n4 --signal TERM
check "it stops" poll 20 bash -c "'$src/scripts/kvcluster' --dir '$dir' pids | grep -q '^n4 .*stopped'"
check "start --fresh" K start n4 --fresh
check "it has a new data directory" bash -c "[ -n '$before' ] && [ \"\$(sed -n 's/^incarnation //p' '$dir/nodes/n4/data/NODE')\" != '$before' ]"
check "kill a node holding ranges" K kill n2
check "it is gone" poll 20 bash -c "'$src/scripts/kvcluster' --dir '$dir' pids | grep -q '^n2 .*stopped'"
fresh_err=$(K start n2 --fresh 2>&1)
check "--fresh of the only copy (rf 1) is refused" matches "$fresh_err" "n2 holds the only copy of some ranges \(rf 1\)"
check "its data is still there" [ -s "$dir/nodes/n2/data/NODE" ]
check "start it again" K start n2
check "--replace of a running node is an error" bash -c "'$src/scripts/kvcluster' --dir '$dir' start n5 --replace n1 2>&1 | grep -q 'n1 is running: stop it first'"
check "--replace of itself is an error" bash -c "! '$src/scripts/kvcluster' --dir '$dir' start n1 --replace n1 2>/dev/null"
check "every key reads after the restarts" poll 20 bash -c "'$RANGEKV_BUILD_DIR/repl/kvrepl' --zk $zk -c 'get k1' -c 'get \"\\xc1\"' | tr '\n' ' ' | grep -qx 'v1 v2 '"
check "recommission" bash -c "'$src/scripts/kvcluster' --dir '$dir' recommission n4 | grep -q 'n4 takes replicas again'"
check "add --count 0 is an error" bash -c "! '$src/scripts/kvcluster' --dir '$dir' add --count 0 2>/dev/null"
check "unknown node is an error" bash -c "! '$src/scripts/kvcluster' --dir '$dir' kill n9 2>/dev/null"
check "unknown command is an error" bash -c "! '$src/scripts/kvcluster' --dir '$dir' frobnicate 2>/dev/null"
check "down" K down
check "nothing left running" bash -c "! '$src/scripts/kvcluster' --dir '$dir' status | grep -q running"
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
