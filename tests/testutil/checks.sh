# Sourced by the shell tests: a named check that counts its failures, and a
# poll with a deadline (never a bare sleep as synchronisation).
#   check NAME COMMAND...   runs COMMAND; prints "ok   NAME" or "FAIL NAME"
#   poll SECONDS COMMAND... true once COMMAND succeeds, false at the deadline
#   matches STRING REGEX
#   cluster_frame NAME      the frame of a test of a scripts/kvcluster cluster:
#                           $build (RANGEKV_BUILD_DIR, exported), a temp dir
#                           $dir, K (kvcluster on $dir/c), and $pids (started
#                           here, signalled by PID on exit, after which the
#                           cluster is stopped and $dir removed)
# The caller ends with: echo "$((checks - fails)) passed, $fails failed";
# [ "$fails" -eq 0 ]
# shellcheck shell=bash
fails=0; checks=0
check() {
  checks=$((checks + 1))
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
poll() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
matches() { [[ "$1" =~ $2 ]]; }
cluster_frame() {
  build="${RANGEKV_BUILD_DIR:?}"
  export RANGEKV_BUILD_DIR="$build"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/rangekv-$1-XXXXXX")
  pids=()
  trap cluster_frame_cleanup EXIT
  trap 'exit 1' INT TERM HUP PIPE
  # shellcheck disable=SC2154,SC2317  # src: the caller found this file by it
  K() { "$src/scripts/kvcluster" --dir "$dir/c" "$@"; }
}
cluster_frame_cleanup() {
  K down >/dev/null 2>&1
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$dir"
}
