// RangeStore::TruncateAfter (kvnode/storage/range_store.h): a replica drops the tail
// of its log that diverged from the owner's.
//
// The caller's thread checks the request (RangeLog: not closed, failed or
// already truncating; CommittedMap: nothing above seq applied), lowers the
// commit point so nothing above seq is applied meanwhile, and persists the
// truncated epoch history; the log thread then drops queued records
// (RangeLog) and staged ones (CommittedMap), cuts the files
// (RangeLog::CutAfter) between two groups and reports to the caller's
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
  MutexLock hist_lock(log.history_mu());
  EpochHistory copy;
  {
    MutexLock log_lock(log.mu());
    MutexLock map_lock(map.mu());
    Status refused = log.TruncateRefusalLocked();
    if (refused.ok()) refused = map.TruncateRefusalLocked(seq);
    if (!refused.ok()) {
      map_lock.Unlock();
      log_lock.Unlock();
      hist_lock.Unlock();
      return done(std::move(refused));
    }
    map.LowerCommitLocked(seq);
    copy = log.TruncateHistoryLocked(seq);
  }
  // The history first. A failed save leaves a stale trailing entry at
  // worst: it can only make EpochEnd answer lower (safe) until the next
  // save or Open.
  (void)log.SaveHistory(copy);
  {
    // Set while hist_mu is still held, so a second TruncateAfter sees it.
    MutexLock lock(log.mu());
    log.RequestTruncationLocked(seq, std::move(done));
  }
  hist_lock.Unlock();
  NotifyLog();
}

// Log thread.
void RangeStore::Impl::RunTruncation() {
  Seq seq;
  LogPosition end;
  std::vector<PendingWrite> dropped;
  {
    MutexLock log_lock(log.mu());
    MutexLock map_lock(map.mu());
    seq = log.BeginTruncationLocked(&end, &dropped);
    map.DropStagedAboveLocked(seq, &dropped);
    map.RebuildPendingLocked(log.queued_locked());
  }
  const Status st = log.CutAfter(seq, end);
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
  map.FailDeferredAbove(seq, gone);
  if (!st.ok()) {
    std::vector<PendingWrite> none;
    EnterFailed(st, none);
  }
  std::function<void(Status)> done = log.EndTruncation();
  if (done) done(st);
}

}  // namespace rangekv::kvnode
