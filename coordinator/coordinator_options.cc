#include "coordinator/coordinator_options.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <string>
#include <optional>

#include "common/escape.h"
#include "common/zk/connect_string.h"

namespace rangekv::coordinator {
namespace {

Status Bad(const std::string& message) { return Status(Code::kBadRequest, message); }

Result<int64_t> ParseInt(const std::string& flag, const std::string& value, int64_t lo,
                         int64_t hi) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < lo || v > hi) {
    return Bad(flag + ": expected " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" +
               value + "'");
  }
  return v;
}

// "N", "Nms", "Ns", "Nm" (bare N: seconds), at most 24 h.
Result<std::chrono::milliseconds> ParseDuration(const std::string& flag, const std::string& value) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  std::string unit(p, value.data() + value.size());
  int64_t scale = 0;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60000;
  }
  constexpr int64_t kMaxMs = 24 * 3600 * 1000;
  if (value.empty() || ec != std::errc() || scale == 0 || n < 0 || n > kMaxMs / scale) {
    return Bad(flag + ": expected a duration N[ms|s|m] up to 24 h (0 = off), got '" + value + "'");
  }
  return std::chrono::milliseconds(n * scale);
}

Result<log::Level> ParseLevel(const std::string& value) {
  if (value == "debug") return log::Level::kDebug;
  if (value == "info") return log::Level::kInfo;
  if (value == "warn") return log::Level::kWarn;
  if (value == "error") return log::Level::kError;
  return Bad("--log-level: expected debug, info, warn or error, got '" + value + "'");
}

// "KEY[,KEY...]": each key as text, where \\xHH is any byte, \\, a comma
// and \\\\ a backslash. Sorted; empty or duplicate keys are refused.
Result<std::vector<std::string>> ParseSplitKeys(const std::string& value) {
  const std::string flag = "--initial-splits";
  std::vector<std::string> keys(1);
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c == ',') {
      keys.emplace_back();
    } else if (c != '\\') {
      keys.back() += c;
    } else if (i + 1 < value.size() && (value[i + 1] == ',' || value[i + 1] == '\\')) {
      keys.back() += value[++i];
    } else if (i + 3 < value.size() && value[i + 1] == 'x' &&
               std::isxdigit(static_cast<unsigned char>(value[i + 2])) &&
               std::isxdigit(static_cast<unsigned char>(value[i + 3]))) {
      keys.back() += static_cast<char>(std::stoi(value.substr(i + 2, 2), nullptr, 16));
      i += 3;
    } else {
      return Bad(flag + ": bad escape at offset " + std::to_string(i) +
                 " (\\xHH, \\, or \\\\ only)");
    }
  }
  std::sort(keys.begin(), keys.end());
  if (keys.front().empty()) return Bad(flag + ": empty key (the first range starts at \"\" anyway)");
  if (auto dup = std::adjacent_find(keys.begin(), keys.end()); dup != keys.end()) {
    return Bad(flag + ": key " + QuoteIfNeeded(*dup) + " given twice");
  }
  if (Status st = cluster::CheckInitialSplits(keys); !st.ok()) return Bad(flag + ": " + st.message());
  return keys;
}

// Applies one "--flag value" pair. min_insync is kept apart so that its
// default can follow --rf (see Finish).
Status Apply(const std::string& flag, const std::string& value, CoordinatorOptions& o,
             std::optional<int>& min_insync, bool& ranges_given) {
  if (flag == "--zk") {
    if (Status st = zk::ParseConnectString(value).status(); !st.ok()) {
      return Bad("--zk: " + st.message());
    }
    o.zk = value;
  } else if (flag == "--cluster") {
    if (!cluster::IsValidNodeId(value)) return Bad("--cluster: expected [A-Za-z0-9._-]{1,64}");
    o.cluster = value;
  } else if (flag == "--id") {
    if (!cluster::IsValidNodeId(value)) return Bad("--id: expected [A-Za-z0-9._-]{1,64}");
    o.id = value;
  } else if (flag == "--rf") {
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 16));
    o.config.rf = static_cast<int>(v);
  } else if (flag == "--min-insync") {
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 16));
    min_insync = static_cast<int>(v);
  } else if (flag == "--ranges") {
    if (!o.config.initial_splits.empty()) return Bad("--ranges: not with --initial-splits");
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 256));
    o.config.initial_ranges = static_cast<int>(v);
    ranges_given = true;
  } else if (flag == "--initial-splits") {
    if (ranges_given) return Bad("--initial-splits: not with --ranges");
    RANGEKV_ASSIGN_OR_RETURN(o.config.initial_splits, ParseSplitKeys(value));
    o.config.initial_ranges = static_cast<int>(o.config.initial_splits.size()) + 1;
  } else if (flag == "--session-timeout-ms") {
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1000, 600000));
    o.session_timeout = std::chrono::milliseconds(v);
  } else if (flag == "--failure-timeout-ms") {
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 0, 60000));
    if (v != 0 && v < 100) return Bad("--failure-timeout-ms: expected 0 (off) or 100..60000");
    o.detector.failure_timeout = std::chrono::milliseconds(v);
  } else if (flag == "--reconcile-period-ms") {
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 100, 3600000));
    o.reconcile_period = std::chrono::milliseconds(v);
  } else if (flag == "--replace-after") {
    RANGEKV_ASSIGN_OR_RETURN(o.replace_after, ParseDuration(flag, value));
  } else if (flag == "--expect-nodes") {
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 10000));
    o.expect_nodes = static_cast<int>(v);
  } else if (flag == "--moves-per-node") {
    RANGEKV_ASSIGN_OR_RETURN(int64_t v, ParseInt(flag, value, 1, 64));
    o.moves_per_node = static_cast<int>(v);
  } else if (flag == "--balance") {
    if (value != "on" && value != "off") return Bad("--balance: expected on or off");
    o.balance = value == "on";
  } else if (flag == "--admin") {
    size_t colon = value.rfind(':');
    if (colon == std::string::npos || colon == 0) return Bad("--admin: expected HOST:PORT");
    RANGEKV_ASSIGN_OR_RETURN(int64_t port, ParseInt(flag, value.substr(colon + 1), 0, 65535));
    std::string host = value.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    o.admin_host = host;
    o.admin_port = static_cast<uint16_t>(port);
  } else if (flag == "--tls-ca" || flag == "--tls-cert" || flag == "--tls-key") {
    if (value.empty()) return Bad(flag + ": expected a file");
    (flag == "--tls-ca" ? o.tls_ca : flag == "--tls-cert" ? o.tls_cert : o.tls_key) = value;
  } else if (flag == "--zk-auth-file") {
    if (value.empty()) return Bad(flag + ": expected a file");
    o.zk_auth_file = value;
  } else if (flag == "--log-level") {
    RANGEKV_ASSIGN_OR_RETURN(o.log_level, ParseLevel(value));
  } else {
    return Bad("unknown flag " + flag);
  }
  return Status::Ok();
}

Status Finish(CoordinatorOptions& o, const std::optional<int>& min_insync) {
  if (o.zk.empty()) return Bad("--zk is required");
  const int tls_given = !o.tls_ca.empty() + !o.tls_cert.empty() + !o.tls_key.empty();
  if (tls_given != 0 && tls_given != 3) {
    return Bad("--tls-ca, --tls-cert and --tls-key go together");
  }
  if (min_insync) {
    if (*min_insync > o.config.rf) {
      return Bad("--min-insync: " + std::to_string(*min_insync) + " is above --rf " +
                 std::to_string(o.config.rf));
    }
    o.config.min_insync = *min_insync;
  } else {
    o.config.min_insync = std::min(o.config.min_insync, o.config.rf);
  }
  return Status::Ok();
}

}  // namespace

Result<ParsedCoordinatorArgs> ParseCoordinatorArgs(const std::vector<std::string>& args) {
  ParsedCoordinatorArgs out;
  std::optional<int> min_insync;
  bool ranges_given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      out.action = ParseAction::kShowHelp;
      return out;
    }
    if (arg.rfind("--", 0) != 0) return Bad("unexpected argument '" + arg + "'");
    std::string flag = arg;
    std::string value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= args.size()) return Bad(flag + ": missing value");
      value = args[++i];
    }
    RANGEKV_RETURN_IF_ERROR(Apply(flag, value, out.options, min_insync, ranges_given));
  }
  RANGEKV_RETURN_IF_ERROR(Finish(out.options, min_insync));
  return out;
}

std::string CoordinatorUsage() {
  return "usage: kvcoord --zk CONNECT [options]\n"
         "\n"
         "The rangekv coordinator: keeps the cluster map in ZooKeeper under\n"
         "/rangekv/<cluster>. Several may run; one is elected leader, the others\n"
         "stand by and take over when it goes away.\n"
         "\n"
         "  --zk CONNECT              ZooKeeper servers, host:port[,host:port...][/chroot]\n"
         "  --cluster NAME            cluster name (default: default)\n"
         "  --rf N                    replication factor for a new cluster, 1..16 (default 3)\n"
         "  --min-insync N            min in-sync replicas for a new cluster, 1..rf (default 2)\n"
         "  --ranges K                a new cluster starts with K ranges, equal slices of the\n"
         "                            first key byte, 1..256 (default 1: ranges split by\n"
         "                            size and load as they fill)\n"
         "  --initial-splits K1,K2..  a new cluster starts cut at these keys instead (text;\n"
         "                            \\xHH any byte, \\, a comma); up to 255 keys\n"
         "  --id NAME                 coordinator id in logs and the election (default host-pid)\n"
         "  --session-timeout-ms N    ZooKeeper session timeout, 1000..600000 (default 6000)\n"
         "  --failure-timeout-ms N    a reported node that answers no ping for this long\n"
         "                            fails before its session expires; 0 = off, else\n"
         "                            100..60000 (default 400)\n"
         "  --reconcile-period-ms N   periodic re-read of the cluster map (default 5000)\n"
         "  --replace-after D         replace a replica whose node is gone for longer than D\n"
         "                            by a live node (N = seconds, or Nms/Ns/Nm; 0 = never;\n"
         "                            default 30s)\n"
         "  --expect-nodes N          bootstrap a new cluster once N nodes are live (default:\n"
         "                            rf), so nodes started together all get ranges at once\n"
         "  --balance on|off          move replicas so every node holds about as many, and\n"
         "                            owners between in-sync replicas so each node's ranges\n"
         "                            carry a fair share of the requests (default on)\n"
         "  --moves-per-node N        at most N replica copies made into one node at once,\n"
         "                            1..64 (default 2); each reads at the node's --move-rate\n"
         "  --admin HOST:PORT         serve Prometheus metrics on http://HOST:PORT/metrics\n"
         "  --tls-ca FILE             the nodes serve TLS: the cluster CA, this coordinator's\n"
         "  --tls-cert FILE             certificate and its key (PEM; all three or none),\n"
         "  --tls-key FILE              for the failure detector's pings\n"
         "  --zk-auth-file FILE       ZooKeeper credentials: a line user:password (this\n"
         "                            coordinator's identity, given ALL on the cluster's\n"
         "                            znodes), then optionally the clients' user:password\n"
         "                            (given READ); mode 600 (docs/security.md)\n"
         "  --log-level LEVEL         debug, info, warn or error (default info)\n"
         "  --help                    this text\n"
         "\n"
         "--rf, --min-insync, --ranges and --initial-splits only seed the cluster's config\n"
         "when it does not exist yet; an existing config wins. When an owner's node goes\n"
         "away, a live in-sync replica is promoted; with none left the range is unavailable\n"
         "until one returns.\n"
         "Stop with SIGTERM or SIGINT.\n";
}

std::string DefaultCoordinatorId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "kvcoord");
  }
  std::string suffix = "-" + std::to_string(::getpid());
  std::string id(host);
  for (char& c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  id = id.substr(0, 64 - suffix.size()) + suffix;
  return id;
}

}  // namespace rangekv::coordinator
