#include "client/src/replica_choice.h"

#include <algorithm>

namespace rangekv::client_internal {

std::vector<ReplicaTarget> StaleReadTargets(const cluster::ClusterMap& map,
                                            const cluster::RangeInfo& r) {
  std::vector<ReplicaTarget> out;
  auto add = [&](const NodeId& id) {
    const cluster::NodeInfo* node = map.Node(id);
    if (node == nullptr || node->address.empty()) return;
    for (const auto& t : out) {
      if (t.node_id == id.str()) return;
    }
    out.push_back(ReplicaTarget{id.str(), node->address});
  };
  if (r.owner) add(*r.owner);
  for (const NodeId& id : r.replicas) add(id);
  return out;
}

const ReplicaTarget* NextUntried(const std::vector<ReplicaTarget>& targets,
                                 const std::vector<std::string>& tried) {
  for (const auto& t : targets) {
    if (std::find(tried.begin(), tried.end(), t.address) == tried.end()) return &t;
  }
  return nullptr;
}

}  // namespace rangekv::client_internal
