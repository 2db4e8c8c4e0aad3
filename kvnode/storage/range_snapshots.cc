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
#include "kvnode/storage/range_snapshots.h"

#include <algorithm>

#include "common/log.h"
#include "kvnode/storage/commit_point.h"

namespace rangekv::kvnode {
namespace {

constexpr size_t kChunkBytes = 1u << 20;
constexpr std::chrono::seconds kRetryAfterFailure{1};
// A new range's first snapshot writes every key it took, on every replica
// at once, just as its first writes go through: started later, it does not
// compete with them (a merged range of 69 k keys paused its writes 44 ms at
// p50 with the snapshot at once, 28 ms with it 300 ms later; bench-moves).
// Meanwhile its sources keep their keys and files, as they do until it is
// written anyway.
constexpr std::chrono::milliseconds kFirstSnapshotDelay{300};
constexpr size_t kSnapshotsKept = 2;  // the newest, and one to fall back to

Status Closed() { return Status(Code::kUnavailable, "range store is closed"); }

}  // namespace

// ---- Open ----

Result<snapshot::SnapshotInfo> RangeSnapshots::LoadUsable(const std::vector<Seq>& snaps,
                                                          std::optional<Seq> log_start,
                                                          KeyMap* map) {
  std::string rejected;  // why newer snapshots were not used
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    const std::string path = fs::JoinPath(opts_.dir, snapshot::SnapshotFileName(*it));
    if (log_start && log_start->value() > it->value() + 1) {
      rejected += "; " + path + " is not covered by the log, which starts at seq " +
                  std::to_string(log_start->value());
      break;  // older snapshots need even more log
    }
    KeyMap loaded;
    auto info = snapshot::ReadSnapshot(
        fs_, path, id_, [&](std::string_view k, std::string_view v, uint64_t ver) {
          loaded.PutInOrder(k, v, ver);
        });
    if (info.ok() && info->replay_from != *it) {
      info = Status(Code::kCorruption,
                    path + ": holds replay seq " + std::to_string(info->replay_from.value()));
    }
    if (!info.ok()) {
      LOG_WARN("range " << id_ << ": skipping snapshot: " << info.status().ToString());
      rejected += "; " + info.status().message();
      continue;
    }
    if (!rejected.empty()) {
      LOG_WARN("range " << id_ << ": recovering from older snapshot at seq " << *it << rejected);
    }
    *map = std::move(loaded);
    return *info;
  }
  if (log_start && log_start->value() > 1) {
    return Status(Code::kCorruption, "range " + std::to_string(id_.value()) + " in " +
                                         opts_.dir +
                                         ": no usable snapshot and the log starts at seq " +
                                         std::to_string(log_start->value()) + rejected);
  }
  return snapshot::SnapshotInfo{};
}

void RangeSnapshots::Recovered(Seq replay_from, uint64_t replayed_bytes) {
  bytes_since_snapshot_ = replayed_bytes;
  {
    MutexLock lock(snap_mu_);
    if (replay_from.value() != 0) snapshots_.push_back(replay_from);
  }
  snapshot_seq_ = replay_from.value();
}

void RangeSnapshots::SetBasePending(std::function<Status()> save_base) {
  save_base_ = std::move(save_base);
  base_pending_.store(true);
  MutexLock lock(bg_mu_);
  requested_ = true;
  retry_after_ = MonoClock::now() + kFirstSnapshotDelay;
}

void RangeSnapshots::Start(Env& env, const std::string& name) {
  worker_ = env.StartWorker(name + "-snapshot", [this] { return Step(); });
}

// ---- asking ----

void RangeSnapshots::LogWritten(uint64_t bytes) {
  const uint64_t since = bytes_since_snapshot_.fetch_add(bytes) + bytes;
  if (since >= opts_.snapshot_after_bytes) RequestSnapshot();
}

void RangeSnapshots::RequestSnapshot() {
  {
    MutexLock lock(bg_mu_);
    if (requested_) return;
    requested_ = true;
  }
  if (worker_) worker_->Notify();
}

void RangeSnapshots::WantCheckpoint() {
  {
    MutexLock lock(bg_mu_);
    if (checkpoint_wanted_) return;
    checkpoint_wanted_ = true;
  }
  if (worker_) worker_->Notify();
}

void RangeSnapshots::ExportAsync(std::function<void(Result<SnapshotExport>)> done) {
  {
    MutexLock lock(bg_mu_);
    if (!bg_stop_) {
      export_waiters_.push_back(std::move(done));
      done = nullptr;
    }
  }
  if (done) return done(Closed());
  worker_->Notify();
}

void RangeSnapshots::Stop() {
  stop_.store(true);
  {
    MutexLock lock(bg_mu_);
    bg_stop_ = true;
  }
  if (worker_) {
    worker_->Notify();
    worker_->Join();
  }
}

// ---- the worker ----

// One turn: answer the exports asked for, save the commit point (at most
// every kCommitPointPeriod), take the snapshot the log thread asked for
// (not before a second after a failed one), or exit once the store closes.
exec::NextStep RangeSnapshots::Step() {
  std::vector<std::function<void(Result<SnapshotExport>)>> waiters;
  const MonoClock::time_point now = MonoClock::now();
  bool stopping = false;
  bool checkpoint = false;
  bool snapshot = false;
  {
    MutexLock lock(bg_mu_);
    waiters.swap(export_waiters_);
    stopping = bg_stop_;
    if (!stopping) {
      const MonoClock::time_point checkpoint_due = checkpoint_at_ + kCommitPointPeriod;
      checkpoint = checkpoint_wanted_ && now >= checkpoint_due;
      snapshot = requested_ && now >= retry_after_;
      if (waiters.empty() && !checkpoint && !snapshot) {
        MonoClock::time_point wake = MonoClock::time_point::max();
        if (checkpoint_wanted_) wake = std::min(wake, checkpoint_due);
        if (requested_) wake = std::min(wake, retry_after_);
        if (wake == MonoClock::time_point::max()) return exec::NextStep::Idle();
        return exec::NextStep::At(wake);
      }
      if (checkpoint) checkpoint_wanted_ = false;
    }
  }
  if (stopping) {
    for (auto& w : waiters) w(Closed());
    return exec::NextStep::Exit();
  }
  if (!waiters.empty()) {
    Result<SnapshotExport> r = Export();
    for (auto& w : waiters) w(r);
  }
  if (checkpoint) {
    Status st = SaveCheckpoint();
    MutexLock lock(bg_mu_);
    checkpoint_at_ = now;
    if (!st.ok()) {
      LOG_WARN("range " << id_ << ": saving the commit point: " << st.ToString());
      checkpoint_wanted_ = true;  // again after the period
    }
  }
  if (snapshot) {
    Status st = TakeSnapshot();
    MutexLock lock(bg_mu_);
    if (!st.ok() && map_.gave_pending()) {
      // Waits, quietly, for the narrowing (a range built from this one is
      // not durable yet).
      retry_after_ = MonoClock::now() + kRetryAfterFailure;
    } else if (!st.ok() && !bg_stop_) {
      LOG_WARN("range " << id_ << ": background snapshot failed: " << st.ToString());
      // Retry later rather than on the very next group.
      retry_after_ = MonoClock::now() + kRetryAfterFailure;
    }
    // Cleared only now, so the log thread does not re-request while one
    // runs; kept while the base is still only in memory (retried).
    requested_ = base_pending_.load();
  }
  return exec::NextStep::Again();
}

Status RangeSnapshots::SaveCheckpoint() {
  const Seq applied = map_.applied();
  if (applied <= checkpoint_saved_) return Status::Ok();
  // Never durable ahead of the log it speaks of.
  RANGEKV_RETURN_IF_ERROR(log_.SyncThrough(applied));
  RANGEKV_RETURN_IF_ERROR(SaveCommitPoint(fs_, opts_.dir, applied));
  checkpoint_saved_ = applied;
  return Status::Ok();
}

// ---- snapshots ----

Status RangeSnapshots::TakeSnapshot() {
  MutexLock lock(snap_mu_);
  return TakeSnapshotLocked();
}

Status RangeSnapshots::TakeSnapshotLocked() {
  if (map_.gave_pending()) return GaveAway();
  const Seq from = map_.applied();
  const uint64_t bytes_at_start = bytes_since_snapshot_.load();
  if (from.value() == 0) return Status::Ok();  // nothing was ever written
  if (base_pending_.load() && save_base_) RANGEKV_RETURN_IF_ERROR(save_base_());
  if (snapshots_.empty() || snapshots_.back() != from) {
    Seq end;
    RANGEKV_RETURN_IF_ERROR(WriteSnapshotFile(from, &end));
    snapshots_.push_back(from);
    snapshot_seq_ = from.value();
    LOG_INFO("range " << id_ << ": snapshot at seq " << from << " (end " << end << ")");
  }
  bytes_since_snapshot_.fetch_sub(std::min(bytes_at_start, bytes_since_snapshot_.load()));
  if (base_pending_.load()) {
    // The snapshot is durable (committed, its directory synced): the
    // store no longer needs its sources.
    RANGEKV_RETURN_IF_ERROR(RemoveSeedMarker(fs_, opts_.dir));
    base_pending_.store(false);
    // Speaks of nothing any more (the snapshot makes the marker stale).
    (void)fs_.Remove(fs::JoinPath(opts_.dir, kSeededFileName));
    LOG_INFO("range " << id_ << ": its base is durable (snapshot at seq " << from << ")");
  }
  PruneSnapshots();
  const uint64_t keep = opts_.keep_records_below_snapshot;
  log_.DeleteSegmentsBelow(Seq(from.value() > keep ? from.value() - keep : 0));
  return Status::Ok();
}

Status RangeSnapshots::GaveAway() const {
  return Status(Code::kRangeUnavailable,
                "range " + std::to_string(id_.value()) +
                    " gave keys to a range built from it: no snapshot until it narrows durably");
}

Status RangeSnapshots::WriteSnapshotFile(Seq replay_from, Seq* end) {
  RANGEKV_ASSIGN_OR_RETURN(auto writer,
                           snapshot::SnapshotWriter::Create(fs_, opts_.dir, id_, replay_from));
  std::string last_key;
  bool started = false;
  for (bool done = false; !done;) {
    if (stop_.load()) return Status(Code::kUnavailable, "range store is closing");
    done = map_.AddChunk(writer.get(), kChunkBytes, started, &last_key, end);
    started = true;
    RANGEKV_RETURN_IF_ERROR(writer->Flush());
  }
  // Keys given away while it was read: the file may lack some that the
  // directory must still hold.
  if (map_.gave_pending()) return GaveAway();
  RANGEKV_RETURN_IF_ERROR(writer->Finish(*end));
  // The snapshot must never be durable ahead of the log it needs: a log cut
  // back below `end` after a power loss would leave the map unrecoverable.
  RANGEKV_RETURN_IF_ERROR(log_.SyncThrough(*end));
  return writer->Commit();
}

// Keeps the newest snapshots we know to be good; removes every other
// snapshot file, including corrupt ones recovery skipped.
void RangeSnapshots::PruneSnapshots() {
  while (snapshots_.size() > kSnapshotsKept) snapshots_.erase(snapshots_.begin());
  auto names = fs_.ListDir(opts_.dir);
  if (!names.ok()) {
    LOG_WARN("range " << id_ << ": " << names.status().ToString());
    return;
  }
  for (const std::string& name : *names) {
    Seq seq;
    if (!snapshot::ParseSnapshotName(name, &seq)) continue;
    if (std::find(snapshots_.begin(), snapshots_.end(), seq) != snapshots_.end()) continue;
    Status st = fs_.Remove(fs::JoinPath(opts_.dir, name));
    if (!st.ok()) LOG_WARN("range " << id_ << ": " << st.ToString());
  }
}

}  // namespace rangekv::kvnode
