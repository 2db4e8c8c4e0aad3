// tests/client/smart_cluster.h — a hand-built rangekv cluster for the smart
// client tests: a real ZooKeeper (testutil/zk_server.h), the cluster map
// written by the test itself (config, ranges, node znodes), and real kvnode
// processes.
//
// Nodes run standalone (--standalone): each serves every key from its own
// data directory, so which node holds a key shows where the client sent it.
// The test publishes each node's address in nodes/<id> (an ephemeral znode
// of the test's own session), and may move it, delete it or point ranges
// elsewhere to drive the client's routing.
//
// Thread-safety: none; use from the test thread. Processes are ended by PID
// in the destructor.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/zk/session.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_server.h"
#include "tests/common/zk/zk_test_util.h"

namespace rangekv::testing {

class SmartCluster {
 public:
  explicit SmartCluster(std::string name = "smart") : name_(std::move(name)), paths_(name_) {}
  ~SmartCluster();

  // Starts ZooKeeper, opens the writer session, creates the cluster's
  // parents and config. False (with a message in error()) on failure.
  bool Start();
  const std::string& error() const { return error_; }
  std::string zk_connect() const { return zk_.connect_string(); }
  const std::string& name() const { return name_; }
  zk::Session& session() { return *session_; }
  // Stops / starts the ZooKeeper server (same port and data): sessions that
  // do not expire meanwhile survive, with their ephemeral znodes.
  void StopZooKeeper() { zk_.Stop(); }
  bool StartZooKeeper() { return zk_.Start(); }

  // Creates or overwrites ranges/<id>.
  bool WriteRange(const cluster::RangeInfo& r);
  // Two ranges: 1 = ["", split) owned by a, 2 = [split, +inf) owned by b.
  bool WriteTwoRanges(const std::string& a, const std::string& b, const std::string& split = "m");
  // Creates or overwrites nodes/<id> (ephemeral) with address.
  bool PublishNode(const std::string& id, const std::string& address);
  bool UnpublishNode(const std::string& id);

  // Starts a standalone kvnode for id on a fresh port (same data dir as any
  // earlier incarnation of id), waits until it answers, and publishes it.
  bool StartNode(const std::string& id);
  // Starts a kvnode in cluster mode (--zk, --id; same data dir as any
  // earlier incarnation of id) on a fresh port and waits until its own
  // nodes/<id> znode names that address.
  bool StartClusterNode(const std::string& id);
  // SIGKILL: the node's znode stays until its session expires.
  void KillNode(const std::string& id);
  // SIGTERM (SIGKILL after 5 s); leaves the znode alone.
  void StopNode(const std::string& id);
  // SIGSTOP, waiting until every thread stopped: the node keeps accepting
  // connections (kernel backlog) and answers nothing. A cluster-mode node's
  // session expires meanwhile; a standalone node's znode (the test's
  // session) stays. ResumeNode: SIGCONT.
  bool PauseNode(const std::string& id);
  void ResumeNode(const std::string& id);
  std::string address(const std::string& id) const { return nodes_.at(id).address; }
  std::string log(const std::string& id) const;

 private:
  struct Node {
    std::string address;
    Process process;
  };
  bool Put(const std::string& path, const std::string& data, zk::CreateMode mode);

  std::string name_;
  cluster::Paths paths_;
  TempDir dir_;
  ZkServer zk_;
  IoThread io_;
  std::unique_ptr<zk::Session> session_;
  std::map<std::string, Node> nodes_;
  std::string error_;
};

}  // namespace rangekv::testing
