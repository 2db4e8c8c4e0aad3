# Sourced by the shell tests: a named check that counts its failures, and a
# poll with a deadline (never a bare sleep as synchronisation).
#   check NAME COMMAND...   runs COMMAND; prints "ok   NAME" or "FAIL NAME"
#   poll SECONDS COMMAND... true once COMMAND succeeds, false at the deadline
#   matches STRING REGEX
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
