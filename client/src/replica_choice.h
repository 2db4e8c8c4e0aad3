// client/src/replica_choice.h — which node a cluster client sends a request to.
//
// | request                     | candidates, in the order tried              |
// |-----------------------------|---------------------------------------------|
// | write (put/delete/cas/batch)| the owner only                              |
// | linearizable get/scan, ping | the owner only                              |
// | stale get/scan              | the owner when live, then every other live  |
// |                             | replica in RangeInfo.replicas order         |
//
// "Live" means the node has a znode in the map (ClusterMap::live_nodes),
// which also gives its address. Stale candidates ignore the range's state
// and ownership: a replica holding the range may serve committed data while
// the owner is down and no new one is promoted yet, and a node that cannot
// answers with an error, after which the Router tries the next candidate.
// The owner goes first because it is the most current copy.
//
// I/O-free, so the choice is unit-tested on plain maps.
#pragma once

#include <string>
#include <vector>

#include "common/cluster_map.h"

namespace rangekv::client_internal {

struct ReplicaTarget {
  std::string node_id;
  std::string address;
  friend bool operator==(const ReplicaTarget&, const ReplicaTarget&) = default;
};

// Live nodes that may answer a stale read of r, in the order to try them
// (see above); each node at most once. Empty when none is live.
std::vector<ReplicaTarget> StaleReadTargets(const cluster::ClusterMap& map,
                                            const cluster::RangeInfo& r);

// The first of targets whose address is not in tried; nullptr when every
// one was tried.
const ReplicaTarget* NextUntried(const std::vector<ReplicaTarget>& targets,
                                 const std::vector<std::string>& tried);

}  // namespace rangekv::client_internal
