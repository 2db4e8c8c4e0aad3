#include "kvnode/server/node_options.h"

#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "common/cluster_map.h"
#include "common/zk/connect_string.h"

namespace rangekv::kvnode {
namespace {

constexpr int kMaxIoThreads = 256;
constexpr int64_t kMaxFsyncIntervalMs = 60000;
constexpr int64_t kMinSessionTimeoutMs = 1000;
constexpr int64_t kMaxSessionTimeoutMs = 600000;

Status BadFlag(std::string message) { return Status(Code::kBadRequest, std::move(message)); }

// An address others dial: a port, and a host that names one machine.
Result<HostPort> ParseAdvertised(std::string_view flag, std::string_view v) {
  auto hp = ParseHostPort(v);
  if (!hp.ok()) return BadFlag(std::string(flag) + ": " + hp.status().message());
  if (hp->port == 0) return BadFlag(std::string(flag) + " wants the port others dial, not 0");
  if (hp->host.empty() || IsWildcardHost(hp->host)) {
    return BadFlag(std::string(flag) + " wants an address others can dial, not the wildcard '" +
                   std::string(v) + "'");
  }
  return *hp;
}

Result<int64_t> ParseInt(std::string_view flag, std::string_view s, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) {
    return BadFlag(std::string(flag) + " wants an integer in " + std::to_string(lo) + ".." +
                   std::to_string(hi) + ", got '" + std::string(s) + "'");
  }
  return v;
}

Result<log::Level> ParseLogLevel(std::string_view s) {
  if (s == "debug") return log::Level::kDebug;
  if (s == "info") return log::Level::kInfo;
  if (s == "warn") return log::Level::kWarn;
  if (s == "error") return log::Level::kError;
  return BadFlag("--log-level wants debug, info, warn or error, got '" + std::string(s) + "'");
}

// Applies one flag that takes a value.
using ValueSetter = std::function<Status(NodeOptions&, std::string_view)>;

// A flag naming a file, kept in `field`.
ValueSetter FileFlag(const char* flag, std::string NodeOptions::*field) {
  return [flag, field](NodeOptions& o, std::string_view v) {
    if (v.empty()) return BadFlag(std::string(flag) + " wants a file");
    o.*field = v;
    return Status::Ok();
  };
}

const std::map<std::string, ValueSetter, std::less<>>& ValueFlags() {
  static const auto* flags = new std::map<std::string, ValueSetter, std::less<>>{
      {"--zk",
       [](NodeOptions& o, std::string_view v) {
         auto parsed = zk::ParseConnectString(v);
         if (!parsed.ok()) return BadFlag("--zk: " + parsed.status().message());
         o.zk = v;
         return Status::Ok();
       }},
      {"--cluster",
       [](NodeOptions& o, std::string_view v) {
         if (!IsValidNodeId(v)) {
           return BadFlag("--cluster wants 1-64 characters of [A-Za-z0-9._-], got '" +
                          std::string(v) + "'");
         }
         o.cluster = v;
         return Status::Ok();
       }},
      {"--session-timeout-ms",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(
             int64_t ms,
             ParseInt("--session-timeout-ms", v, kMinSessionTimeoutMs, kMaxSessionTimeoutMs));
         o.session_timeout = std::chrono::milliseconds(ms);
         return Status::Ok();
       }},
      {"--lease-ms",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t ms, ParseInt("--lease-ms", v, 100, 60000));
         o.lease = std::chrono::milliseconds(ms);
         return Status::Ok();
       }},
      {"--isr-lag-ms",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t ms, ParseInt("--isr-lag-ms", v, 100, 600000));
         o.isr_lag = std::chrono::milliseconds(ms);
         return Status::Ok();
       }},
      {"--replace",
       [](NodeOptions& o, std::string_view v) {
         if (!cluster::IsValidNodeId(v))
           return BadFlag("--replace: bad node id '" + std::string(v) + "'");
         o.replaces = NodeId(std::string(v));
         return Status::Ok();
       }},
      {"--segment-bytes",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t n, ParseInt("--segment-bytes", v, 4096, int64_t{1} << 30));
         o.segment_bytes = static_cast<size_t>(n);
         return Status::Ok();
       }},
      {"--snapshot-after-bytes",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t n,
                                  ParseInt("--snapshot-after-bytes", v, 4096, int64_t{1} << 40));
         o.snapshot_after_bytes = static_cast<size_t>(n);
         return Status::Ok();
       }},
      {"--keep-log-records",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t n, ParseInt("--keep-log-records", v, 1, 1000000000));
         o.keep_log_records = static_cast<uint64_t>(n);
         return Status::Ok();
       }},
      {"--split-bytes",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t n, ParseInt("--split-bytes", v, 0, int64_t{1} << 40));
         o.split_bytes = static_cast<uint64_t>(n);
         return Status::Ok();
       }},
      {"--split-qps",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t n, ParseInt("--split-qps", v, 0, 100000000));
         o.split_qps = static_cast<uint32_t>(n);
         return Status::Ok();
       }},
      {"--move-rate",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t mib, ParseInt("--move-rate", v, 1, 1000000));
         o.move_rate_bytes = static_cast<uint64_t>(mib) << 20;
         return Status::Ok();
       }},
      {"--split-load-window-ms",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t ms, ParseInt("--split-load-window-ms", v, 1000, 3600000));
         o.split_load_window = std::chrono::milliseconds(ms);
         return Status::Ok();
       }},
      {"--merge-delay-ms",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t ms, ParseInt("--merge-delay-ms", v, 0, int64_t{1} << 40));
         o.merge_delay = std::chrono::milliseconds(ms);
         return Status::Ok();
       }},
      {"--admin",
       [](NodeOptions& o, std::string_view v) {
         auto hp = ParseHostPort(v);
         if (!hp.ok()) return BadFlag("--admin: " + hp.status().message());
         o.admin = *hp;
         return Status::Ok();
       }},
      {"--advertise",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(o.advertise, ParseAdvertised("--advertise", v));
         return Status::Ok();
       }},
      {"--advertise-admin",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(o.advertise_admin, ParseAdvertised("--advertise-admin", v));
         return Status::Ok();
       }},
      {"--tls-ca", FileFlag("--tls-ca", &NodeOptions::tls_ca)},
      {"--tls-cert", FileFlag("--tls-cert", &NodeOptions::tls_cert)},
      {"--tls-key", FileFlag("--tls-key", &NodeOptions::tls_key)},
      {"--zk-auth-file", FileFlag("--zk-auth-file", &NodeOptions::zk_auth_file)},
      {"--listen",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(o.listen, ParseHostPort(v));
         return Status::Ok();
       }},
      {"--data",
       [](NodeOptions& o, std::string_view v) {
         if (v.empty()) return BadFlag("--data wants a directory");
         o.data_dir = v;
         return Status::Ok();
       }},
      {"--id",
       [](NodeOptions& o, std::string_view v) {
         if (!IsValidNodeId(v)) {
           return BadFlag("--id wants 1-64 characters of [A-Za-z0-9._-], got '" + std::string(v) +
                          "'");
         }
         o.id = NodeId(std::string(v));
         return Status::Ok();
       }},
      {"--fsync",
       [](NodeOptions& o, std::string_view v) {
         auto p = ParseFsyncPolicy(v);
         if (!p)
           return BadFlag("--fsync wants always, batch or never, got '" + std::string(v) + "'");
         o.fsync = *p;
         return Status::Ok();
       }},
      {"--fsync-interval-ms",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t ms,
                                  ParseInt("--fsync-interval-ms", v, 1, kMaxFsyncIntervalMs));
         o.fsync_interval = std::chrono::milliseconds(ms);
         return Status::Ok();
       }},
      {"--io-threads",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(int64_t n, ParseInt("--io-threads", v, 1, kMaxIoThreads));
         o.io_threads = static_cast<int>(n);
         return Status::Ok();
       }},
      {"--log-level",
       [](NodeOptions& o, std::string_view v) {
         RANGEKV_ASSIGN_OR_RETURN(o.log_level, ParseLogLevel(v));
         return Status::Ok();
       }},
  };
  return *flags;
}

// The flags each mode requires, checked after every flag is read.
Status CheckComplete(const NodeOptions& o, const std::set<std::string_view>& given) {
  if (o.mode == NodeMode::kStandalone) {
    for (std::string_view cluster_only :
         {"--zk", "--cluster", "--session-timeout-ms", "--lease-ms", "--isr-lag-ms", "--replace",
          "--split-bytes", "--split-qps", "--split-load-window-ms", "--merge-delay-ms",
          "--move-rate", "--advertise", "--advertise-admin", "--zk-auth-file"}) {
      if (given.count(cluster_only)) {
        return BadFlag("--standalone and " + std::string(cluster_only) + " cannot be combined");
      }
    }
  } else if (o.zk.empty()) {
    return BadFlag("missing --zk CONNECT (or --standalone to run without ZooKeeper)");
  } else if (!o.id) {
    return BadFlag("missing --id ID (a cluster node needs its id)");
  } else if (o.replaces && *o.replaces == *o.id) {
    return BadFlag("--replace " + o.replaces->str() + ": a node cannot replace itself");
  }
  if (!given.count("--listen")) return BadFlag("missing --listen HOST:PORT");
  if (o.advertise_admin && !o.admin) {
    return BadFlag("--advertise-admin needs --admin (there is no metrics endpoint to advertise)");
  }
  if (o.data_dir.empty()) return BadFlag("missing --data DIR");
  const bool any_tls = !o.tls_ca.empty() || !o.tls_cert.empty() || !o.tls_key.empty();
  if (any_tls && (o.tls_ca.empty() || o.tls_cert.empty() || o.tls_key.empty())) {
    return BadFlag("--tls-ca, --tls-cert and --tls-key go together (TLS for every connection)");
  }
  return Status::Ok();
}

}  // namespace

bool IsValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return id != "." && id != "..";
}

Result<HostPort> ParseHostPort(std::string_view s) {
  auto bad = [&](const char* why) {
    return Status(Code::kBadRequest, "bad address '" + std::string(s) + "': " + why);
  };
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return bad("want HOST:PORT");
  std::string_view host = s.substr(0, colon);
  std::string_view port = s.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') return bad("unbalanced brackets");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return bad("bracket an IPv6 host, e.g. [::1]:7000");
  }
  if (host.empty()) return bad("empty host");
  uint32_t p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p > 65535) {
    return bad("port must be 0..65535");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(p)};
}

bool IsWildcardHost(std::string_view host) { return host == "0.0.0.0" || host == "::"; }

std::string FormatHostPort(const HostPort& hp) {
  bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

Result<ParsedArgs> ParseNodeArgs(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  // Help wins over every other problem, so it is looked for first.
  for (const auto& arg : args) {
    if (arg == "--help" || arg == "-h") {
      parsed.action = ParseAction::kShowHelp;
      return parsed;
    }
  }
  NodeOptions& o = parsed.options;
  std::set<std::string_view> given;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--standalone") {
      o.mode = NodeMode::kStandalone;
      continue;
    }
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    auto it = ValueFlags().find(name);
    if (it == ValueFlags().end()) {
      return BadFlag((arg.starts_with("-") ? "unknown flag " : "unexpected argument ") +
                     std::string(name));
    }
    if (!value) {
      if (i + 1 >= args.size()) return BadFlag("flag " + std::string(name) + " needs a value");
      value = args[++i];
    }
    RANGEKV_RETURN_IF_ERROR(it->second(o, *value));
    given.insert(it->first);
  }
  RANGEKV_RETURN_IF_ERROR(CheckComplete(o, given));
  return parsed;
}

std::string NodeUsage() {
  return "usage: kvnode --id ID --listen HOST:PORT --zk CONNECT --data DIR [options]\n"
         "       kvnode --standalone --listen HOST:PORT --data DIR [options]\n"
         "\n"
         "Serves rangekv's client protocol on HOST:PORT (port 0 picks a free port;\n"
         "the bound address is logged as 'serving on HOST:PORT'). In cluster mode the\n"
         "node registers in ZooKeeper and serves the ranges the cluster map gives it.\n"
         "\n"
         "  --zk CONNECT            ZooKeeper servers, host:port[,host:port...][/chroot]\n"
         "  --cluster NAME          cluster under /rangekv/ (default 'default')\n"
         "  --session-timeout-ms N  ZooKeeper session timeout (default 6000)\n"
         "  --lease-ms N            read lease a replica grants its owner (default 600)\n"
         "  --isr-lag-ms N          drop a replica from the ISR after lagging this long\n"
         "                          (default 2000)\n"
         "  --replace ID            take over the replicas of dead node ID\n"
         "  --split-bytes N         an owned range splits in two once its keys and values\n"
         "                          pass N bytes, at the key that halves them (default\n"
         "                          64 MiB; 0: never)\n"
         "  --split-qps N           ... or once it serves more than N requests a second\n"
         "                          for the load window, at the key that halves them\n"
         "                          (default 2000; 0: never)\n"
         "  --split-load-window-ms N  the load window (default 10000)\n"
         "  --move-rate MIB         the copies of ranges this node makes from their owners\n"
         "                          (replicas outside the ISR: new, moved or far behind;\n"
         "                          snapshot or log) read at most MIB MiB a second together\n"
         "                          (default 100)\n"
         "  --merge-delay-ms N      two neighbours this node owns with the same replicas\n"
         "                          merge once both are under a quarter of --split-bytes,\n"
         "                          under a quarter of --split-qps for the load window,\n"
         "                          and unchanged (not split) for N ms (default 300000;\n"
         "                          0: never)\n"
         "  --segment-bytes N       rotate a range's log segment past N bytes (default 64 MiB)\n"
         "  --snapshot-after-bytes N  snapshot a range after N bytes of log (default 256 MiB)\n"
         "  --keep-log-records N    log records kept below a snapshot for replicas catching\n"
         "                          up (default 100000)\n"
         "  --standalone            own the whole key space as one range, no ZooKeeper\n"
         "  --listen HOST:PORT      address to serve on (IPv6 as [::1]:7000)\n"
         "  --data DIR              data directory (created if missing; locked)\n"
         "  --id NAME               node id, [A-Za-z0-9._-]{1,64}; required with --zk\n"
         "                          (standalone default: the data directory's, else\n"
         "                          'standalone')\n"
         "  --admin HOST:PORT       serve Prometheus metrics on http://HOST:PORT/metrics\n"
         "  --advertise HOST:PORT   the address clients and other nodes reach this node at,\n"
         "                          as registered in ZooKeeper (default: the bound --listen\n"
         "                          address; a wildcard host becomes this host's name)\n"
         "  --advertise-admin HOST:PORT  the same for --admin\n"
         "  --tls-ca FILE           TLS with mutual certificates on every connection:\n"
         "  --tls-cert FILE           the cluster CA, this node's certificate and its key\n"
         "  --tls-key FILE            (PEM; all three or none; SIGHUP reloads them)\n"
         "  --zk-auth-file FILE     ZooKeeper credentials: a line user:password (this\n"
         "                          node's identity, given ALL on the cluster's znodes),\n"
         "                          then optionally the clients' user:password (given\n"
         "                          READ); mode 600 (docs/security.md)\n"
         "  --fsync POLICY          always | batch | never (default batch)\n"
         "  --fsync-interval-ms N   bound on unsynced time with --fsync batch (default 10)\n"
         "  --io-threads N          network threads (default: hardware threads)\n"
         "  --log-level LEVEL       debug | info | warn | error (default info)\n"
         "  --help                  print this text\n"
         "\n"
         "Exit codes: 0 after SIGTERM/SIGINT (in-flight writes finished, stores closed),\n"
         "1 when closing the stores failed, 2 for bad flags, a data directory / address\n"
         "that cannot be used, or a node id already registered by another live node.\n";
}

}  // namespace rangekv::kvnode
