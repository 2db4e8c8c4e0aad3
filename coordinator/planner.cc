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

  // The least replicated live node not in `members`; nullopt if none.
  std::optional<NodeId> PickReplica(const std::vector<NodeId>& members) const {
    std::optional<NodeId> best;
    auto key = [&](const NodeId& id) {
      const Load& l = load_.at(id);
      return std::tie(l.replicas, l.owned, id);
    };
    for (const auto& [id, load] : load_) {
      if (std::find(members.begin(), members.end(), id) != members.end()) continue;
      if (!best || key(id) < key(*best)) best = id;
    }
    return best;
  }

  // `replicas` with `owner` first (added if missing), then the least
  // replicated live nodes not yet in it, until rf entries (or no more nodes).
  std::vector<NodeId> FillReplicas(const NodeId& owner, std::vector<NodeId> replicas, int rf) {
    if (std::find(replicas.begin(), replicas.end(), owner) == replicas.end()) {
      replicas.insert(replicas.begin(), owner);
      AddReplica(owner);
    }
    while (static_cast<int>(replicas.size()) < rf) {
      std::optional<NodeId> best = PickReplica(replicas);
      if (!best) break;
      replicas.push_back(*best);
      AddReplica(*best);
    }
    return replicas;
  }

  void AddReplica(const NodeId& id) { ++load_[id].replicas; }
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
  return RangeWrite{kind, std::move(record), z.version, std::move(reason), std::nullopt};
}

bool Contains(const std::vector<NodeId>& ids, const NodeId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

void Erase(std::vector<NodeId>& ids, const NodeId& id) {
  ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
}

std::string Join(const std::vector<NodeId>& ids) {
  std::string s;
  for (const NodeId& id : ids) s += (s.empty() ? "" : ",") + id.str();
  return s;
}

// The changes planned for one range, collected into one write.
struct Draft {
  RangeInfo rec;
  std::optional<WriteKind> kind;  // of the first change
  std::string reason;
  std::optional<NodeId> deposed;

  void Note(WriteKind k, const std::string& why) {
    if (!kind) kind = k;
    reason += (reason.empty() ? "" : "; ") + why;
  }
};

// Rule 1. False when no ISR member other than the dead owner is live.
bool Promote(const ClusterSnapshot& s, Loads& loads, Draft& d) {
  const NodeId old = *d.rec.owner;
  std::vector<NodeId> live_isr;
  for (const NodeId& id : d.rec.isr) {
    if (id != old && loads.Live(id) && !Contains(live_isr, id)) live_isr.push_back(id);
  }
  if (live_isr.empty()) return false;
  const NodeId owner = *loads.PickOwner(&live_isr);
  loads.AddOwner(owner);
  d.rec.owner = owner;
  d.rec.isr = live_isr;
  d.rec.epoch = HighestEpoch(s, d.rec.id, d.rec.epoch).Next();
  d.rec.state = RangeState::kActive;
  d.deposed = old;
  d.Note(WriteKind::kPromote, "owner " + old.str() + " is not live; promoted ISR member " +
                                  owner.str() + " (epoch " + std::to_string(d.rec.epoch.value()) +
                                  ")");
  return true;
}

// Rule 4. False when no node is live (rule 5 is then applied).
bool AssignOwner(const ClusterSnapshot& s, Loads& loads, Draft& d) {
  const RangeInfo& r = d.rec;
  std::vector<NodeId> isr = LiveOnly(r.isr, loads);
  std::vector<NodeId> replicas = LiveOnly(r.replicas, loads);
  std::optional<NodeId> owner = loads.PickOwner(&isr);
  if (!owner) owner = loads.PickOwner(&replicas);
  if (!owner) owner = loads.PickOwner(nullptr);
  if (!owner) {
    if (r.state == RangeState::kActive) {
      d.rec.state = RangeState::kUnavailable;
      d.Note(WriteKind::kMarkUnavailable, "no owner and no live node to take it");
    }
    return false;
  }
  RangeInfo rec = r;
  rec.owner = *owner;
  rec.replicas = loads.FillReplicas(*owner, r.replicas, s.config.rf);
  if (!Contains(rec.isr, *owner)) rec.isr.insert(rec.isr.begin(), *owner);
  rec.epoch = HighestEpoch(s, r.id, r.epoch).Next();
  rec.state = RangeState::kActive;
  loads.AddOwner(*owner);
  d.rec = std::move(rec);
  d.Note(WriteKind::kAssignOwner, "had no owner; assigned to " + owner->str());
  return true;
}

// Rule 6.
void ShrinkIsr(const Loads& loads, Draft& d) {
  std::vector<NodeId> dead;
  for (const NodeId& id : d.rec.isr) {
    if (id != *d.rec.owner && !loads.Live(id)) dead.push_back(id);
  }
  if (dead.empty()) return;
  for (const NodeId& id : dead) Erase(d.rec.isr, id);
  d.Note(WriteKind::kShrinkIsr, Join(dead) + " not live: removed from isr");
}

// Rule 7: replacements an operator asked for (NodeInfo.replaces).
void ReplaceNamed(const ClusterSnapshot& s, Loads& loads, Draft& d) {
  for (const auto& [x, info] : s.live_nodes) {  // by id: the smallest X wins a D
    if (!info.replaces) continue;
    const NodeId& dead = *info.replaces;
    if (loads.Live(dead) || dead == *d.rec.owner || Contains(d.rec.replicas, x)) continue;
    auto it = std::find(d.rec.replicas.begin(), d.rec.replicas.end(), dead);
    if (it == d.rec.replicas.end()) continue;
    *it = x;
    Erase(d.rec.isr, dead);
    loads.AddReplica(x);
    d.Note(WriteKind::kReplace, x.str() + " replaces dead " + dead.str() + " (asked by " + x.str() +
                                    "); it recovers before joining the isr");
  }
}

// Rule 8: replicas dead for longer than replace_after.
void ReplaceLongDead(const ClusterSnapshot& s, Loads& loads, Draft& d, Plan& plan) {
  if (s.replace_after.count() <= 0) return;
  for (NodeId& id : d.rec.replicas) {
    if (id == *d.rec.owner || loads.Live(id)) continue;
    auto dead = s.dead_for.find(id);
    if (dead == s.dead_for.end()) continue;
    if (dead->second <= s.replace_after) {
      auto due = s.replace_after - dead->second + std::chrono::milliseconds(1);
      if (!plan.recheck_after || due < *plan.recheck_after) plan.recheck_after = due;
      continue;
    }
    std::optional<NodeId> pick = loads.PickReplica(d.rec.replicas);
    if (!pick) return;  // no live node left outside this range
    d.Note(WriteKind::kReplace, "replica " + id.str() + " not live for " +
                                    std::to_string(dead->second.count()) + " ms (> " +
                                    std::to_string(s.replace_after.count()) + " ms): replaced by " +
                                    pick->str());
    Erase(d.rec.isr, id);
    id = *pick;
    loads.AddReplica(*pick);
  }
}

// Rule 9.
void AddReplicas(const ClusterSnapshot& s, Loads& loads, Draft& d) {
  std::vector<NodeId> added;
  while (static_cast<int>(d.rec.replicas.size()) < s.config.rf) {
    std::optional<NodeId> pick = loads.PickReplica(d.rec.replicas);
    if (!pick) break;
    d.rec.replicas.push_back(*pick);
    loads.AddReplica(*pick);
    added.push_back(*pick);
  }
  if (!added.empty()) {
    d.Note(WriteKind::kAddReplica,
           "added replica " + Join(added) + " (rf " + std::to_string(s.config.rf) + ")");
  }
}

// Rule 10: the invariants every written record keeps.
void Normalize(Draft& d) {
  const NodeId& owner = *d.rec.owner;
  std::vector<std::string> fixed;
  if (!Contains(d.rec.replicas, owner)) {
    d.rec.replicas.insert(d.rec.replicas.begin(), owner);
    fixed.push_back("owner added to replicas");
  }
  std::vector<NodeId> stray;
  for (const NodeId& id : d.rec.isr) {
    if (!Contains(d.rec.replicas, id)) stray.push_back(id);
  }
  for (const NodeId& id : stray) Erase(d.rec.isr, id);
  if (!stray.empty()) fixed.push_back(Join(stray) + " dropped from isr (not replicas)");
  if (!Contains(d.rec.isr, owner)) {
    d.rec.isr.insert(d.rec.isr.begin(), owner);
    fixed.push_back("owner added to isr");
  }
  for (const std::string& f : fixed) d.Note(WriteKind::kRepair, f);
}

void Emit(Draft& d, const RangeZnode& z, Plan& plan) {
  if (!d.kind) return;
  RangeWrite w = MakeWrite(*d.kind, std::move(d.rec), z, std::move(d.reason));
  w.deposed = std::move(d.deposed);
  plan.writes.push_back(std::move(w));
}

// The rules for a range whose data decoded (see the table in planner.h).
void PlanValidRange(const ClusterSnapshot& s, const RangeZnode& z, Loads& loads, Plan& plan) {
  const RangeInfo& r = *z.info;
  Draft d{r, std::nullopt, "", std::nullopt};
  if (r.owner && !loads.Live(*r.owner)) {
    if (!Promote(s, loads, d)) {
      if (r.state == RangeState::kActive) {
        d.rec.state = RangeState::kUnavailable;
        d.Note(WriteKind::kMarkUnavailable,
               "owner " + r.owner->str() + " is not live and no other ISR member is");
      }
      return Emit(d, z, plan);
    }
  } else if (r.owner) {
    if (r.state == RangeState::kUnavailable) {
      d.rec.state = RangeState::kActive;
      d.Note(WriteKind::kMarkActive, "owner " + r.owner->str() + " is live again");
    }
  } else if (!AssignOwner(s, loads, d)) {
    return Emit(d, z, plan);
  }
  ShrinkIsr(loads, d);
  ReplaceNamed(s, loads, d);
  ReplaceLongDead(s, loads, d, plan);
  AddReplicas(s, loads, d);
  Normalize(d);
  Emit(d, z, plan);
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
    case WriteKind::kPromote:
      return "promote";
    case WriteKind::kShrinkIsr:
      return "shrink-isr";
    case WriteKind::kReplace:
      return "replace";
    case WriteKind::kAddReplica:
      return "add-replica";
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
