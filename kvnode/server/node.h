// kvnode/server/node.h — one kvnode: its data directory, the ranges it serves, and
// routing a request to the RangeStore that holds its key.
//
// The data directory's identity file, lock and layout are specified in
// kvnode/server/data_dir.h. Range data lives in DIR/ranges/<range-id>/.
//
// Modes:
//   - standalone: one range, kStandaloneRange, covering the whole key space,
//     owned by this node at epoch 0; fixed at Open.
//   - cluster: the ranges come from the cluster map in ZooKeeper
//     (kvnode/cluster/cluster_member.h reads it and calls Apply). Until the first
//     Apply every request gets RANGE_UNAVAILABLE "not yet joined".
//
// Data plane / control plane. Requests route through an immutable
// RoutingTable (kvnode/server/routing.h) that the control plane replaces as a
// whole (an atomic shared_ptr swap): an I/O thread never waits for a lock,
// for ZooKeeper or for the disk. Apply does the slow work (opening stores
// replays their logs) before publishing, and closes stores only after the
// table without them is published:
//
//   Apply(map):  open stores of ranges newly owned here  (disk I/O)
//                publish the new table                    (requests switch)
//                close stores of ranges no longer owned   (data stays on disk)
//
// A request that picked up the old table a moment before the swap may still
// reach a store being closed; its write then completes, or fails with
// UNAVAILABLE "range store is closed" — never touches freed memory (the
// table holds shared_ptrs).
//
// Lifecycle:
//
//   Open* --> serving (Apply / Suspend any number of times) --Close()--> closed
//
// Thread-safety: Route* and routing() are safe from any thread at any time
// while the Node exists. Apply, Suspend and Close are the control plane:
// one thread at a time (they serialise on a mutex), never an Asio thread
// (they block on disk I/O). Close() is called once the server stopped.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/cluster_map.h"
#include "common/mutex.h"
#include "common/protocol.h"
#include "common/types.h"
#include "kvnode/replication/range_slot.h"
#include "kvnode/replication/replicator.h"
#include "kvnode/server/data_dir.h"
#include "kvnode/server/dir_remover.h"
#include "kvnode/server/routing.h"
#include "kvnode/server/write_parking.h"
#include "kvnode/storage/range_store.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

// Node id of a standalone data directory created without --id.
inline constexpr std::string_view kDefaultStandaloneNodeId = "standalone";
// Why a cluster node refuses requests before it has read the map.
inline constexpr std::string_view kNotYetJoined =
    "not yet joined: the cluster map was not read yet";

struct NodeConfig {
  std::string data_dir;
  std::optional<NodeId> id;  // standalone: nullopt adopts the directory's; cluster: required
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  std::chrono::milliseconds fsync_interval{10};
  ReplicationOptions replication{};  // cluster mode
  // Storage thresholds (0: the store's default; see StoreOptions).
  size_t segment_bytes = 0;
  size_t snapshot_after_bytes = 0;
  uint64_t keep_log_records = 0;
  // Threads and files (nullptr: DefaultEnv()); the simulation's own.
  Env* env = nullptr;
  // Replication's transport (empty: TCP); the simulation's network.
  Replicator::TransportFactory transport{};
};

// What one Apply changed (for logs and tests).
struct ApplyReport {
  std::vector<RangeId> opened;       // stores opened and now served
  std::vector<RangeId> closed;       // stores closed (data kept on disk)
  std::vector<RangeId> failed;       // owned here, but the store did not open
  // Damaged local copies (CORRUPTION at open) set aside and replaced by an
  // empty store that copies the range again; the replicator keeps them out
  // of the ISR and ownership until they have (Replicator::MarkUntrusted).
  std::vector<RangeId> rebuilt;
  std::vector<RangeId> overlapping;  // left out of the table: they overlap another range
  // Ranges split off a parent this node holds, built here from the
  // parent's copy (docs/elastic.md §3).
  std::vector<RangeId> derived;
  size_t served = 0;                 // ranges served after the Apply
  size_t listed = 0;                 // ranges in the map applied (0: none was)
  // A split range waits for its parent's copy to apply the split point:
  // the caller should Apply again soon (the map need not change).
  bool retry_soon = false;
};

// The keys r held when it was made (split off its parent, or merged): its
// bounds, and to their right every range split off r (or off those) since
// (node_split.cc).
KeyRange SpanAtSplit(const cluster::ClusterMap& map, const cluster::RangeInfo& r);

class Node {
 public:
  // Opens the data directory (DataDir::Open's errors) and the single
  // standalone range's store (RangeStore::Open's errors, e.g. CORRUPTION,
  // with the range named). On error nothing stays locked or open.
  static Result<std::unique_ptr<Node>> OpenStandalone(const NodeConfig& config);
  // Opens the data directory of a cluster node; no store is opened until
  // Apply. BAD_REQUEST without an id; DataDir::Open's errors.
  static Result<std::unique_ptr<Node>> OpenCluster(const NodeConfig& config);

  ~Node();  // Close() if not yet closed
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const NodeId& id() const { return dir_->node_id(); }
  const DataDir& data_dir() const { return *dir_; }
  // Random per process start: the grants of the map are to it
  // (common/cluster_map.h "life").
  const std::string& life() const { return life_; }
  // This node may lack records it had acknowledged (cluster_map.h
  // "suspect"): the machine restarted (new boot id) after a process that
  // did not stop cleanly, with writes acknowledged before fsync (fsync
  // batch or never); or a store cut a damaged log end or the replicator
  // lost records; or a previous start was suspect and never caught up
  // (the SUSPECT marker). A process that merely died (kill -9, crash, OOM)
  // in the same boot loses nothing it wrote: the page cache keeps it.
  bool suspect() const {
    return tail_cut_.load() || copies_lost_.load() ||
           (replicator_ && replicator_->lost_records()) ||
           dir_->suspect_marked() ||
           (!dir_->previous_run_clean() && !dir_->previous_run_same_boot() &&
            config_.fsync != FsyncPolicy::kAlways);
  }
  // Suspect and not yet caught up with every owner since: what the node
  // znode says. Keeps the SUSPECT marker in step. Control plane thread
  // (waits for the replication thread).
  bool SuspectNow();
  // `self` as this node's znode says it: suspect or not and, while
  // suspect, where the log of each range it serves ends (cluster_map.h
  // "log_ends"), by which the coordinator ranks suspect copies. Any thread.
  cluster::NodeInfo WithSuspicion(cluster::NodeInfo self, bool suspect) const;

  // ---- data plane (any thread) ----

  // The current table. Callers keep the shared_ptr for the duration of one
  // request, so the stores it names stay alive while they are used.
  std::shared_ptr<const RoutingTable> routing() const { return table_.load(); }
  // RoutingTable::ForKey / ForBatch on the current table.
  Route RouteKey(RangeId requested, Epoch epoch, std::string_view key,
                 Access access = Access::kWrite) const;
  Route RouteBatch(RangeId requested, Epoch epoch, const std::vector<proto::WriteOp>& ops) const;
  // Ranges served right now.
  size_t range_count() const { return routing()->served(); }
  // Requests admitted so far (RangeSlot::requests), keys and bytes of each
  // range this node owns per the current table.
  struct OwnedCounts {
    uint64_t requests = 0;  // admitted since the slot opened
    uint64_t keys = 0;
    uint64_t bytes = 0;
    bool mergeable = false;  // RangeSlot::mergeable
  };
  std::map<RangeId, OwnedCounts> OwnedRequestCounts() const;

  // The replication of a cluster node (nullptr when standalone).
  Replicator* replicator() const { return replicator_.get(); }
  // Where writes wait out a fence (nullptr when standalone: nothing fences).
  WriteParking* parking() const { return parking_.get(); }

  // ---- control plane (one thread at a time, never an Asio thread) ----

  // Holds exactly the ranges `map` gives to this node (owner, or one of
  // the replicas): opens their stores (DIR/ranges/<id>/, bounds from the
  // map; a store whose bounds changed is reopened), hands them to the
  // replicator (which admits requests per role), publishes the table,
  // closes the stores of ranges it no longer holds. A store that fails to open makes its range
  // answer RANGE_UNAVAILABLE with the reason; the next Apply retries it.
  // Standalone nodes ignore Apply (INTERNAL in the log, nothing changes).
  ApplyReport Apply(const cluster::ClusterMap& map) EXCLUDES(control_mu_);
  // News of a split or merge: from the owner of a range held here
  // (Replicator::NewsFn), or this node's own multi (the member, at once,
  // as the owner of what it made): the last map Apply got, patched with it
  // (ClusterMap::PatchNews), is applied at once; every later Apply patches
  // its map with the news too, until a map shows it (ShowsNews): a map
  // read that began before the multi must not undo what the news built.
  // Empty news re-applies the last map while news is outstanding (a range
  // the news made waits for its parent's copy: retry_soon). Nothing
  // happens before the first Apply, or for news already known.
  ApplyReport ApplyNews(cluster::ClusterMap::Written news) EXCLUDES(control_mu_);
  // News that no map applied since has shown yet.
  bool NewsOutstanding() const EXCLUDES(control_mu_);
  // Stops serving every range (RANGE_UNAVAILABLE "node X: <reason>") until
  // the next Apply (ApplyNews does nothing until then); stores stay open so
  // serving resumes at once.
  void Suspend(std::string reason) EXCLUDES(control_mu_);

  // Closes every store (queued writes complete, logs fsynced). Returns the
  // first error; later calls return OK. Routing afterwards answers
  // RANGE_UNAVAILABLE "node is shutting down".
  Status Close() EXCLUDES(control_mu_);

 private:
  enum class Mode { kStandalone, kCluster };
  Node(std::unique_ptr<DataDir> dir, NodeConfig config, Mode mode);
  // Apply of a map already patched with the outstanding news.
  ApplyReport ApplyLocked(const cluster::ClusterMap& map) REQUIRES(control_mu_);
  // The last map Apply got, patched with the outstanding news.
  cluster::ClusterMap PatchedLastMap() const REQUIRES(control_mu_);
  void Publish(std::shared_ptr<const RoutingTable> table) {
    table_.store(std::move(table));
    if (parking_) parking_->Wake();  // parked writes route by the new table
  }
  // Opens the store of range r (blocking: log replay); seed: for a
  // directory that needs one (RangeStore::PendingSeed).
  Result<std::shared_ptr<RangeStore>> OpenStore(const cluster::RangeInfo& r,
                                                StoreSeed* seed = nullptr);
  // OpenStore, with the seed its directory needs copied from the stores
  // of its sources here (opened when they are not yet).
  Result<std::shared_ptr<RangeStore>> OpenRangeStore(const cluster::RangeInfo& r,
                                                     const cluster::ClusterMap& map,
                                                     ApplyReport& report) REQUIRES(control_mu_);
  Result<StoreSeed> MakeSeed(const SeedRecipe& recipe, const cluster::ClusterMap& map,
                             ApplyReport& report) REQUIRES(control_mu_);
  // The ranges a seed marker names (store_seed.h): they keep every key of
  // their spans, and their directories, until the markers go.
  std::set<RangeId> SeedSources() const;
  Status CloseStore(RangeId id, RangeStore& store);
  // Every range caught up: the copies once lost are whole again.
  void ClearCopyingMarkers();
  // This node is in r's ISR, granted to this data directory's copy.
  bool InIsrAsThisCopy(const cluster::RangeInfo& r) const;
  // Sets the damaged files of r aside (DIR/ranges/<id>.damaged, replacing
  // an older one) and opens an empty store in their place.
  Result<std::shared_ptr<RangeStore>> RebuildStore(const cluster::RangeInfo& r,
                                                   const Status& damage);
  StoreOptions StoreOptionsFor(RangeId id) const;
  // The slot of range r, opening its store if needed; nullptr (and the
  // reason in *unavailable) when the store does not open.
  // narrow false: a held store is left as it is (its keys are still
  // needed: a range is being built from it).
  std::shared_ptr<RangeSlot> HoldRange(const cluster::RangeInfo& r, const cluster::ClusterMap& map,
                                       ApplyReport& report, Status* unavailable, bool narrow = true)
      REQUIRES(control_mu_);
  // A split (node_split.cc): builds the stores of ranges split off parents
  // this node holds, from its own copies of the parents. Returns the ranges
  // that must wait (their parent's copy has not applied the split point),
  // and adds their parents to *busy_parents: those keep their bounds until
  // every child is built.
  std::map<RangeId, Status> DeriveSplits(const cluster::ClusterMap& map, ApplyReport& report,
                                         std::set<RangeId>* busy_parents) REQUIRES(control_mu_);
  // Whether this node should build r from its copy of r's parent: r was
  // split off it, this node is in r's ISR as this copy, and has no
  // directory for r yet.
  bool ShouldDerive(const cluster::RangeInfo& r) const REQUIRES(control_mu_);
  bool SourceGone(const cluster::ClusterMap& map, RangeId source) const REQUIRES(control_mu_);
  // A range split off `parent` is still to be built here from it.
  bool ChildToBuildFrom(const cluster::ClusterMap& map, RangeId parent) const REQUIRES(control_mu_);
  // A merge (node_merge.cc): builds merged range r from this node's copies
  // of the two ranges merged. OK once built; RANGE_UNAVAILABLE while a
  // copy has not applied its merge point (r then waits, and the parents'
  // stores stay open in merge_parents_); a copy that cannot build it puts
  // r in split_lost_ (copied from its owner like any lost copy).
  Status DeriveMerge(const cluster::ClusterMap& map, const cluster::RangeInfo& r,
                     ApplyReport& report) REQUIRES(control_mu_);
  // The store of a range merged away, to build from: its slot's when this
  // process holds it, else opened from its directory (either kept in
  // merge_parents_ until DropMergedParents); nullptr when there is none.
  std::shared_ptr<RangeStore> MergeParentStore(RangeId id, const KeyRange& bounds,
                                               const cluster::ClusterMap& map, ApplyReport& report)
      REQUIRES(control_mu_);
  // Ranges merged into a range this node has built (or copied): their
  // stores are closed and their directories deleted, once the new table is
  // out. Also the leftovers of a crash between the build and the delete.
  // Not those a seed marker names.
  void DropMergedParents(const cluster::ClusterMap& map, const std::set<RangeId>& seed_sources)
      REQUIRES(control_mu_);
  // Ranges the map lists without this node: their directories are
  // deleted, unless something here may still build from them, and the
  // leftovers of a crash midway (node_drop.cc).
  void DropRangesLeft(const cluster::ClusterMap& map, const std::set<RangeId>& seed_sources)
      REQUIRES(control_mu_);
  // Deletes one range directory (renamed aside first) and its markers.
  Status DropRangeDir(const std::string& path);
  std::map<RangeId, std::shared_ptr<RangeStore>> merge_parents_ GUARDED_BY(control_mu_);
  // Seeds taken from their sources (RangeStore::TakeSeed) whose Open
  // failed and handed them back: the next try opens from them, as the
  // sources no longer hold the keys in memory. Dropped with the range.
  std::map<RangeId, StoreSeed> unopened_seeds_ GUARDED_BY(control_mu_);
  // The store of `parent` to copy `span` from: its slot's; opened (and
  // held) when the map gives it to this node; a merged-away range's
  // (MergeParentStore); nullptr when this node has none.
  std::shared_ptr<RangeStore> ParentStore(const cluster::ClusterMap& map, RangeId parent,
                                          const KeyRange& span, ApplyReport& report)
      REQUIRES(control_mu_);
  // Narrows a held store to the map's bounds after a split (also one that
  // opened with them but still holds keys of a range split off); false
  // when it cannot (the store is then reopened). Keys no other range of
  // the map holds (a read straddling a split) stay until a later read.
  bool Narrow(RangeSlot& slot, const cluster::RangeInfo& r, const cluster::ClusterMap& map)
      REQUIRES(control_mu_);
  // The narrowings Narrow queued, run once the new table is published.
  void NarrowPending() REQUIRES(control_mu_);
  struct PendingNarrow {
    std::shared_ptr<RangeStore> store;
    KeyRange bounds;
    RangeId range{0};
  };
  std::vector<PendingNarrow> narrow_later_ GUARDED_BY(control_mu_);
  // The last map Apply got, as read, and the news (ApplyNews) no map has
  // shown since, oldest first, with when each came. News is forgotten
  // after kNewsLifetime (node.cc) even unshown: any read begun before its
  // multi has ended by then (the calls time out sooner), and a map that
  // never shows it (a cluster bootstrapped anew) must not be patched.
  struct News {
    MonoClock::time_point at;
    cluster::ClusterMap::Written wrote;
  };
  std::optional<cluster::ClusterMap> last_map_ GUARDED_BY(control_mu_);
  std::vector<News> news_ GUARDED_BY(control_mu_);

  const std::unique_ptr<DataDir> dir_;
  const NodeConfig config_;
  Env& env_;
  const std::string life_;
  std::atomic<bool> tail_cut_{false};  // a store opened here cut a damaged log end
  std::atomic<bool> copies_lost_{false};  // a range's copy was rebuilt or found missing
  const Mode mode_;
  std::atomic<std::shared_ptr<const RoutingTable>> table_;
  // Cluster mode; made before the first table, closed by Close().
  std::unique_ptr<WriteParking> parking_;
  // Deletes the directories of ranges this node no longer holds.
  std::unique_ptr<DirRemover> remover_;

  mutable Mutex control_mu_;  // serialises Apply / Suspend / Close
  // Every held range by id (control plane).
  std::map<RangeId, std::shared_ptr<RangeSlot>> slots_ GUARDED_BY(control_mu_);
  // Set by OpenCluster before the Node is shared; thread-safe itself.
  std::unique_ptr<Replicator> replicator_;
  // Ranges split off a parent whose copy here cannot build them although
  // this node is in their ISR (set by DeriveSplits): HoldRange treats the
  // copy as lost.
  std::set<RangeId> split_lost_ GUARDED_BY(control_mu_);
  // Latest open failure per range, logged once per distinct message.
  std::map<RangeId, std::string> open_errors_ GUARDED_BY(control_mu_);
  bool closed_ GUARDED_BY(control_mu_) = false;
};

}  // namespace rangekv::kvnode
