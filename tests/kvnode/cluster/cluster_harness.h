// tests/kvnode/cluster/cluster_harness.h — helpers for tests that run kvnode
// processes in cluster mode against a real ZooKeeper (tests/testutil/zk_server.h).
//
// KvnodeProc: one kvnode process (cluster or standalone mode) on 127.0.0.1
//   with its own log file; Start waits for its "serving on" line.
// ClusterAdmin: what the coordinator would do, done by hand through a
//   zk::Session: write the config and range znodes, move a range by CAS,
//   read node znodes, write garbage.
// HttpGet / MetricValue: a tiny HTTP/1.0 client and a Prometheus text
//   parser for the metrics endpoint.
//
// Every wait has a deadline. Thread-safety: none; use from the test thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/protocol.h"
#include "common/zk/session.h"
#include "tests/kvnode/server/wire_client.h"
#include "tests/testutil/testutil.h"
#include "tests/common/zk/zk_test_util.h"

namespace rangekv::testing {

inline constexpr std::chrono::milliseconds kProcTimeout{20000};

class KvnodeProc {
 public:
  struct Options {
    std::string id;
    std::string data_dir;
    std::string zk;       // "" with standalone
    std::string cluster;  // "" for the default
    bool standalone = false;
    int port = 0;                // 0: a FreePort()
    int admin_port = 0;          // 0: no --admin
    int session_timeout_ms = 0;  // 0: the default
    std::vector<std::string> extra_args{};
  };

  KvnodeProc() = default;
  KvnodeProc(KvnodeProc&&) = default;
  KvnodeProc& operator=(KvnodeProc&&) = default;

  // Starts the process (log at log_path, appended) and waits until it logs
  // "serving on". False (with the log in *why) if it exited or timed out.
  bool Start(const Options& o, const std::string& log_path, std::string* why);
  // Starts without waiting (for processes expected to fail).
  void Launch(const Options& o, const std::string& log_path);

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Process& process() { return process_; }
  std::string log() const { return ReadFile(log_path_); }
  // True once the log contains text.
  bool LogHas(const std::string& text) const { return log().find(text) != std::string::npos; }
  size_t LogCount(const std::string& text) const;

  // One request on a fresh connection; UNAVAILABLE if the connect fails.
  Result<proto::Response> Call(const proto::Request& req);

 private:
  std::vector<std::string> Argv(const Options& o);
  Process process_;
  std::string log_path_;
  int port_ = 0;
};

class ClusterAdmin {
 public:
  ClusterAdmin(const std::string& connect, const std::string& cluster);
  ~ClusterAdmin();
  // False when the session did not connect.
  bool connected() const { return session_ != nullptr; }
  const cluster::Paths& paths() const { return paths_; }
  zk::Session& session() { return *session_; }

  // Creates /rangekv, R, R/config, R/nodes, R/ranges and one znode per range.
  Status Bootstrap(const cluster::ClusterConfig& config,
                   const std::vector<cluster::RangeInfo>& ranges);
  // The decoded range znode and its version.
  Result<std::pair<cluster::RangeInfo, zk::ZnodeVersion>> GetRange(RangeId id);
  // CAS: owner := to, epoch + 1, replicas/isr := {to}. Returns the new info.
  Result<cluster::RangeInfo> MoveRange(RangeId id, const NodeId& to);
  // Rewrites a range znode as is (CAS against its current version).
  Status UpdateRange(const cluster::RangeInfo& info);
  // The node znode: decoded info and its ephemeral owner; nullopt if absent.
  struct NodeZnode {
    cluster::NodeInfo info;
    int64_t ephemeral_owner = 0;
  };
  Result<std::optional<NodeZnode>> GetNode(const NodeId& id);
  Status SetRaw(const std::string& path, const std::string& data);

 private:
  IoThread io_;
  cluster::Paths paths_;
  std::unique_ptr<zk::Session> session_;
};

// Four ranges of InitialSplit(4), ids 1..4, owners in turn, epoch 5.
std::vector<cluster::RangeInfo> FourRanges(const std::vector<NodeId>& owners);
// A key inside range i (1-based) of FourRanges.
std::string KeyIn(int range, const std::string& suffix = "k");

struct HttpReply {
  int status = 0;
  std::string body;
};
// GET path from 127.0.0.1:port over HTTP/1.0; nullopt on any error or timeout.
std::optional<HttpReply> HttpGet(int port, const std::string& path,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(5));
// The value of the sample `series` (e.g. "x_total{op=\"get\",result=\"OK\"}")
// in Prometheus text; nullopt if absent. Label order as the server prints.
std::optional<double> MetricValue(const std::string& text, const std::string& series);

}  // namespace rangekv::testing
