// repl/cluster_backend.h — Backend over a cluster via rangekv::Client::Connect.
//
// Lifetime: owns its Client. The client follows the cluster map in
// ZooKeeper, so a node that restarts elsewhere (new address in its znode)
// is found again without restarting the shell; commands issued while its
// ranges have no live owner fail with UNAVAILABLE / RANGE_UNAVAILABLE after
// the request deadline.
//
// Progress (the hwm/lag columns of `ranges`): one question per live owner
// that owns at least one of the ranges, QueryOwnerRangeStatus, whose
// answer is kept only for ranges that node owns in the map just read. The
// owners are asked one after another, each bounded by kStatusTimeout, so a
// paused owner delays `ranges` by at most that much and shows "-".
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/protocol.h"
#include "repl/client_backend.h"

namespace rangekv::repl {

// The progress of the ranges a node reports as their owner (owner ==
// true), by range id: hwm as reported, and for each other replica, in the
// node's order, lag = last_seq - acked (0 if the replica is somehow ahead).
// Ranges the node only replicates are left out: their numbers are not the
// range's commit state.
std::map<uint64_t, RangeProgress> ProgressFromRangeStatus(
    const std::vector<proto::RangeStatus>& status);

class ClusterBackend : public ClientBackend {
 public:
  // UNAVAILABLE when ZooKeeper cannot be reached within
  // options.connect_timeout; BAD_REQUEST for a bad connect string or name.
  static Result<std::unique_ptr<ClusterBackend>> Connect(const std::string& zookeeper,
                                                         const std::string& cluster,
                                                         ClientOptions options);

  Result<std::vector<NodeStatus>> Nodes() override { return client_->Nodes(); }
  std::set<std::string> Draining() override;
  Result<std::vector<RangeStatus>> Ranges() override { return client_->Ranges(); }
  Result<RangeStatus> Locate(std::string_view key) override { return client_->Locate(key); }
  Result<ClusterIdentity> Identity() override { return ClusterIdentity{cluster_, zookeeper_}; }
  std::map<uint64_t, RangeProgress> Progress(const std::vector<RangeStatus>& ranges) override;
  Status Transfer(uint64_t range, std::string_view node) override;
  // Writes the move into the range's znode (compare-and-set, through a
  // ZooKeeper session of its own; repl/cluster_move.cc), then waits up to
  // kMoveTimeout for the coordinator and the owner to carry it out.
  Status Move(uint64_t range, std::string_view from, std::string_view to) override;
  // Marks the node (R/draining, after checking the others can hold rf
  // copies), then waits up to kDrainTimeout until no range names it.
  Status Decommission(std::string_view node) override;
  Status Recommission(std::string_view node) override;
  Status Split(std::string_view key) override;
  Status Merge(std::string_view key) override;

 private:
  ClusterBackend(std::string zookeeper, std::string cluster, std::string zk_auth_file,
                 std::unique_ptr<Client> client)
      : ClientBackend("cluster " + cluster + " via " + zookeeper, std::move(client)),
        zookeeper_(std::move(zookeeper)),
        cluster_(std::move(cluster)),
        zk_auth_file_(std::move(zk_auth_file)) {}

  // Asks the node owner_id at owner_address for the replication status of
  // the ranges it serves (request kind rangeStatus, common/protocol.h),
  // by range id. nullopt when it cannot say (unreachable, no answer within
  // kStatusTimeout, an error such as a standalone node's BAD_REQUEST).
  // One request over its own short-lived connection (repl/node_call.h).
  static constexpr std::chrono::milliseconds kStatusTimeout{1000};
  // A transfer waits for the target to catch up and for ZooKeeper; it is
  // asked again while the owner is not ready or this map is behind.
  static constexpr std::chrono::milliseconds kTransferTimeout{10000};
  // A move copies the range first (snapshot and log tail).
  static constexpr std::chrono::milliseconds kMoveTimeout{60000};
  // A drain moves every copy the node holds, one range at a time.
  static constexpr std::chrono::milliseconds kDrainTimeout{120000};
  // Until shown() holds in this client's map (or deadline: the change is
  // written, the map only slow to show it).
  Status AwaitMap(const std::function<Result<bool>()>& shown,
                  std::chrono::steady_clock::time_point deadline);
  static bool NotNow(const Status& st);
  std::optional<std::map<uint64_t, RangeProgress>> QueryOwnerRangeStatus(
      const std::string& owner_id, const std::string& owner_address);

  std::string zookeeper_;
  std::string cluster_;
  // The membership commands write the map: they need a writer's file.
  std::string zk_auth_file_;
};

}  // namespace rangekv::repl
