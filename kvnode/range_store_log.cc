// The log thread of a RangeStore: group commit (DESIGN §6).
//
// Each turn takes every queued write at once, writes them with one writev,
// fsyncs when the policy says so, applies them to the map in Seq order and
// only then runs their callbacks. While one group is being written or
// fsync'ed, new writes queue up and form the next group, so under load many
// writes share each syscall and each fsync.
#include "common/log.h"
#include "kvnode/range_store_impl.h"

namespace rangekv::kvnode {

using Clock = std::chrono::steady_clock;

bool RangeStore::Impl::BatchSyncDue(Clock::time_point now) const {
  return opts.fsync == FsyncPolicy::kBatch && dirty && now >= dirty_since + opts.batch_interval;
}

void RangeStore::Impl::LogLoop() {
  std::vector<PendingWrite> group;
  for (;;) {
    bool exiting = false;
    bool sync_wanted = false;
    {
      std::unique_lock lock(mu);
      for (;;) {
        sync_wanted = sync_requested > synced_seq && failed.ok();
        if (!queue.empty() || closing || sync_wanted || BatchSyncDue(Clock::now())) break;
        log_idle = true;
        if (opts.fsync == FsyncPolicy::kBatch && dirty) {
          log_cv.wait_until(lock, dirty_since + opts.batch_interval);
        } else {
          log_cv.wait(lock);
        }
        log_idle = false;
      }
      group.swap(queue);
      exiting = closing && group.empty();
    }
    if (!group.empty()) {
      ProcessGroup(group);
      group.clear();
    }
    // Close fsyncs under every policy: a clean shutdown loses nothing.
    if (dirty && (sync_wanted || exiting || BatchSyncDue(Clock::now()))) SyncNow();
    if (sync_wanted && !dirty) {
      std::lock_guard lock(mu);
      synced_seq = written_seq;
      sync_cv.notify_all();
    }
    if (exiting) break;
  }
  std::lock_guard lock(mu);
  log_exited = true;
  sync_cv.notify_all();
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
  if (st.ok() && opts.fsync == FsyncPolicy::kAlways) {
    st = active->Sync();
    // The group will be failed: try not to leave it on disk for a reopen
    // to resurrect (best effort; IO_ERROR means the outcome is unknown).
    if (!st.ok()) (void)active->Truncate(size_before);
  }
  if (!st.ok()) return EnterFailed(st, group);
  if (opts.fsync != FsyncPolicy::kAlways && !dirty) {
    dirty = true;
    dirty_since = Clock::now();
  }
  {
    std::lock_guard lock(seg_mu);
    segments.back().bytes = active->size();
  }
  ApplyGroup(group);
  {
    std::lock_guard lock(mu);
    FinishGroupLocked(group);
  }
  for (PendingWrite& w : group) w.cb(w.seq);
  const uint64_t since = bytes_since_snapshot.fetch_add(bytes) + bytes;
  if (since >= opts.snapshot_after_bytes) RequestSnapshot();
}

// Starts a new segment once the active one has reached segment_bytes. The
// old one is fsync'ed first under every policy: only the newest segment may
// ever end in a torn record (kvnode/wal.h).
Status RangeStore::Impl::RotateIfNeeded(Seq next) {
  if (active->size() < opts.segment_bytes || active->size() <= wal::kSegmentHeaderSize) {
    return Status::Ok();
  }
  if (dirty) RANGEKV_RETURN_IF_ERROR(active->Sync());
  dirty = false;
  RANGEKV_RETURN_IF_ERROR(active->Close());
  RANGEKV_ASSIGN_OR_RETURN(auto fresh, wal::SegmentWriter::Create(opts.dir, id, next));
  active = std::move(fresh);
  {
    std::lock_guard lock(mu);
    synced_seq = written_seq;
    sync_cv.notify_all();
  }
  std::lock_guard lock(seg_mu);
  segments.push_back(SegmentInfo{next, active->path(), active->size()});
  return Status::Ok();
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

// The map now holds the group: pending entries that still name one of its
// writes can go (a newer pending write to the same key keeps its entry).
void RangeStore::Impl::FinishGroupLocked(const std::vector<PendingWrite>& group) {
  for (const PendingWrite& w : group) {
    for (const proto::WriteOp& op : w.ops) {
      auto it = pending.find(std::string_view(op.key));
      if (it != pending.end() && it->second.seq == w.seq) pending.erase(it);
    }
  }
  written_seq = group.back().seq;
  if (opts.fsync == FsyncPolicy::kAlways) {
    synced_seq = written_seq;
    sync_cv.notify_all();
  }
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
  sync_cv.notify_all();
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
    pending.clear();
    sync_cv.notify_all();
  }
  for (PendingWrite& w : group) w.cb(err);
  for (PendingWrite& w : queued) w.cb(err);
}

Status RangeStore::Impl::WaitSynced(Seq seq) {
  std::unique_lock lock(mu);
  if (synced_seq >= seq) return Status::Ok();
  if (sync_requested < seq) sync_requested = seq;
  if (log_idle) log_cv.notify_one();
  sync_cv.wait(lock, [&] { return synced_seq >= seq || !failed.ok() || log_exited; });
  if (synced_seq >= seq) return Status::Ok();
  if (!failed.ok()) return failed;
  return Status(Code::kUnavailable, "range store closed before the log was synced");
}

}  // namespace rangekv::kvnode
