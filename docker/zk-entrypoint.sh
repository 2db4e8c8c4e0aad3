#!/usr/bin/env bash
# Entrypoint of the image's zookeeper target: writes zoo.cfg from ZK_*
# environment variables and exec's ZooKeeper (Debian's jar, run the way
# scripts/kvcluster runs it), so the JVM is PID 1 and gets `docker stop`'s
# SIGTERM itself.
#
#   zk-entrypoint               serve
#   zk-entrypoint health        exit 0 while this server serves (standalone, leader or follower)
#   zk-entrypoint help          this text
#   zk-entrypoint COMMAND ...   anything else runs as given
#
#   ZK_SERVERS        the ensemble, in server-id order: zk1,zk2,zk3; an entry may carry its
#                     ports, host:QUORUM:ELECTION (default 2888:3888). Unset or one entry:
#                     a standalone server
#   ZK_MYID           this server's id, its 1-based place in ZK_SERVERS (required when there
#                     are several)
#   ZK_CLIENT_PORT    default 2181
#   ZK_CLIENT_ADDRESS address the client port binds (default: all)
#   ZK_TICK_TIME      ms (default 1000: sessions from 2 s to 20 s, kvnode's 6 s among them)
#   ZK_HEAP           the JVM's -Xmx (default 256m)
#   ZK_DATA_DIR       default /var/lib/zookeeper/data (the volume)
#   ZK_CONF           where zoo.cfg is written, default /etc/zookeeper/zoo.cfg
#   ZK_JAVA_OPTS      more JVM options, split at spaces
# Refuses (status 2) on a missing or inconsistent variable.
set -euo pipefail

me=zk-entrypoint
die() { echo "$me: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

client_port="${ZK_CLIENT_PORT:-2181}"
data_dir="${ZK_DATA_DIR:-/var/lib/zookeeper/data}"
conf="${ZK_CONF:-/etc/zookeeper/zoo.cfg}"
jars=/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar

# ask WORD: a four-letter word's answer from this server ("" if none).
ask() {
  local host="${ZK_CLIENT_ADDRESS:-127.0.0.1}"
  case "$host" in 0.0.0.0|'') host=127.0.0.1 ;; esac
  # shellcheck disable=SC2016  # expanded by the inner bash, from its arguments
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf %s "$3" >&3 && cat <&3' \
    _ "$host" "$client_port" "$1" 2>/dev/null || true
}

# ruok answers imok before the server has joined a quorum; srvr's Mode
# line appears only once it serves requests.
health() {
  local mode
  mode=$(ask srvr | sed -n 's/^Mode: //p')
  case "$mode" in
    leader|follower|standalone) ;;
    *) echo "ZooKeeper on port $client_port does not serve (${mode:-no answer})" >&2; exit 1 ;;
  esac
}

serve() {
  local servers=() i entry host rest main
  if [ -n "${ZK_SERVERS:-}" ]; then IFS=', ' read -ra servers <<<"$ZK_SERVERS"; fi
  [[ "$client_port" =~ ^[0-9]+$ ]] || die "ZK_CLIENT_PORT wants a port number, got '$client_port'"
  local tick="${ZK_TICK_TIME:-1000}"
  [[ "$tick" =~ ^[1-9][0-9]*$ ]] || die "ZK_TICK_TIME wants milliseconds, got '$tick'"

  if [ ${#servers[@]} -gt 1 ]; then
    # An even ensemble survives no more failures than the odd one below it.
    [ $((${#servers[@]} % 2)) -eq 1 ] ||
      die "ZK_SERVERS names ${#servers[@]} servers; an ensemble wants an odd count (3, 5)"
    [ -n "${ZK_MYID:-}" ] ||
      die "missing ZK_MYID: this server's place (1..${#servers[@]}) in ZK_SERVERS=$ZK_SERVERS"
    if ! [[ "$ZK_MYID" =~ ^[1-9][0-9]*$ ]] || [ "$ZK_MYID" -gt ${#servers[@]} ]; then
      die "ZK_MYID wants 1..${#servers[@]} (a place in ZK_SERVERS), got '$ZK_MYID'"
    fi
  fi

  mkdir -p "$data_dir" "$(dirname "$conf")" 2>/dev/null || true
  if [ ! -d "$data_dir" ] || [ ! -w "$data_dir" ]; then
    die "ZK_DATA_DIR=$data_dir is not a directory writable by uid $(id -u); mount a volume" \
        "this user owns (a new named volume at /var/lib/zookeeper is)"
  fi

  # Written on every start, so a changed variable takes effect on restart.
  {
    printf '%s\n' "tickTime=$tick" initLimit=10 syncLimit=5 "dataDir=$data_dir" \
      "clientPort=$client_port" maxClientCnxns=0 admin.enableServer=false \
      4lw.commands.whitelist=ruok,srvr,stat,mntr \
      autopurge.snapRetainCount=3 autopurge.purgeInterval=1
    [ -z "${ZK_CLIENT_ADDRESS:-}" ] || echo "clientPortAddress=$ZK_CLIENT_ADDRESS"
    if [ ${#servers[@]} -gt 1 ]; then
      # Servers are listed by the names the others dial; whether a server's
      # own name resolves to one of its own addresses is up to the network's
      # DNS, so the quorum ports listen on every interface.
      echo quorumListenOnAllIPs=true
      for i in "${!servers[@]}"; do
        entry="${servers[$i]}"; host="${entry%%:*}"; rest="${entry#"$host"}"
        [ -n "$host" ] || die "ZK_SERVERS entry $((i + 1)) has no host: '$entry'"
        [ -n "$rest" ] || rest=":2888:3888"
        [[ "$rest" =~ ^:[0-9]+:[0-9]+$ ]] ||
          die "ZK_SERVERS entry '$entry' wants host or host:QUORUM:ELECTION"
        echo "server.$((i + 1))=$host$rest"
      done
    fi
  } >"$conf" || die "cannot write $conf"

  if [ ${#servers[@]} -gt 1 ]; then
    echo "$ZK_MYID" >"$data_dir/myid"
    main=org.apache.zookeeper.server.quorum.QuorumPeerMain
  else
    main=org.apache.zookeeper.server.ZooKeeperServerMain
  fi
  local java_opts=()
  [ -z "${ZK_JAVA_OPTS:-}" ] || read -ra java_opts <<<"$ZK_JAVA_OPTS"
  exec java "-Xmx${ZK_HEAP:-256m}" -XX:+UseSerialGC -Dzookeeper.jmx.log4j.disable=true \
    "${java_opts[@]}" -cp "$jars" "$main" "$conf"
}

cmd="${1:-serve}"
[ $# -gt 0 ] && shift
case "$cmd" in
  serve) serve ;;
  health) health ;;
  help|-h|--help) usage ;;
  *) exec "$cmd" "$@" ;;
esac
