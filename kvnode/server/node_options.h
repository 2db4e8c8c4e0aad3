// kvnode/server/node_options.h — the kvnode command line.
//
//   kvnode --id ID --listen HOST:PORT --zk CONNECT --data DIR [--cluster NAME]
//          [--admin HOST:PORT] [--advertise HOST:PORT] [--advertise-admin HOST:PORT]
//          [--session-timeout-ms N] [--lease-ms N]
//          [--isr-lag-ms N] [--replace DEAD-ID] [common options]
//   kvnode --standalone --listen HOST:PORT --data DIR [--id ID] [--admin HOST:PORT]
//          [common options]
//   common options: [--fsync always|batch|never] [--fsync-interval-ms N]
//                   [--io-threads N] [--log-level debug|info|warn|error]
//
// | flag                 | value                  | default                           |
// |----------------------|------------------------|-----------------------------------|
// | --standalone         | none                   | off (cluster mode, needs --zk)    |
// | --zk                 | host:port[,...][/chroot]| cluster mode: required           |
// | --cluster            | [A-Za-z0-9._-]{1,64}   | "default" (cluster mode only)     |
// | --session-timeout-ms | 1000..600000           | 6000 (cluster mode only; the      |
// |                      |                        | server clamps it to its limits)   |
// | --lease-ms           | 100..60000             | 600 (cluster mode only)           |
// | --isr-lag-ms         | 100..600000            | 2000 (cluster mode only)          |
// | --replace            | a node id              | none (cluster mode only)          |
// | --segment-bytes      | 4096..2^30             | 64 MiB: rotate WAL segments       |
// | --snapshot-after-bytes| 4096..2^40            | 256 MiB of log since the last     |
// |                      |                        | snapshot triggers the next        |
// | --keep-log-records   | 1..10^9                | 100000 records kept below a       |
// |                      |                        | snapshot for replica catch-up     |
// | --listen             | HOST:PORT              | required; port 0 = any free port  |
// | --data               | directory              | required; created with parents    |
// | --id                 | [A-Za-z0-9._-]{1,64}   | cluster: required; standalone:    |
// |                      |                        | the data dir's, else "standalone" |
// | --admin              | HOST:PORT              | none: no HTTP endpoint; else      |
// |                      |                        | GET /metrics there (port 0 = any) |
// | --advertise          | HOST:PORT, port > 0    | the bound --listen address (a     |
// |                      |                        | wildcard host: this host's name); |
// |                      |                        | what the node znode tells others  |
// | --advertise-admin    | HOST:PORT, port > 0    | as --advertise, for --admin       |
// | --tls-ca             | file (PEM)             | none: plaintext. With --tls-cert  |
// | --tls-cert           | file (PEM)             | and --tls-key (all three or none):|
// | --tls-key            | file (PEM, 0600)       | TLS with mutual certificates for  |
// |                      |                        | clients and other nodes; SIGHUP   |
// |                      |                        | reads the files again             |
// | --fsync              | always, batch, never   | batch                             |
// | --fsync-interval-ms  | 1..60000               | 10                                |
// | --io-threads         | 1..256                 | std::thread::hardware_concurrency |
// | --log-level          | debug, info, warn, err | info                              |
// | --help, -h           | none                   | print usage, exit 0               |
//
// Values may follow as the next argument or after '=' ("--listen=h:p"). HOST
// may be a name, an IPv4 address or a bracketed IPv6 address ("[::1]:7000").
// The --zk string is checked for syntax here (kBadRequest, exit 2); whether
// its hosts resolve or answer is found out at run time, with retries.
//
// Parsing is pure (no I/O, no exits) so it can be unit tested; main() turns
// an error into one line on stderr and exit code 2.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cluster_map.h"
#include "common/log.h"
#include "common/types.h"
#include "kvnode/storage/range_store.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

enum class NodeMode : uint8_t {
  kStandalone,  // one range covering the whole key space, no ZooKeeper
  kCluster,     // ranges assigned by the coordinator through ZooKeeper
};

struct HostPort {
  std::string host;  // without IPv6 brackets
  uint16_t port = 0;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

inline constexpr std::string_view kDefaultClusterName = cluster::kDefaultCluster;
inline constexpr std::chrono::milliseconds kDefaultSessionTimeout{6000};

struct NodeOptions {
  NodeMode mode = NodeMode::kCluster;
  std::string zk;                                  // cluster mode only
  std::string cluster{kDefaultClusterName};        // cluster mode only
  std::chrono::milliseconds session_timeout = kDefaultSessionTimeout;  // cluster mode only
  std::optional<HostPort> admin;                   // metrics endpoint; none without --admin
  HostPort listen;
  // What the node znode says others reach us at (NAT, a wildcard listen
  // address, a name); nullopt: derived from the bound address.
  std::optional<HostPort> advertise;
  // TLS files (common/net/tls.h): all three or none.
  std::string tls_ca, tls_cert, tls_key;
  // ZooKeeper credentials file (common/zk/auth.h); cluster mode only.
  std::string zk_auth_file;
  std::optional<HostPort> advertise_admin;
  std::string data_dir;
  std::optional<NodeId> id;  // nullopt: adopt the data dir's, or the default
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  std::chrono::milliseconds fsync_interval{10};
  int io_threads = 0;  // 0: one per hardware thread
  std::chrono::milliseconds lease{600};      // cluster mode only
  std::chrono::milliseconds isr_lag{2000};   // cluster mode only
  std::optional<NodeId> replaces;            // cluster mode only: --replace
  size_t segment_bytes = 0;                  // 0: the store's default (64 MiB)
  size_t snapshot_after_bytes = 0;           // 0: the store's default (256 MiB)
  uint64_t keep_log_records = 0;             // 0: the store's default (100000)
  // Splits the owner makes by itself (cluster mode only; 0: never).
  uint64_t split_bytes = 64u << 20;
  uint32_t split_qps = 2000;
  std::chrono::milliseconds split_load_window{10000};
  // A snapshot copy from an owner reads at most this many bytes a second
  // (--move-rate, MiB; cluster mode only).
  uint64_t move_rate_bytes = uint64_t{100} << 20;
  // Neighbours small and cold for this long merge (ReplicationOptions); 0: never.
  std::chrono::milliseconds merge_delay{300000};
  log::Level log_level = log::Level::kInfo;
};

enum class ParseAction : uint8_t {
  kRun,       // options are complete; start the node
  kShowHelp,  // --help was given; print Usage() and exit 0
};

struct ParsedArgs {
  ParseAction action = ParseAction::kRun;
  NodeOptions options;
};

// Parses argv[1..] (args excludes the program name). Errors are BAD_REQUEST
// with a one-line message naming the flag, e.g. "unknown flag --foo".
// Checks the values and the flags each mode requires; does not touch the
// file system or the network.
Result<ParsedArgs> ParseNodeArgs(const std::vector<std::string>& args);

// "HOST:PORT" -> HostPort. BAD_REQUEST for a missing port, a port outside
// 0..65535, an empty host or unbalanced IPv6 brackets.
Result<HostPort> ParseHostPort(std::string_view s);

// "HOST:PORT", bracketing an IPv6 host.
std::string FormatHostPort(const HostPort& hp);
// "0.0.0.0" or "::": bound to every address, dialable at none.
bool IsWildcardHost(std::string_view host);

// True for 1..64 characters of [A-Za-z0-9._-]: node ids become file
// contents and ZooKeeper znode names.
bool IsValidNodeId(std::string_view id);

// The multi-line usage text printed by --help.
std::string NodeUsage();

}  // namespace rangekv::kvnode
