// RangeStore::TruncateAfter (kvnode/storage/range_store.h): a replica drops the tail
// of its log that diverged from the owner's.
//
// The caller's thread checks the request, lowers the commit point so nothing
// above seq is applied meanwhile, and persists the truncated epoch history;
// the log thread, which owns the active segment and the staged records,
// then does the rest between two groups and reports to the caller's
// callback (the caller never waits for it). Order on
// disk: history first, then later segments deleted newest first (directory
// fsync'ed after each), then the segment holding seq + 1 cut back and
// fsync'ed. A crash anywhere in between leaves a contiguous log that is
// merely longer than asked, and recovery re-derives history entries for it
// from the records' epochs.
#include "common/log.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {

void RangeStore::Impl::TruncateAfter(Seq seq, std::function<void(Status)> done) {
  std::unique_lock hist_lock(hist_mu);
  EpochHistory copy;
  {
    std::unique_lock lock(mu);
    Status refused;
    if (closing || log_exited) {
      refused = Status(Code::kUnavailable, "range store is closed");
    } else if (!failed.ok()) {
      refused = failed;
    } else if (truncate_req) {
      refused = Status(Code::kUnavailable, "a truncation is in progress");
    } else if (seq < committing_seq) {
      refused = Status(Code::kBadRequest, "cannot truncate the log after seq " +
                                              std::to_string(seq.value()) + ": seq " +
                                              std::to_string(committing_seq.value()) +
                                              " is already applied");
    }
    if (!refused.ok()) {
      lock.unlock();
      hist_lock.unlock();
      return done(std::move(refused));
    }
    if (commit_seq > seq) commit_seq = seq;
    if (history.TruncateAfter(seq)) write_epoch.store(history.last_epoch().value());
    copy = history;
  }
  // The history first. A failed save leaves a stale trailing entry at
  // worst: it can only make EpochEnd answer lower (safe) until the next
  // save or Open.
  (void)SaveHistory(copy);
  {
    // Set while hist_mu is still held, so a second TruncateAfter sees it.
    std::lock_guard lock(mu);
    truncate_req = seq;
    truncate_done = std::move(done);
  }
  hist_lock.unlock();
  NotifyLog();
}

// Log thread.
void RangeStore::Impl::RunTruncation() {
  Seq seq;
  LogPosition end;
  std::vector<PendingWrite> dropped;
  {
    std::lock_guard lock(mu);
    seq = *truncate_req;
    end = log_end;
    std::vector<PendingWrite> kept;
    for (PendingWrite& w : queue) (w.seq > seq ? dropped : kept).push_back(std::move(w));
    queue.swap(kept);
    while (!staged.empty() && staged.back().seq > seq) {
      dropped.push_back(std::move(staged.back()));
      staged.pop_back();
    }
    if (next_seq > seq.Next()) next_seq = seq.Next();
    RebuildPendingLocked();
  }
  Status st;
  Epoch epoch_at_seq = end.epoch;
  if (seq < end.seq) {
    auto r = TruncateLogFiles(seq);
    st = r.status();
    if (r.ok()) epoch_at_seq = *r;
  }
  if (st.ok() && seq < end.seq) {
    std::lock_guard lock(tail_mu);
    while (!tail.empty() && tail.back().seq > seq) {
      tail_bytes -= tail.back().bytes.size();
      tail.pop_back();
    }
  }
  const Seq start = LogStart();
  {
    std::lock_guard lock(mu);
    if (st.ok() && seq < end.seq) {
      log_end = LogPosition{seq, epoch_at_seq};
      if (written_seq > seq) written_seq = seq;
      if (synced_seq > seq) synced_seq = seq;
      ++log_gen;
    }
    if (!queue.empty()) {
      last_record_epoch = queue.back().epoch;
    } else {
      last_record_epoch = log_end.seq >= start ? log_end.epoch : Epoch(0);
    }
  }
  if (!dropped.empty()) {
    LOG_INFO("range " << id << ": truncated the log after seq " << seq << ", dropping "
                      << dropped.size() << " queued or uncommitted records");
  }
  // Before TruncateAfter returns: its caller may rely on them having run.
  const Status gone(Code::kUnavailable,
                    "the log was truncated after seq " + std::to_string(seq.value()));
  for (PendingWrite& w : dropped) {
    if (w.cb) w.cb(gone);
    if (w.durable_cb) w.durable_cb(gone);
  }
  FailDeferredAbove(seq, gone);
  if (!st.ok()) {
    std::vector<PendingWrite> none;
    EnterFailed(st, none);
  }
  std::function<void(Status)> done;
  {
    std::lock_guard lock(mu);
    truncate_req.reset();
    done = std::move(truncate_done);
  }
  if (done) done(st);
}

void RangeStore::Impl::RebuildPendingLocked() {
  pending.clear();
  auto add = [this](const PendingWrite& w) {
    for (const proto::WriteOp& op : w.ops) {
      pending[op.key] = PendingKey{w.seq, op.kind != proto::WriteOp::Kind::kDelete};
    }
  };
  for (const PendingWrite& w : staged) add(w);
  for (const PendingWrite& w : queue) add(w);
}

// Cuts the segment files back to end after record seq (< last().seq, >=
// log_start() - 1). Returns the epoch of record seq, read before the cut.
Result<Epoch> RangeStore::Impl::TruncateLogFiles(Seq seq) {
  Epoch epoch;
  if (seq >= LogStart()) {
    LogRead r;
    if (!ReadTail(seq, seq, 1, &r)) RANGEKV_RETURN_IF_ERROR(ReadSegments(seq, seq, 1, &r));
    if (r.records.empty())
      return Status(Code::kInternal, "record " + std::to_string(seq.value()) + " not found");
    epoch = r.records.front().epoch;
  } else {
    std::lock_guard lock(mu);
    epoch = history.EpochAt(seq);
  }
  std::lock_guard file_lock(file_mu);  // the sync thread must not sync a file we replace
  const Seq cut_seq = seq.Next();
  SegmentInfo target;
  std::vector<std::string> doomed;
  {
    std::lock_guard lock(seg_mu);
    while (segments.size() > 1 && segments.back().first > cut_seq) {
      doomed.push_back(segments.back().path);
      segments.pop_back();
    }
    target = segments.back();
  }
  uint64_t cut = wal::kSegmentHeaderSize;
  if (cut_seq > target.first) {
    wal::RecordPosition start{target.first, wal::kSegmentHeaderSize};
    for (const wal::RecordPosition& p : target.index) {
      if (p.seq > cut_seq) break;
      start = p;
    }
    std::vector<wal::RawRecord> raw;
    RANGEKV_RETURN_IF_ERROR(
        wal::ReadSegmentRecords(fs, target.path, start, cut_seq, cut_seq, 1, &raw).status());
    cut = raw.front().offset;
  }
  if (!doomed.empty()) RANGEKV_RETURN_IF_ERROR(active->Close());
  for (const std::string& path : doomed) {
    RANGEKV_RETURN_IF_ERROR(fs.Remove(path));
    RANGEKV_RETURN_IF_ERROR(fs.SyncDir(opts.dir));
  }
  if (doomed.empty()) {
    RANGEKV_RETURN_IF_ERROR(active->Truncate(cut));
    RANGEKV_RETURN_IF_ERROR(active->Sync());
  } else {
    RANGEKV_ASSIGN_OR_RETURN(active,
                             wal::SegmentWriter::Reopen(fs, target.path, target.first, cut));
  }
  dirty = false;
  std::lock_guard lock(seg_mu);
  SegmentInfo& seg = segments.back();
  seg.bytes = cut;
  while (!seg.index.empty() && seg.index.back().offset >= cut) seg.index.pop_back();
  return epoch;
}

}  // namespace rangekv::kvnode
