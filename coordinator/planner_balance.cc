// Balance: owners moved between in-sync replicas so that each live node's
// owned ranges carry a fair share of the requests (planner.h, balance).
#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "coordinator/planner.h"

namespace rangekv::coordinator {
namespace {

using cluster::RangeInfo;

const cluster::NodeInfo* Live(const ClusterSnapshot& s, const NodeId& id) {
  auto it = s.live_nodes.find(id);
  return it == s.live_nodes.end() ? nullptr : &it->second;
}

// A node fit to own a range now, or to take a copy: live, opened, not
// suspect, not being decommissioned.
bool Fit(const ClusterSnapshot& s, const NodeId& id) {
  const cluster::NodeInfo* n = Live(s, id);
  return n != nullptr && !n->opening && !n->suspect && !s.draining.count(id);
}

// `to` may take r from its owner by a transfer: a valid in-sync member fit
// to own, and the owner's grant is to its present process.
bool CanMove(const ClusterSnapshot& s, const RangeInfo& r, const NodeId& to) {
  if (!r.owner || *r.owner == to || !Fit(s, to)) return false;
  if (std::find(r.isr.begin(), r.isr.end(), to) == r.isr.end()) return false;
  const cluster::NodeInfo* owner = Live(s, *r.owner);
  return owner != nullptr && cluster::OwnerLifeValid(r, owner) &&
         cluster::IsrMemberValid(r, to, Live(s, to));
}

struct NodeLoad {
  uint64_t qps = 0;
  int owned = 0;
};

RangeWrite Write(const RangeZnode& z, RangeInfo rec, std::string reason) {
  RangeWrite w;
  w.kind = WriteKind::kBalance;
  w.record = std::move(rec);
  w.expected_version = z.version;
  w.reason = std::move(reason);
  return w;
}

// Moves that can no longer happen are cleared; true while one is pending.
bool CheckPendingMoves(const ClusterSnapshot& s, Plan& plan) {
  bool pending = false;
  for (const auto& [id, z] : s.ranges) {
    if (!z.info || !z.info->move_to) continue;
    if (CanMove(s, *z.info, *z.info->move_to)) {
      pending = true;
      continue;
    }
    RangeInfo rec = *z.info;
    rec.move_to.reset();
    plan.writes.push_back(Write(z, std::move(rec),
                                "move to " + z.info->move_to->str() +
                                    " can no longer happen (not an in-sync replica fit to own "
                                    "it, or the owner changed); dropped"));
  }
  return pending;
}

// A range's requests/s: the highest any node reports for it. Right after a
// move the new owner has not reported it yet while the previous one still
// does; counting it as idle would make the next move overshoot.
uint64_t RangeLoad(const ClusterSnapshot& s, RangeId id) {
  uint64_t q = 0;
  for (const auto& [n, info] : s.live_nodes) {
    auto it = info.load.find(id);
    if (it != info.load.end()) q = std::max<uint64_t>(q, it->second);
  }
  return q;
}

// Every range owned by a node fit to own is in that node's report. Until
// then a range just moved (or split off) counts only its previous owner's
// stale figure, or nothing, and a move planned on that overshoots.
bool LoadsSettled(const ClusterSnapshot& s) {
  for (const auto& [id, z] : s.ranges) {
    if (!z.info->owner || !Fit(s, *z.info->owner)) continue;
    if (!Live(s, *z.info->owner)->load.count(id)) return false;
  }
  return true;
}

// Whether r's owner reports it small and cold enough to merge.
bool ReportedMergeable(const ClusterSnapshot& s, const RangeInfo& r) {
  const cluster::NodeInfo* owner = r.owner ? Live(s, *r.owner) : nullptr;
  return owner != nullptr && std::find(owner->mergeable.begin(), owner->mergeable.end(), r.id) !=
                                 owner->mergeable.end();
}

// The same copies hold both: one owner could merge them.
bool SameCopies(const RangeInfo& a, const RangeInfo& b) {
  auto sorted = [](std::vector<NodeId> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (sorted(a.replicas) != sorted(b.replicas) || sorted(a.isr) != sorted(b.isr)) return false;
  for (const NodeId& n : a.isr) {
    if (a.IsrIncarnation(n) != b.IsrIncarnation(n)) return false;
  }
  return true;
}

// Neighbours both reported mergeable by their owners and held by the same
// copies, in key order: (left, right).
std::vector<std::pair<const RangeZnode*, const RangeZnode*>> MergePairs(const ClusterSnapshot& s) {
  std::vector<const RangeZnode*> ordered;
  for (const auto& [id, z] : s.ranges) {
    if (z.info) ordered.push_back(&z);
  }
  std::sort(ordered.begin(), ordered.end(), [](const RangeZnode* a, const RangeZnode* b) {
    return a->info->bounds.start() < b->info->bounds.start();
  });
  std::vector<std::pair<const RangeZnode*, const RangeZnode*>> out;
  for (size_t i = 0; i + 1 < ordered.size(); ++i) {
    const RangeInfo& l = *ordered[i]->info;
    const RangeInfo& r = *ordered[i + 1]->info;
    if (l.bounds.end() == r.bounds.start() && ReportedMergeable(s, l) && ReportedMergeable(s, r) &&
        SameCopies(l, r)) {
      out.emplace_back(ordered[i], ordered[i + 1]);
    }
  }
  return out;
}

// Brings two mergeable neighbours with different owners to one owner (the
// left one's), which then merges them (docs/elastic.md §4). True when it
// asked for a move.
bool PlanColocation(const ClusterSnapshot& s, Plan& plan) {
  for (const auto& [left, right] : MergePairs(s)) {
    const RangeInfo& l = *left->info;
    const RangeInfo& r = *right->info;
    if (l.owner == r.owner || s.recently_moved.count(r.id) || !CanMove(s, r, *l.owner)) continue;
    RangeInfo rec = r;
    rec.move_to = l.owner;
    plan.writes.push_back(
        Write(*right, std::move(rec),
              "ranges " + std::to_string(l.id.value()) + " and " + std::to_string(r.id.value()) +
                  " are small and cold: moving range " + std::to_string(r.id.value()) + " to " +
                  l.owner->str() + " so that they merge"));
    return true;
  }
  return false;
}

RangeWrite MoveWrite(const RangeZnode& z, const NodeId& from, const NodeId& to,
                     const std::string& why) {
  RangeInfo rec = *z.info;
  rec.replicas.push_back(to);
  rec.move_replica = cluster::ReplicaMove{from, to};
  RangeWrite w = Write(z, std::move(rec),
                       why + ": moving range " + std::to_string(z.info->id.value()) + "'s from " +
                           from.str() + " to " + to.str());
  w.kind = WriteKind::kMoveReplica;
  return w;
}

// A range's data bytes as its owner last reported them (the highest any
// live node reports: right after a move both may); none when unreported.
std::optional<uint64_t> RangeBytes(const ClusterSnapshot& s, RangeId id) {
  std::optional<uint64_t> b;
  for (const auto& [n, info] : s.live_nodes) {
    auto it = info.bytes.find(id);
    if (it != info.bytes.end()) b = std::max<uint64_t>(b.value_or(0), it->second);
  }
  return b;
}

// The copies each node fit to take one will hold once the moves under way
// are done (and their bytes), and the moves under way into each node.
struct CopyCounts {
  std::map<NodeId, int> held;
  std::map<NodeId, uint64_t> held_bytes;
  std::map<NodeId, int> inbound;
  std::map<RangeId, uint64_t> range_bytes;  // RangeBytes, 0 when unreported
  uint64_t total_bytes = 0;                 // over every copy, as reported
  bool bytes_known = true;                  // every range's bytes are reported
  bool under_way = false;                   // some range has a move_replica
  bool settled = true;                      // every other range is active, owned and at rf
};

CopyCounts CountCopies(const ClusterSnapshot& s) {
  CopyCounts c;
  for (const auto& [id, n] : s.live_nodes) {
    if (!Fit(s, id)) continue;
    c.held[id];
    c.held_bytes[id];
  }
  for (const auto& [id, z] : s.ranges) {
    if (!z.info) {
      c.settled = false;
      continue;
    }
    const RangeInfo& r = *z.info;
    if (r.move_replica) {
      c.under_way = true;
      ++c.inbound[r.move_replica->to];
    } else if (r.state != cluster::RangeState::kActive || !r.owner ||
               static_cast<int>(r.replicas.size()) != s.config.rf) {
      c.settled = false;
    }
    const std::optional<uint64_t> reported = RangeBytes(s, id);
    c.bytes_known = c.bytes_known && reported.has_value();
    const uint64_t bytes = c.range_bytes[id] = reported.value_or(0);
    for (const NodeId& n : r.replicas) {
      if (r.move_replica && n == r.move_replica->from) continue;  // leaving
      c.total_bytes += bytes;
      if (auto it = c.held.find(n); it != c.held.end()) {
        ++it->second;
        c.held_bytes[n] += bytes;
      }
    }
  }
  return c;
}

bool Holds(const RangeInfo& r, const NodeId& n) {
  return std::find(r.replicas.begin(), r.replicas.end(), n) != r.replicas.end();
}

// Starts a move of z's copy on `from` to `to` and counts it.
void StartMove(const RangeZnode& z, const NodeId& from, const NodeId& to, const std::string& why,
               CopyCounts& c, Plan& plan) {
  plan.writes.push_back(MoveWrite(z, from, to, why));
  const uint64_t bytes = c.range_bytes[z.info->id];
  ++c.inbound[to];
  ++c.held[to];
  c.held_bytes[to] += bytes;
  if (auto it = c.held.find(from); it != c.held.end()) {
    --it->second;
    c.held_bytes[from] -= std::min(bytes, c.held_bytes[from]);
  }
}

// Copies off the nodes being decommissioned, each to the fit node with the
// fewest copies that does not hold the range and has room for a move.
void PlanDrainMoves(const ClusterSnapshot& s, CopyCounts& c, std::set<RangeId>& moving,
                    Plan& plan) {
  for (const auto& [id, z] : s.ranges) {
    if (moving.count(id)) continue;
    for (const NodeId& n : z.info->replicas) {
      if (!s.draining.count(n)) continue;
      std::optional<NodeId> to;
      bool any = false;  // a node that could take it once it has room
      for (const auto& [m, k] : c.held) {
        if (Holds(*z.info, m)) continue;
        any = true;
        if (c.inbound[m] < s.moves_per_node && (!to || k < c.held.at(*to))) to = m;
      }
      if (!any) {
        plan.notes.push_back(
            "cannot finish decommissioning " + n.str() + ": range " + std::to_string(id.value()) +
            " has no other node fit to take its copy (rf " + std::to_string(s.config.rf) + ")");
      }
      if (!to) continue;
      StartMove(z, n, *to, n.str() + " is being decommissioned", c, plan);
      moving.insert(id);
      break;
    }
  }
}

// Copies from the node holding the most to the one with room holding the
// fewest, while they differ by kReplicaBalanceMinGap or more.
void PlanSpreadByCount(const ClusterSnapshot& s, CopyCounts& c, std::set<RangeId>& moving,
                       Plan& plan) {
  for (size_t round = 0; round < s.ranges.size(); ++round) {
    std::optional<NodeId> hot, cold;
    for (const auto& [n, k] : c.held) {
      if (!hot || k > c.held.at(*hot)) hot = n;
      if (c.inbound[n] < s.moves_per_node && (!cold || k < c.held.at(*cold))) cold = n;
    }
    if (!hot || !cold || c.held.at(*hot) - c.held.at(*cold) < kReplicaBalanceMinGap) return;
    // A range the hot node holds and the cold one does not; one it does
    // not own first (no transfer needed), then the lowest id.
    const RangeZnode* best = nullptr;
    for (const auto& [id, z] : s.ranges) {
      const RangeInfo& r = *z.info;
      if (moving.count(id) || !Holds(r, *hot) || Holds(r, *cold)) continue;
      if (best == nullptr || (best->info->owner == *hot && r.owner != *hot)) best = &z;
    }
    if (best == nullptr) return;
    const std::string why = hot->str() + " holds " + std::to_string(c.held.at(*hot)) +
                            " replicas, " + cold->str() + " " + std::to_string(c.held.at(*cold));
    StartMove(*best, *hot, *cold, why, c, plan);
    moving.insert(best->info->id);
  }
}

// Copies by bytes: from the node holding the most bytes to the one with
// room holding the fewest, while one of them is more than a tenth off the
// mean and they differ by more than kBytesBalanceMinGap. Each move takes
// less than the gap off the hot one, so the sum of squares over the nodes
// falls with every move and no move is ever undone by a later one. The
// range moved is below the gap (else the move only swaps their roles) and
// nearest what both can take without passing the mean (the hot node's
// excess or the cold one's shortfall, the smaller; half the gap when the
// cold one is above it), one the hot node does not own on a tie.
void PlanSpreadByBytes(const ClusterSnapshot& s, CopyCounts& c, std::set<RangeId>& moving,
                       Plan& plan) {
  const uint64_t mean = c.total_bytes / c.held_bytes.size();
  for (size_t round = 0; round < s.ranges.size(); ++round) {
    std::optional<NodeId> hot, cold;
    for (const auto& [n, b] : c.held_bytes) {
      if (!hot || b > c.held_bytes.at(*hot)) hot = n;
      if (c.inbound[n] < s.moves_per_node && (!cold || b < c.held_bytes.at(*cold))) cold = n;
    }
    if (!hot || !cold) return;
    const uint64_t hot_b = c.held_bytes.at(*hot), cold_b = c.held_bytes.at(*cold);
    if (hot_b <= cold_b) return;
    const uint64_t gap = hot_b - cold_b;
    if (gap <= kBytesBalanceMinGap || (hot_b <= mean + mean / 10 && cold_b + mean / 10 >= mean)) {
      return;
    }
    const uint64_t want =
        cold_b < mean && hot_b > mean ? std::min(hot_b - mean, mean - cold_b) : gap / 2;
    const RangeZnode* best = nullptr;
    uint64_t best_miss = UINT64_MAX;
    for (const auto& [id, z] : s.ranges) {
      const RangeInfo& r = *z.info;
      if (moving.count(id) || !Holds(r, *hot) || Holds(r, *cold)) continue;
      const uint64_t b = c.range_bytes[id];
      if (b == 0 || b >= gap) continue;
      const uint64_t miss = want > b ? want - b : b - want;
      if (miss < best_miss ||
          (best != nullptr && miss == best_miss && best->info->owner == *hot && r.owner != *hot)) {
        best = &z;
        best_miss = miss;
      }
    }
    if (best == nullptr) return;
    const std::string why = hot->str() + " holds " + std::to_string(hot_b) + " bytes, " +
                            cold->str() + " " + std::to_string(cold_b);
    StartMove(*best, *hot, *cold, why, c, plan);
    moving.insert(best->info->id);
  }
}

// By bytes once every range's are reported and the copies hold
// kBytesBalanceFloor or more; by count otherwise. Nothing while the
// copies are big but a range's bytes are not known yet: a count move then
// could be undone by the next round's byte move.
void PlanSpreadMoves(const ClusterSnapshot& s, CopyCounts& c, std::set<RangeId>& moving,
                     Plan& plan) {
  if (c.total_bytes < kBytesBalanceFloor) {
    PlanSpreadByCount(s, c, moving, plan);
  } else if (c.bytes_known) {
    PlanSpreadByBytes(s, c, moving, plan);
  }
}

// Replica moves: off the nodes being decommissioned (always), then to
// spread the copies (when balancing); never more than s.moves_per_node
// into one node, one per range. True when a move is under way or one was
// planned: the owners stay put then.
bool PlanReplicaMoves(const ClusterSnapshot& s, Plan& plan) {
  CopyCounts c = CountCopies(s);
  if (!c.settled) return c.under_way;
  std::set<RangeId> moving;
  for (const auto& [id, z] : s.ranges) {
    if (z.info->move_replica) moving.insert(id);
  }
  const size_t before = plan.writes.size();
  PlanDrainMoves(s, c, moving, plan);
  if (s.balance && c.held.size() >= 2) PlanSpreadMoves(s, c, moving, plan);
  return c.under_way || plan.writes.size() > before;
}

// The hottest of `load` that took no move this round and the coldest that
// took fewer than kBalanceMovesPerNode: when their gap is worth it, moves
// the range whose move leaves the two closest (its load nearest half the
// gap, and below the gap, else the move only swaps their roles) and
// counts it in `load`. False when there was nothing worth moving.
bool PlanOwnerMove(const ClusterSnapshot& s, bool by_load, const std::set<RangeId>& merging,
                   std::map<NodeId, int>& taken, std::set<RangeId>& planned,
                   std::map<NodeId, NodeLoad>& load, Plan& plan) {
  auto metric = [&](const NodeLoad& l) { return by_load ? l.qps : static_cast<uint64_t>(l.owned); };
  std::optional<NodeId> hot, cold;
  for (const auto& [id, l] : load) {
    const int took = taken[id];
    if (took == 0 && (!hot || metric(l) > metric(load.at(*hot)))) hot = id;
    if (took < kBalanceMovesPerNode && (!cold || metric(l) < metric(load.at(*cold)))) cold = id;
  }
  if (!hot || !cold || *hot == *cold) return false;
  NodeLoad& from = load.at(*hot);
  NodeLoad& to = load.at(*cold);
  const uint64_t gap = metric(from) - metric(to);
  const bool worth =
      by_load ? gap > std::max<uint64_t>(kBalanceMinGapQps, metric(from) / 5) : gap >= 2;
  if (!worth) return false;
  const RangeZnode* best = nullptr;
  uint64_t best_q = 0;
  uint64_t best_miss = UINT64_MAX;
  for (const auto& [id, z] : s.ranges) {
    if (z.info->owner != *hot || s.recently_moved.count(id) || merging.count(id) ||
        planned.count(id) || !CanMove(s, *z.info, *cold)) {
      continue;
    }
    uint64_t q = 1;
    if (by_load) {
      q = RangeLoad(s, id);
      if (q == 0 || q >= gap) continue;
    }
    const uint64_t miss = by_load ? static_cast<uint64_t>(std::llabs(static_cast<long long>(gap) -
                                                                     2 * static_cast<long long>(q)))
                                  : 0;
    if (miss < best_miss) {
      best = &z;
      best_q = q;
      best_miss = miss;
    }
  }
  if (best == nullptr) return false;
  const std::string unit = by_load ? " req/s" : " ranges";
  const std::string why = hot->str() + " carries " + std::to_string(metric(from)) + unit + ", " +
                          cold->str() + " " + std::to_string(metric(to)) + unit;
  RangeInfo rec = *best->info;
  rec.move_to = *cold;
  plan.writes.push_back(Write(*best, std::move(rec),
                              why + ": moving range " + std::to_string(best->info->id.value()) +
                                  (by_load ? " (" + std::to_string(best_q) + " req/s)" : "") +
                                  " to " + cold->str()));
  planned.insert(best->info->id);
  ++taken[*cold];
  from.qps -= by_load ? best_q : 0;
  to.qps += by_load ? best_q : 0;
  --from.owned;
  ++to.owned;
  return true;
}

}  // namespace

void PlanBalance(const ClusterSnapshot& s, Plan& plan) {
  if (!plan.empty()) return;
  if (s.balance && (CheckPendingMoves(s, plan) || !plan.empty())) return;
  if (PlanReplicaMoves(s, plan) || !s.balance) return;
  if (PlanColocation(s, plan)) return;
  // Ranges about to merge are not moved apart again.
  std::set<RangeId> merging;
  for (const auto& [left, right] : MergePairs(s)) {
    merging.insert(left->info->id);
    merging.insert(right->info->id);
  }
  std::map<NodeId, NodeLoad> load;
  for (const auto& [id, n] : s.live_nodes) {
    if (Fit(s, id)) load[id];
  }
  if (load.size() < 2) return;
  for (const auto& [id, z] : s.ranges) {
    // Only a settled map is balanced: every range active with its owner.
    if (!z.info || z.info->state != cluster::RangeState::kActive || !z.info->owner) return;
    auto it = load.find(*z.info->owner);
    if (it == load.end()) continue;
    ++it->second.owned;
    it->second.qps += RangeLoad(s, id);
  }
  uint64_t total = 0;
  for (const auto& [id, l] : load) total += l.qps;
  const bool by_load = total >= kBalanceMinQps;
  if (by_load && !LoadsSettled(s)) return;
  // Up to kBalanceMovesPerNode moves into each node per round, each
  // planned on the loads as the moves before it in the round leave them;
  // the next round waits for their reports.
  std::map<NodeId, int> taken;
  std::set<RangeId> planned;
  while (PlanOwnerMove(s, by_load, merging, taken, planned, load, plan)) {
  }
}

}  // namespace rangekv::coordinator
