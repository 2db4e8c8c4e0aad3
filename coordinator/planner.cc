#include "coordinator/planner.h"

#include <algorithm>
#include <tuple>

namespace rangekv::coordinator {
namespace {

using cluster::RangeInfo;
using cluster::RangeState;

// Ranges owned and replicated per live node, updated as the plan assigns
// more, so that several choices in one plan spread out.
class Loads {
 public:
  Loads(const std::map<NodeId, cluster::NodeInfo>& live,
        const std::map<RangeId, RangeZnode>& ranges) {
    for (const auto& [id, node] : live) load_[id];
    for (const auto& [id, z] : ranges) {
      if (!z.info) continue;
      if (z.info->owner && live.count(*z.info->owner)) ++load_[*z.info->owner].owned;
      for (const NodeId& r : z.info->replicas) {
        if (live.count(r)) ++load_[r].replicas;
      }
    }
  }

  bool Live(const NodeId& id) const { return load_.count(id) != 0; }

  // The least-loaded live node among `candidates` (all live nodes when
  // candidates is nullptr); nullopt if none is live.
  std::optional<NodeId> PickOwner(const std::vector<NodeId>* candidates) const {
    std::optional<NodeId> best;
    auto key = [&](const NodeId& id) {
      const Load& l = load_.at(id);
      return std::tie(l.owned, l.replicas, id);
    };
    for (const auto& [id, load] : load_) {
      if (candidates &&
          std::find(candidates->begin(), candidates->end(), id) == candidates->end()) {
        continue;
      }
      if (!best || key(id) < key(*best)) best = id;
    }
    return best;
  }

  // `replicas` with `owner` first (added if missing), then the least
  // replicated live nodes not yet in it, until rf entries (or no more nodes).
  std::vector<NodeId> FillReplicas(const NodeId& owner, std::vector<NodeId> replicas, int rf) {
    auto has = [&](const NodeId& id) {
      return std::find(replicas.begin(), replicas.end(), id) != replicas.end();
    };
    if (!has(owner)) {
      replicas.insert(replicas.begin(), owner);
      ++load_[owner].replicas;
    }
    while (static_cast<int>(replicas.size()) < rf) {
      std::optional<NodeId> best;
      for (const auto& [id, load] : load_) {
        if (has(id)) continue;
        if (!best || std::tie(load.replicas, load.owned, id) <
                         std::tie(load_[*best].replicas, load_[*best].owned, *best)) {
          best = id;
        }
      }
      if (!best) break;
      replicas.push_back(*best);
      ++load_[*best].replicas;
    }
    return replicas;
  }

  void AddOwner(const NodeId& id) { ++load_[id].owned; }

 private:
  struct Load {
    int owned = 0;
    int replicas = 0;
  };
  std::map<NodeId, Load> load_;
};

Epoch HighestEpoch(const ClusterSnapshot& s, RangeId id, Epoch current) {
  auto it = s.known_epochs.find(id);
  return it == s.known_epochs.end() ? current : std::max(current, it->second);
}

std::vector<NodeId> LiveOnly(const std::vector<NodeId>& ids, const Loads& loads) {
  std::vector<NodeId> out;
  for (const NodeId& id : ids) {
    if (loads.Live(id)) out.push_back(id);
  }
  return out;
}

RangeWrite MakeWrite(WriteKind kind, RangeInfo record, const RangeZnode& z, std::string reason) {
  return RangeWrite{kind, std::move(record), z.version, std::move(reason)};
}

// The rules for a range whose data decoded (see the table in planner.h).
void PlanValidRange(const ClusterSnapshot& s, const RangeZnode& z, Loads& loads, Plan& plan) {
  const RangeInfo& r = *z.info;
  if (r.owner) {
    bool live = loads.Live(*r.owner);
    RangeInfo rec = r;
    if (!live && r.state == RangeState::kActive) {
      rec.state = RangeState::kUnavailable;
      plan.writes.push_back(MakeWrite(WriteKind::kMarkUnavailable, rec, z,
                                      "owner " + r.owner->str() + " is not live"));
    } else if (live && r.state == RangeState::kUnavailable) {
      rec.state = RangeState::kActive;
      plan.writes.push_back(
          MakeWrite(WriteKind::kMarkActive, rec, z, "owner " + r.owner->str() + " is live again"));
    }
    return;
  }
  std::vector<NodeId> isr = LiveOnly(r.isr, loads);
  std::vector<NodeId> replicas = LiveOnly(r.replicas, loads);
  std::optional<NodeId> owner = loads.PickOwner(&isr);
  if (!owner) owner = loads.PickOwner(&replicas);
  if (!owner) owner = loads.PickOwner(nullptr);
  if (!owner) {
    if (r.state == RangeState::kActive) {
      RangeInfo rec = r;
      rec.state = RangeState::kUnavailable;
      plan.writes.push_back(
          MakeWrite(WriteKind::kMarkUnavailable, rec, z, "no owner and no live node to take it"));
    }
    return;
  }
  RangeInfo rec = r;
  rec.owner = *owner;
  rec.replicas = loads.FillReplicas(*owner, r.replicas, s.config.rf);
  if (std::find(rec.isr.begin(), rec.isr.end(), *owner) == rec.isr.end()) {
    rec.isr.insert(rec.isr.begin(), *owner);
  }
  rec.epoch = HighestEpoch(s, r.id, r.epoch).Next();
  rec.state = RangeState::kActive;
  loads.AddOwner(*owner);
  plan.writes.push_back(
      MakeWrite(WriteKind::kAssignOwner, rec, z, "had no owner; assigned to " + owner->str()));
}

void PlanRepairs(const ClusterSnapshot& s, Loads& loads, Plan& plan) {
  std::vector<KeyRange> valid;
  std::vector<RangeId> garbage;
  for (const auto& [id, z] : s.ranges) {
    if (z.info) {
      valid.push_back(z.info->bounds);
    } else {
      garbage.push_back(id);
    }
  }
  std::map<RangeId, KeyRange> bounds =
      PlanRepairBounds(valid, garbage, s.config.initial_ranges, &plan.notes);
  for (const auto& [id, span] : bounds) {
    const RangeZnode& z = s.ranges.at(id);
    RangeInfo rec;
    rec.id = id;
    rec.bounds = span;
    auto known = s.known_epochs.find(id);
    rec.epoch = known == s.known_epochs.end() ? Epoch(1) : known->second.Next();
    rec.owner = loads.PickOwner(nullptr);
    if (rec.owner) {
      loads.AddOwner(*rec.owner);
      rec.replicas = loads.FillReplicas(*rec.owner, {}, s.config.rf);
      rec.isr = rec.replicas;
      rec.state = RangeState::kActive;
    } else {
      rec.state = RangeState::kUnavailable;
    }
    std::string reason = "data is not a valid range record (" + z.error + "); rewritten as " +
                         span.ToString() + " owned by " +
                         (rec.owner ? rec.owner->str() : std::string("nobody (no live node)"));
    plan.writes.push_back(MakeWrite(WriteKind::kRepair, std::move(rec), z, std::move(reason)));
  }
}

}  // namespace

const char* WriteKindName(WriteKind kind) {
  switch (kind) {
    case WriteKind::kMarkUnavailable:
      return "mark-unavailable";
    case WriteKind::kMarkActive:
      return "mark-active";
    case WriteKind::kAssignOwner:
      return "assign-owner";
    case WriteKind::kRepair:
      return "repair";
  }
  return "unknown";
}

std::vector<RangeInfo> PlanBootstrap(const cluster::ClusterConfig& config,
                                     const std::vector<NodeId>& nodes) {
  std::vector<RangeInfo> out;
  if (nodes.empty() || static_cast<int>(nodes.size()) < config.rf) return out;
  std::vector<KeyRange> split = cluster::InitialSplit(config.initial_ranges);
  const size_t n = nodes.size();
  std::vector<int> replicated(n, 0);
  for (size_t i = 0; i < split.size(); ++i) {
    RangeInfo r;
    r.id = RangeId(i + 1);
    r.bounds = split[i];
    r.epoch = Epoch(1);
    r.owner = nodes[i % n];
    // Plain "the next rf-1 nodes" would replicate unevenly when n does not
    // divide the range count; take the least replicated followers, nearest
    // in round-robin order first.
    std::vector<size_t> chosen = {i % n};
    while (static_cast<int>(chosen.size()) < config.rf) {
      size_t best = n;
      for (size_t step = 1; step < n; ++step) {
        size_t k = (i + step) % n;
        if (std::find(chosen.begin(), chosen.end(), k) != chosen.end()) continue;
        if (best == n || replicated[k] < replicated[best]) best = k;
      }
      chosen.push_back(best);
    }
    for (size_t k : chosen) {
      ++replicated[k];
      r.replicas.push_back(nodes[k]);
    }
    r.isr = r.replicas;
    r.state = RangeState::kActive;
    out.push_back(std::move(r));
  }
  return out;
}

Plan PlanReconcile(const ClusterSnapshot& s) {
  Plan plan;
  if (s.ranges.empty()) {
    std::vector<NodeId> nodes;
    for (const auto& [id, node] : s.live_nodes) nodes.push_back(id);
    plan.bootstrap = PlanBootstrap(s.config, nodes);
    if (plan.bootstrap.empty()) {
      plan.notes.push_back("waiting for nodes: " + std::to_string(nodes.size()) + " of " +
                           std::to_string(s.config.rf) + " live (rf " +
                           std::to_string(s.config.rf) + ") before creating " +
                           std::to_string(s.config.initial_ranges) + " ranges");
    }
    return plan;
  }
  Loads loads(s.live_nodes, s.ranges);
  PlanRepairs(s, loads, plan);
  for (const auto& [id, z] : s.ranges) {
    if (z.info) PlanValidRange(s, z, loads, plan);
  }
  return plan;
}

}  // namespace rangekv::coordinator
