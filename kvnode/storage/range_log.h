// kvnode/storage/range_log.h — the log half of a RangeStore: everything
// between a record getting its Seq and the record being durable. Internal
// to kvnode/storage (range_log*.cc; used by RangeStore::Impl).
//
// Owns: the write queue and Seq assignment (next_seq), the written/synced
// points, the segment files (the list, the active writer, rotation,
// deletion, truncation), the tail cache ReadLog serves from, the epoch
// history and its file, the log listener, the sync worker (policy batch)
// and the failure state (the first I/O error stops all writing). It knows
// nothing of the map: what it has made durable it hands back to the caller
// (RangeStore::Impl), which stages it in CommittedMap.
//
// Threads:
//   callers      queue records (under mu(), held by RangeStore::Impl
//                together with CommittedMap's mutex), ReadLog, epochs,
//                last()/durable(), BeginEpoch.
//   log thread   WriteGroup, the truncation work, recovery's file work
//                before any worker runs. It alone appends to, rotates and
//                replaces the active segment, so it uses active_ unlocked.
//   sync thread  SyncStep: fdatasyncs the active segment (policy batch).
//   snapshot     SyncThrough (a snapshot or the commit point must never be
//                durable ahead of the log) and DeleteSegmentsBelow.
//
// Locks, in the order they may nest (never take one to the left while
// holding one to its right):
//
//   hist_mu_ -> listener_mu_ -> file_mu_ -> mu_ -> seg_mu_ -> tail_mu_
//
// and, across the store, mu_ before CommittedMap's mutex (see
// range_store_impl.h). hist_mu_ serializes epoch-history writers and is
// held across the history file's fsync; listener_mu_ is held while the log
// thread calls the listener, so SetListener can promise the old one is
// done; file_mu_ is held across an fdatasync of the active segment and
// while the log thread replaces it, so nobody syncs a closed file. mu_,
// seg_mu_ and tail_mu_ are never held across I/O.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/exec.h"
#include "common/fs.h"
#include "common/mutex.h"
#include "kvnode/storage/epoch_history.h"
#include "kvnode/storage/pending_write.h"
#include "kvnode/storage/range_store.h"
#include "kvnode/storage/snapshot.h"
#include "kvnode/storage/wal.h"

namespace rangekv::kvnode {

struct SegmentInfo {
  Seq first{0};
  std::string path;
  uint64_t bytes = 0;
  // Sparse record positions, ascending, at least every kIndexEvery bytes:
  // where ReadLog starts scanning for a Seq.
  std::vector<wal::RecordPosition> index;
};
inline constexpr uint64_t kIndexEvery = 256u << 10;

class RangeLog {
 public:
  // Called at Open for each record after the snapshot's replay seq.
  using Replay = std::function<Status(const wal::RecordView&)>;

  RangeLog(RangeId id, const StoreOptions& opts, fs::FileSystem& fs)
      : id_(id), opts_(opts), fs_(fs) {}
  RangeLog(const RangeLog&) = delete;
  RangeLog& operator=(const RangeLog&) = delete;

  // Exposed so RangeStore::Impl can hold it together with CommittedMap's
  // mutex where one step spans both (a Seq assigned and its keys noted
  // pending; a truncation dropping queued and staged records).
  Mutex& mu() RETURN_CAPABILITY(mu_) { return mu_; }
  Mutex& history_mu() RETURN_CAPABILITY(hist_mu_) { return hist_mu_; }

  // ---- Open (no worker runs yet) ----

  // Replays the segments (ascending (first seq, path)), calling `replay`
  // for records after snap.replay_from, opens the active segment and
  // rebuilds the epoch history from `loaded` and the records. Returns the
  // last Seq in the log (the snapshot's replay seq when it holds none).
  Result<Seq> Recover(const std::vector<std::pair<Seq, std::string>>& segs, EpochHistory loaded,
                      const snapshot::SnapshotInfo& snap, const Replay& replay,
                      uint64_t* replayed_bytes) EXCLUDES(mu_, file_mu_, seg_mu_);
  // Work the log's next sync does first, once: nothing in the log counts as
  // durable without it (wal::SegmentWriter::SyncFirst). After Recover.
  void SyncFirst(std::function<Status()> work) { active_->SyncFirst(std::move(work)); }
  // log_worker is woken when an fsync off the log thread fails; starts the
  // sync worker under policy batch.
  void Start(Env& env, const std::string& name, exec::Worker* log_worker);

  // ---- callers: queueing (mu() held) ----

  // Why a record cannot be queued now: closing, else the failure; OK when
  // it can.
  Status RefusalLocked() const REQUIRES(mu_);
  Epoch EpochLocked() const REQUIRES(mu_) { return history_.last_epoch(); }
  // The epoch Write() encodes with before taking mu(); checked again under it.
  Epoch write_epoch() const { return Epoch(write_epoch_.load()); }
  // The next Seq, for a record of epoch e that will be queued.
  Seq TakeSeqLocked(Epoch e) REQUIRES(mu_);
  // The last Seq taken (queued, maybe not written yet).
  Seq AssignedLocked() const REQUIRES(mu_) { return Seq(next_seq_.value() - 1); }
  void EnqueueLocked(PendingWrite w) REQUIRES(mu_) { queue_.push_back(std::move(w)); }
  Status CheckAppendLocked(const std::vector<LogRecord>& records) const REQUIRES(mu_);
  // Queues replicated records (checked) under their own Seqs and epochs.
  // Returns the epoch history to save when they started a new epoch.
  std::optional<EpochHistory> EnqueueReplicatedLocked(std::vector<PendingWrite> ws)
      REQUIRES(mu_);
  const std::vector<PendingWrite>& queued_locked() const REQUIRES(mu_) { return queue_; }

  // ---- the log thread ----

  // Idle: nothing queued, no truncation asked for, not closing.
  bool IdleLocked() const REQUIRES(mu_);
  // A truncation waits, or the log is closing: work for the log thread
  // alone (a turn taken by a caller leaves it there).
  bool WorkerOnlyLocked() const REQUIRES(mu_) { return closing_ || truncate_req_.has_value(); }
  // True when a truncation waits (it goes first). Else moves the queue into
  // *group; *exiting: closing with nothing left to write.
  bool TakeWorkLocked(std::vector<PendingWrite>* group, bool* exiting) REQUIRES(mu_);
  // A group's vector once its writes are handed on: cleared, and kept for
  // the queue to take next time.
  void Recycle(std::vector<PendingWrite>& group) EXCLUDES(mu_);
  // Writes the group (after rotating a full segment), makes it readable
  // (ReadLog, last()), fsyncs it under policy always and marks it durable;
  // moves each record's bytes to the tail cache. *bytes: its size. On an
  // error the group must not be acknowledged (what the disk holds of it is
  // unknown) and the caller must Fail the store.
  Status WriteGroup(std::vector<PendingWrite>& group, uint64_t* bytes)
      EXCLUDES(mu_, file_mu_, seg_mu_, tail_mu_);
  void NotifyListener() EXCLUDES(listener_mu_, mu_);
  // fsyncs what the log thread wrote and nobody synced yet: at its exit,
  // so a clean shutdown loses nothing under any policy.
  Status SyncIfDirty() EXCLUDES(mu_);
  void MarkExited() EXCLUDES(mu_);
  // Records the I/O error that stops the log (the first one sticks), moves
  // the queue into *queued and returns the failure.
  Status Fail(const Status& st, std::vector<PendingWrite>* queued) EXCLUDES(mu_);

  // ---- truncation ----

  // Why TruncateAfter is refused on the log's side (closed, failed, one in
  // progress); OK when it is not.
  Status TruncateRefusalLocked() const REQUIRES(mu_);
  // Drops history entries after seq; returns the history to save.
  EpochHistory TruncateHistoryLocked(Seq seq) REQUIRES(mu_);
  void RequestTruncationLocked(Seq seq, std::function<void(Status)> done) REQUIRES(mu_);
  // Log thread: the Seq to truncate after and *end, the last record
  // written; moves queued records above it to *dropped and rewinds next seq.
  Seq BeginTruncationLocked(LogPosition* end, std::vector<PendingWrite>* dropped) REQUIRES(mu_);
  // Log thread: cuts files, tail cache and published positions back to
  // seq (end: as BeginTruncationLocked said).
  Status CutAfter(Seq seq, LogPosition end) EXCLUDES(mu_, file_mu_, seg_mu_, tail_mu_);
  // Clears the request; returns its callback.
  std::function<void(Status)> EndTruncation() EXCLUDES(mu_);

  // ---- reads, epochs, state ----

  Result<LogRead> ReadLog(Seq from, size_t max_bytes) const EXCLUDES(mu_, seg_mu_, tail_mu_);
  Seq LogStart() const EXCLUDES(seg_mu_);
  Seq durable() const EXCLUDES(mu_);
  LogPosition last() const EXCLUDES(mu_);
  Status health() const EXCLUDES(mu_);
  bool closing() const EXCLUDES(mu_);
  Epoch epoch() const EXCLUDES(mu_);
  Seq EpochEnd(Epoch e) const EXCLUDES(mu_);
  Epoch EpochAt(Seq seq) const EXCLUDES(mu_);
  Status BeginEpoch(Epoch e) EXCLUDES(hist_mu_, mu_);
  // Writes the history file (hist_mu() held by the caller, so saves do
  // not overtake each other).
  Status SaveHistory(const EpochHistory& h) REQUIRES(hist_mu_);
  // Writes the history file as it is now (a seeded store's, which Open
  // based on its recipe and did not write: store_seed.h).
  Status SaveHistoryNow() EXCLUDES(hist_mu_, mu_);
  void SetListener(std::function<void(Seq, Seq)> fn) EXCLUDES(listener_mu_);
  // Fixed at Open.
  Seq consistent_from() const { return consistent_from_; }
  bool cut_tail() const { return cut_tail_; }
  size_t segment_count() const EXCLUDES(seg_mu_);
  // Live segments and their bytes (adds to *bytes).
  void SegmentStats(size_t* segments, uint64_t* bytes) const EXCLUDES(seg_mu_);

  // ---- snapshot worker ----

  // Makes the log durable through `seq` on the calling thread.
  Status SyncThrough(Seq seq) EXCLUDES(file_mu_, mu_);
  // Removes segments whose every record is at or below low_water.
  void DeleteSegmentsBelow(Seq low_water) EXCLUDES(seg_mu_);

  // ---- Close ----

  void BeginClose() EXCLUDES(mu_);
  // After the log worker has exited.
  void StopSyncWorker() EXCLUDES(mu_);
  // Closes the active segment; the failure, if the log failed.
  Status CloseFile() EXCLUDES(mu_);

 private:
  // What recovery learns from the records' epochs, across segments.
  struct EpochScan {
    bool any = false;                // the log holds at least one record
    Epoch last{0};                   // the highest epoch seen
    std::vector<EpochStart> starts;  // where each higher epoch first appears
  };

  // range_log_recovery.cc
  Result<wal::SegmentSummary> ReplaySegment(const std::string& path, Seq name_seq,
                                            wal::SegmentRole role, Seq replay_from,
                                            const Replay& replay, uint64_t* replayed_bytes,
                                            EpochScan* epochs,
                                            std::vector<wal::RecordPosition>* index);
  Status OpenActiveSegment(Seq last, const wal::SegmentSummary& newest)
      EXCLUDES(file_mu_, seg_mu_);
  Status RecoverHistory(EpochHistory loaded, const EpochScan& scan, Seq log_first, Seq last)
      EXCLUDES(mu_);

  // range_log.cc
  Status RotateIfNeeded(Seq next) EXCLUDES(file_mu_, mu_, seg_mu_);
  LogPosition PublishWritten(std::vector<PendingWrite>& group, uint64_t size_before)
      EXCLUDES(mu_, seg_mu_, tail_mu_);
  void UnpublishWritten(LogPosition end_before, uint64_t size_before)
      EXCLUDES(mu_, seg_mu_, tail_mu_);
  void FinishGroupLocked(const std::vector<PendingWrite>& group) REQUIRES(mu_);
  exec::NextStep SyncStep() EXCLUDES(mu_);
  bool SyncDueLocked(MonoClock::time_point now) const REQUIRES(mu_);
  // fdatasyncs the active segment (everything written so far is in it or in
  // an older, synced segment); fails the log on an error.
  Status SyncActive() EXCLUDES(file_mu_, mu_);
  void NotifyLogWorker() {
    if (log_worker_ != nullptr) log_worker_->Notify();
  }

  // range_log_read.cc
  bool ReadTail(Seq from, Seq through, size_t max_bytes, LogRead* out) const EXCLUDES(tail_mu_);
  Status ReadSegments(Seq from, Seq through, size_t max_bytes, LogRead* out) const
      EXCLUDES(seg_mu_);

  // range_log_truncate.cc
  Result<Epoch> TruncateLogFiles(Seq seq) EXCLUDES(mu_, file_mu_, seg_mu_);

  const RangeId id_;
  const StoreOptions& opts_;  // RangeStore::Impl's
  fs::FileSystem& fs_;
  exec::Worker* log_worker_ = nullptr;  // RangeStore::Impl's; set by Start
  std::unique_ptr<exec::Worker> sync_worker_;  // policy batch only

  // ---- fixed at Open ----
  Seq consistent_from_{0};
  bool cut_tail_ = false;  // recovery cut a damaged end off the log

  // ---- epoch history writers ----
  Mutex hist_mu_ ACQUIRED_BEFORE(listener_mu_);

  // ---- the log listener ----
  Mutex listener_mu_ ACQUIRED_BEFORE(file_mu_);
  std::function<void(Seq, Seq)> listener_ GUARDED_BY(listener_mu_);

  // ---- the active segment ----
  // The log thread owns active_: it appends without a lock (appends never
  // wait for an fsync) and replaces it only under file_mu_. Other threads
  // reach the file only through syncing_, which names the same writer and
  // is republished under file_mu_ with every replacement.
  Mutex file_mu_ ACQUIRED_BEFORE(mu_);
  std::unique_ptr<wal::SegmentWriter> active_;
  wal::SegmentWriter* syncing_ GUARDED_BY(file_mu_) = nullptr;

  // ---- log thread only ----
  std::vector<std::string_view> iov_;
  bool dirty_ = false;  // written but not fsync'ed by the log thread

  // ---- the queue and the log's points ----
  mutable Mutex mu_ ACQUIRED_BEFORE(seg_mu_);
  std::vector<PendingWrite> queue_ GUARDED_BY(mu_);
  // An empty vector with the capacity of an earlier group (Recycle): the
  // queue takes it when a turn takes the queue, so neither grows (and
  // allocates) again for every group.
  std::vector<PendingWrite> spare_ GUARDED_BY(mu_);
  Seq next_seq_ GUARDED_BY(mu_) = Seq(1);
  Seq written_seq_ GUARDED_BY(mu_) = Seq(0);  // durable() (under always it moves only after the fsync)
  Seq synced_seq_ GUARDED_BY(mu_) = Seq(0);   // last Seq fsync'ed
  MonoClock::time_point unsynced_since_ GUARDED_BY(mu_);  // written first passed synced
  bool sync_stop_ GUARDED_BY(mu_) = false;
  Status failed_ GUARDED_BY(mu_);  // set once, by the first I/O error; writes refused after
  bool closing_ GUARDED_BY(mu_) = false;
  bool exited_ GUARDED_BY(mu_) = false;  // the log thread is gone
  LogPosition log_end_ GUARDED_BY(mu_);  // last(): the last record written
  Epoch last_record_epoch_ GUARDED_BY(mu_) = Epoch(0);  // of the newest record written or queued; 0: none
  EpochHistory history_ GUARDED_BY(mu_);  // its writers hold hist_mu_ too
  uint64_t log_gen_ GUARDED_BY(mu_) = 0;  // bumped whenever written records are taken back
  std::optional<Seq> truncate_req_ GUARDED_BY(mu_);  // for the log thread
  std::function<void(Status)> truncate_done_ GUARDED_BY(mu_);  // with truncate_req_
  // Write()'s epoch, read without mu_ (the caller checks it again under it).
  std::atomic<uint64_t> write_epoch_{0};

  // ---- live segments, oldest first; back() is the active one ----
  mutable Mutex seg_mu_ ACQUIRED_BEFORE(tail_mu_);
  std::deque<SegmentInfo> segments_ GUARDED_BY(seg_mu_);

  // ---- newest written records, for ReadLog ----
  mutable Mutex tail_mu_;
  std::deque<LogRecord> tail_ GUARDED_BY(tail_mu_);
  size_t tail_bytes_ GUARDED_BY(tail_mu_) = 0;
};

}  // namespace rangekv::kvnode
