// Snapshot builders shared by the planner unit tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "coordinator/planner.h"

namespace rangekv::coordinator::planner_test {

inline cluster::ClusterConfig Config(int rf, int ranges) {
  cluster::ClusterConfig c;
  c.rf = rf;
  c.min_insync = std::min(2, rf);
  c.initial_ranges = ranges;
  return c;
}

inline std::map<NodeId, cluster::NodeInfo> Live(const std::vector<std::string>& ids) {
  std::map<NodeId, cluster::NodeInfo> out;
  for (const auto& id : ids) {
    cluster::NodeInfo n;
    n.id = NodeId(id);
    n.address = "127.0.0.1:7000";
    out.emplace(n.id, n);
  }
  return out;
}

inline std::vector<NodeId> Ids(const std::vector<std::string>& ids) {
  std::vector<NodeId> out;
  for (const auto& id : ids) out.emplace_back(id);
  return out;
}

// A snapshot of a freshly bootstrapped cluster: every znode at version 0.
inline ClusterSnapshot Bootstrapped(const cluster::ClusterConfig& config,
                                    const std::vector<std::string>& nodes) {
  ClusterSnapshot s;
  s.config = config;
  s.live_nodes = Live(nodes);
  for (cluster::RangeInfo& r : PlanBootstrap(config, Ids(nodes))) {
    s.ranges[r.id] = RangeZnode{zk::ZnodeVersion(0), r, ""};
  }
  return s;
}

// Applies the writes of a plan to the snapshot, as ZooKeeper would.
inline void Apply(const Plan& plan, ClusterSnapshot& s) {
  for (const RangeWrite& w : plan.writes) {
    RangeZnode& z = s.ranges.at(w.record.id);
    ASSERT_EQ(z.version, w.expected_version);
    z = RangeZnode{zk::ZnodeVersion(z.version.value() + 1), w.record, ""};
  }
}

// The invariants of every range record the planner writes (planner.h rule
// 10): owner in replicas and in isr, isr a subset of replicas, no
// duplicates.
inline ::testing::AssertionResult Consistent(const cluster::RangeInfo& r) {
  auto has = [](const std::vector<NodeId>& v, const NodeId& id) {
    return std::find(v.begin(), v.end(), id) != v.end();
  };
  auto unique = [](std::vector<NodeId> v) {
    std::sort(v.begin(), v.end());
    return std::adjacent_find(v.begin(), v.end()) == v.end();
  };
  if (!unique(r.replicas) || !unique(r.isr)) {
    return ::testing::AssertionFailure() << "range " << r.id.value() << ": duplicate members";
  }
  if (r.owner && (!has(r.replicas, *r.owner) || !has(r.isr, *r.owner))) {
    return ::testing::AssertionFailure()
           << "range " << r.id.value() << ": owner " << r.owner->str() << " not in replicas/isr";
  }
  for (const NodeId& id : r.isr) {
    if (!has(r.replicas, id)) {
      return ::testing::AssertionFailure()
             << "range " << r.id.value() << ": isr member " << id.str() << " not a replica";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace rangekv::coordinator::planner_test
