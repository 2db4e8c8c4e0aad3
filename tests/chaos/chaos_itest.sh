#!/usr/bin/env bash
# scripts/chaos/kill-loop and pause-loop against a small cluster of
# scripts/kvcluster in a temporary directory: each acts (its log lines), a
# --key run hits the key's owner, SIGTERM in the middle of an action still
# undoes it (trap), and at the end every node runs and every range is active
# again. Every wait is a poll with a deadline; the cluster is always stopped.
set -uo pipefail
src="${RANGEKV_SOURCE_DIR:?}"
export RANGEKV_BUILD_DIR="${RANGEKV_BUILD_DIR:?}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/rangekv-chaos-XXXXXX")
K() { "$src/scripts/kvcluster" --dir "$dir" "$@"; }
bg=""  # PID of a loop this test started in the background
cleanup() {
  [ -n "$bg" ] && kill -TERM "$bg" 2>/dev/null && wait "$bg" 2>/dev/null
  K down >/dev/null 2>&1
  rm -rf "$dir" "$dir".*
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE  # through the EXIT trap: never leave a cluster behind
# shellcheck source=tests/testutil/checks.sh
. "$src/tests/testutil/checks.sh"
has() { grep -Eq "$2" "$1"; }        # has FILE REGEX
count() { grep -Ec "$2" "$1" || true; }  # count FILE REGEX
all_running() { [ "$(K pids | awk '$3 == "running"' | wc -l)" -eq 3 ]; }
all_active() {
  K status 2>/dev/null | grep -Eq '^ranges: 4 total, 4 active, 0 unavailable, 0 without owner$'
}
show() { echo "---- $1"; cat "$1"; }

# Balancing off: the --key check below reads the owner, then kill-loop
# reads it again; a balancing move in between would name another node.
zk=$(K up --nodes 3 --rf 2 --ranges 4 --session-timeout-ms 2000 --balance off 2>"$dir.up-err")
check "cluster up" test -n "$zk"
if [ -z "$zk" ]; then
  cat "$dir.up-err"; tail -n 5 "$dir"/zk/zk.log "$dir"/coord*/log "$dir"/nodes/*/log 2>/dev/null
  exit 1
fi
check "pids lists three running nodes" all_running
check "kill-loop --help" bash -c "'$src/scripts/chaos/kill-loop' --help | grep -q 'kill-loop'"
check "pause-loop --help" bash -c "'$src/scripts/chaos/pause-loop' --help | grep -q 'SIGSTOP'"
check "bad usage is status 2" bash -c \
  "'$src/scripts/chaos/kill-loop' --dir '$dir' --down soon >/dev/null 2>&1; [ \$? -eq 2 ]"

# Random kills: two or three rounds, each node restarted.
"$src/scripts/chaos/kill-loop" --dir "$dir" --duration 3.5 --interval 1 --down 0.3 --seed 7 \
  >"$dir.kill" 2>&1
rc=$?
check "kill-loop exits 0" test "$rc" -eq 0
check "kill-loop killed a node" has "$dir.kill" ' kill-loop: killed n[123] \(pid [0-9]+, SIGKILL\)$'
check "every kill was followed by a restart" \
  test "$(count "$dir.kill" ': killed ')" -eq "$(count "$dir.kill" ': restarted ')"
check "lines carry a timestamp" has "$dir.kill" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z kill-loop: '
check "all nodes run after kill-loop" all_running
[ "$fails" -eq 0 ] || show "$dir.kill"

# --key: the owner of the key's range is the one killed.
check "ranges active again" poll 60 all_active
owner=$(K owner chaos-key 2>/dev/null)
check "owner names a node" test -n "$owner" -a "$owner" != "-"
"$src/scripts/chaos/kill-loop" --dir "$dir" --key chaos-key --duration 1.5 --interval 1 \
  --down 0.3 >"$dir.key" 2>&1
check "kill-loop --key killed the owner" has "$dir.key" ": killed $owner "
check "and restarted it" has "$dir.key" ": restarted $owner "

# Pauses past the session timeout (2 s).
check "ranges active before pausing" poll 60 all_active
"$src/scripts/chaos/pause-loop" --dir "$dir" --duration 1.5 --interval 0.5 --pause 2.5 \
  >"$dir.pause" 2>&1
rc=$?
check "pause-loop exits 0" test "$rc" -eq 0
check "pause-loop paused a node" has "$dir.pause" ' pause-loop: paused n[123] \(pid [0-9]+\) for 2.5s$'
check "every pause was followed by a resume" \
  test "$(count "$dir.pause" ': paused ')" -eq "$(count "$dir.pause" ': resumed ')"
check "all nodes run after pause-loop" all_running

# SIGTERM in the middle of an action: the trap undoes it.
"$src/scripts/chaos/kill-loop" --dir "$dir" --duration 120 --interval 0.2 --down 100 \
  >"$dir.term" 2>&1 &
bg=$!
check "a long kill-loop killed a node" poll 30 has "$dir.term" ': killed '
kill -TERM "$bg"; wait "$bg"; rc=$?; bg=""
check "killed by SIGTERM it exits 143" test "$rc" -eq 143
check "and restarted its node first" has "$dir.term" ': restarted '
check "all nodes run after SIGTERM" all_running

"$src/scripts/chaos/pause-loop" --dir "$dir" --duration 120 --interval 0.2 --pause 100 \
  >"$dir.pterm" 2>&1 &
bg=$!
check "a long pause-loop paused a node" poll 30 has "$dir.pterm" ': paused '
check "pids shows it paused" poll 5 bash -c "'$src/scripts/kvcluster' --dir '$dir' pids | grep -q ' paused$'"
kill -TERM "$bg"; wait "$bg"; rc=$?; bg=""
check "pause-loop killed by SIGTERM exits 143" test "$rc" -eq 143
check "and resumed its node first" has "$dir.pterm" ': resumed '
check "all nodes run after SIGTERM (pause)" all_running

check "every range is active again" poll 90 all_active
if [ "$fails" -ne 0 ]; then
  for f in "$dir".kill "$dir".key "$dir".pause "$dir".term "$dir".pterm; do [ -f "$f" ] && show "$f"; done
  K status
fi
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
