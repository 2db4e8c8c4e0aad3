#!/usr/bin/env bash
# install_itest.sh CMAKE BUILD_DIR EXAMPLES_DIR KVNODE CXX CC
#
# 1. cmake --install BUILD_DIR into a temporary prefix (the installed
#    headers must not include anything outside the prefix's rangekv/);
# 2. configure and build EXAMPLES_DIR against it (CMAKE_PREFIX_PATH only);
# 3. start a standalone kvnode on a free loopback port and run kvcounter
#    against it: incr, incr by 5, get, and a bad argument.
# Ends only the kvnode it started, by PID; removes its temporary directory.
set -euo pipefail
cmake_bin="$1"; build="$2"; examples="$3"; kvnode="$4"; cxx="$5"; cc="$6"

tmp="$(mktemp -d)"
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "install_itest: FAIL: $*" >&2; exit 1; }

"$cmake_bin" --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }
for h in client.h cluster_info.h status.h; do
  [ -f "$tmp/prefix/include/rangekv/$h" ] || fail "header rangekv/$h not installed"
done
[ -f "$tmp/prefix/lib/cmake/rangekv/rangekvConfig.cmake" ] || fail "package config not installed"
# Public headers include only the standard library and each other.
if grep -h '#include' "$tmp/prefix/include/rangekv/"*.h | grep -v -E '#include <[a-z_]+>|#include "rangekv/' ; then
  fail "a public header includes something private"
fi

# Ninja, which scripts/setup installs, rather than CMake's default generator:
# the suite must pass on a machine that has only what scripts/setup installs.
"$cmake_bin" -S "$examples" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
  > "$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "configure examples"; }
"$cmake_bin" --build "$tmp/build" -j2 > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build examples"; }
counter="$tmp/build/kvcounter"
[ -x "$counter" ] || fail "kvcounter not built"
"$counter" --help | grep -q usage || fail "kvcounter --help"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$kvnode" --standalone --listen "127.0.0.1:$port" --data "$tmp/data" > "$tmp/kvnode.log" 2>&1 &
node_pid=$!
up=""
for _ in $(seq 1 300); do  # poll up to 15 s
  if out="$("$counter" --node "127.0.0.1:$port" get probe 2>/dev/null)"; then up=1; break; fi
  kill -0 "$node_pid" 2>/dev/null || { cat "$tmp/kvnode.log"; fail "kvnode exited"; }
  sleep 0.05
done
[ -n "$up" ] || { cat "$tmp/kvnode.log"; fail "kvnode did not answer"; }
[ "$out" = "0" ] || fail "get of a missing counter printed '$out'"

[ "$("$counter" --node "127.0.0.1:$port" incr hits)" = "1" ] || fail "incr"
[ "$("$counter" --node "127.0.0.1:$port" incr hits 5)" = "6" ] || fail "incr by 5"
[ "$("$counter" --node "127.0.0.1:$port" get hits)" = "6" ] || fail "get"
set +e
"$counter" --node "127.0.0.1:$port" incr hits notanumber > /dev/null 2>&1; rc=$?
set -e
[ "$rc" = "2" ] || fail "bad argument exit status $rc"
echo "install_itest: OK (installed, built examples/ against the package, kvcounter ran)"
