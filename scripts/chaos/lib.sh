# scripts/chaos/lib.sh — shared by kill-loop and pause-loop (sourced, not run).
#
# Every fault goes through scripts/kvcluster (kill, start, pause, resume,
# pids, owner), which only ever signals PIDs it recorded for the cluster in
# --dir and checks /proc/PID/cmdline first; nothing here looks for
# processes by name.
#
# Expects: $me (the script's name), $dir (cluster directory); sets $kvc.

kvc="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/kvcluster"

die() { echo "$me: $*" >&2; exit 2; }
now_ms() { date +%s%3N; }
# One action line: an ISO-8601 UTC timestamp with milliseconds, the script
# and what it did. Flushed at once (echo), so a tail -f shows it live.
say() { echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $me: $*"; }

K() { "$kvc" --dir "$dir" "$@"; }

# Seconds as a decimal ("2", "0.5") -> milliseconds; dies on anything else.
to_ms() {  # to_ms OPTION VALUE
  [[ "$2" =~ ^[0-9]+(\.[0-9]{1,3})?$ ]] || die "$1 wants seconds (e.g. 2 or 0.5), got '$2'"
  awk -v s="$2" 'BEGIN { printf "%d\n", s * 1000 + 0.5 }'
}

# Sleeps ms milliseconds in the background and waits for it, so that a
# signal runs its trap at once instead of after the sleep.
napper=""
nap() {  # nap MS
  [ "$1" -gt 0 ] || return 0
  # The seconds are worked out before the fork: a background child still
  # running shell code (a command substitution) keeps this script's traps,
  # and stop_nap's SIGTERM would run the cleanup a second time in it (a
  # node restarted twice at once, one start failing on the other's lock).
  local secs
  secs=$(awk -v ms="$1" 'BEGIN { printf "%.3f\n", ms / 1000 }')
  sleep "$secs" &
  napper=$!
  wait "$napper" || true
  napper=""
}
stop_nap() { [ -n "$napper" ] && kill "$napper" 2>/dev/null; napper=""; return 0; }

# Nodes of the cluster in the given state (running|paused|stopped), one a line.
nodes_in() { K pids | awk -v want="$1" '$3 == want { print $1 }'; }

# A victim: the owner of $key's range when --key was given (empty when it
# has no owner or it is not running), else a random running node (empty
# when none runs).
pick() {
  if [ -n "$key" ]; then
    local owner
    owner=$(K owner "$key" 2>/dev/null) || return 0
    [ "$owner" != "-" ] && nodes_in running | grep -qx -- "$owner" && echo "$owner"
    return 0
  fi
  local running
  mapfile -t running < <(nodes_in running)
  [ "${#running[@]}" -gt 0 ] && echo "${running[RANDOM % ${#running[@]}]}"
  return 0
}

# What pick chooses from, for the log lines.
target_words() { if [ -n "$key" ]; then echo "the owner of key '$key'"; else echo "a random node"; fi; }

check_cluster() {
  [ -d "$dir/nodes" ] || die "no cluster in $dir (start one: scripts/kvcluster up --dir $dir)"
  [ -n "$(K pids)" ] || die "no nodes in $dir"
}
