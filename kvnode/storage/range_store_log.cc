// The log thread of a RangeStore: group commit (docs/design.md §6).
//
// Each turn takes every queued write at once, writes them with one writev,
// fsyncs when the policy says so, applies them to the map in Seq order and
// only then runs their callbacks. While one group is being written or
// fsync'ed, new writes queue up and form the next group, so under load many
// writes share each syscall and each fsync.
//
// Under batch and never the log thread does not fsync (except at rotation
// and exit): under batch a sync thread does, concurrently with the appends,
// so a slow fdatasync never holds up the acknowledgement of writes that do
// not wait for it.
#include "common/log.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {

using Clock = MonoClock;

// One turn: a truncation, or a group (everything queued) written and
// applied, or the exit once closing with nothing queued.
exec::NextStep RangeStore::Impl::LogStep() {
  std::vector<PendingWrite> group;
  bool exiting = false;
  bool truncate = false;
  {
    std::lock_guard lock(mu);
    if (queue.empty() && !closing && !truncate_req && !CanApplyLocked()) {
      return exec::NextStep::Idle();
    }
    truncate = truncate_req.has_value();
    if (!truncate) group.swap(queue);
    exiting = closing && !truncate && group.empty();
  }
  if (truncate) {
    RunTruncation();
    return exec::NextStep::Again();
  }
  if (!group.empty()) ProcessGroup(group);
  ApplyCommitted();
  if (!exiting) return exec::NextStep::Again();
  FinishLog();
  return exec::NextStep::Exit();
}

void RangeStore::Impl::FinishLog() {
  // Close fsyncs under every policy: a clean shutdown loses nothing.
  if (dirty) SyncNow();
  FailStaged(Status(Code::kUnavailable, "range store is closed"));
  std::lock_guard lock(mu);
  log_exited = true;
}

void RangeStore::Impl::ProcessGroup(std::vector<PendingWrite>& group) {
  Status st;
  {
    std::lock_guard lock(mu);
    st = failed;
  }
  if (st.ok()) st = RotateIfNeeded(group.front().seq);
  uint64_t bytes = 0;
  const uint64_t size_before = st.ok() ? active->size() : 0;
  if (st.ok()) {
    iov.clear();
    for (const PendingWrite& w : group) {
      iov.emplace_back(w.record);
      bytes += w.record.size();
    }
    st = active->Append(iov);
  }
  if (st.ok()) {
    const LogPosition end_before = PublishWritten(group, size_before);
    if (opts.fsync == FsyncPolicy::kAlways) {
      NotifyListener();  // replicas may fetch while we fsync
      st = active->Sync();
      // The group will be failed: try not to leave it on disk for a reopen
      // to resurrect (best effort; IO_ERROR means the outcome is unknown).
      if (!st.ok()) {
        (void)active->Truncate(size_before);
        UnpublishWritten(end_before, size_before);
      }
    }
  }
  if (!st.ok()) return EnterFailed(st, group);
  if (opts.fsync != FsyncPolicy::kAlways) dirty = true;
  {
    std::lock_guard lock(mu);
    FinishGroupLocked(group);
  }
  for (PendingWrite& w : group) {
    if (w.durable_cb) std::exchange(w.durable_cb, nullptr)(w.seq);
  }
  {
    std::lock_guard lock(mu);
    for (PendingWrite& w : group) staged.push_back(std::move(w));
  }
  NotifyListener();
  const uint64_t since = bytes_since_snapshot.fetch_add(bytes) + bytes;
  if (since >= opts.snapshot_after_bytes) RequestSnapshot();
}

// The group is in the file: make it readable (ReadLog) and last().
LogPosition RangeStore::Impl::PublishWritten(std::vector<PendingWrite>& group,
                                             uint64_t size_before) {
  {
    std::lock_guard lock(seg_mu);
    SegmentInfo& seg = segments.back();
    if (seg.index.empty() || size_before >= seg.index.back().offset + kIndexEvery) {
      seg.index.push_back(wal::RecordPosition{group.front().seq, size_before});
    }
    seg.bytes = active->size();
  }
  {
    std::lock_guard lock(tail_mu);
    for (PendingWrite& w : group) {
      tail_bytes += w.record.size();
      tail.push_back(LogRecord{w.seq, w.epoch, std::move(w.record)});
    }
    while (tail.size() > 1 && tail_bytes > opts.log_cache_bytes) {
      tail_bytes -= tail.front().bytes.size();
      tail.pop_front();
    }
  }
  std::lock_guard lock(mu);
  const LogPosition before = log_end;
  log_end = LogPosition{group.back().seq, group.back().epoch};
  return before;
}

// Undoes PublishWritten after the group was cut back out of the file.
void RangeStore::Impl::UnpublishWritten(LogPosition end_before, uint64_t size_before) {
  {
    std::lock_guard lock(mu);
    log_end = end_before;
    ++log_gen;
  }
  {
    std::lock_guard lock(seg_mu);
    SegmentInfo& seg = segments.back();
    while (!seg.index.empty() && seg.index.back().offset >= size_before) seg.index.pop_back();
    seg.bytes = size_before;
  }
  std::lock_guard lock(tail_mu);
  while (!tail.empty() && tail.back().seq > end_before.seq) {
    tail_bytes -= tail.back().bytes.size();
    tail.pop_back();
  }
}

void RangeStore::Impl::NotifyListener() {
  std::lock_guard listener_lock(listener_mu);
  if (!listener) return;
  Seq written, durable;
  {
    std::lock_guard lock(mu);
    written = log_end.seq;
    durable = written_seq;
  }
  listener(written, durable);
}

// Starts a new segment once the active one has reached segment_bytes. The
// old one is fsync'ed first under every policy: only the newest segment may
// ever end in a torn record (kvnode/storage/wal.h).
Status RangeStore::Impl::RotateIfNeeded(Seq next) {
  if (active->size() < opts.segment_bytes || active->size() <= wal::kSegmentHeaderSize) {
    return Status::Ok();
  }
  std::lock_guard file_lock(file_mu);  // the sync thread must not sync a closed file
  if (dirty) RANGEKV_RETURN_IF_ERROR(active->Sync());
  dirty = false;
  RANGEKV_RETURN_IF_ERROR(active->Close());
  RANGEKV_ASSIGN_OR_RETURN(auto fresh, wal::SegmentWriter::Create(fs, opts.dir, id, next));
  active = std::move(fresh);
  {
    std::lock_guard lock(mu);
    synced_seq = written_seq;
  }
  std::lock_guard lock(seg_mu);
  segments.push_back(SegmentInfo{next, active->path(), active->size(), {}});
  return Status::Ok();
}

Seq RangeStore::Impl::CommitLimitLocked() const {
  return gate ? std::min(commit_seq, written_seq) : written_seq;
}

bool RangeStore::Impl::CanApplyLocked() const {
  return !staged.empty() && staged.front().seq <= CommitLimitLocked();
}

// Applies the staged records the commit point covers, in Seq order, then
// runs their callbacks. committing_seq marks them taken before the map
// changes, so a TruncateAfter racing with this sees them as committed.
void RangeStore::Impl::ApplyCommitted() {
  std::vector<PendingWrite> batch;
  {
    std::lock_guard lock(mu);
    const Seq limit = CommitLimitLocked();
    while (!staged.empty() && staged.front().seq <= limit) {
      batch.push_back(std::move(staged.front()));
      staged.pop_front();
    }
    if (batch.empty()) return;
    committing_seq = batch.back().seq;
  }
  ApplyGroup(batch);
  {
    std::lock_guard lock(mu);
    ErasePendingLocked(batch);
  }
  for (PendingWrite& w : batch) {
    if (w.cb) w.cb(w.seq);
  }
  FireDeferredUpTo(batch.back().seq);
  if (opts.commit_gate) WantCheckpoint();
}

void RangeStore::Impl::FireDeferredUpTo(Seq applied) {
  std::vector<DeferredFailure> due;
  {
    std::lock_guard lock(mu);
    auto end = deferred.upper_bound(applied);
    for (auto it = deferred.begin(); it != end; ++it) due.push_back(std::move(it->second));
    deferred.erase(deferred.begin(), end);
  }
  for (DeferredFailure& d : due) d.cb(std::move(d.status));
}

void RangeStore::Impl::FailDeferredAbove(Seq seq, const Status& st) {
  std::vector<DeferredFailure> due;
  {
    std::lock_guard lock(mu);
    auto begin = deferred.upper_bound(seq);
    for (auto it = begin; it != deferred.end(); ++it) due.push_back(std::move(it->second));
    deferred.erase(begin, deferred.end());
  }
  for (DeferredFailure& d : due) d.cb(st);
}

void RangeStore::Impl::ApplyGroup(std::vector<PendingWrite>& group) {
  std::unique_lock lock(map_mu);
  for (PendingWrite& w : group) {
    for (proto::WriteOp& op : w.ops) {
      if (op.kind == proto::WriteOp::Kind::kDelete) {
        ApplyDelete(map, op.key);
      } else {
        ApplyPut(map, op.key, std::move(op.value), w.seq);
      }
    }
  }
  applied_seq = group.back().seq;
}

// The map now holds these records: pending entries that still name one of
// them can go (a newer pending write to the same key keeps its entry).
void RangeStore::Impl::ErasePendingLocked(const std::vector<PendingWrite>& applied) {
  for (const PendingWrite& w : applied) {
    for (const proto::WriteOp& op : w.ops) {
      auto it = pending.find(std::string_view(op.key));
      if (it != pending.end() && it->second.seq == w.seq) pending.erase(it);
    }
  }
}

// The group is durable per the policy.
void RangeStore::Impl::FinishGroupLocked(const std::vector<PendingWrite>& group) {
  const bool was_clean = written_seq <= synced_seq;
  written_seq = group.back().seq;
  if (opts.fsync == FsyncPolicy::kAlways) {
    synced_seq = written_seq;
    return;
  }
  // Wake the sync thread only when it has something new to wait for: the
  // first unsynced write starts the batch interval.
  if (was_clean) unsynced_since = Clock::now();
  if (was_clean && sync_worker) sync_worker->Notify();
}

// Durable records that will never be applied (close, I/O failure).
void RangeStore::Impl::FailStaged(const Status& st) {
  std::deque<PendingWrite> doomed;
  {
    std::lock_guard lock(mu);
    doomed.swap(staged);
    pending.clear();
  }
  for (PendingWrite& w : doomed) {
    if (w.cb) w.cb(st);
  }
  FailDeferredAbove(Seq(0), st);
}

void RangeStore::Impl::SyncNow() {
  Status st = active->Sync();
  if (!st.ok()) {
    std::vector<PendingWrite> none;
    return EnterFailed(st, none);
  }
  dirty = false;
  std::lock_guard lock(mu);
  synced_seq = written_seq;
}

// An I/O error leaves the log's state on disk unknown, so the store stops
// taking writes: the group and everything queued behind it fail, and so
// does every later Write. Nothing of theirs was applied or acknowledged.
void RangeStore::Impl::EnterFailed(const Status& st, std::vector<PendingWrite>& group) {
  Status err = st.code() == Code::kIoError ? st : Status(Code::kIoError, st.message());
  std::vector<PendingWrite> queued;
  {
    std::lock_guard lock(mu);
    if (failed.ok()) {
      LOG_ERROR("range " << id << ": write-ahead log failed, refusing writes: " << err.ToString());
      failed = err;
    }
    err = failed;
    queued.swap(queue);
  }
  // A replicated write may have reached the replicas before the local
  // failure (records ship before the fsync), and a new owner may still
  // commit it: its outcome is unknown, which clients hear as UNAVAILABLE.
  if (opts.commit_gate) {
    err = Status(Code::kUnavailable, "outcome unknown: " + err.ToString());
  }
  auto fail = [&err](PendingWrite& w) {
    if (w.cb) w.cb(err);
    if (w.durable_cb) w.durable_cb(err);
  };
  for (PendingWrite& w : group) fail(w);
  for (PendingWrite& w : queued) fail(w);
  FailStaged(err);
}

bool RangeStore::Impl::SyncDueLocked(Clock::time_point now) const {
  if (written_seq <= synced_seq) return false;
  return opts.fsync == FsyncPolicy::kBatch && now >= unsynced_since + opts.batch_interval;
}

// The sync thread (policy batch). It syncs whatever the log thread has
// written so far; appends continue meanwhile and are covered by the next
// round.
exec::NextStep RangeStore::Impl::SyncStep() {
  {
    std::lock_guard lock(mu);
    if (sync_thread_stop || !failed.ok()) return exec::NextStep::Exit();
    if (!SyncDueLocked(Clock::now())) {
      if (written_seq > synced_seq) return exec::NextStep::At(unsynced_since + opts.batch_interval);
      return exec::NextStep::Idle();
    }
  }
  (void)SyncActive();
  return exec::NextStep::Again();
}

// A failed fdatasync fails the store: later writes are refused, and the
// log thread fails whatever is still queued.
Status RangeStore::Impl::SyncActive() {
  std::lock_guard file_lock(file_mu);
  const Clock::time_point started = Clock::now();
  Seq target;
  {
    std::lock_guard lock(mu);
    target = written_seq;  // all of it is in `active` or in an older, synced segment
    if (target <= synced_seq) return Status::Ok();
    if (!failed.ok()) return failed;
  }
  Status st = active->Sync();
  std::lock_guard lock(mu);
  if (!st.ok()) {
    if (failed.ok()) {
      LOG_ERROR("range " << id << ": write-ahead log fsync failed, refusing writes: "
                         << st.ToString());
      failed = st.code() == Code::kIoError ? st : Status(Code::kIoError, st.message());
    }
    NotifyLog();
    return failed;
  }
  if (target > synced_seq) synced_seq = target;
  if (written_seq > synced_seq) unsynced_since = started;
  return Status::Ok();
}

Status RangeStore::Impl::SyncThrough(Seq seq) {
  {
    std::lock_guard lock(mu);
    if (synced_seq >= seq) return Status::Ok();
    if (!failed.ok()) return failed;
    if (written_seq < seq) {
      return Status(Code::kInternal, "cannot sync the log through seq " +
                                         std::to_string(seq.value()) + ": only " +
                                         std::to_string(written_seq.value()) + " written");
    }
  }
  return SyncActive();
}

void RangeStore::Impl::StopSyncWorker() {
  {
    std::lock_guard lock(mu);
    sync_thread_stop = true;
  }
  if (sync_worker) {
    sync_worker->Notify();
    sync_worker->Join();
  }
}

}  // namespace rangekv::kvnode
