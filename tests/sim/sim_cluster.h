// tests/sim/sim_cluster.h — what every simulated process of one run
// shares: the world, the disk, ZooKeeper, the network, the cluster's
// parameters, and the hooks through which the checkers observe it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/log.h"
#include "coordinator/failure_detector.h"
#include "kvnode/replication/replicator.h"
#include "kvnode/storage/range_store.h"
#include "tests/sim/sim_fs.h"
#include "tests/sim/sim_net.h"
#include "tests/sim/sim_zk.h"
#include "tests/sim/world.h"

namespace rangekv::sim {

struct ClusterParams {
  int nodes = 4;
  int coordinators = 2;
  int rf = 3;
  int min_insync = 2;
  int ranges = 3;
  kvnode::FsyncPolicy fsync = kvnode::FsyncPolicy::kAlways;
  Nanos session_timeout = 2 * kSecond;
  kvnode::ReplicationOptions replication{};
  // Small so that snapshots, segment rotation and snapshot catch-up happen
  // within a short run.
  size_t segment_bytes = 16 << 10;
  size_t snapshot_after_bytes = 24 << 10;
  uint64_t keep_log_records = 40;
  // The coordinator balances owners (by ranges owned: simulated nodes
  // report no load).
  bool balance = false;
  // kvcoord's failure detector (its defaults: on).
  coordinator::DetectorOptions detector{};
};

// What the checkers hear about as it happens.
struct Observer {
  // A node served a linearizable read of `range` as owner at `epoch`.
  std::function<void(const std::string& node, RangeId range, Epoch epoch)> on_read;
};

class SimNode;
class SimCoordinator;

class Cluster {
 public:
  Cluster(World& world, ClusterParams params);
  ~Cluster();

  World& world;
  const ClusterParams params;
  FileSystemSim fs;
  ZkSim zk;
  Network net;
  const cluster::Paths paths;
  Observer observer;

  std::vector<std::unique_ptr<SimNode>> nodes;
  std::vector<std::unique_ptr<SimCoordinator>> coordinators;

  // Failpoints: called with the node's id at each step of a split, a
  // merge, a transfer or a replica move it takes (ReplicationOptions::step_hook), inside that
  // node's event; a test that crashes something there schedules it (World::After with no delay), so
  // the crash lands right after the step.
  std::function<void(const std::string& node, std::string_view step, RangeId range)> on_step;

  SimNode* Node(const std::string& id);
  // The map as ZooKeeper holds it now (no latency; for checkers and set-up).
  cluster::ClusterMap MapNow() const;
  // Asks the owner of `range` (as the map shows it now) to hand it to
  // `target`, as an operator would (protocol.capnp "transfer"); done gets
  // the answer (OK: ZooKeeper names target owner).
  void Transfer(RangeId range, const std::string& target, std::function<void(Status)> done);
  // Asks the owner of the range holding `key` to split it there
  // (protocol.capnp "split"); done gets the answer (OK: ZooKeeper holds
  // the new map).
  void Split(const std::string& key, std::function<void(Status)> done);
  // Asks the owner of the range holding `key` to merge it with the range
  // right of it (protocol.capnp "merge"); done gets the answer.
  void Merge(const std::string& key, std::function<void(Status)> done);
  // Moves range's replica on `from` to `to` as REPL `move` does: `to`
  // joins the replicas with move_replica from>to (common/cluster_map.h),
  // and the coordinator and the owner do the rest. done gets OK once the
  // map shows `to` in the ISR and `from` gone, an error when the move
  // cannot start or was dropped, TIMEOUT after `within`.
  void Move(RangeId range, const std::string& from, const std::string& to, Nanos within,
            std::function<void(Status)> done);

 private:
  void WatchMove(RangeId range, const std::string& from, const std::string& to, Nanos deadline,
                 std::function<void(Status)> done);
  ProcessRef operator_ = std::make_shared<Process>(Process{"operator"});
};

// Builds a map from znodes (what a full re-read returns), skipping records
// that do not decode; *self_owner: the session owning R/nodes/<self>.
cluster::ClusterMap MapFromZnodes(const cluster::Paths& paths,
                                  const std::map<std::string, Znode>& znodes,
                                  const std::string& self = "", SessionId* self_owner = nullptr);

// Log lines carry the simulated time and the process whose event runs.
void InstallSimLogPrefix(World& world);

}  // namespace rangekv::sim
