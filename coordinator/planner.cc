#include "coordinator/planner.h"

#include <algorithm>
#include <set>
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
        const std::map<RangeId, RangeZnode>& ranges, std::set<NodeId> draining)
      : draining_(std::move(draining)) {
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
  // candidates is nullptr); nullopt if none is live. A node being
  // decommissioned is picked only when no other candidate is live.
  std::optional<NodeId> PickOwner(const std::vector<NodeId>* candidates) const {
    std::optional<NodeId> best;
    auto key = [&](const NodeId& id) {
      const Load& l = load_.at(id);
      return std::make_tuple(draining_.count(id), l.owned, l.replicas, id);
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

  // The least replicated live node not in `members` nor being
  // decommissioned; nullopt if none.
  std::optional<NodeId> PickReplica(const std::vector<NodeId>& members) const {
    std::optional<NodeId> best;
    auto key = [&](const NodeId& id) {
      const Load& l = load_.at(id);
      return std::tie(l.replicas, l.owned, id);
    };
    for (const auto& [id, load] : load_) {
      if (std::find(members.begin(), members.end(), id) != members.end()) continue;
      if (draining_.count(id)) continue;
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
  std::set<NodeId> draining_;
};

Epoch HighestEpoch(const ClusterSnapshot& s, RangeId id, Epoch current) {
  auto it = s.known_epochs.find(id);
  return it == s.known_epochs.end() ? current : std::max(current, it->second);
}

RangeWrite MakeWrite(WriteKind kind, RangeInfo record, const RangeZnode& z, std::string reason) {
  return RangeWrite{kind, std::move(record), z.version, std::move(reason), std::nullopt};
}

bool Contains(const std::vector<NodeId>& ids, const NodeId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
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

const cluster::NodeInfo* LiveInfo(const ClusterSnapshot& s, const NodeId& id) {
  auto it = s.live_nodes.find(id);
  return it == s.live_nodes.end() ? nullptr : &it->second;
}

// ISR members still holding the copy they joined with: live, same
// incarnation (cluster_map.h).
std::vector<NodeId> ValidIsr(const ClusterSnapshot& s, const RangeInfo& r) {
  std::vector<NodeId> out;
  for (const NodeId& id : r.isr) {
    if (cluster::IsrMemberValid(r, id, LiveInfo(s, id)) && !Contains(out, id)) out.push_back(id);
  }
  return out;
}

// Of suspect copies, those whose log reaches furthest (cluster_map.h
// "log_ends"): one of them holds every committed record any of them kept.
std::vector<NodeId> FurthestLogs(const ClusterSnapshot& s, RangeId range,
                                 const std::vector<NodeId>& suspect) {
  cluster::LogEnd best;
  for (const NodeId& id : suspect) best = std::max(best, LiveInfo(s, id)->LogEndOf(range));
  std::vector<NodeId> out;
  for (const NodeId& id : suspect) {
    if (LiveInfo(s, id)->LogEndOf(range) == best) out.push_back(id);
  }
  return out;
}

// The ISR members that may be made owner: the valid ones that are neither
// opening nor suspect; only when no member is trusted (every valid one is
// suspect, and none is down or still opening and so may turn out trusted)
// the suspect ones whose logs reach furthest. *waiting is set when such a
// member holds the choice back.
std::vector<NodeId> OwnerCandidates(const ClusterSnapshot& s, const RangeInfo& r, bool* waiting) {
  std::vector<NodeId> trusted, suspect;
  bool down = false;
  for (const NodeId& id : ValidIsr(s, r)) {
    const cluster::NodeInfo* n = LiveInfo(s, id);
    if (n->opening) {
      down = true;
    } else {
      (n->suspect ? suspect : trusted).push_back(id);
    }
  }
  for (const NodeId& id : r.isr) down = down || LiveInfo(s, id) == nullptr;
  if (!trusted.empty()) return trusted;
  if (down) {
    *waiting = !suspect.empty() || !r.isr.empty();
    return {};
  }
  return FurthestLogs(s, r.id, suspect);
}

// The owner holds its grant: live, the same process (life) and copy.
bool OwnerUsable(const ClusterSnapshot& s, const RangeInfo& r) {
  const cluster::NodeInfo* n = LiveInfo(s, *r.owner);
  return cluster::OwnerLifeValid(r, n) && cluster::IsrMemberValid(r, *r.owner, n);
}

std::string WhyNotUsable(const ClusterSnapshot& s, const RangeInfo& r) {
  const cluster::NodeInfo* n = LiveInfo(s, *r.owner);
  if (n == nullptr) return "owner " + r.owner->str() + " is not live";
  if (!cluster::OwnerLifeValid(r, n)) return "owner " + r.owner->str() + " restarted";
  return "owner " + r.owner->str() + " has a new copy of its data";
}

// Members that are down still hold everything committed while they were in
// the ISR, and nothing commits while the ISR is below min-insync: so down
// members stay until the live ones alone reach min-insync (a member back
// with another copy of the data never stays).
std::vector<NodeId> KeepDownUpToMinInsync(const ClusterSnapshot& s, const RangeInfo& r,
                                          std::vector<NodeId> isr) {
  for (const NodeId& id : r.isr) {
    if (static_cast<int>(isr.size()) >= s.config.min_insync) break;
    if (LiveInfo(s, id) == nullptr && !Contains(isr, id)) isr.push_back(id);
  }
  return isr;
}

// Makes `owner` the owner at a new epoch, granted to its present life, with
// the valid ISR members (it among them) as the ISR.
void GrantOwner(const ClusterSnapshot& s, Loads& loads, Draft& d, const NodeId& owner) {
  std::vector<NodeId> isr = ValidIsr(s, d.rec);
  if (!Contains(isr, owner)) isr.insert(isr.begin(), owner);
  isr = KeepDownUpToMinInsync(s, d.rec, isr);
  d.rec.SetIsr(isr, {{owner, d.rec.IsrIncarnation(owner).empty()
                                 ? LiveInfo(s, owner)->incarnation
                                 : d.rec.IsrIncarnation(owner)}});
  d.rec.owner = owner;
  d.rec.owner_life = LiveInfo(s, owner)->life;
  d.rec.epoch = HighestEpoch(s, d.rec.id, d.rec.epoch).Next();
  d.rec.handoff_from = Epoch(0);  // a grant, not a handoff: promises are waited out
  d.rec.move_to.reset();          // a move asked of the previous owner
  d.rec.state = RangeState::kActive;
  loads.AddOwner(owner);
}

// Rule 1. False when no ISR member may take over.
bool Promote(const ClusterSnapshot& s, Loads& loads, Draft& d, std::string* why_not) {
  const NodeId old = *d.rec.owner;
  const std::string why = WhyNotUsable(s, d.rec);
  bool waiting = false;
  std::vector<NodeId> candidates = OwnerCandidates(s, d.rec, &waiting);
  if (candidates.empty()) {
    *why_not = why + (waiting ? " and no in-sync replica that is live can be trusted with it yet "
                                "(suspect or still opening) while others are down or opening"
                              : " and no other in-sync replica is");
    return false;
  }
  const NodeId owner = *loads.PickOwner(&candidates);
  GrantOwner(s, loads, d, owner);
  if (owner != old) d.deposed = old;
  d.rec.AddHistory(
      {"promoted", old.str() + ">" + owner.str(), std::to_string(d.rec.epoch.value())});
  d.Note(WriteKind::kPromote, why + "; promoted ISR member " + owner.str() + " (epoch " +
                                  std::to_string(d.rec.epoch.value()) + ")");
  return true;
}

// Rule 4: only an in-sync replica may become owner (any other node may hold
// none of the range's data). False when none can (rule 5 then applies).
bool AssignOwner(const ClusterSnapshot& s, Loads& loads, Draft& d) {
  bool waiting = false;
  std::vector<NodeId> candidates = OwnerCandidates(s, d.rec, &waiting);
  std::optional<NodeId> owner = loads.PickOwner(&candidates);
  if (!owner) {
    if (d.rec.state == RangeState::kActive) {
      d.rec.state = RangeState::kUnavailable;
      d.Note(WriteKind::kMarkUnavailable,
             d.rec.isr.empty() ? "no owner and no in-sync replica to take it"
                               : "no owner and no in-sync replica that can take it is live");
    }
    return false;
  }
  GrantOwner(s, loads, d, *owner);
  d.rec.AddHistory({"promoted", "->" + owner->str(), std::to_string(d.rec.epoch.value())});
  d.rec.replicas = loads.FillReplicas(*owner, d.rec.replicas, s.config.rf);
  d.Note(WriteKind::kAssignOwner, "had no owner; assigned to in-sync replica " + owner->str());
  return true;
}

// Rule 6: members back with another copy of the data; members that are
// down, but never below min-insync (KeepDownUpToMinInsync).
void ShrinkIsr(const ClusterSnapshot& s, Draft& d) {
  std::vector<NodeId> dead, recopied;
  for (const NodeId& id : d.rec.isr) {
    if (id == *d.rec.owner) continue;
    const cluster::NodeInfo* n = LiveInfo(s, id);
    if (n != nullptr && !cluster::IsrMemberValid(d.rec, id, n)) recopied.push_back(id);
  }
  for (const NodeId& id : recopied) d.rec.RemoveFromIsr(id);
  for (const NodeId& id : std::vector<NodeId>(d.rec.isr)) {
    if (id == *d.rec.owner || LiveInfo(s, id) != nullptr) continue;
    if (static_cast<int>(d.rec.isr.size()) <= s.config.min_insync) break;
    dead.push_back(id);
    d.rec.RemoveFromIsr(id);
  }
  if (!dead.empty()) d.Note(WriteKind::kShrinkIsr, Join(dead) + " not live: removed from isr");
  if (!recopied.empty()) {
    d.Note(WriteKind::kShrinkIsr,
           Join(recopied) + " has a new copy of its data (new incarnation): removed from isr");
  }
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
    d.rec.RemoveFromIsr(dead);
    loads.AddReplica(x);
    d.Note(WriteKind::kReplace, x.str() + " replaces dead " + dead.str() + " (asked by " + x.str() +
                                    "); it recovers before joining the isr");
  }
}

// Rule 8: replicas dead for longer than replace_after. One that is among
// only min-insync ISR members still holds every committed write, so it is
// not dropped: its replacement joins the replicas first (above rf) and,
// once the owner has taken it into the ISR and rule 6 has let the dead one
// out, the dead one leaves the replicas.
void ReplaceLongDead(const ClusterSnapshot& s, Loads& loads, Draft& d, Plan& plan) {
  if (s.replace_after.count() <= 0) return;
  std::vector<NodeId> due;
  for (const NodeId& id : d.rec.replicas) {
    if (id == *d.rec.owner || loads.Live(id)) continue;
    auto dead = s.dead_for.find(id);
    if (dead == s.dead_for.end()) continue;
    if (dead->second > s.replace_after) {
      due.push_back(id);
      continue;
    }
    auto left = s.replace_after - dead->second + std::chrono::milliseconds(1);
    if (!plan.recheck_after || left < *plan.recheck_after) plan.recheck_after = left;
  }
  for (const NodeId& id : due) {
    const std::string why = "replica " + id.str() + " not live for " +
                            std::to_string(s.dead_for.at(id).count()) + " ms (> " +
                            std::to_string(s.replace_after.count()) + " ms)";
    const bool holds_commits =
        Contains(d.rec.isr, id) && static_cast<int>(d.rec.isr.size()) <= s.config.min_insync;
    const bool replacement_added = static_cast<int>(d.rec.replicas.size()) > s.config.rf;
    if (holds_commits && replacement_added) continue;  // waits for it to catch up
    if (replacement_added) {
      d.rec.RemoveFromIsr(id);
      d.rec.replicas.erase(std::find(d.rec.replicas.begin(), d.rec.replicas.end(), id));
      d.Note(WriteKind::kReplace, why + ": dropped, its replacement is in the replicas");
      continue;
    }
    std::optional<NodeId> pick = loads.PickReplica(d.rec.replicas);
    if (!pick) return;  // no live node left outside this range
    loads.AddReplica(*pick);
    if (holds_commits) {
      d.rec.replicas.push_back(*pick);
      d.Note(WriteKind::kReplace, why + ": " + pick->str() +
                                      " added first; it stays in the isr, one of only min-insync "
                                      "copies of every committed write, until " +
                                      pick->str() + " is in sync");
      continue;
    }
    d.rec.RemoveFromIsr(id);
    *std::find(d.rec.replicas.begin(), d.rec.replicas.end(), id) = *pick;
    d.Note(WriteKind::kReplace, why + ": replaced by " + pick->str());
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

// A range other than `self` being handed over, in the map or by a write
// this reconcile planned.
bool HandoffUnderWay(const ClusterSnapshot& s, const Plan& plan, RangeId self) {
  for (const auto& [id, z] : s.ranges) {
    if (id != self && z.info && z.info->move_to) return true;
  }
  return std::any_of(plan.writes.begin(), plan.writes.end(), [&](const RangeWrite& w) {
    return w.record.id != self && w.record.move_to.has_value();
  });
}

// Rule 11: a replica move (cluster_map.h "move_replica") goes on once its
// target is in sync: the ownership first (move_to the target, which the
// owner performs as a transfer, one range at a time), then the source
// leaves. A target that died before it caught up, and stayed away longer
// than kMoveTargetGrace, is taken out again and the move dropped.
void AdvanceMove(const ClusterSnapshot& s, Plan& plan, Draft& d) {
  if (!d.rec.move_replica) return;
  const cluster::ReplicaMove m = *d.rec.move_replica;
  const std::string what = "move of the replica on " + m.from.str() + " to " + m.to.str();
  auto drop = [&](const std::string& why) {
    d.rec.move_replica.reset();
    d.Note(WriteKind::kMoveReplica, what + " " + why);
  };
  if (!Contains(d.rec.replicas, m.from)) return drop("ended: " + m.from.str() + " holds none");
  if (!Contains(d.rec.replicas, m.to)) return drop("dropped: " + m.to.str() + " is no replica");
  const cluster::NodeInfo* to = LiveInfo(s, m.to);
  const bool in_sync = Contains(d.rec.isr, m.to) && cluster::IsrMemberValid(d.rec, m.to, to);
  if (!in_sync) {
    if (to != nullptr) return;  // still copying; the owner adds it when caught up
    auto dead = s.dead_for.find(m.to);
    const std::chrono::milliseconds gone =
        dead == s.dead_for.end() ? std::chrono::milliseconds(0) : dead->second;
    if (gone <= kMoveTargetGrace) {
      // It may be back in a moment, its copy resumed (rule 11).
      auto left = kMoveTargetGrace - gone + std::chrono::milliseconds(1);
      if (!plan.recheck_after || left < *plan.recheck_after) plan.recheck_after = left;
      return;
    }
    d.rec.RemoveFromIsr(m.to);
    d.rec.replicas.erase(std::find(d.rec.replicas.begin(), d.rec.replicas.end(), m.to));
    return drop("dropped: " + m.to.str() + " was not live for " + std::to_string(gone.count()) +
                " ms and not in sync");
  }
  if (m.from == *d.rec.owner) {
    if (d.rec.move_to == m.to) return;  // the owner is handing it over
    // Only a node fit to own is asked for (else the balance would drop
    // the ask as impossible, and this rule write it again, in turn).
    if (to->opening || to->suspect) return;
    // One handoff at a time: each pauses its range's writes, and a drain
    // of an owner would otherwise stall several ranges at once.
    if (HandoffUnderWay(s, plan, d.rec.id)) return;
    d.rec.move_to = m.to;
    d.Note(WriteKind::kMoveReplica,
           what + ": " + m.to.str() + " is in sync; the ownership moves to it first");
    return;
  }
  d.rec.RemoveFromIsr(m.from);
  d.rec.replicas.erase(std::find(d.rec.replicas.begin(), d.rec.replicas.end(), m.from));
  drop("done: " + m.to.str() + " is in sync, " + m.from.str() + " left the replicas");
}

// Rule 10: the invariants every written record keeps.
void Normalize(const ClusterSnapshot& s, Draft& d) {
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
  for (const NodeId& id : stray) d.rec.RemoveFromIsr(id);
  if (!stray.empty()) fixed.push_back(Join(stray) + " dropped from isr (not replicas)");
  if (!Contains(d.rec.isr, owner)) {
    std::vector<NodeId> isr = d.rec.isr;
    isr.insert(isr.begin(), owner);
    const cluster::NodeInfo* n = LiveInfo(s, owner);
    d.rec.SetIsr(isr, {{owner, n != nullptr ? n->incarnation : std::string()}});
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
  if (r.owner && !OwnerUsable(s, r)) {
    std::string why_not;
    if (!Promote(s, loads, d, &why_not)) {
      if (r.state == RangeState::kActive) {
        d.rec.state = RangeState::kUnavailable;
        d.Note(WriteKind::kMarkUnavailable, why_not);
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
  ShrinkIsr(s, d);
  ReplaceNamed(s, loads, d);
  ReplaceLongDead(s, loads, d, plan);
  AddReplicas(s, loads, d);
  AdvanceMove(s, plan, d);
  Normalize(s, d);
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
      PlanRepairBounds(valid, garbage, cluster::InitialSplit(s.config), &plan.notes);
  for (const auto& [id, span] : bounds) {
    const RangeZnode& z = s.ranges.at(id);
    // Who holds the range's data is known only from a valid version of
    // the record seen before; without one no node may be trusted with it.
    Draft d{RangeInfo{}, std::nullopt, "", std::nullopt};
    auto last = s.last_valid.find(id);
    if (last != s.last_valid.end()) d.rec = last->second;
    d.rec.id = id;
    d.rec.bounds = span;
    d.rec.owner.reset();
    auto known = s.known_epochs.find(id);
    d.rec.epoch = known == s.known_epochs.end() ? Epoch(1) : std::max(known->second, d.rec.epoch);
    bool owned = !d.rec.isr.empty() && AssignOwner(s, loads, d);
    if (!owned) d.rec.state = RangeState::kUnavailable;
    std::string reason = "data is not a valid range record (" + z.error + "); rewritten as " +
                         span.ToString() +
                         (owned ? " owned by in-sync replica " + d.rec.owner->str()
                          : last == s.last_valid.end()
                              ? " with no owner: its replicas are unknown (no valid version of it "
                                "was seen); restore its record to bring it back"
                              : " with no owner: none of its in-sync replicas can take it");
    plan.writes.push_back(MakeWrite(WriteKind::kRepair, std::move(d.rec), z, std::move(reason)));
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
    case WriteKind::kBalance:
      return "balance";
    case WriteKind::kMoveReplica:
      return "move-replica";
  }
  return "unknown";
}

std::vector<RangeInfo> PlanBootstrap(const cluster::ClusterConfig& config,
                                     const std::vector<NodeId>& nodes) {
  std::vector<RangeInfo> out;
  if (nodes.empty() || static_cast<int>(nodes.size()) < config.rf) return out;
  std::vector<KeyRange> split = cluster::InitialSplit(config);
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
    const size_t wanted = static_cast<size_t>(std::max(s.config.rf, s.expect_nodes));
    if (nodes.size() >= wanted) plan.bootstrap = PlanBootstrap(s.config, nodes);
    // Grants go to the present processes and copies (cluster_map.h).
    for (RangeInfo& r : plan.bootstrap) {
      r.owner_life = s.live_nodes.at(*r.owner).life;
      std::map<NodeId, std::string> incarnations;
      for (const NodeId& id : r.isr) incarnations[id] = s.live_nodes.at(id).incarnation;
      r.SetIsr(r.isr, incarnations);
    }
    if (plan.bootstrap.empty()) {
      plan.notes.push_back("waiting for nodes: " + std::to_string(nodes.size()) + " of " +
                           std::to_string(wanted) + " live (rf " + std::to_string(s.config.rf) +
                           ") before creating " + std::to_string(s.config.initial_ranges) +
                           " ranges");
    }
    return plan;
  }
  Loads loads(s.live_nodes, s.ranges, s.draining);
  PlanRepairs(s, loads, plan);
  for (const auto& [id, z] : s.ranges) {
    if (z.info) PlanValidRange(s, z, loads, plan);
  }
  PlanBalance(s, plan);
  return plan;
}

}  // namespace rangekv::coordinator
