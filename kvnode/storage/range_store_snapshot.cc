// Snapshots of a RangeStore, written by a background worker (or by
// SnapshotNow on the caller's thread), and the garbage collection that
// follows each one: old snapshots and log segments below the low-water mark.
//
// Why a thread of its own rather than the log thread between groups: a
// snapshot of a large map takes long, and on the log thread every write
// would wait for it. Here the map is copied out in ~1 MiB chunks under the
// shared lock (readers go on; the log thread's apply waits at most one
// chunk), and the file I/O runs with no lock held. The result is a fuzzy
// snapshot, made exact by replaying the log from its replay seq
// (kvnode/storage/snapshot.h).
#include <algorithm>

#include "common/log.h"
#include "kvnode/storage/commit_point.h"
#include "kvnode/storage/range_store_impl.h"
#include "kvnode/storage/snapshot.h"

namespace rangekv::kvnode {
namespace {

constexpr size_t kChunkBytes = 1u << 20;
constexpr std::chrono::seconds kRetryAfterFailure{1};
constexpr size_t kSnapshotsKept = 2;  // the newest, and one to fall back to

}  // namespace

void RangeStore::Impl::RequestSnapshot() {
  {
    std::lock_guard lock(bg_mu);
    if (bg_requested) return;
    bg_requested = true;
  }
  if (snapshot_worker) snapshot_worker->Notify();
}

// One turn of the snapshot worker: answer the exports asked for, save the
// commit point (at most every kCommitPointPeriod), take the snapshot the
// log thread asked for (not before a second after a failed one), or exit
// once the store closes.
exec::NextStep RangeStore::Impl::SnapshotStep() {
  std::vector<std::function<void(Result<SnapshotExport>)>> waiters;
  const MonoClock::time_point now = MonoClock::now();
  bool checkpoint = false;
  bool snapshot = false;
  {
    std::lock_guard lock(bg_mu);
    waiters.swap(export_waiters);
    if (bg_stop) {
      for (auto& w : waiters) w(Status(Code::kUnavailable, "range store is closed"));
      return exec::NextStep::Exit();
    }
    const MonoClock::time_point checkpoint_due = checkpoint_at + kCommitPointPeriod;
    checkpoint = checkpoint_wanted && now >= checkpoint_due;
    snapshot = bg_requested && now >= bg_retry_after;
    if (waiters.empty() && !checkpoint && !snapshot) {
      MonoClock::time_point wake = MonoClock::time_point::max();
      if (checkpoint_wanted) wake = std::min(wake, checkpoint_due);
      if (bg_requested) wake = std::min(wake, bg_retry_after);
      if (wake == MonoClock::time_point::max()) return exec::NextStep::Idle();
      return exec::NextStep::At(wake);
    }
    if (checkpoint) checkpoint_wanted = false;
  }
  if (!waiters.empty()) {
    Result<SnapshotExport> r = ExportSnapshot();
    for (auto& w : waiters) w(r);
  }
  if (checkpoint) {
    Status st = SaveCheckpoint();
    std::lock_guard lock(bg_mu);
    checkpoint_at = now;
    if (!st.ok()) {
      LOG_WARN("range " << id << ": saving the commit point: " << st.ToString());
      checkpoint_wanted = true;  // again after the period
    }
  }
  if (snapshot) {
    Status st = TakeSnapshot();
    std::lock_guard lock(bg_mu);
    if (!st.ok() && !bg_stop) {
      LOG_WARN("range " << id << ": background snapshot failed: " << st.ToString());
      // Retry later rather than on the very next group.
      bg_retry_after = MonoClock::now() + kRetryAfterFailure;
    }
    // Cleared only now, so the log thread does not re-request while one runs.
    bg_requested = false;
  }
  return exec::NextStep::Again();
}

void RangeStore::Impl::WantCheckpoint() {
  {
    std::lock_guard lock(bg_mu);
    if (checkpoint_wanted) return;
    checkpoint_wanted = true;
  }
  if (snapshot_worker) snapshot_worker->Notify();
}

Status RangeStore::Impl::SaveCheckpoint() {
  Seq applied;
  {
    std::shared_lock map_lock(map_mu);
    applied = applied_seq;
  }
  if (applied <= checkpoint_saved) return Status::Ok();
  // Never durable ahead of the log it speaks of.
  RANGEKV_RETURN_IF_ERROR(SyncThrough(applied));
  RANGEKV_RETURN_IF_ERROR(SaveCommitPoint(fs, opts.dir, applied));
  checkpoint_saved = applied;
  return Status::Ok();
}

Status RangeStore::Impl::TakeSnapshot() {
  std::lock_guard lock(snap_mu);
  return TakeSnapshotLocked();
}

Status RangeStore::Impl::TakeSnapshotLocked() {
  Seq from;
  {
    std::shared_lock map_lock(map_mu);
    from = applied_seq;
  }
  const uint64_t bytes_at_start = bytes_since_snapshot.load();
  if (from.value() == 0) return Status::Ok();  // nothing was ever written
  if (snapshots.empty() || snapshots.back() != from) {
    Seq end;
    RANGEKV_RETURN_IF_ERROR(WriteSnapshotFile(from, &end));
    snapshots.push_back(from);
    snapshot_seq = from.value();
    LOG_INFO("range " << id << ": snapshot at seq " << from << " (end " << end << ")");
  }
  bytes_since_snapshot.fetch_sub(std::min(bytes_at_start, bytes_since_snapshot.load()));
  PruneSnapshots();
  const uint64_t keep = opts.keep_records_below_snapshot;
  DeleteSegmentsBelow(Seq(from.value() > keep ? from.value() - keep : 0));
  return Status::Ok();
}

Status RangeStore::Impl::WriteSnapshotFile(Seq replay_from, Seq* end) {
  RANGEKV_ASSIGN_OR_RETURN(auto writer,
                           snapshot::SnapshotWriter::Create(fs, opts.dir, id, replay_from));
  std::string last_key;
  bool started = false;
  for (bool done = false; !done;) {
    if (stop_snapshots.load()) return Status(Code::kUnavailable, "range store is closing");
    {
      std::shared_lock map_lock(map_mu);
      const KeyMap::Ordered& tree = map.ordered();
      auto it = started ? tree.upper_bound(last_key) : tree.begin();
      for (; it != tree.end() && writer->buffered() < kChunkBytes; ++it) {
        writer->Add(it->first, it->second.value, it->second.version);
      }
      done = it == tree.end();
      if (!done) last_key = std::prev(it)->first;
      *end = applied_seq;  // grows monotonically; the last chunk's is the max
    }
    started = true;
    RANGEKV_RETURN_IF_ERROR(writer->Flush());
  }
  RANGEKV_RETURN_IF_ERROR(writer->Finish(*end));
  // The snapshot must never be durable ahead of the log it needs: a log cut
  // back below `end` after a power loss would leave the map unrecoverable.
  RANGEKV_RETURN_IF_ERROR(SyncThrough(*end));
  return writer->Commit();
}

// Keeps the newest snapshots we know to be good; removes every other
// snapshot file, including corrupt ones recovery skipped.
void RangeStore::Impl::PruneSnapshots() {
  while (snapshots.size() > kSnapshotsKept) snapshots.erase(snapshots.begin());
  auto names = fs.ListDir(opts.dir);
  if (!names.ok()) {
    LOG_WARN("range " << id << ": " << names.status().ToString());
    return;
  }
  for (const std::string& name : *names) {
    Seq seq;
    if (!snapshot::ParseSnapshotName(name, &seq)) continue;
    if (std::find(snapshots.begin(), snapshots.end(), seq) != snapshots.end()) continue;
    Status st = fs.Remove(fs::JoinPath(opts.dir, name));
    if (!st.ok()) LOG_WARN("range " << id << ": " << st.ToString());
  }
}

// Removes segments whose every record is at or below low_water, oldest
// first, syncing the directory after each so a crash leaves a contiguous
// log (only a prefix can be missing). The active segment always stays.
void RangeStore::Impl::DeleteSegmentsBelow(Seq low_water) {
  std::vector<std::string> doomed;
  {
    std::lock_guard lock(seg_mu);
    while (segments.size() > 1 && segments[1].first.value() - 1 <= low_water.value()) {
      doomed.push_back(segments.front().path);
      segments.pop_front();
    }
  }
  for (const std::string& path : doomed) {
    Status st = fs.Remove(path);
    if (st.ok()) st = fs.SyncDir(opts.dir);
    if (!st.ok()) {
      LOG_WARN("range " << id << ": deleting old segment: " << st.ToString());
      return;
    }
    LOG_DEBUG("range " << id << ": deleted " << path);
  }
}

}  // namespace rangekv::kvnode
