#!/usr/bin/env bash
# docker/ without a container runtime (CI has none): shellcheck on the
# entrypoint scripts; the compose file through Compose's own schema
# (Debian's docker-compose, `config` reads files only) and yamllint; the
# topology the resolved compose file describes and the Dockerfile against
# the repository (docker_lint.py); the runtime stage's packages against the
# libraries the built binaries link; and the entrypoints' variable-to-flag
# mapping and refusals, run with stand-in programs. Broken copies of the
# compose file must be rejected, so a validator that accepts anything fails
# the test. The topology itself runs for real in scripts/kvhosts.
set -uo pipefail
src="${RANGEKV_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
build="${RANGEKV_BUILD_DIR:-$src/build}"
dk="$src/docker"
lint="$src/tests/docker/docker_lint.py"
# Debian's python3 has the yaml module (a dependency of docker-compose); a
# python3 earlier on PATH (a virtualenv, pyenv) may not.
py=/usr/bin/python3; [ -x "$py" ] || py=python3
# Nothing may be written into the source tree (bytecode caches included).
export PYTHONDONTWRITEBYTECODE=1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rangekv-docker-lint-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=tests/testutil/checks.sh
. "$src/tests/testutil/checks.sh"

# The caller's Compose settings must not change which file or profiles are read.
unset COMPOSE_FILE COMPOSE_PROFILES COMPOSE_PROJECT_NAME COMPOSE_PATH_SEPARATOR
compose() { docker-compose -f "$1" --project-directory "$dk" "${@:2}"; }
# fails_ COMMAND...: COMMAND exits non-zero. quiet COMMAND...: its output only when it fails.
fails_() { ! "$@" >/dev/null 2>&1; }
quiet() { "$@" >"$tmp/out" 2>&1 || { sed 's/^/    /' "$tmp/out"; return 1; }; }

for tool in shellcheck docker-compose yamllint "$py"; do
  check "$tool is installed (scripts/setup)" command -v "$tool" >/dev/null
done

# --- shell scripts
for s in "$dk/entrypoint.sh" "$dk/zk-entrypoint.sh"; do
  check "$(basename "$s") is executable" test -x "$s"
  check "$(basename "$s") parses (bash -n)" bash -n "$s"
  check "shellcheck $(basename "$s")" quiet shellcheck "$s"
done
check "shellcheck docker_lint_test.sh" quiet bash -c "cd '$src' && shellcheck -x tests/docker/docker_lint_test.sh"

# --- compose file
yl='{extends: default, rules: {document-start: disable, line-length: {max: 100}}}'
check "yamllint compose.yaml" quiet yamllint -s -d "$yl" "$dk/compose.yaml"
check "compose schema (default services)" quiet compose "$dk/compose.yaml" config -q
check "compose schema (every profile)" \
  quiet compose "$dk/compose.yaml" --profile tools --profile grow config -q
compose "$dk/compose.yaml" --profile tools --profile grow config >"$tmp/resolved.yaml" 2>/dev/null
check "topology of the resolved compose file" quiet "$py" "$lint" topology "$tmp/resolved.yaml" "$dk/Dockerfile"

# Broken copies: each must be rejected, by the schema or by the topology check.
broken() {  # broken NAME SED-EXPRESSION
  local f="$tmp/broken-$1.yaml"
  sed "$2" "$dk/compose.yaml" >"$f"
  if cmp -s "$f" "$dk/compose.yaml"; then echo "    $2 changed nothing"; return 1; fi
  if ! compose "$f" --profile tools --profile grow config -q >/dev/null 2>&1; then return 0; fi
  compose "$f" --profile tools --profile grow config >"$f.resolved" 2>/dev/null
  ! "$py" "$lint" topology "$f.resolved" "$dk/Dockerfile" >/dev/null
}
check "rejects an unknown service key" broken key 's/^    stdin_open: true$/    stdin_opne: true/'
check "rejects a bad depends_on condition" broken cond '0,/condition: service_healthy/s//condition: healthy/'
check "rejects a bad YAML indentation" broken indent 's/^  coord2:$/ coord2:/'
check "rejects an undeclared volume" broken vol 's/^  n4-data:$//'
check "rejects a node advertised under another's name" broken adv 's/KV_ADVERTISE: n2:7000/KV_ADVERTISE: n3:7000/'
check "rejects a ZK_MYID out of place" broken myid 's/ZK_MYID: "3"/ZK_MYID: "2"/'
check "rejects a build target the Dockerfile lacks" broken target 's/target: zookeeper/target: zk/'

# --- Dockerfile
check "Dockerfile against the repository" quiet "$py" "$lint" dockerfile "$dk/Dockerfile" "$src"
# The runtime stage installs a package for each shared library the
# programs link (less libc6, in every image, and sanitizer runtimes of an
# instrumented build tree).
bins=()
for b in kvnode/kvnode coordinator/kvcoord repl/kvrepl bench/kvbench; do
  [ -x "$build/$b" ] && bins+=("$build/$b")
done
runtime_libs() {
  local want
  want=$("$py" "$lint" packages "$dk/Dockerfile" runtime)
  ldd "${bins[@]}" | awk '/=> \//{print $3}' | sort -u | while read -r lib; do
    dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || echo "?: $lib"
  done | cut -d: -f1 | sort -u | grep -Ev '^(libc6|lib(a|ub|t|l|hwa)san[0-9]*)$' |
    while read -r pkg; do
      grep -qx "$pkg" <<<"$want" || { echo "    $pkg (linked by the programs) is not installed by the runtime stage"; exit 1; }
    done
}
if [ ${#bins[@]} -gt 0 ]; then
  check "runtime stage installs every library the ${#bins[@]} built programs link" runtime_libs
else
  echo "skip runtime libraries: no program built in $build"
fi

# --- entrypoints, with stand-ins that print their arguments
mkdir -p "$tmp/bin"
for p in kvnode kvcoord kvrepl kvbench java; do
  # shellcheck disable=SC2016  # the stand-in expands these when it runs
  printf '#!/bin/sh\necho "pid $$"\nfor a in "$0" "$@"; do echo "$a"; done\n' >"$tmp/bin/$p"
  chmod +x "$tmp/bin/$p"
done
E() { env -i PATH="$tmp/bin:/usr/bin:/bin" HOME="$tmp" "$@"; }
ep="$dk/entrypoint.sh"
refused() {  # refused WORD VAR=VALUE... -- ARGS: status 2 and a message naming WORD
  local word="$1" vars=(); shift
  while [ "$1" != -- ]; do vars+=("$1"); shift; done; shift
  E "${vars[@]}" "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" -ne 2 ] || ! grep -q "$word" "$tmp/out"; then
    echo "    status $rc: $(cat "$tmp/out")"
    return 1
  fi
}
# has_args FILE ARG...: the arguments appear in FILE as consecutive whole lines.
has_args() {
  local lines hay want
  mapfile -t lines <"$1"; shift
  hay="$(printf '\037%s' "${lines[@]}")"$'\037'
  want="$(printf '\037%s' "$@")"$'\037'
  [[ "$hay" == *"$want"* ]]
}

check "node without KV_ZK is refused" refused KV_ZK -- "$ep" node
check "node without KV_ID is refused" refused KV_ID KV_ZK=zk1:2181 -- "$ep" node
check "node without KV_ADVERTISE is refused" refused KV_ADVERTISE KV_ZK=zk1:2181 KV_ID=n1 -- "$ep" node
check "node on an unusable data directory is refused" refused KV_DATA \
  KV_ZK=zk1:2181 KV_ID=n1 KV_ADVERTISE=n1:7000 KV_DATA="$ep/data" -- "$ep" node
check "standalone with KV_ZK is refused" refused KV_STANDALONE KV_STANDALONE=1 KV_ZK=zk1:2181 -- "$ep" node
check "coord without KV_ZK is refused" refused KV_ZK -- "$ep" coord
check "repl without KV_ZK or KV_NODE is refused" refused KV_NODE -- "$ep" repl
check "health without a role is refused" refused 'node or coord' -- "$ep" health

E KV_ZK=zk1:2181,zk2:2181 KV_CLUSTER=c1 KV_ID=n1 KV_ADVERTISE=n1:7000 KV_ADMIN=0.0.0.0:9100 \
  KV_DATA="$tmp/n1/data" KV_LEASE_MS=700 KV_FSYNC=always KV_MOVE_RATE= "$ep" node --io-threads 2 \
  >"$tmp/node" 2>&1
check "node: runs kvnode" has_args "$tmp/node" "$tmp/bin/kvnode"
check "node: --zk and --cluster" has_args "$tmp/node" --zk zk1:2181,zk2:2181 --cluster c1
check "node: --advertise" has_args "$tmp/node" --advertise n1:7000
check "node: --advertise-admin from KV_ADVERTISE's host and KV_ADMIN's port" \
  has_args "$tmp/node" --advertise-admin n1:9100
check "node: --listen defaults to 0.0.0.0:7000" has_args "$tmp/node" --listen 0.0.0.0:7000
check "node: --data" has_args "$tmp/node" --data "$tmp/n1/data"
check "node: KV_LEASE_MS is --lease-ms" has_args "$tmp/node" --lease-ms 700
check "node: KV_FSYNC is --fsync" has_args "$tmp/node" --fsync always
check "node: an empty variable passes no flag" fails_ grep -qx -- --move-rate "$tmp/node"
check "node: extra arguments come last" bash -c "tail -n 2 '$tmp/node' | tr '\n' ' ' | grep -qx -- '--io-threads 2 '"

E KV_STANDALONE=1 KV_DATA="$tmp/s/data" "$ep" node >"$tmp/standalone" 2>&1
check "standalone: --standalone, no --advertise" bash -c \
  "grep -qx -- --standalone '$tmp/standalone' && ! grep -q -- --advertise '$tmp/standalone'"

E KV_ZK=zk1:2181 KV_ID=coord1 KV_RF=3 KV_MIN_INSYNC=2 KV_EXPECT_NODES=3 KV_BALANCE=off \
  KV_ADMIN=0.0.0.0:9101 "$ep" coord >"$tmp/coord" 2>&1
check "coord: runs kvcoord with --zk --id" has_args "$tmp/coord" --zk zk1:2181 --id coord1
check "coord: --rf --min-insync" has_args "$tmp/coord" --rf 3 --min-insync 2
check "coord: --expect-nodes --balance --admin" bash -c \
  "grep -qx -- --expect-nodes '$tmp/coord' && grep -qx off '$tmp/coord' && grep -qx 0.0.0.0:9101 '$tmp/coord'"

E KV_ZK=zk1:2181 KV_CLUSTER=c1 KV_TIMEOUT_MS=900 "$ep" repl -c "get k" >"$tmp/repl" 2>&1
check "repl: --zk --cluster --timeout-ms, then the commands" \
  has_args "$tmp/repl" --zk zk1:2181 --cluster c1 --timeout-ms 900 -c "get k"
E KV_NODE=n1:7000 KV_ZK=zk1:2181 "$ep" bench --duration 1 >"$tmp/bench" 2>&1
check "bench: KV_NODE wins over KV_ZK" bash -c \
  "grep -qx n1:7000 '$tmp/bench' && ! grep -q zk1 '$tmp/bench' && grep -qx -- --duration '$tmp/bench'"

# exec: the program keeps the entrypoint's PID, so it gets the container's signals.
for role in node coord repl bench; do
  env -i PATH="$tmp/bin:/usr/bin:/bin" KV_ZK=zk1:2181 KV_ID=n1 KV_ADVERTISE=n1:7000 \
    KV_DATA="$tmp/exec/data" "$ep" "$role" >"$tmp/exec.$role" 2>&1 &
  pid=$!; wait "$pid"
  check "$role: the entrypoint exec's the program (same PID)" grep -qx "pid $pid" "$tmp/exec.$role"
done
check "any other command runs as given" bash -c "'$ep' echo hello | grep -qx hello"

printf '#!/bin/sh\necho PONG\n' >"$tmp/bin/kvrepl"
check "health node: PONG is healthy" E KV_LISTEN=0.0.0.0:7000 "$ep" health node
printf '#!/bin/sh\necho "(error) UNAVAILABLE refused"\nexit 2\n' >"$tmp/bin/kvrepl"
check "health node: no PONG is unhealthy" fails_ E "$ep" health node
check "health coord: no metrics endpoint is unhealthy" fails_ E KV_ADMIN=127.0.0.1:1 "$ep" health coord

zep="$dk/zk-entrypoint.sh"
Z() { E ZK_CONF="$tmp/zk/zoo.cfg" ZK_DATA_DIR="$tmp/zk/data" "$@"; }
check "zk: an ensemble without ZK_MYID is refused" refused ZK_MYID ZK_SERVERS=zk1,zk2,zk3 -- "$zep"
check "zk: ZK_MYID outside the ensemble is refused" refused ZK_MYID \
  ZK_SERVERS=zk1,zk2,zk3 ZK_MYID=4 ZK_CONF="$tmp/zk/zoo.cfg" ZK_DATA_DIR="$tmp/zk/data" -- "$zep"
check "zk: an even ensemble is refused" refused odd ZK_SERVERS=zk1,zk2 ZK_MYID=1 -- "$zep"
check "zk: a malformed server entry is refused" refused QUORUM \
  ZK_SERVERS=zk1,zk2:1,zk3 ZK_MYID=1 ZK_CONF="$tmp/zk/zoo.cfg" ZK_DATA_DIR="$tmp/zk/data" -- "$zep"
Z ZK_SERVERS="zk1,zk2,zk3:2889:3889" ZK_MYID=2 ZK_HEAP=128m "$zep" >"$tmp/zk.out" 2>&1
check "zk: server lines in id order" has_args "$tmp/zk/zoo.cfg" \
  server.1=zk1:2888:3888 server.2=zk2:2888:3888 server.3=zk3:2889:3889
check "zk: myid" grep -qx 2 "$tmp/zk/data/myid"
check "zk: four-letter words for health checks" grep -qx '4lw.commands.whitelist=ruok,srvr,stat,mntr' \
  "$tmp/zk/zoo.cfg"
check "zk: dataDir and clientPort" has_args "$tmp/zk/zoo.cfg" "dataDir=$tmp/zk/data" clientPort=2181
check "zk: QuorumPeerMain on the config, -Xmx from ZK_HEAP" bash -c \
  "grep -qx org.apache.zookeeper.server.quorum.QuorumPeerMain '$tmp/zk.out' &&
   grep -qx '$tmp/zk/zoo.cfg' '$tmp/zk.out' && grep -qx -- -Xmx128m '$tmp/zk.out'"
env -i PATH="$tmp/bin:/usr/bin:/bin" ZK_CONF="$tmp/zk/zoo.cfg" ZK_DATA_DIR="$tmp/zk/data" "$zep" \
  >"$tmp/zk1.out" 2>&1 &
pid=$!; wait "$pid"
check "zk: the entrypoint exec's java (same PID)" grep -qx "pid $pid" "$tmp/zk1.out"
check "zk: standalone without ZK_SERVERS" bash -c \
  "grep -qx org.apache.zookeeper.server.ZooKeeperServerMain '$tmp/zk1.out' &&
   ! grep -q '^server\.' '$tmp/zk/zoo.cfg'"
check "zk health: no server is unhealthy" fails_ E ZK_CLIENT_PORT=1 "$zep" health

echo "$((checks - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
