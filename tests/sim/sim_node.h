// tests/sim/sim_node.h — one kvnode of the simulated cluster, across its
// incarnations (process lives).
//
// Each incarnation runs the real kvnode code — Node (data directory,
// routing, stores), its Replicator (Leader, Follower), the RequestHandler
// that every request goes through — on the simulation's Env, disk and
// network. What kvnode/cluster/cluster_member.cc does against ZooKeeper is
// done here against the simulated one, by the same rules:
//   - register R/nodes/<id> (ephemeral) with this data directory's
//     incarnation; a znode left by our own previous life is replaced,
//     another incarnation's is waited for (a wiped disk restarted quickly)
//     and taken for a live duplicate (exit) after twice the session timeout;
//   - re-read the whole map on every watch notification, every second, and
//     after each ISR change, then Node::Apply; like MapReader, the names
//     of the nodes and ranges first and their data one round trip later,
//     so a change in between is seen in part (a split's new range missing
//     while its parent already shows the narrowed bounds); re-register when our znode
//     is gone or belongs to another session;
//   - an ISR change the replicator asks for is a get and a compare-and-set
//     of the range znode (kvnode::ApplyIsrChange decides it);
//   - suspend serving once ZooKeeper has not answered for the session
//     timeout (two thirds until the C client notices, then a third);
//     a new session after expiry, then register and re-read.
// Faults: kill -9, power loss, SIGTERM, SIGSTOP for a while; while down,
// an empty data directory or a corrupt range file.
#pragma once

#include <deque>
#include <memory>
#include <set>
#include <string>

#include "kvnode/server/node.h"
#include "kvnode/server/request_handler.h"
#include "tests/sim/sim_cluster.h"

namespace rangekv::sim {

class SimNode {
 public:
  SimNode(Cluster& cluster, std::string id);
  ~SimNode();
  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  const std::string& id() const { return id_; }
  std::string data_dir() const { return "/" + id_ + "/data"; }
  bool up() const { return inc_ != nullptr; }
  bool paused() const;
  // The running incarnation's Node, or nullptr.
  kvnode::Node* node() const;

  void Start();
  void Kill();       // kill -9: what was written stays (page cache)
  void PowerLoss();  // kill -9 and lose what was not durable
  void Terminate();  // SIGTERM: leave the cluster first, close the stores
  void Pause(Nanos for_how_long);
  // While down only.
  void WipeDisk();
  bool CorruptRange();
  int incarnations() const { return started_; }
  // Ranges this node copied again from their owner (a lost or damaged
  // copy), over all its incarnations: without a disk fault, a bug.
  int copies_rebuilt() const { return copies_rebuilt_; }

 private:
  struct Incarnation;
  void Crash(bool power_loss);
  void Handle(proto::Request req, Network::Reply reply);
  void Register();
  void OnRegistered(ZkReply r);
  void OnRegisteredNow();
  void TriggerReconcile();
  void Reconcile();
  void ReadListed(std::shared_ptr<std::set<std::string>> names);
  void EndReconcile(const ZkReply& r, std::pair<cluster::ClusterMap, SessionId>* out);
  void ApplyMap(const cluster::ClusterMap& map);
  void ApplyNews(cluster::ClusterMap::Written news, int retries);
  void MemberTick();
  void NextIsrChange();
  void SyncSuspect();
  void SyncLostOwners();
  void PublishOpened();
  // Writes our node znode as `updated` (and keeps it as inc_->self once
  // ZooKeeper took it).
  void PublishSelf(cluster::NodeInfo updated);
  void Exit(const std::string& why);

  Cluster& c_;
  const std::string id_;
  std::unique_ptr<Incarnation> inc_;
  int started_ = 0;
  int boots_ = 1;  // the simulated machine's boot count (power losses + 1)
  int copies_rebuilt_ = 0;
};

}  // namespace rangekv::sim
