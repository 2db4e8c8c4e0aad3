#!/usr/bin/env bash
# ZooKeeper authentication and ACLs end to end: a cluster from
# `kvcluster up --zk-auth` (its nodes and coordinators authenticated as the
# writer, which gets ALL on /rangekv/NAME; clients as the reader, READ
# only) serves a REPL holding the reader's file and fails over when its
# owner is killed. Refused, each with a clear error and a non-zero exit: a
# REPL with no credentials or a wrong password (exit 2), a reader trying to
# write the map (decommission), a kvnode and a kvcoord started with the
# reader's credentials or none (they stop at start-up, exit 2), an
# unreadable or malformed file (named, its contents never printed). Every
# wait is a poll with a deadline; only processes started here are
# signalled, by PID.
set -uo pipefail
src="${RANGEKV_SOURCE_DIR:?}"
# shellcheck source=tests/testutil/checks.sh
. "$src/tests/testutil/checks.sh"
cluster_frame zkauth
# A child of ours has exited: gone, or a zombie (kill -0 still succeeds on one).
exited() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0; [ -z "$st" ] || [ "$st" = Z ]; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

zk=$(K up --zk-auth --nodes 4 2>"$dir/up.err")
check "up --zk-auth prints a connect string" matches "$zk" '^127\.0\.0\.1:[0-9]+$'
[ -n "$zk" ] || { cat "$dir/up.err"; tail -n 5 "$dir"/c/coord*/log "$dir"/c/nodes/*/log; }
auth="$dir/c/zk-auth"
check "up says what clients need" grep -q "clients need --zk-auth-file $auth/reader" "$dir/up.err"
check "the writer's file is mode 600" [ "$(stat -c %a "$auth/writer")" = 600 ]
check "the reader's file is mode 600" [ "$(stat -c %a "$auth/reader")" = 600 ]
check "zk-auth-args prints the reader's flag" [ "$(K zk-auth-args)" = "--zk-auth-file $auth/reader" ]
secret=$(grep -v '^#' "$auth/writer" | head -n 1 | cut -d: -f2)
check "no secret on a command line" bash -c "! tr '\\0' ' ' </proc/$(cat "$dir/c/nodes/n1/pid")/cmdline | grep -qF -- '$secret'"
check "nor in a log" bash -c "! grep -rqF -- '$secret' '$dir'/c/nodes/*/log '$dir'/c/coord*/log"

repl() { "$build/repl/kvrepl" --zk "$zk" --timeout-ms 3000 "$@"; }
out=$(repl --zk-auth-file "$auth/reader" -c 'put k1 v1' -c 'get k1' 2>&1)
check "a put and a get with the reader's credentials" [ "$(echo "$out" | tr '\n' ' ')" = "OK v1 " ]

refused() {  # NAME EXPECTED-TEXT KVREPL-ARGS...
  local out rc
  out=$(repl "${@:3}" -c 'get k1' 2>&1)
  rc=$?
  check "$1: exit 2" [ "$rc" -eq 2 ]
  check "$1: says why" matches "$out" "$2"
}
refused "no credentials" "UNAUTHENTICATED ZNOAUTH \(ZooKeeper refused: not authorized to .* /rangekv/default/.*check --zk-auth-file"
printf 'rangekv-reader:wrong-password\n' >"$dir/wrong"; chmod 600 "$dir/wrong"
refused "a wrong password" "UNAUTHENTICATED ZNOAUTH \(ZooKeeper refused: not authorized" --zk-auth-file "$dir/wrong"
refused "a missing file" "cannot read the ZooKeeper credentials file $dir/nope: No such file" --zk-auth-file "$dir/nope"
printf 'no-colon-secretword\n' >"$dir/bad"; chmod 600 "$dir/bad"
out=$(repl --zk-auth-file "$dir/bad" -c 'get k1' 2>&1)
check "a malformed file is named" matches "$out" "credentials file $dir/bad: line 1 is not user:password"
check "and its contents are not printed" bash -c "! grep -q secretword <<<'$out'"

# A reader may not write the map: decommission creates a znode under it
# (4 nodes at rf 3, so that the REPL's own checks let it try).
out=$(repl --zk-auth-file "$auth/reader" -c 'decommission n3' 2>&1); rc=$?
check "a reader cannot write the map: exit 2" [ "$rc" -eq 2 ]
check "a reader cannot write the map: says why" matches "$out" "ZooKeeper refused: not authorized to create /rangekv/default/draining"
out=$(repl --zk-auth-file "$auth/writer" -c 'recommission n3' 2>&1)
check "the writer is let through (to the map's own answer)" matches "$out" "n3 is not being decommissioned"

# A node or coordinator without a writer's credentials stops at start-up.
start_refused() {  # NAME LOG PROGRAM-ARGS...
  "${@:3}" >"$2" 2>&1 &
  local pid=$!
  pids+=("$pid")
  check "$1: stops" poll 30 exited "$pid"
  wait "$pid"; local rc=$?
  check "$1: exit 2" [ "$rc" -eq 2 ]
  check "$1: says why" grep -q "ZooKeeper refused: not authorized to create /rangekv/default.*check --zk-auth-file" "$2"
}
start_refused "a kvnode with the reader's credentials" "$dir/n9.log" "$build/kvnode/kvnode" --id n9 \
  --listen "127.0.0.1:$(free_port)" --zk "$zk" --data "$dir/n9" --zk-auth-file "$auth/reader"
start_refused "a kvnode with none" "$dir/n8.log" "$build/kvnode/kvnode" --id n8 \
  --listen "127.0.0.1:$(free_port)" --zk "$zk" --data "$dir/n8"
start_refused "a kvcoord with the reader's credentials" "$dir/coord9.log" \
  "$build/coordinator/kvcoord" --zk "$zk" --id coord9 --zk-auth-file "$auth/reader"
chmod 644 "$dir/wrong"
"$build/coordinator/kvcoord" --zk "$zk" --id coord8 --zk-auth-file "$dir/wrong" >"$dir/coord8.log" 2>&1 &
coord8=$!
pids+=("$coord8")
check "a file others may read gets a warning" poll 10 grep -q "credentials file $dir/wrong is readable by group or others" "$dir/coord8.log"
check "a kvcoord with a wrong password stops too" poll 30 exited "$coord8"

# Failover under ACLs: the coordinators (their watch channel and session
# authenticated) see the owner go and promote a replica.
owner=$(repl --zk-auth-file "$auth/reader" -c 'locate k1' | sed -n 's/.* owner \([^ ]*\) .*/\1/p')
check "locate names an owner" matches "$owner" '^n[123]$'
check "kill the owner" K kill "$owner"
check "a write goes through after the failover" poll 20 bash -c "'$build/repl/kvrepl' --zk '$zk' --timeout-ms 2000 --zk-auth-file '$auth/reader' -c 'put k2 v2' | grep -qx OK"
out=$(repl --zk-auth-file "$auth/reader" -c 'get k1' -c 'get k2' 2>&1)
check "every acknowledged write reads back" [ "$(echo "$out" | tr '\n' ' ')" = "v1 v2 " ]
check "the coordinators were never refused" bash -c "! grep -q 'ZooKeeper refused' '$dir'/c/coord*/log"

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
