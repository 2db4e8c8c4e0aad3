#!/usr/bin/env bash
# TLS end to end: a cluster from `kvcluster up --tls` (test CA and
# certificates from scripts/make-test-certs) serves a REPL and kvbench that
# present the client certificate, fails over when its owner is killed
# (the coordinators' pings go over TLS too), and refuses, before reading
# any request, every client that must not get in: plaintext, a certificate
# from another CA, an expired one, none at all. Each refusal is a clear
# error on both sides (the REPL exits 2; the node logs it and counts it in
# rangekv_kvnode_connections_refused_total). A TLS client meeting a
# plaintext node is told so. SIGHUP reloads the files, and a reload that
# fails keeps the old ones. Every wait is a poll with a deadline.
set -uo pipefail
src="${RANGEKV_SOURCE_DIR:?}"
# shellcheck source=tests/testutil/checks.sh
. "$src/tests/testutil/checks.sh"
cluster_frame tls
pki="$dir/c/tls"
tls_as() {  # the TLS flags with certificate NAME (client, stranger, expired, ...)
  echo "--tls-ca $pki/ca.crt --tls-cert $pki/$1.crt --tls-key $pki/$1.key"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

zk=$(K up --tls --nodes 3 2>"$dir/up.err")
check "up --tls prints a connect string" matches "$zk" '^127\.0\.0\.1:[0-9]+$'
[ -n "$zk" ] || { cat "$dir/up.err"; tail -n 5 "$dir"/c/coord*/log "$dir"/c/nodes/*/log; }
check "up says what clients need" grep -q "clients need --tls-ca $pki/ca.crt" "$dir/up.err"
check "the nodes serve TLS" grep -q "(TLS, mutual certificates)" "$dir/c/nodes/n1/log"
check "tls-args prints the client flags" [ "$(K tls-args)" = "$(tls_as client)" ]
# shellcheck disable=SC2046  # the flags split on purpose
repl() { "$build/repl/kvrepl" --zk "$zk" --timeout-ms 3000 $(tls_as "$1") "${@:2}"; }
check "a put and a get over TLS" bash -c "$(declare -f repl tls_as); zk=$zk pki=$pki build=$build; repl client -c 'put k1 v1' -c 'get k1' | tr '\n' ' ' | grep -qx 'OK v1 '"

# Refusals. Each: exit 2 and one "(error) UNAUTHENTICATED" line saying why.
refused() {  # NAME EXPECTED-TEXT KVREPL-ARGS...
  local out rc
  out=$("$build/repl/kvrepl" --zk "$zk" --timeout-ms 3000 "${@:3}" -c 'get k1' 2>&1)
  rc=$?
  check "$1: exit 2" [ "$rc" -eq 2 ]
  check "$1: says why" matches "$out" "UNAUTHENTICATED .*$2"
}
refused "plaintext client" "this node requires TLS"
# shellcheck disable=SC2046
refused "certificate of another CA" "unknown ca" $(tls_as stranger)
# shellcheck disable=SC2046
refused "expired certificate" "certificate expired" $(tls_as expired)
check "the node logs the expired certificate" poll 10 grep -q "refused a connection from .*certificate has expired" "$dir"/c/nodes/*/log
check "the node logs the plaintext client" grep -q "refused a plaintext connection from .*requires TLS" "$dir"/c/nodes/n1/log "$dir"/c/nodes/n2/log "$dir"/c/nodes/n3/log
n1=$(cat "$dir/c/nodes/n1/port")
# No client certificate at all (only openssl can leave it out). Under TLS
# 1.3 the refusal comes as an alert after the client's side of the
# handshake; the node logs it either way. -ign_eof keeps s_client reading
# until the node closes, so it cannot quit on stdin's end before the alert.
nocert=$(timeout 10 openssl s_client -ign_eof -connect "127.0.0.1:$n1" -CAfile "$pki/ca.crt" </dev/null 2>&1)
check "a client with no certificate gets an alert" matches "$nocert" "alert certificate required|alert handshake failure"
check "the node logs a client with no certificate" poll 10 grep -q "refused a connection from .*peer did not return a certificate" "$dir/c/nodes/n1/log"

# kvbench over TLS while the owner of the range is killed: writes go on
# once the coordinators (pinging over TLS) have promoted a replica.
owner=$(repl client -c 'locate k1' | sed -n 's/.* owner \([^ ]*\) .*/\1/p')
check "locate names an owner" matches "$owner" '^n[123]$'
# shellcheck disable=SC2046
"$build/bench/kvbench" --zk "$zk" $(tls_as client) --clients 4 --duration 8 --warmup 0 \
  --keys 1000 --timeout-ms 3000 >"$dir/bench.log" 2>&1 &
bench=$!
pids+=("$bench")
check "kvbench runs over TLS" poll 10 grep -q "ops/s" "$dir/bench.log"
check "kill the owner" K kill "$owner"
check "a write goes through after the failover" poll 15 bash -c "$(declare -f repl tls_as); zk=$zk pki=$pki build=$build; repl client -c 'put k2 v2' | grep -qx OK"
wait "$bench"; bench_rc=$?
check "kvbench finished" [ "$bench_rc" -eq 0 ]
check "kvbench measured requests" grep -Eq "^RESULT ops_per_sec=[1-9]" "$dir/bench.log"
check "every acknowledged write reads back" bash -c "$(declare -f repl tls_as); zk=$zk pki=$pki build=$build; repl client -c 'get k1' -c 'get k2' | tr '\n' ' ' | grep -qx 'v1 v2 '"

# A standalone TLS node with metrics: refusals are counted; SIGHUP reloads.
port=$(free_port); admin=$(free_port)
"$build/kvnode/kvnode" --standalone --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" \
  --data "$dir/solo" --tls-ca "$pki/ca.crt" --tls-cert "$dir/solo.crt" --tls-key "$dir/solo.key" \
  >"$dir/solo.log" 2>&1 &
pids+=("$!"); solo=$!
check "a node refuses to start on a missing certificate file" bash -c "! grep -q 'serving on' '$dir/solo.log'"
poll 10 bash -c "! kill -0 $solo" || kill "$solo"
check "and says which file" grep -q "cannot read the certificate $dir/solo.crt: No such file" "$dir/solo.log"
cp "$pki/node.crt" "$dir/solo.crt"; cp "$pki/node.key" "$dir/solo.key"; chmod 600 "$dir/solo.key"
"$build/kvnode/kvnode" --standalone --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" \
  --data "$dir/solo" --tls-ca "$pki/ca.crt" --tls-cert "$dir/solo.crt" --tls-key "$dir/solo.key" \
  >"$dir/solo.log" 2>&1 &
solo=$!; pids+=("$solo")
check "a standalone TLS node serves" poll 10 grep -q "serving on .*(TLS, mutual certificates)" "$dir/solo.log"
node_repl() { "$build/repl/kvrepl" --node "127.0.0.1:$port" --timeout-ms 3000 "$@"; }
# shellcheck disable=SC2046
check "a client with the cluster's certificate is served" bash -c "$(declare -f node_repl); port=$port build=$build; node_repl $(tls_as client) -c 'put a 1' | grep -qx OK"
node_repl -c 'get a' >/dev/null 2>&1
# shellcheck disable=SC2046
node_repl $(tls_as stranger) -c 'get a' >/dev/null 2>&1
metric() {
  python3 -c "import urllib.request,sys; t=urllib.request.urlopen('http://127.0.0.1:$admin/metrics',timeout=5).read().decode(); print(next((l.split()[-1] for l in t.splitlines() if l.startswith('rangekv_kvnode_connections_refused_total')), 'none'))"
}
check "refusals are counted" poll 10 bash -c "v=\$($(declare -f metric); admin=$admin; metric); python3 -c \"import sys; sys.exit(0 if float('\$v') >= 2 else 1)\""
check "SIGHUP reloads the files" bash -c "kill -HUP $solo && timeout 10 bash -c 'until grep -q \"TLS files reloaded\" \"$dir/solo.log\"; do sleep 0.1; done'"
echo garbage >"$dir/solo.key"
kill -HUP "$solo"
check "a reload that fails keeps the old files" poll 10 grep -q "keeping the files loaded before" "$dir/solo.log"
# shellcheck disable=SC2046
check "and the node still serves TLS clients" bash -c "$(declare -f node_repl); port=$port build=$build; node_repl $(tls_as client) -c 'get a' | grep -qx 1"

# A peer that opens a TLS connection and stalls (one byte of a record, no
# more) is refused when the handshake deadline passes, and its socket closed.
stall_started=$(date +%s)
stalled=$(timeout 20 python3 -c "
import socket, sys
s = socket.create_connection(('127.0.0.1', $port), timeout=15)
s.sendall(b'\x16')
print('closed' if s.recv(1) == b'' else 'answered')
" 2>&1)
check "a stalled handshake is closed by the node" [ "$stalled" = closed ]
check "after the handshake deadline, not before" [ $(( $(date +%s) - stall_started )) -ge 4 ]
check "the node logs the stalled handshake" poll 10 grep -q "refused a connection from .*no TLS handshake within 5 s" "$dir/solo.log"

# A TLS client meeting a plaintext node: told so, exit 2.
pport=$(free_port)
"$build/kvnode/kvnode" --standalone --listen "127.0.0.1:$pport" --data "$dir/plain" >"$dir/plain.log" 2>&1 &
pids+=("$!")
check "a plaintext node serves" poll 10 grep -q "serving on" "$dir/plain.log"
# shellcheck disable=SC2046
out=$("$build/repl/kvrepl" --node "127.0.0.1:$pport" --timeout-ms 3000 $(tls_as client) -c 'get a' 2>&1); rc=$?
check "a TLS client to a plaintext node exits 2" [ "$rc" -eq 2 ]
check "and is told the node may not serve TLS" matches "$out" "UNAUTHENTICATED TLS handshake .* failed: .*does it serve TLS"
check "the plaintext node logs the TLS client" poll 10 grep -q "a TLS client, and this node serves plaintext" "$dir/plain.log"
# shellcheck disable=SC2046
out=$("$build/repl/kvrepl" --node "127.0.0.1:$port" --tls-ca "$pki/ca.crt" -c 'get a' 2>&1); rc=$?
check "half the TLS flags is a usage error" [ "$rc" -eq 2 ]
check "naming the flags that go together" matches "$out" "go together"

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
