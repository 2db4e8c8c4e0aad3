// coordinator/coordinator_options.h — the kvcoord command line.
//
//   kvcoord --zk CONNECT [--cluster NAME] [--rf N] [--min-insync N]
//           [--ranges K | --initial-splits KEY[,KEY...]] [--id NAME]
//           [--session-timeout-ms N] [--failure-timeout-ms N] [--reconcile-period-ms N]
//           [--replace-after DURATION] [--admin HOST:PORT]
//           [--log-level debug|info|warn|error]
//
// | flag                  | value                     | default                     |
// |-----------------------|---------------------------|-----------------------------|
// | --zk                  | host:port[,...][/chroot]  | required                    |
// | --cluster             | [A-Za-z0-9._-]{1,64}      | default                     |
// | --rf                  | 1..16                     | 3                           |
// | --min-insync          | 1..rf                     | 2 (clamped to rf if absent) |
// | --ranges              | 1..256                    | 1                           |
// | --initial-splits      | KEY[,KEY...], 1..255 keys | none (--ranges applies)     |
// | --id                  | [A-Za-z0-9._-]{1,64}      | <hostname>-<pid>            |
// | --session-timeout-ms  | 1000..600000              | 6000                        |
// | --failure-timeout-ms  | 0 (off), 100..60000       | 400                         |
// | --reconcile-period-ms | 100..3600000              | 5000                        |
// | --replace-after       | N[ms|s|m], 0..24 h; 0=off | 30s                         |
// | --balance             | on, off                   | on                          |
// | --moves-per-node      | 1..64                     | 2                           |
// | --admin               | HOST:PORT (port 0 = any)  | none                        |
// | --tls-ca, --tls-cert, | PEM files, all three or   | none: plaintext pings       |
// | --tls-key             | none                      |                             |
// | --log-level           | debug, info, warn, error  | info                        |
// | --help, -h            | none                      | print usage, exit 0         |
//
// --ranges K cuts a new cluster's key space into K equal slices of the first
// byte; --initial-splits cuts it at the given keys instead (text; "\xHH" is
// any byte, "\," a comma, "\\" a backslash; sorted, none empty or twice).
// The two exclude each other.
//
// --rf, --min-insync, --ranges and --initial-splits only seed R/config when
// a cluster is first bootstrapped; an existing R/config always wins (the
// coordinator logs a warning when they differ). The server clamps the session timeout to its
// own [min, max] (2..20 ticks by default).
//
// --replace-after: a replica (not the owner) whose node znode has been gone
// for longer than this is replaced by a live node outside the range
// (coordinator/planner.h rule 8). A bare number is seconds ("45" = 45 s);
// the suffixes ms, s and m name the unit ("1500ms", "2m"). 0 disables it.
//
// --failure-timeout-ms: a node that another reports unreachable and that
// answers none of our pings for this long is treated as gone before its
// session expires (coordinator/failure_detector.h); a stop shorter than
// this never is. 0 leaves failures to session expiry alone.
//
// Values follow as the next argument or after '=' ("--rf=3"). Parsing is
// pure (no I/O, no exits) so it can be unit tested; main() turns an error
// into one line on stderr and exit code 2.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/log.h"
#include "common/zk/auth.h"
#include "coordinator/failure_detector.h"
#include "coordinator/planner.h"
#include "rangekv/status.h"

namespace rangekv::net {
class TlsContext;
}  // namespace rangekv::net

namespace rangekv::coordinator {

struct CoordinatorOptions {
  std::string zk;                   // connect string, passed to ZooKeeper as is
  std::string cluster{cluster::kDefaultCluster};  // R = /rangekv/<cluster>
  // Seeds R/config when it is missing. One range: splits by size and load
  // (kvnode) and owner balancing (--balance) spread it as it fills.
  cluster::ClusterConfig config{.rf = 3, .min_insync = 2, .initial_ranges = 1};
  std::string id;                   // "" until main() fills in <hostname>-<pid>
  std::chrono::milliseconds session_timeout{6000};
  std::chrono::milliseconds reconcile_period{5000};
  DetectorOptions detector{};
  std::chrono::milliseconds replace_after{30000};  // 0 = never
  bool balance = true;  // move owners to balance load (planner.h, PlanBalance)
  // Replica moves into one node at once (balance, drain or REPL move).
  int moves_per_node = kDefaultMovesPerNode;
  // A new cluster is bootstrapped once this many nodes are live (at least
  // rf), so nodes started together all get ranges at once; 0 = rf.
  int expect_nodes = 0;
  log::Level log_level = log::Level::kInfo;
  // --admin HOST:PORT: serve Prometheus metrics there; empty host = none.
  std::string admin_host;
  uint16_t admin_port = 0;
  // TLS files for the failure detector's pings of TLS nodes (all three or
  // none), and the context main() loads from them.
  std::string tls_ca, tls_cert, tls_key;
  std::shared_ptr<net::TlsContext> tls;
  // --zk-auth-file, and the credentials main() loads from it: with them the
  // coordinator authenticates and creates every znode with the cluster's
  // ACL (common/zk/auth.h).
  std::string zk_auth_file;
  std::optional<zk::AuthFile> zk_auth;
  // Called once when the coordinator cannot go on: ZooKeeper refused it
  // before any reconcile succeeded (its credentials lack the rights), or
  // refused its credentials. Set by main(), which then exits non-zero.
  std::function<void(const Status&)> on_fatal;
};

enum class ParseAction : uint8_t {
  kRun,       // options are complete; start the coordinator
  kShowHelp,  // --help was given; print CoordinatorUsage() and exit 0
};

struct ParsedCoordinatorArgs {
  ParseAction action = ParseAction::kRun;
  CoordinatorOptions options;
};

// Parses argv[1..] (args excludes the program name). Errors are BAD_REQUEST
// with a one-line message naming the flag, e.g. "unknown flag --foo" or
// "--rf: expected 1..16, got 0".
Result<ParsedCoordinatorArgs> ParseCoordinatorArgs(const std::vector<std::string>& args);

// The --help text (several lines, ends in '\n').
std::string CoordinatorUsage();

// "<hostname>-<pid>" reduced to the id alphabet (other bytes become '_'),
// at most 64 bytes. Reads the host name: not pure, called by main().
std::string DefaultCoordinatorId();

}  // namespace rangekv::coordinator
