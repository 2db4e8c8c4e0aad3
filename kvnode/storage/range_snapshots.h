// kvnode/storage/range_snapshots.h — a RangeStore's snapshots and saved
// commit point, kept by their own worker. Internal to kvnode/storage
// (range_snapshots.cc, range_store_export.cc; used by RangeStore::Impl).
//
// Why a third class rather than part of either half: a snapshot reads the
// map (CommittedMap::AddChunk) and then needs the log (durable through its
// end, old segments deleted), and the commit point on disk likewise needs
// the applied seq and a durable log. Both halves stay ignorant of each
// other; this class uses both, through their public surface.
//
// Owns: the list of good snapshot files and the current export, the
// snapshot worker and its schedule (snapshot requested, retry after a
// failure, exports waited for, commit point due), the log bytes since the
// last snapshot, and the commit point last saved.
//
// Threads:
//   snapshot worker  Step: exports, commit point saves, background
//                    snapshots and the garbage collection after them.
//   log thread       LogWritten and WantCheckpoint: only ask (bg_mu_) and
//                    notify the worker.
//   callers          TakeSnapshot (SnapshotNow) and Export run on the
//                    caller's thread, serialized with the worker by snap_mu_.
//
// Locks: snap_mu_ serializes snapshot writers and exports and is held
// across their I/O; it is taken before any lock of RangeLog or
// CommittedMap (so first in the store's order after close_mu). bg_mu_ is
// never held with another lock nor across a callback.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/exec.h"
#include "common/fs.h"
#include "common/mutex.h"
#include "kvnode/storage/committed_map.h"
#include "kvnode/storage/range_log.h"
#include "kvnode/storage/range_store.h"
#include "kvnode/storage/snapshot.h"

namespace rangekv::kvnode {

// "export-<20 digits>.snap" (range_store_export.cc).
bool IsExportFileName(std::string_view name);

inline constexpr uint64_t kFreshExportLogBytes = 1u << 20;
// An export holding more than twice the keys the range holds, and this
// many more, is a snapshot taken anew (RangeSnapshots::Export).
inline constexpr uint64_t kWideExportSlack = 1024;

class RangeSnapshots {
 public:
  RangeSnapshots(RangeId id, const StoreOptions& opts, fs::FileSystem& fs, RangeLog& log,
                 CommittedMap& map)
      : id_(id), opts_(opts), fs_(fs), log_(log), map_(map) {}
  RangeSnapshots(const RangeSnapshots&) = delete;
  RangeSnapshots& operator=(const RangeSnapshots&) = delete;

  // ---- Open (no worker runs yet) ----

  // Loads the newest snapshot (of snaps, ascending replay seqs) that
  // verifies and that the log, starting at log_start, still covers into
  // *map. replay_from 0 in the result: none (the log must start at 1).
  Result<snapshot::SnapshotInfo> LoadUsable(const std::vector<Seq>& snaps,
                                            std::optional<Seq> log_start, KeyMap* map);
  // The commit point Open found on disk.
  void set_checkpoint_saved(Seq seq) { checkpoint_saved_ = seq; }
  // Open used the snapshot at replay_from (0: none) and replayed
  // replayed_bytes of log after it.
  void Recovered(Seq replay_from, uint64_t replayed_bytes) EXCLUDES(snap_mu_);
  // Open used a seed (store_seed.h): the first snapshot is taken shortly
  // after the worker starts (kFirstSnapshotDelay), and only once it is
  // durable does the seed marker go (then base_pending() turns false). save_base writes what
  // only the marker's recipe said until then; it runs before that
  // snapshot is written.
  void SetBasePending(std::function<Status()> save_base) EXCLUDES(bg_mu_);
  void Start(Env& env, const std::string& name);

  // ---- the log thread ----

  // Counts log bytes written; asks for a snapshot past snapshot_after_bytes.
  void LogWritten(uint64_t bytes) EXCLUDES(bg_mu_);
  // The applied point moved: save it within kCommitPointPeriod.
  void WantCheckpoint() EXCLUDES(bg_mu_);

  // ---- callers ----

  // Writes a snapshot now, then prunes old snapshots and segments.
  Status TakeSnapshot() EXCLUDES(snap_mu_);
  // The newest snapshot as a file to ship (kept until the next export),
  // written first when there is none the log continues, or when the log
  // written since outweighs it (and kFreshExportLogBytes): a new copy then
  // replays little log; or when it holds many more keys than the map now
  // does (kWideExportSlack; the range split since): a copy gets only its
  // keys.
  Result<SnapshotExport> Export() EXCLUDES(snap_mu_);
  void ExportAsync(std::function<void(Result<SnapshotExport>)> done) EXCLUDES(bg_mu_);
  Seq snapshot_seq() const { return Seq(snapshot_seq_.load()); }
  bool base_pending() const { return base_pending_.load(); }

  // ---- Close ----

  // Stops a snapshot being written, answers waiting exports, ends the worker.
  void Stop() EXCLUDES(bg_mu_);
  // Saves the commit point (the applied seq) after making the log durable
  // through it: on the worker, or at Close once Stop has returned.
  Status SaveCheckpoint();

 private:
  exec::NextStep Step() EXCLUDES(bg_mu_);
  void RequestSnapshot() EXCLUDES(bg_mu_);
  Status TakeSnapshotLocked() REQUIRES(snap_mu_);
  Status WriteSnapshotFile(Seq replay_from, Seq* end);
  // The refusal while CommittedMap::gave_pending().
  Status GaveAway() const;
  void PruneSnapshots() REQUIRES(snap_mu_);

  const RangeId id_;
  const StoreOptions& opts_;  // RangeStore::Impl's
  fs::FileSystem& fs_;
  RangeLog& log_;
  CommittedMap& map_;
  std::unique_ptr<exec::Worker> worker_;

  Mutex snap_mu_;
  std::vector<Seq> snapshots_ GUARDED_BY(snap_mu_);  // replay seqs of good snapshots, ascending
  std::optional<SnapshotExport> current_export_ GUARDED_BY(snap_mu_);
  std::atomic<uint64_t> snapshot_seq_{0};
  std::atomic<uint64_t> bytes_since_snapshot_{0};
  std::atomic<bool> stop_{false};  // a snapshot being written gives up
  std::atomic<bool> base_pending_{false};  // SetBasePending, until a snapshot is durable
  std::function<Status()> save_base_;      // set before the worker starts

  Mutex bg_mu_;
  bool requested_ GUARDED_BY(bg_mu_) = false;
  bool bg_stop_ GUARDED_BY(bg_mu_) = false;
  MonoClock::time_point retry_after_ GUARDED_BY(bg_mu_);  // after a failed snapshot
  std::vector<std::function<void(Result<SnapshotExport>)>> export_waiters_ GUARDED_BY(bg_mu_);
  bool checkpoint_wanted_ GUARDED_BY(bg_mu_) = false;  // the applied point moved
  MonoClock::time_point checkpoint_at_ GUARDED_BY(bg_mu_);  // last commit point saved then

  // The worker's alone (Open sets it before the worker starts, Close reads
  // it after the worker ended): SaveCheckpoint runs nowhere else.
  Seq checkpoint_saved_{0};
};

}  // namespace rangekv::kvnode
