// Deleting the copies a node no longer holds (docs/replication.md §11).
//
// A range the map lists without this node (its copy moved away, the node
// drained or replaced while it was down) keeps nothing here anyone can use:
// the node is out of the range's replicas, so its copy counts for no
// write, and a later move back starts it as a new replica. Kept, the copy
// only held disk a drained node never got back, and a move back reopened
// it whole (replaying its log) and then caught up on everything written
// since, where a new copy starts from the owner's newest snapshot.
//
// Kept nonetheless: a directory a seed marker names (a range still to
// write its first snapshot is built from it again after a crash), a
// parent a range split off it is still to be built from here, an open
// merge parent, everything of a range the map does not list (merged
// away: DropMergedParents decides), and every copy of a range with an
// empty ISR (no copy in sync anywhere: an operator may want the old ones).
//
// Crash safety: the directory is renamed to ranges/<id>.removed (one
// atomic step, made durable before any file goes) so a crash midway
// leaves no half-deleted store that could open as an older copy; the next
// sweep deletes what the crash left, and a rename a crash took back is
// simply made again. The sync and the unlinks run on the DirRemover's
// worker: under load they took 60-300 ms, which Apply (under the control
// lock) must not wait for.
#include <algorithm>
#include <string_view>

#include "common/log.h"
#include "kvnode/replication/replicator.h"
#include "kvnode/server/node.h"

namespace rangekv::kvnode {
namespace {

std::string RangeName(RangeId id) { return "range " + std::to_string(id.value()); }

std::string Replicas(const cluster::RangeInfo& r) {
  std::string out;
  for (const NodeId& n : r.replicas) out += (out.empty() ? "" : ",") + n.str();
  return out.empty() ? "none" : out;
}

constexpr std::string_view kRemovedSuffix = ".removed";
constexpr std::string_view kIncomingSuffix = ".incoming";
constexpr std::string_view kCopySuffix = ".copy";

bool EndsWith(const std::string& s, std::string_view tail) {
  return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "<digits>" as a range id; nullopt for anything else in the directory.
std::optional<RangeId> RangeDirId(const std::string& name) {
  if (name.empty() || name.size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return RangeId(v);
}

bool Holds(const cluster::RangeInfo& r, const NodeId& self) {
  return r.owner == self ||
         std::find(r.replicas.begin(), r.replicas.end(), self) != r.replicas.end();
}

}  // namespace

void Node::DropRangesLeft(const cluster::ClusterMap& map, const std::set<RangeId>& seed_sources) {
  fs::FileSystem& fs = env_.fs();
  const std::string ranges = dir_->RangesDir();
  auto names = fs.ListDir(ranges);
  if (!names.ok()) return;  // tried again at the next Apply
  for (const std::string& name : *names) {
    const std::string path = fs::JoinPath(ranges, name);
    if (EndsWith(name, kRemovedSuffix)) {
      remover_->Remove(path);  // left by a crash, or still being deleted
      continue;
    }
    // A snapshot copy (and its identity) left behind by a range no
    // longer held here.
    std::string_view tail;
    for (std::string_view t : {kIncomingSuffix, kCopySuffix}) {
      if (EndsWith(name, t)) tail = t;
    }
    const std::optional<RangeId> rid = RangeDirId(name.substr(0, name.size() - tail.size()));
    if (!rid) continue;
    auto listed = map.ranges.find(*rid);
    if (listed == map.ranges.end() || Holds(listed->second, id())) continue;
    // No copy in sync anywhere: the range waits for an operator, who may
    // want every old copy there is.
    if (listed->second.isr.empty()) continue;
    if (slots_.count(*rid) || merge_parents_.count(*rid) || unopened_seeds_.count(*rid) ||
        seed_sources.count(*rid)) {
      continue;
    }
    if (ChildToBuildFrom(map, *rid)) continue;
    // The last copy of this id is still being deleted: the next Apply.
    if (std::binary_search(names->begin(), names->end(), name + std::string(kRemovedSuffix))) {
      continue;
    }
    if (!tail.empty()) {
      if (Status st = fs.Remove(path); !st.ok())
        LOG_WARN("deleting " << path << ": " << st.ToString());
      continue;
    }
    if (Status st = DropRangeDir(path); !st.ok()) {
      LOG_WARN(RangeName(*rid) << ": deleting the copy this node no longer holds: "
                               << st.ToString());
      continue;
    }
    LOG_INFO(RangeName(*rid) << ": no longer held here (replicas " << Replicas(listed->second)
                             << "); its directory is deleted");
    if (config_.replication.step_hook) config_.replication.step_hook("range.dropped", *rid);
  }
}

Status Node::DropRangeDir(const std::string& path) {
  fs::FileSystem& fs = env_.fs();
  // Its own marker first: it would keep its sources' keys.
  RANGEKV_RETURN_IF_ERROR(RemoveSeedMarker(fs, path));
  const std::string removed = path + std::string(kRemovedSuffix);
  RANGEKV_RETURN_IF_ERROR(fs.Rename(path, removed));
  // A copy being made again that is no longer wanted: a later copy here
  // starts as a new replica, not as a lost one.
  auto marker = fs.IsDirectory(CopyingMarkerPath(path));
  if (marker.ok() && marker->has_value()) {
    RANGEKV_RETURN_IF_ERROR(fs.Remove(CopyingMarkerPath(path)));
  }
  // Off the control path, after a sync of the ranges directory (which
  // makes the rename durable first): both can take long under load.
  remover_->Remove(removed);
  return Status::Ok();
}

}  // namespace rangekv::kvnode
