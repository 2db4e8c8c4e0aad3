#!/usr/bin/env bash
# scripts/kvhosts end to end: a cluster whose every process is a host of
# its own (a network namespace on a bridge), 3 ZooKeeper servers and 3
# nodes. A write through kvrepl on the client host; the owner of a range
# isolated from every other host, until another node owns the range and
# takes a write; heal; a one-way cut that drops only one direction. Then a
# smaller cluster on emulated links (link_emulator, TAP devices): a delay
# between two nodes shows in the time a TCP connect takes, a write gets
# through, a total loss cuts, and clearing brings the links back. Needs
# root, network namespaces, veth, bridges and nftables: skipped (exit 77)
# without; the second part also needs /dev/net/tun and tests/link_emulator.
# Every wait is a poll with a deadline.
set -euo pipefail
src="${RANGEKV_SOURCE_DIR:?}"
export RANGEKV_BUILD_DIR="${RANGEKV_BUILD_DIR:?}"

skip() { echo "SKIPPED: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, interfaces, nftables)"
command -v ip >/dev/null || skip "ip (iproute2) is missing: run scripts/setup"
command -v nft >/dev/null || skip "nft is missing: run scripts/setup (nftables)"
# Everything kvhosts needs of the kernel, tried in a throwaway namespace
# that takes its interfaces and table with it when the probe exits.
unshare --net sh -c 'ip link add rkvhp0 type veth peer name rkvhp1 && ip link add rkvhpb type bridge &&
  nft add table inet rkvh' >/dev/null 2>&1 ||
  skip "network namespaces, veth, bridges or nftables are not usable here"
# Named namespaces too, and running a program in one (ip netns exec remounts
# /, which a chroot whose root is not a mount point refuses).
probe="rkvhprobe$$"
if ! out=$(ip netns add "$probe" 2>&1 && ip netns exec "$probe" true 2>&1); then
  ip netns del "$probe" 2>/dev/null || true
  skip "named network namespaces are not usable here: ${out//$'\n'/ }"
fi
ip netns del "$probe"

# A subnet no other cluster (another run of this test, say) is using.
sub=""
for i in $(seq 0 199); do
  s=$(( ($$ + i) % 200 + 20 ))
  ip netns list | awk -v p="rkvh$s-" 'index($1, p) == 1 {f = 1} END {exit f}' || continue
  ip link show dev "rkvh$s-root" >/dev/null 2>&1 && continue
  [ -z "$(ip -4 -o addr show to "198.18.$s.0/24")" ] || continue
  sub=$s; break
done
[ -n "$sub" ] || skip "no free subnet among 198.18.20.0/24..198.18.219.0/24"
net="198.18.$sub"

dir=$(mktemp -d "${TMPDIR:-/tmp}/rangekv-kvhosts-XXXXXX")
dir2="$dir/emulated"
K() { "$src/scripts/kvhosts" --dir "$dir" "$@"; }
K2() { "$src/scripts/kvhosts" --dir "$dir2" "$@"; }
our_namespaces() { ip netns list | awk -v p="rkvh$sub-" 'index($1, p) == 1 {print $1}'; }
# The emulator of the second cluster, while the PID it recorded runs it.
emulator_pid() {
  local pid; pid=$(cat "$dir2/emulator/pid" 2>/dev/null) || return 1
  [[ "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" == *"link_emulator --control $dir2/"* ]] && echo "$pid"
}
cleanup() {
  K2 down >/dev/null 2>&1 || true
  K down >/dev/null 2>&1 || true
  local pid
  if pid=$(emulator_pid); then kill "$pid" 2>/dev/null || true; fi
  # Should down have failed, the run still leaves no namespace behind (the
  # subnet was free when it started: these are ours).
  local ns
  for ns in $(our_namespaces); do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "rkvh$sub-root" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE  # through the EXIT trap: never leave a cluster behind
# shellcheck source=tests/testutil/checks.sh
. "$src/tests/testutil/checks.sh"

# reach FROM ADDRESS PORT: a TCP connection from host FROM gets through (a
# dropped SYN would retry for minutes: 2 s is plenty on one machine).
reach() { K exec "$1" timeout 2 bash -c ": <>/dev/tcp/$2/$3" 2>/dev/null; }
unreachable() { ! reach "$@"; }
rules() { K status | grep '^rule ' || true; }
owner_of_k1() { K repl -- --timeout-ms 3000 -c 'locate k1' | sed -n 's/.* owner \([^ ]*\) .*/\1/p'; }

start=$SECONDS
rc=0
zk=$(K up --subnet "$sub" --nodes 3 --rf 3 --ranges 3 --zk-servers 3 2>"$dir/up.err") || rc=$?
if [ "$rc" != 0 ]; then
  # Exit 2 is kvhosts saying this machine cannot run it, before making anything.
  [ "$rc" != 2 ] || skip "$(cat "$dir/up.err")"
  echo "FAIL up"; cat "$dir/up.err"
  tail -n 5 "$dir"/hosts/*/log 2>/dev/null || true
  exit 1
fi
echo "up took $((SECONDS - start)) s (subnet $net.0/24)"
check "up prints the connect string of three servers on their hosts" \
  matches "$zk" "^$net\\.11:2181,$net\\.12:2181,$net\\.13:2181\$"
check "a namespace per host, and the switch" [ "$(our_namespaces | wc -l)" = 10 ]
up_refused() { local out; ! out=$(K up 2>&1) && [[ "$out" == *"is up already"* ]]; }
check "up again is refused" up_refused
# (status: any command but zk and pids checks for root first.)
as_nobody() {
  local out rc=0
  out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$src/scripts/kvhosts" --dir "$dir/x" status 2>&1) || rc=$?
  [ "$rc" = 2 ] && [ "$(wc -l <<<"$out")" = 1 ] && [[ "$out" == *"needs root"* ]]
}
if command -v setpriv >/dev/null; then check "not root: one line, exit 2" as_nobody; fi
status=$(K status)
count() { grep -c -- "$2" <<<"$1" || true; }
check "status: a ZooKeeper leader and two followers" \
  [ "$(count "$status" '(leader)') $(count "$status" '(follower)')" = "1 2" ]
check "status: n1 serves on its own address" matches "$status" "n1 +$net\\.101 +kvnode running +$net\\.101:7000"
check "pids: 3 ZooKeeper servers, 2 coordinators, 3 nodes running" [ "$(count "$(K pids)" ' running$')" = 8 ]
check "the client host has its address" matches "$(K exec cl ip -4 -o addr show dev eth0)" " $net\\.10/24 "

# kvrepl on the client host, driven through a pipe.
out=$(printf 'put k1 v1\nget k1\n' | K repl 2>&1) || true
check "put and get through kvrepl on the client host" matches "$out" $'^OK\nv1$'

owner=$(owner_of_k1) || true
check "k1's range has an owner" matches "$owner" '^n[123]$'
[[ "$owner" =~ ^n[123]$ ]] || exit 1
owner_addr="$net.$((100 + ${owner#n}))"
t0=$SECONDS
check "isolate the owner" K isolate "$owner"
check "status shows the isolation rules" matches "$(rules)" \
  "rule    $owner output: ip daddr $net\\.0/24 ip daddr != $owner_addr drop"
check "the client host cannot reach the isolated owner" unreachable cl "$owner_addr" 7000
check "the isolated owner cannot reach ZooKeeper" unreachable "$owner" "$net.11" 2181
# Another node owns the range, and a write to a key in it succeeds.
failed_over() {
  local out
  out=$(K repl -- --timeout-ms 1500 -c 'locate k1' -c 'put k1 v2' 2>&1) || return 1
  [[ "$out" =~ owner\ (n[0-9]+)\  ]] && [ "${BASH_REMATCH[1]}" != "$owner" ] && [[ "$out" == *$'\nOK' ]]
}
check "another node owns k1's range and takes a write" poll 45 failed_over
echo "the range had a new owner and took a write $((SECONDS - t0)) s after the isolation"
check "the write reads back" [ "$(printf 'get k1\n' | K repl 2>&1)" = v2 ]

check "heal" K heal
check "no rule left" [ -z "$(rules)" ]
check "the healed node is reachable again" poll 10 reach cl "$owner_addr" 7000
all_up() { [[ "$(K repl -- --timeout-ms 3000 -c status)" == *$'\nnodes: 3 up, 0 down\n'* ]]; }
check "the healed node is back in the cluster" poll 30 all_up

# One way: packets from n1 to n2 dropped, and nothing else.
check "cut n1 n2 --oneway" K cut n1 n2 --oneway
r=$(rules)
check "status shows n1's rule" matches "$r" "rule    n1 output: ip daddr $net\\.102 drop"
check "and no other rule" [ "$(wc -l <<<"$r")" = 1 ]
check "status names the cut" matches "$(K status)" $'\ncut     n1 -> n2 \\(one way\\)\n'
check "n1 cannot reach n2" unreachable n1 "$net.102" 7000
check "n1 reaches n3" reach n1 "$net.103" 7000
check "n3 reaches n2" reach n3 "$net.102" 7000
check "heal n2 n1 (either order)" K heal n2 n1
check "no rule left after the pair's heal" [ -z "$(rules)" ]
check "n1 reaches n2 again" reach n1 "$net.102" 7000
refused() { local out; ! out=$("$@" 2>&1) && [[ "$out" == *"links are not emulated"* ]]; }
check "delay is refused on bridge links" refused K delay n1 n2 50
check "links is refused on bridge links" refused K links

check "down" K down
check "no namespace left" [ -z "$(our_namespaces)" ]
check "no interface left on this machine" bash -c "! ip link show dev 'rkvh$sub-root' >/dev/null 2>&1"
check "no process left" [ "$(count "$(K pids)" ' running$')" = 0 ]
echo "bridge links took $((SECONDS - start)) s"

# --- emulated links -------------------------------------------------------
# rtt FROM ADDRESS PORT: the shortest of three TCP connects from host FROM,
# in µs. A connect is one round trip (SYN, SYN-ACK); the shortest leaves
# out the first one's ARP exchange and the scheduler's hiccups.
rtt() {
  # shellcheck disable=SC2016 # the inner bash expands them
  K2 exec "$1" timeout 10 bash -c 'best=""
    for _ in 1 2 3; do
      t0=${EPOCHREALTIME/[.,]/}; exec 3<>"/dev/tcp/$0/$1" || exit 1; t1=${EPOCHREALTIME/[.,]/}; exec 3<&-
      if [ -z "$best" ] || [ $((t1 - t0)) -lt "$best" ]; then best=$((t1 - t0)); fi
    done
    echo "$best"' "$2" "$3"
}
ms() { if [[ "$1" =~ ^[0-9]+$ ]]; then printf '%d.%03d ms' $(($1 / 1000)) $(($1 % 1000)); else echo "no connection"; fi; }
between() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -lt "$3" ]; }  # between N LOW HIGH
reach2() { K2 exec "$1" timeout 2 bash -c ": <>/dev/tcp/$2/$3" 2>/dev/null; }
unreachable2() { ! reach2 "$@"; }

if [ ! -x "$RANGEKV_BUILD_DIR/tests/link_emulator" ] || [ ! -c /dev/net/tun ]; then
  echo "SKIPPED emulated links: needs $RANGEKV_BUILD_DIR/tests/link_emulator (scripts/build) and /dev/net/tun"
else
  t0=$SECONDS
  if ! zk=$(K2 up --subnet "$sub" --links emulated --nodes 2 --rf 2 --zk-servers 1 --coordinators 1 2>"$dir/up2.err"); then
    echo "FAIL up --links emulated"; cat "$dir/up2.err"
    tail -n 5 "$dir2"/hosts/*/log "$dir2/emulator/log" 2>/dev/null || true
    exit 1
  fi
  echo "up --links emulated took $((SECONDS - t0)) s"
  check "up --links emulated prints the connect string" matches "$zk" "^$net\.11:2181\$"
  check "a namespace per host and no switch's" [ "$(our_namespaces | sort | tr '\n' ' ')" = \
    "rkvh$sub-c1 rkvh$sub-cl rkvh$sub-n1 rkvh$sub-n2 rkvh$sub-zk1 " ]
  check "this machine's interface is the emulator's TAP device" \
    matches "$(ip -d link show dev "rkvh$sub-root")" "tun type tap"
  check "status names the emulator" matches "$(K2 status)" "links emulated by link_emulator \\(PID [0-9]+\\)"
  emu=$(emulator_pid) || true
  check "the emulator runs, by its recorded PID" matches "$emu" '^[0-9]+$'
  check "and no link has a delay or a loss" [ "$(K2 links)" = "no delay, no loss" ]

  us=$(rtt n1 "$net.102" 7000) || true
  echo "n1 -> n2 connect: $(ms "$us")"
  check "undelayed, a connect from n1 to n2 is quick" between "$us" 0 20000
  check "delay n1 n2 50 0" K2 delay n1 n2 50 0
  check "links shows both directions" [ "$(K2 links)" = $'n1 -> n2 delay 50 ms\nn2 -> n1 delay 50 ms' ]
  us=$(rtt n1 "$net.102" 7000) || true
  echo "n1 -> n2 connect, 50 ms each way: $(ms "$us")"
  check "delayed both ways, a connect takes 100 ms or more" between "$us" 99000 1000000
  us=$(rtt n1 "$net.11" 2181) || true
  check "n1 to zk1 is not delayed" between "$us" 0 20000
  out=$(printf 'put k2 v2\nget k2\n' | K2 repl 2>&1) || true
  check "put and get through the delayed links" matches "$out" $'^OK\nv2$'
  check "links clear" K2 links clear
  check "delay n1 n2 50 0 --oneway" K2 delay n1 n2 50 0 --oneway
  us=$(rtt n1 "$net.102" 7000) || true
  echo "n1 -> n2 connect, 50 ms one way: $(ms "$us")"
  check "delayed one way, a connect takes 50 ms or more, less than 100" between "$us" 49000 100000
  check "links clear again" K2 links clear
  check "links shows nothing" [ "$(K2 links)" = "no delay, no loss" ]
  us=$(rtt n1 "$net.102" 7000) || true
  echo "n1 -> n2 connect after links clear: $(ms "$us")"
  check "cleared, a connect is quick again" between "$us" 0 20000

  check "loss n1 cl 10" K2 loss n1 cl 10
  check "links shows the loss both ways" [ "$(K2 links)" = $'cl -> n1 loss 10 %\nn1 -> cl loss 10 %' ]
  check "status shows it too" matches "$(K2 status)" $'\nlink    cl -> n1 loss 10 %\nlink    n1 -> cl loss 10 %\n'
  check "loss n1 n2 100" K2 loss n1 n2 100
  check "a total loss: n1 cannot reach n2" unreachable2 n1 "$net.102" 7000
  check "the client host still reaches n2" reach2 cl "$net.102" 7000
  jitter_refused() { ! K2 delay n1 n2 10 20 2>/dev/null; }
  check "a jitter above the delay is refused" jitter_refused
  check "links clear lifts the loss" K2 links clear
  check "n1 reaches n2 again" poll 10 reach2 n1 "$net.102" 7000

  check "down (emulated)" K2 down
  check "no namespace left (emulated)" [ -z "$(our_namespaces)" ]
  check "no interface left on this machine (emulated)" bash -c "! ip link show dev 'rkvh$sub-root' >/dev/null 2>&1"
  emulator_gone() { ! emulator_pid >/dev/null; }
  check "the emulator is gone" emulator_gone
  echo "emulated links took $((SECONDS - t0)) s"
fi
echo "took $((SECONDS - start)) s"
echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
