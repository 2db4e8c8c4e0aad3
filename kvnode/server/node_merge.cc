// A node's part in a merge (docs/elastic.md §4): every replica in the
// merged range's ISR builds it from its own copies of the two ranges
// merged, as of their merge points.
//
// The merged range opens from both ranges' entries as of their merge
// points, taken out of their maps (kvnode/storage/store_seed.h), and
// writes its first snapshot in
// the background. Crash safety: its directory starts with a seed marker
// naming the two ranges (written before the directory, removed once the
// first snapshot is durable), and their directories are deleted only once
// no marker names them, so the data of both is on disk at every moment: a
// crash leaves no directory (the build runs again at the next Apply: it
// is a pure function of the two logs through their merge points) or a
// marked one, which opens from a seed read again from the two's files.
#include <algorithm>
#include <set>

#include "common/log.h"
#include "kvnode/server/node.h"

namespace rangekv::kvnode {
namespace {

std::string RangeName(RangeId id) { return "range " + std::to_string(id.value()); }

}  // namespace

std::shared_ptr<RangeStore> Node::MergeParentStore(RangeId id, const KeyRange& bounds,
                                                   const cluster::ClusterMap& map,
                                                   ApplyReport& report) {
  if (auto it = merge_parents_.find(id); it != merge_parents_.end()) return it->second;
  if (auto it = slots_.find(id); it != slots_.end()) {
    // Kept open past the slot's end (Apply closes slots of ranges gone from
    // the map) until the merged range is built.
    if (std::shared_ptr<RangeStore> store = it->second->store()) merge_parents_[id] = store;
    return it->second->store();
  }
  if (RangeDirEmpty(env_.fs(), dir_->RangeDir(id)) || IsCopying(env_.fs(), dir_->RangeDir(id))) {
    return nullptr;
  }
  cluster::RangeInfo info;
  info.id = id;
  info.bounds = bounds;
  auto store = OpenRangeStore(info, map, report);
  if (!store.ok()) {
    LOG_WARN(RangeName(id) << ": opening it to build the range it was merged into: "
                           << store.status().ToString());
    return nullptr;
  }
  merge_parents_[id] = *store;
  return *store;
}

Status Node::DeriveMerge(const cluster::ClusterMap& map, const cluster::RangeInfo& r,
                         ApplyReport& report) {
  // Built late, from a map where r has been split since, r is built with
  // every key the merge gave it; the ranges split off are then built from
  // it, and r narrows after them (as for a split, node_split.cc).
  const KeyRange span = SpanAtSplit(map, r);
  if ((span.end() && map.Locate(*span.end()) == nullptr) || !span.Contains(r.merge_key) ||
      r.merge_key == span.start()) {
    return Status(Code::kRangeUnavailable,
                  RangeName(r.id) + " waits for a map read that shows all of it");
  }
  struct Part {
    RangeId id;
    KeyRange bounds;
    Seq at;
    std::shared_ptr<RangeStore> store;
  };
  Part parts[] = {{r.merge_left, KeyRange(span.start(), r.merge_key), r.merge_left_seq, {}},
                  {r.merge_right, KeyRange(r.merge_key, span.end()), r.merge_right_seq, {}}};
  for (Part& p : parts) {
    p.store = MergeParentStore(p.id, p.bounds, map, report);
    // Every ISR member held the log through the merge point durably when
    // the owner asked for the merge: a copy that ends before it (or holds
    // no longer the keys) is not that copy. It is copied from the owner.
    if (!p.store || !p.store->Holds(p.bounds) || p.store->last().seq < p.at) {
      LOG_WARN(RangeName(r.id) << ": this node's copy of " << RangeName(p.id)
                               << " cannot build it; copying it from its owner");
      split_lost_.insert(r.id);
      return Status::Ok();
    }
  }
  for (Part& p : parts) {
    if (p.store->committed() < p.at) {
      // The map says the owner saw every record through the merge point
      // committed (its ISR held them): apply them. The owner's answer that
      // would have said so may never come, the range being gone.
      p.store->Commit(p.at);
      return Status(Code::kRangeUnavailable, RangeName(r.id) + " is being built from " +
                                                 RangeName(p.id) + " here (its copy has applied " +
                                                 std::to_string(p.store->committed().value()) +
                                                 " of " + std::to_string(p.at.value()) + ")");
    }
  }
  const auto start = MonoClock::now();
  // The log continues above the later of the two ends; its base is that
  // record's epoch (the left's when they end at the same seq), the same on
  // every replica.
  const Seq at = std::max(r.merge_left_seq, r.merge_right_seq);
  const Epoch base = r.merge_left_seq >= r.merge_right_seq
                         ? parts[0].store->EpochAt(r.merge_left_seq)
                         : parts[1].store->EpochAt(r.merge_right_seq);
  const SeedRecipe recipe{at,
                          base,
                          {SeedSource{parts[0].id, parts[0].bounds, parts[0].at},
                           SeedSource{parts[1].id, parts[1].bounds, parts[1].at}}};
  Status st = RangeStore::PrepareSeeded(r.id, span, recipe, StoreOptionsFor(r.id));
  if (!st.ok()) {
    LOG_ERROR(RangeName(r.id) << ": preparing it from " << RangeName(r.merge_left) << " and "
                              << RangeName(r.merge_right) << ": " << st.ToString());
    return st;
  }
  report.derived.push_back(r.id);
  if (config_.replication.step_hook) config_.replication.step_hook("merge.built", r.id);
  LOG_INFO(
      RangeName(r.id)
      << " " << r.bounds.ToString() << ": merged from " << RangeName(r.merge_left) << " (seq "
      << r.merge_left_seq.value() << ") and " << RangeName(r.merge_right) << " (seq "
      << r.merge_right_seq.value() << "), prepared to open from the local copies in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(MonoClock::now() - start).count()
      << " ms");
  return Status::Ok();
}

bool Node::ChildToBuildFrom(const cluster::ClusterMap& map, RangeId parent) const {
  for (const auto& [id, r] : map.ranges) {
    if (r.split_parent == parent && ShouldDerive(r)) return true;
  }
  return false;
}

void Node::DropMergedParents(const cluster::ClusterMap& map,
                             const std::set<RangeId>& seed_sources) {
  for (const auto& [rid, r] : map.ranges) {
    // A merged range being copied from its owner is not here yet: its
    // parents' files stay until it is, the last records of both perhaps
    // (the copy may never finish, its source gone).
    const std::string merged_dir = dir_->RangeDir(rid);
    if (!r.merged() || !slots_.count(rid) || RangeDirEmpty(env_.fs(), merged_dir) ||
        IsCopying(env_.fs(), merged_dir)) {
      continue;
    }
    for (RangeId parent : {r.merge_left, r.merge_right}) {
      // Named by a seed marker: a range whose first snapshot is still to
      // be durable (the merged one, or one split off the parent) would be
      // built from it again after a crash.
      if (map.ranges.count(parent) || slots_.count(parent) || seed_sources.count(parent)) {
        continue;
      }
      // A range split off the parent and still to be built from it here
      // keeps it.
      if (ChildToBuildFrom(map, parent)) continue;
      if (auto open = merge_parents_.find(parent); open != merge_parents_.end()) {
        (void)CloseStore(parent, *open->second);  // logged
        merge_parents_.erase(open);
      }
      const std::string dir = dir_->RangeDir(parent);
      if (RangeDirEmpty(env_.fs(), dir)) continue;
      // Its own marker first (it would keep its sources), then its files.
      Status st = RemoveSeedMarker(env_.fs(), dir);
      if (st.ok()) st = env_.fs().RemoveAll(dir);
      if (!st.ok()) {
        LOG_WARN(RangeName(parent) << ": deleting its directory after the merge into "
                                   << RangeName(rid) << ": " << st.ToString());
        continue;
      }
      LOG_INFO(RangeName(parent) << ": merged into " << RangeName(rid)
                                 << "; its directory is deleted");
      if (config_.replication.step_hook) config_.replication.step_hook("merge.dropped", parent);
    }
  }
}

}  // namespace rangekv::kvnode
