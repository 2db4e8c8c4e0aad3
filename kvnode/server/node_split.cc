// A node's part in a split (docs/elastic.md §3): every replica builds the
// new range from its own copy of the parent, as of the split point.
//
// The new range opens from the parent's entries of its span as of the
// split seq, taken out of the parent's map (kvnode/storage/store_seed.h),
// and writes its first snapshot in the background: its writes never wait
// for a copy on disk.
// Crash safety: its directory starts with a seed marker naming the parent
// (written before the directory, removed once the first snapshot is
// durable). A crash before leaves no directory (the build runs again at
// the next Apply: it is a pure function of the parent's log through the
// split seq) or a marked one, which opens from a seed read again from
// the parent's files. The parent's files keep every key while a marker
// names it: only then does it narrow (RangeStore::RetainOnly), durably.
#include <algorithm>
#include <set>

#include "common/log.h"
#include "kvnode/server/node.h"

namespace rangekv::kvnode {
namespace {

std::string RangeName(RangeId id) { return "range " + std::to_string(id.value()); }

bool Inside(const KeyRange& inner, const KeyRange& outer) {
  return inner.end() ? outer.ContainsSpan(inner.start(), std::string_view(*inner.end()))
                     : outer.ContainsSpan(inner.start(), std::nullopt);
}

}  // namespace

KeyRange SpanAtSplit(const cluster::ClusterMap& map, const cluster::RangeInfo& r) {
  std::set<RangeId> family{r.id};
  std::optional<std::string> end = r.bounds.end();
  for (bool grew = true; grew && end;) {
    grew = false;
    for (const auto& [id, d] : map.ranges) {
      if (family.count(d.split_parent) && d.bounds.start() == *end) {
        family.insert(id);
        end = d.bounds.end();
        grew = true;
        break;
      }
    }
  }
  return KeyRange(r.bounds.start(), end);
}

// The owner builds it whatever incarnation its ISR place names: it fenced
// and drained the parent itself, so its copy holds the split point (and a
// copy that does not is caught below and copied). Else a transfer to a
// node whose ISR place predates a wipe (caught up, but recorded under its
// old incarnation until the coordinator sees it) left the owner opening
// the new range empty and leading it (seed 211323).
bool Node::ShouldDerive(const cluster::RangeInfo& r) const {
  return (r.split_parent.value() != 0 || r.merged()) && !slots_.count(r.id) &&
         (InIsrAsThisCopy(r) || r.owner == id()) && RangeDirEmpty(env_.fs(), dir_->RangeDir(r.id));
}

std::map<RangeId, Status> Node::DeriveSplits(const cluster::ClusterMap& map, ApplyReport& report,
                                             std::set<RangeId>* busy_parents) {
  std::map<RangeId, Status> waiting;
  for (const auto& [rid, r] : map.ranges) {
    const bool holds = r.owner == id() || std::find(r.replicas.begin(), r.replicas.end(), id()) !=
                                              r.replicas.end();
    if (!holds || !ShouldDerive(r)) continue;
    if (r.merged()) {
      if (Status st = DeriveMerge(map, r, report); !st.ok()) {
        waiting[rid] = st;
        report.retry_soon = true;
      }
      continue;
    }
    // The parent is itself still to be built here (a split of a range just
    // split off): this one waits for it. Opening the parent now would make
    // an empty store that later passes for its copy.
    auto parent_info = map.ranges.find(r.split_parent);
    if (waiting.count(r.split_parent) ||
        (parent_info != map.ranges.end() && ShouldDerive(parent_info->second))) {
      waiting[rid] = Status(Code::kRangeUnavailable,
                            RangeName(rid) + " waits for " + RangeName(r.split_parent) +
                                " to be split off its own parent here first");
      report.retry_soon = true;
      continue;
    }
    const KeyRange span = SpanAtSplit(map, r);
    if (span.end() && map.Locate(*span.end()) == nullptr) {
      // No range holds the keys right of r's family: this read straddled a
      // split of r (znodes are read one by one) and misses the new range.
      // Built now, r would lack its keys; the next read shows them.
      waiting[rid] = Status(Code::kRangeUnavailable,
                            RangeName(rid) + " waits for a map read that shows all of it");
      report.retry_soon = true;
      continue;
    }
    std::shared_ptr<RangeStore> parent = ParentStore(map, r.split_parent, span, report);
    // Without the parent's whole copy there is nothing to build from: this
    // node's place in the ISR names a copy it does not have, so the range
    // is copied from its owner like any lost copy (never an empty store
    // passing for it). (A parent opened by this process after the split has
    // the narrowed bounds, but holds every key until RetainOnly says
    // otherwise.) Every ISR member held the parent's log through the split
    // point durably: a copy that ends before it is not that copy (seed
    // 81150: a replica dropped from the parent's ISR before it had built
    // the parent opened it as a new copy, and waited in the new range's
    // ISR for a build that could never come; it was promoted with nothing).
    if (!parent || !parent->Holds(span) || parent->last().seq < r.split_seq) {
      split_lost_.insert(rid);
      continue;
    }
    busy_parents->insert(r.split_parent);
    if (parent->committed() < r.split_seq) {
      // An ISR member holds the split point durably, and the map says the
      // owner saw it committed (it drained before the multi): apply it.
      // The owner's answer that would have said so may never come: the
      // parent may be merged away first, leaving this ISR member of the
      // new range without it (simulation seed 1394).
      parent->Commit(r.split_seq);
      waiting[rid] = Status(Code::kRangeUnavailable,
                            RangeName(rid) + " is being split off " + RangeName(r.split_parent) +
                                " here (its copy has applied " +
                                std::to_string(parent->committed().value()) + " of " +
                                std::to_string(r.split_seq.value()) + ")");
      report.retry_soon = true;
      continue;
    }
    auto start = MonoClock::now();
    const SeedRecipe recipe{
        r.split_seq, parent->EpochAt(r.split_seq), {SeedSource{r.split_parent, span, r.split_seq}}};
    Status st = RangeStore::PrepareSeeded(rid, span, recipe, StoreOptionsFor(rid));
    if (!st.ok()) {
      LOG_ERROR(RangeName(rid) << ": building it from " << RangeName(r.split_parent) << " at seq "
                               << r.split_seq.value() << ": " << st.ToString());
      waiting[rid] = st;
      report.retry_soon = true;
      continue;
    }
    report.derived.push_back(rid);
    if (config_.replication.step_hook) config_.replication.step_hook("split.built", rid);
    LOG_INFO(
        RangeName(rid)
        << " " << r.bounds.ToString() << ": split off " << RangeName(r.split_parent) << " at seq "
        << r.split_seq.value() << ", prepared to open from the local copy in "
        << std::chrono::duration_cast<std::chrono::milliseconds>(MonoClock::now() - start).count()
        << " ms");
  }
  // A parent may narrow once none of its children waits.
  for (auto it = busy_parents->begin(); it != busy_parents->end();) {
    bool still = false;
    for (const auto& [child, why] : waiting) {
      const cluster::RangeInfo& c = map.ranges.at(child);
      still = still || (!c.merged() && c.split_parent == *it);
    }
    it = still ? std::next(it) : busy_parents->erase(it);
  }
  return waiting;
}

// The parent's store, opened now when this process has not opened it yet
// (a restart): as it is on disk, every key still there.
std::shared_ptr<RangeStore> Node::ParentStore(const cluster::ClusterMap& map, RangeId parent,
                                              const KeyRange& span, ApplyReport& report) {
  if (auto it = slots_.find(parent); it != slots_.end()) return it->second->store();
  auto info = map.ranges.find(parent);
  if (info == map.ranges.end()) {
    // Merged away since: its store stays open, and its directory kept,
    // while a range split off it is still to be built here (simulation
    // seed 91225: a replica whose build had failed found no parent and
    // took the range for a lost copy).
    return MergeParentStore(parent, span, map, report);
  }
  const cluster::RangeInfo& p = info->second;
  const bool holds = p.owner == id() ||
                     std::find(p.replicas.begin(), p.replicas.end(), id()) != p.replicas.end();
  if (!holds) return nullptr;
  Status unavailable;
  std::shared_ptr<RangeSlot> slot = HoldRange(p, map, report, &unavailable, /*narrow=*/false);
  return slot ? slot->store() : nullptr;
}

bool Node::Narrow(RangeSlot& slot, const cluster::RangeInfo& r, const cluster::ClusterMap& map) {
  std::shared_ptr<RangeStore> store = slot.store();
  if (!store || !Inside(r.bounds, store->bounds())) return false;
  if (store->HoldsOnly(r.bounds)) return true;
  // The map is read znode by znode: a read that straddles a split shows the
  // parent narrowed while the range split off it is not listed yet. Its
  // keys stay until a read shows who holds them (the new range's znode
  // fires the watch, so that read follows at once), or this copy of the
  // parent is the copy the new range is built from. What the store holds
  // is what it retained, not its bounds: an owner narrows those for its
  // writes the moment the split is written.
  const KeyRange wide = store->retained().value_or(KeyRange("", std::nullopt));
  const bool left_held =
      wide.start() >= r.bounds.start() || map.Covers(wide.start(), r.bounds.start(), r.id);
  const bool right_held = !r.bounds.end() || (wide.end() && *wide.end() <= *r.bounds.end()) ||
                          map.Covers(*r.bounds.end(), wide.end(), r.id);
  if (!left_held || !right_held) {
    LOG_DEBUG(RangeName(r.id) << ": not narrowed to " << r.bounds.ToString()
                              << " yet: the map read shows no range holding the rest");
    return true;
  }
  // Dropping the keys walks the map: done once the new table is out, so
  // the ranges split off (and everything else) serve first.
  narrow_later_.push_back({store, r.bounds, r.id});
  return true;
}

void Node::NarrowPending() {
  for (const PendingNarrow& n : narrow_later_) {
    if (Status st = n.store->RetainOnly(n.bounds); !st.ok()) {
      // Tried again at the next Apply (it still holds keys outside).
      LOG_ERROR(RangeName(n.range) << ": narrowing to " << n.bounds.ToString() << ": "
                                   << st.ToString());
    } else if (config_.replication.step_hook) {
      config_.replication.step_hook("split.narrowed", n.range);
    }
  }
  narrow_later_.clear();
}

}  // namespace rangekv::kvnode
