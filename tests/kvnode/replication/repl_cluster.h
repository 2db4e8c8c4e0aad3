// tests/kvnode/replication/repl_cluster.h — a whole replicated rangekv cluster of
// real processes on 127.0.0.1 (or each on a host of its own, options.hosts),
// for the replication and fault tests.
//
// A ReplCluster owns:
//   - one standalone ZooKeeper (tests/testutil/zk_server.h), or with
//     options.hosts the hosts (tests/testutil/host_net.h) and a 3-server
//     ensemble on them (tests/testutil/zk_ensemble.h);
//   - one kvcoord (coordinator/kvcoord) with --rf/--ranges/--min-insync and
//     any extra flags the test gives;
//   - N kvnode processes in cluster mode, ids "n1".."nN" unless named, each
//     with its own port (FreePort at every start), data directory and log
//     file (appended across restarts, so one file tells a node's story);
//   - a zk::Session of its own to read the cluster map (ReadMap);
//   - lazily, one smart client (rangekv::Client::Connect) for the tests.
//
// Node lifecycle: StartNode / RestartNode wait for the node's "serving on"
// line (printed after it joined the cluster); KillNode is SIGKILL (its
// ZooKeeper session then expires after the node's session timeout, which is
// what drives a failover); StopNode is SIGTERM; PauseNode/ResumeNode are
// SIGSTOP/SIGCONT. WipeNode deletes a stopped node's data directory.
//
// Waits: every Wait* polls with a deadline and returns the state it saw
// last, so an assertion on its result can say what was wrong. A range is
// "settled" when it has a live owner, is active, and its ISR equals its
// replicas with rf members, all live, and the owner's node reports itself
// owner of it at the map's epoch (RangeStatus).
//
// Node status: RangeStatus(id) asks one node for every range it holds
// (proto::OpKind::kRangeStatus); StaleGet sends a stale get straight to one
// node. Both use one cached connection per node (reopened after an error;
// TLS with the client certificate when options.tls), so they are for the
// test thread only.
//
// Cleanup: the destructor ends every process it started, by PID (the
// kvnodes first, then kvcoord, then ZooKeeper). When the current test has
// failed, or RANGEKV_PRINT_LOGS=1, it prints the tail of every process log
// to stderr; with RANGEKV_KEEP_LOGS=<dir> it also copies the logs there.
//
// Thread-safety: none except client(), which is created on the test thread
// and then shared (rangekv::Client is thread-safe).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/protocol.h"
#include "common/zk/session.h"
#include "rangekv/client.h"
#include "rangekv/status.h"
#include "tests/common/zk/zk_test_util.h"
#include "tests/kvnode/server/wire_client.h"
#include "tests/testutil/host_net.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_ensemble.h"
#include "tests/testutil/zk_server.h"

namespace rangekv::testing {

using ReplClock = std::chrono::steady_clock;

struct ReplClusterOptions {
  int nodes = 3;
  int rf = 3;
  int ranges = 4;
  int min_insync = 0;  // 0: kvcoord's default (2, clamped to rf)
  // Every kvnode's --session-timeout-ms: bounds how long a killed node
  // keeps its znode, so it is the floor of every failover window.
  std::chrono::milliseconds node_session_timeout{2500};
  std::chrono::milliseconds coord_session_timeout{2000};
  std::chrono::milliseconds lease{0};    // 0: kvnode's default --lease-ms
  std::chrono::milliseconds isr_lag{0};  // 0: kvnode's default --isr-lag-ms
  std::vector<std::string> coord_flags;  // appended to kvcoord's argv
  std::vector<std::string> node_flags;   // appended to every kvnode's argv
  // Every process on a host of its own (tests/testutil/host_net.h): a
  // 3-server ZooKeeper ensemble on zk1..zk3 (every program given all three
  // and the chroot kHostsChroot), kvcoord on c1, each node on the
  // host named after it (port 7000 there); the test and its clients are
  // HostNet::kTestHost. Needs HostNet::Unavailable() to be "".
  bool hosts = false;
  // With hosts: joined by HostNet's emulated links (SetDelay, SetLoss)
  // rather than a bridge.
  bool emulated_links = false;
  // Mutual TLS on every connection: Start makes a test PKI in the
  // cluster's directory (scripts/make-test-certs: needs the openssl
  // command, see OpensslUnavailable), kvcoord and every kvnode get
  // --tls-ca/--tls-cert/--tls-key with the node certificate, and the
  // harness' own clients (client(), NewClient(), CallNode, StaleGet and
  // the ClientTlsFlags of a tool) use the client certificate. The
  // certificates name 127.0.0.1 only, so not with hosts.
  bool tls = false;
};

class ReplCluster {
 public:
  static constexpr std::chrono::milliseconds kStartTimeout{30000};

  // name: the cluster name (and prefix of the coordinator's id).
  explicit ReplCluster(std::string name = "repl");
  ~ReplCluster();
  ReplCluster(const ReplCluster&) = delete;
  ReplCluster& operator=(const ReplCluster&) = delete;

  // ZooKeeper, kvcoord, then options.nodes kvnodes "n1".."nN". Returns once
  // every node serves (not once the ranges are settled: see WaitAllActive).
  Status Start(const ReplClusterOptions& options);
  Status Start(int n_nodes, int rf, int ranges, std::vector<std::string> coord_flags = {});

  // ---- node processes ----
  // A node not started before: fresh data directory. replaces: --replace.
  Status StartNewNode(const std::string& id, std::optional<std::string> replaces = std::nullopt,
                      std::vector<std::string> extra_flags = {});
  // SIGKILL and reap; the node's znode stays until its session expires.
  void KillNode(const std::string& id);
  // SIGTERM; returns the exit status as Process::Stop does.
  int StopNode(const std::string& id);
  // Starts a stopped or killed node again with its data directory (and its
  // --replace, if any) on a new free port.
  Status RestartNode(const std::string& id);
  // Deletes a node's data directory (the node must not run).
  void WipeNode(const std::string& id);
  void PauseNode(const std::string& id);   // SIGSTOP, waits until stopped
  void ResumeNode(const std::string& id);  // SIGCONT
  bool Running(const std::string& id);
  std::vector<std::string> NodeIds() const;  // every node ever started, by id
  int Port(const std::string& id) const;
  std::string Address(const std::string& id) const;
  std::string DataDir(const std::string& id) const;
  std::string NodeLog(const std::string& id) const;
  bool NodeLogHas(const std::string& id, const std::string& text) const;
  std::string CoordLog() const;

  // ---- the cluster map ----
  Result<cluster::ClusterMap> ReadMap();
  Result<cluster::RangeInfo> ReadRange(RangeId id);

  // Every one of options.ranges ranges settled (see the header). The last
  // map read is put in *last when given (for failure messages).
  bool WaitAllActive(std::chrono::milliseconds timeout, cluster::ClusterMap* last = nullptr);
  // Until the range has a live owner other than old_owner and is active.
  // Returns the range as last read (check its owner).
  cluster::RangeInfo WaitOwnerChange(RangeId range, const std::string& old_owner,
                                     std::chrono::milliseconds timeout);
  // Until pred(range) holds; the range as last read, or nullopt on timeout
  // (then *last, when given, is the last read).
  std::optional<cluster::RangeInfo> WaitRange(
      RangeId range, const std::function<bool(const cluster::RangeInfo&)>& pred,
      std::chrono::milliseconds timeout, cluster::RangeInfo* last = nullptr);
  // WaitRange on the ISR only.
  std::optional<cluster::RangeInfo> WaitIsr(
      RangeId range, const std::function<bool(const std::vector<NodeId>&)>& pred,
      std::chrono::milliseconds timeout, cluster::RangeInfo* last = nullptr);

  // ---- talking to one node ----
  Result<proto::Response> CallNode(const std::string& id, const proto::Request& req,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Every range the node holds, as it reports them.
  Result<std::vector<proto::RangeStatus>> RangeStatus(const std::string& id);
  // One range's report, nullopt when the node does not hold it (or errs).
  std::optional<proto::RangeStatus> RangeStatusOf(const std::string& id, RangeId range);
  // A stale get (Request.consistency = stale) of key in range, answered by
  // this node alone: kFound / kNotFound / kError.
  Result<proto::Response> StaleGet(const std::string& id, RangeId range, const std::string& key);

  // The smart client (Connect through ZooKeeper), created on first use with
  // request_timeout; later calls return the same client.
  Client& client(std::chrono::milliseconds request_timeout = std::chrono::milliseconds(10000));
  // A new smart client the caller owns (e.g. one per thread of its own).
  Result<std::unique_ptr<Client>> NewClient(
      std::chrono::milliseconds request_timeout = std::chrono::milliseconds(10000));
  // With options.tls: the flags a client tool (kvrepl) needs to reach the
  // cluster ("--tls-ca", ca, "--tls-cert", client cert, "--tls-key", key);
  // else none.
  std::vector<std::string> ClientTlsFlags() const;

  const std::string& cluster_name() const { return name_; }
  std::string zk_connect() const;
  const ReplClusterOptions& options() const { return options_; }
  ZkServer& zk() { return zk_; }
  // With options.hosts: the hosts and the ensemble's hosts; else nullptr and
  // none.
  HostNet* net() { return net_.get(); }
  ZkEnsemble* ensemble() { return ensemble_.get(); }
  std::vector<std::string> ZkHosts() const;
  static constexpr const char* kCoordHost = "c1";

  // Prints the tail (max_bytes) of every log to stderr.
  void DumpLogs(size_t max_bytes = 48 * 1024) const;

 private:
  struct Node {
    std::string id;
    std::string data_dir;
    std::string log_path;
    std::optional<std::string> replaces;
    std::vector<std::string> extra_flags;
    int port = 0;
    Process process;
    std::optional<WireClient> conn;
  };
  Status LaunchNode(Node& n);
  Node& GetNode(const std::string& id);
  const Node& GetNode(const std::string& id) const;
  bool Settled(const cluster::ClusterMap& map);

  // On hosts every program gets the ensemble's connect string with this
  // chroot, so a multi-server connect string with a chroot is what the
  // partition tests run on.
  static constexpr const char* kHostsChroot = "/rangekv-hosts";
  Status CreateChroot();
  // The host's address: 127.0.0.1, or the node's own host's.
  std::string HostOf(const std::string& id) const;
  // With options.tls: --tls-ca/--tls-cert/--tls-key with the certificate
  // who ("node" for kvcoord and the kvnodes, "client" for tools); else none.
  std::vector<std::string> TlsFlags(const std::string& who) const;
  std::string TlsFile(const std::string& name) const { return dir_.Sub("tls/" + name); }

  std::string name_;
  ReplClusterOptions options_;
  TempDir dir_;
  // Declared before everything that runs in its namespaces, so it is
  // destroyed after them.
  std::unique_ptr<HostNet> net_;
  std::unique_ptr<ZkEnsemble> ensemble_;
  ZkServer zk_;
  IoThread io_;
  std::unique_ptr<zk::Session> session_;
  cluster::Paths paths_;
  Process coord_;
  std::string coord_log_;
  std::map<std::string, Node> nodes_;
  std::unique_ptr<Client> client_;
};

// ---- helpers for the tests ----

// The i-th key of a spread that covers every range of an InitialSplit: the
// first byte walks the whole byte space (odd stride), the rest names i.
std::string SpreadKey(int i, const std::string& tag = "k");

// Milliseconds since t.
int64_t MsSince(ReplClock::time_point t);

// Puts key=value through the client, retrying any error but the final ones
// (BAD_REQUEST, TOO_LARGE, CROSS_RANGE, CAS_FAILED) until timeout. Returns
// the version of the successful put.
Result<uint64_t> PutRetry(Client& c, const std::string& key, const std::string& value,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

// "n1,n2" for messages.
std::string Join(const std::vector<NodeId>& ids);
bool Contains(const std::vector<NodeId>& ids, const std::string& id);
std::string Describe(const cluster::RangeInfo& r);
std::string Describe(const proto::RangeStatus& s);

}  // namespace rangekv::testing
