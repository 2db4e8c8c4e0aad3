// RangeLog's write path (docs/design.md §6): queueing, group writes,
// rotation, the sync worker and the failure state.
//
// The log thread writes everything queued with one writev and fsyncs when
// the policy says so. While one group is being written or fsync'ed, new
// writes queue up and form the next group, so under load many writes share
// each syscall and each fsync.
//
// Under batch and never the log thread does not fsync (except at rotation
// and exit): under batch the sync worker does, concurrently with the
// appends, so a slow fdatasync never holds up the acknowledgement of writes
// that do not wait for it.
#include "common/log.h"
#include "kvnode/storage/range_log.h"

namespace rangekv::kvnode {

using Clock = MonoClock;

namespace {

Status Closed() { return Status(Code::kUnavailable, "range store is closed"); }

}  // namespace

void RangeLog::Start(Env& env, const std::string& name, exec::Worker* log_worker) {
  log_worker_ = log_worker;
  if (opts_.fsync == FsyncPolicy::kBatch) {
    sync_worker_ = env.StartWorker(name + "-sync", [this] { return SyncStep(); });
  }
}

// ---- callers ----

Status RangeLog::RefusalLocked() const { return closing_ ? Closed() : failed_; }

Seq RangeLog::TakeSeqLocked(Epoch e) {
  last_record_epoch_ = e;
  const Seq seq = next_seq_;
  next_seq_ = next_seq_.Next();
  return seq;
}

Status RangeLog::CheckAppendLocked(const std::vector<LogRecord>& records) const {
  if (closing_) return Closed();
  if (!failed_.ok()) return failed_;
  if (records.front().seq != next_seq_) {
    return Status(Code::kBadRequest,
                  "replicated records start at seq " + std::to_string(records.front().seq.value()) +
                      ", the log continues at " + std::to_string(next_seq_.value()));
  }
  if (records.front().epoch < last_record_epoch_) {
    return Status(Code::kBadRequest,
                  "replicated record " + std::to_string(records.front().seq.value()) +
                      " has epoch " + std::to_string(records.front().epoch.value()) +
                      ", older than the log's last record's " +
                      std::to_string(last_record_epoch_.value()));
  }
  return Status::Ok();
}

std::optional<EpochHistory> RangeLog::EnqueueReplicatedLocked(std::vector<PendingWrite> ws) {
  // Epochs this copy began (as an owner) at or after the first record
  // have no records here: the owner's records at those seqs replace them.
  // Kept, they would claim an epoch for seqs that hold another one, and
  // this copy, once an owner, would send its replicas after a divergence
  // that is not there.
  bool changed = history_.TruncateAfter(Seq(ws.front().seq.value() - 1));
  for (const PendingWrite& w : ws) {
    if (history_.Append(w.epoch, w.seq)) changed = true;
  }
  if (changed) write_epoch_.store(history_.last_epoch().value());
  last_record_epoch_ = ws.back().epoch;
  next_seq_ = ws.back().seq.Next();
  if (queue_.empty() && queue_.capacity() <= ws.capacity()) {
    queue_.swap(ws);  // the common case: no copy, no growth
  } else {
    queue_.reserve(queue_.size() + ws.size());
    for (PendingWrite& w : ws) queue_.push_back(std::move(w));
  }
  if (!changed) return std::nullopt;
  return history_;
}

Status RangeLog::BeginEpoch(Epoch e) {
  {
    // Begun already (a range split off at its parent's epoch): no need to
    // wait behind a history writer (a first snapshot saving it).
    MutexLock lock(mu_);
    if (!closing_ && e == history_.last_epoch()) return Status::Ok();
  }
  MutexLock hist_lock(hist_mu_);
  EpochHistory copy;
  {
    MutexLock lock(mu_);
    if (closing_) return Closed();
    const Epoch current = history_.last_epoch();
    if (e < current) {
      return Status(Code::kBadRequest, "epoch " + std::to_string(e.value()) + " is older than " +
                                           std::to_string(current.value()));
    }
    if (e == current) return Status::Ok();
    (void)history_.Append(e, next_seq_);
    write_epoch_.store(e.value());
    copy = history_;
  }
  return SaveHistory(copy);
}

Status RangeLog::SaveHistory(const EpochHistory& h) {
  Status st = h.Save(fs_, opts_.dir);
  if (!st.ok()) LOG_WARN("range " << id_ << ": saving the epoch history: " << st.ToString());
  return st;
}

Status RangeLog::SaveHistoryNow() {
  MutexLock hist_lock(hist_mu_);
  EpochHistory copy;
  {
    MutexLock lock(mu_);
    copy = history_;
  }
  return SaveHistory(copy);
}

void RangeLog::SetListener(std::function<void(Seq, Seq)> fn) {
  MutexLock lock(listener_mu_);
  listener_ = std::move(fn);
}

// ---- the log thread ----

bool RangeLog::IdleLocked() const { return queue_.empty() && !closing_ && !truncate_req_; }

bool RangeLog::TakeWorkLocked(std::vector<PendingWrite>* group, bool* exiting) {
  const bool truncate = truncate_req_.has_value();
  if (!truncate) {
    group->swap(queue_);
    queue_.swap(spare_);  // empty, with the capacity of an earlier group
  }
  *exiting = closing_ && !truncate && group->empty();
  return truncate;
}

void RangeLog::Recycle(std::vector<PendingWrite>& group) {
  group.clear();
  if (group.capacity() > kKeptGroupCapacity) return;  // a catch-up's: not worth its memory
  MutexLock lock(mu_);
  if (group.capacity() > spare_.capacity()) spare_.swap(group);
}

Status RangeLog::WriteGroup(std::vector<PendingWrite>& group, uint64_t* bytes) {
  Status st;
  {
    MutexLock lock(mu_);
    st = failed_;
  }
  if (st.ok()) st = RotateIfNeeded(group.front().seq);
  *bytes = 0;
  const uint64_t size_before = st.ok() ? active_->size() : 0;
  if (st.ok()) {
    iov_.clear();
    for (const PendingWrite& w : group) {
      iov_.emplace_back(w.record);
      *bytes += w.record.size();
    }
    st = active_->Append(iov_);
  }
  if (st.ok()) {
    const LogPosition end_before = PublishWritten(group, size_before);
    if (opts_.fsync == FsyncPolicy::kAlways) {
      NotifyListener();  // replicas may fetch while we fsync
      st = active_->Sync();
      // The group will be failed: try not to leave it on disk for a reopen
      // to resurrect (best effort; IO_ERROR means the outcome is unknown).
      if (!st.ok()) {
        (void)active_->Truncate(size_before);
        UnpublishWritten(end_before, size_before);
      }
    }
  }
  if (!st.ok()) return st;
  if (opts_.fsync != FsyncPolicy::kAlways) dirty_ = true;
  MutexLock lock(mu_);
  FinishGroupLocked(group);
  return Status::Ok();
}

// The group is in the file: make it readable (ReadLog) and last().
LogPosition RangeLog::PublishWritten(std::vector<PendingWrite>& group, uint64_t size_before) {
  {
    MutexLock lock(seg_mu_);
    SegmentInfo& seg = segments_.back();
    if (seg.index.empty() || size_before >= seg.index.back().offset + kIndexEvery) {
      seg.index.push_back(wal::RecordPosition{group.front().seq, size_before});
    }
    seg.bytes = active_->size();
  }
  {
    MutexLock lock(tail_mu_);
    for (PendingWrite& w : group) {
      tail_bytes_ += w.record.size();
      tail_.push_back(LogRecord{w.seq, w.epoch, std::move(w.record)});
    }
    while (tail_.size() > 1 && tail_bytes_ > opts_.log_cache_bytes) {
      tail_bytes_ -= tail_.front().bytes.size();
      tail_.pop_front();
    }
  }
  MutexLock lock(mu_);
  const LogPosition before = log_end_;
  log_end_ = LogPosition{group.back().seq, group.back().epoch};
  return before;
}

// Undoes PublishWritten after the group was cut back out of the file.
void RangeLog::UnpublishWritten(LogPosition end_before, uint64_t size_before) {
  {
    MutexLock lock(mu_);
    log_end_ = end_before;
    ++log_gen_;
  }
  {
    MutexLock lock(seg_mu_);
    SegmentInfo& seg = segments_.back();
    while (!seg.index.empty() && seg.index.back().offset >= size_before) seg.index.pop_back();
    seg.bytes = size_before;
  }
  MutexLock lock(tail_mu_);
  while (!tail_.empty() && tail_.back().seq > end_before.seq) {
    tail_bytes_ -= tail_.back().bytes.size();
    tail_.pop_back();
  }
}

void RangeLog::NotifyListener() {
  MutexLock listener_lock(listener_mu_);
  if (!listener_) return;
  Seq written, durable;
  {
    MutexLock lock(mu_);
    written = log_end_.seq;
    durable = written_seq_;
  }
  listener_(written, durable);
}

// Starts a new segment once the active one has reached segment_bytes. The
// old one is fsync'ed first under every policy: only the newest segment may
// ever end in a torn record (kvnode/storage/wal.h).
Status RangeLog::RotateIfNeeded(Seq next) {
  if (active_->size() < opts_.segment_bytes || active_->size() <= wal::kSegmentHeaderSize) {
    return Status::Ok();
  }
  MutexLock file_lock(file_mu_);  // the sync thread must not sync a closed file
  if (dirty_) RANGEKV_RETURN_IF_ERROR(active_->Sync());
  dirty_ = false;
  RANGEKV_RETURN_IF_ERROR(active_->Close());
  RANGEKV_ASSIGN_OR_RETURN(auto fresh, wal::SegmentWriter::Create(fs_, opts_.dir, id_, next));
  active_ = std::move(fresh);
  syncing_ = active_.get();
  {
    MutexLock lock(mu_);
    synced_seq_ = written_seq_;
  }
  MutexLock lock(seg_mu_);
  segments_.push_back(SegmentInfo{next, active_->path(), active_->size(), {}});
  return Status::Ok();
}

// The group is durable per the policy.
void RangeLog::FinishGroupLocked(const std::vector<PendingWrite>& group) {
  const bool was_clean = written_seq_ <= synced_seq_;
  written_seq_ = group.back().seq;
  if (opts_.fsync == FsyncPolicy::kAlways) {
    synced_seq_ = written_seq_;
    return;
  }
  // Wake the sync thread only when it has something new to wait for: the
  // first unsynced write starts the batch interval.
  if (was_clean) unsynced_since_ = Clock::now();
  if (was_clean && sync_worker_) sync_worker_->Notify();
}

Status RangeLog::SyncIfDirty() {
  if (!dirty_) return Status::Ok();
  RANGEKV_RETURN_IF_ERROR(active_->Sync());
  dirty_ = false;
  MutexLock lock(mu_);
  synced_seq_ = written_seq_;
  return Status::Ok();
}

void RangeLog::MarkExited() {
  MutexLock lock(mu_);
  exited_ = true;
}

// An I/O error leaves the log's state on disk unknown, so the log stops
// taking writes: the caller fails the group and everything queued behind
// it, and every later record is refused.
Status RangeLog::Fail(const Status& st, std::vector<PendingWrite>* queued) {
  const Status err = st.code() == Code::kIoError ? st : Status(Code::kIoError, st.message());
  MutexLock lock(mu_);
  if (failed_.ok()) {
    LOG_ERROR("range " << id_ << ": write-ahead log failed, refusing writes: " << err.ToString());
    failed_ = err;
  }
  queued->swap(queue_);
  return failed_;
}

// ---- the sync worker ----

bool RangeLog::SyncDueLocked(Clock::time_point now) const {
  if (written_seq_ <= synced_seq_) return false;
  return opts_.fsync == FsyncPolicy::kBatch && now >= unsynced_since_ + opts_.batch_interval;
}

// The sync thread (policy batch). It syncs whatever the log thread has
// written so far; appends continue meanwhile and are covered by the next
// round.
exec::NextStep RangeLog::SyncStep() {
  {
    MutexLock lock(mu_);
    if (sync_stop_ || !failed_.ok()) return exec::NextStep::Exit();
    if (!SyncDueLocked(Clock::now())) {
      if (written_seq_ > synced_seq_) {
        return exec::NextStep::At(unsynced_since_ + opts_.batch_interval);
      }
      return exec::NextStep::Idle();
    }
  }
  (void)SyncActive();
  return exec::NextStep::Again();
}

// A failed fdatasync fails the log: later writes are refused, and the log
// thread (woken) fails whatever is still queued.
Status RangeLog::SyncActive() {
  MutexLock file_lock(file_mu_);
  const Clock::time_point started = Clock::now();
  Seq target;
  {
    MutexLock lock(mu_);
    target = written_seq_;  // all of it is in the active segment or an older, synced one
    if (target <= synced_seq_) return Status::Ok();
    if (!failed_.ok()) return failed_;
  }
  Status st = syncing_->Sync();
  MutexLock lock(mu_);
  if (!st.ok()) {
    if (failed_.ok()) {
      LOG_ERROR("range " << id_ << ": write-ahead log fsync failed, refusing writes: "
                         << st.ToString());
      failed_ = st.code() == Code::kIoError ? st : Status(Code::kIoError, st.message());
    }
    NotifyLogWorker();
    return failed_;
  }
  if (target > synced_seq_) synced_seq_ = target;
  if (written_seq_ > synced_seq_) unsynced_since_ = started;
  return Status::Ok();
}

Status RangeLog::SyncThrough(Seq seq) {
  {
    MutexLock lock(mu_);
    if (synced_seq_ >= seq) return Status::Ok();
    if (!failed_.ok()) return failed_;
    if (written_seq_ < seq) {
      return Status(Code::kInternal, "cannot sync the log through seq " +
                                         std::to_string(seq.value()) + ": only " +
                                         std::to_string(written_seq_.value()) + " written");
    }
  }
  return SyncActive();
}

// ---- Close ----

void RangeLog::BeginClose() {
  MutexLock lock(mu_);
  closing_ = true;
}

void RangeLog::StopSyncWorker() {
  {
    MutexLock lock(mu_);
    sync_stop_ = true;
  }
  if (sync_worker_) {
    sync_worker_->Notify();
    sync_worker_->Join();
  }
}

Status RangeLog::CloseFile() {
  Status st;
  if (active_) st = active_->Close();
  MutexLock lock(mu_);
  if (!failed_.ok()) st = failed_;
  return st;
}

}  // namespace rangekv::kvnode
