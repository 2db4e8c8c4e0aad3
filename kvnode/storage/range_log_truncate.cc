// RangeLog's side of taking records away: TruncateAfter's work on the log
// (kvnode/storage/range_store_truncate.cc has the whole story and the
// order on disk) and the deletion of old segments after a snapshot.
#include "common/log.h"
#include "kvnode/storage/range_log.h"

namespace rangekv::kvnode {

Status RangeLog::TruncateRefusalLocked() const {
  if (closing_ || exited_) return Status(Code::kUnavailable, "range store is closed");
  if (!failed_.ok()) return failed_;
  if (truncate_req_) return Status(Code::kUnavailable, "a truncation is in progress");
  return Status::Ok();
}

EpochHistory RangeLog::TruncateHistoryLocked(Seq seq) {
  if (history_.TruncateAfter(seq)) write_epoch_.store(history_.last_epoch().value());
  return history_;
}

void RangeLog::RequestTruncationLocked(Seq seq, std::function<void(Status)> done) {
  truncate_req_ = seq;
  truncate_done_ = std::move(done);
}

Seq RangeLog::BeginTruncationLocked(LogPosition* end, std::vector<PendingWrite>* dropped) {
  const Seq seq = *truncate_req_;
  *end = log_end_;
  std::vector<PendingWrite> kept;
  for (PendingWrite& w : queue_) (w.seq > seq ? *dropped : kept).push_back(std::move(w));
  queue_.swap(kept);
  if (next_seq_ > seq.Next()) next_seq_ = seq.Next();
  return seq;
}

Status RangeLog::CutAfter(Seq seq, LogPosition end) {
  Status st;
  Epoch epoch_at_seq = end.epoch;
  if (seq < end.seq) {
    auto r = TruncateLogFiles(seq);
    st = r.status();
    if (r.ok()) epoch_at_seq = *r;
  }
  if (st.ok() && seq < end.seq) {
    MutexLock lock(tail_mu_);
    while (!tail_.empty() && tail_.back().seq > seq) {
      tail_bytes_ -= tail_.back().bytes.size();
      tail_.pop_back();
    }
  }
  const Seq start = LogStart();
  MutexLock lock(mu_);
  if (st.ok() && seq < end.seq) {
    log_end_ = LogPosition{seq, epoch_at_seq};
    if (written_seq_ > seq) written_seq_ = seq;
    if (synced_seq_ > seq) synced_seq_ = seq;
    ++log_gen_;
  }
  if (!queue_.empty()) {
    last_record_epoch_ = queue_.back().epoch;
  } else {
    last_record_epoch_ = log_end_.seq >= start ? log_end_.epoch : Epoch(0);
  }
  return st;
}

std::function<void(Status)> RangeLog::EndTruncation() {
  MutexLock lock(mu_);
  truncate_req_.reset();
  return std::move(truncate_done_);
}

// Cuts the segment files back to end after record seq (< last().seq, >=
// log_start() - 1). Returns the epoch of record seq, read before the cut.
Result<Epoch> RangeLog::TruncateLogFiles(Seq seq) {
  Epoch epoch;
  if (seq >= LogStart()) {
    LogRead r;
    if (!ReadTail(seq, seq, 1, &r)) RANGEKV_RETURN_IF_ERROR(ReadSegments(seq, seq, 1, &r));
    if (r.records.empty())
      return Status(Code::kInternal, "record " + std::to_string(seq.value()) + " not found");
    epoch = r.records.front().epoch;
  } else {
    MutexLock lock(mu_);
    epoch = history_.EpochAt(seq);
  }
  MutexLock file_lock(file_mu_);  // the sync thread must not sync a file we replace
  const Seq cut_seq = seq.Next();
  SegmentInfo target;
  std::vector<std::string> doomed;
  {
    MutexLock lock(seg_mu_);
    while (segments_.size() > 1 && segments_.back().first > cut_seq) {
      doomed.push_back(segments_.back().path);
      segments_.pop_back();
    }
    target = segments_.back();
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
        wal::ReadSegmentRecords(fs_, target.path, start, cut_seq, cut_seq, 1, &raw).status());
    cut = raw.front().offset;
  }
  if (!doomed.empty()) RANGEKV_RETURN_IF_ERROR(active_->Close());
  for (const std::string& path : doomed) {
    RANGEKV_RETURN_IF_ERROR(fs_.Remove(path));
    RANGEKV_RETURN_IF_ERROR(fs_.SyncDir(opts_.dir));
  }
  if (doomed.empty()) {
    RANGEKV_RETURN_IF_ERROR(active_->Truncate(cut));
    RANGEKV_RETURN_IF_ERROR(active_->Sync());
  } else {
    RANGEKV_ASSIGN_OR_RETURN(active_,
                             wal::SegmentWriter::Reopen(fs_, target.path, target.first, cut));
    syncing_ = active_.get();
  }
  dirty_ = false;
  MutexLock lock(seg_mu_);
  SegmentInfo& seg = segments_.back();
  seg.bytes = cut;
  while (!seg.index.empty() && seg.index.back().offset >= cut) seg.index.pop_back();
  return epoch;
}

// Removes segments whose every record is at or below low_water, oldest
// first, syncing the directory after each so a crash leaves a contiguous
// log (only a prefix can be missing). The active segment always stays.
void RangeLog::DeleteSegmentsBelow(Seq low_water) {
  std::vector<std::string> doomed;
  {
    MutexLock lock(seg_mu_);
    while (segments_.size() > 1 && segments_[1].first.value() - 1 <= low_water.value()) {
      doomed.push_back(segments_.front().path);
      segments_.pop_front();
    }
  }
  for (const std::string& path : doomed) {
    Status st = fs_.Remove(path);
    if (st.ok()) st = fs_.SyncDir(opts_.dir);
    if (!st.ok()) {
      LOG_WARN("range " << id_ << ": deleting old segment: " << st.ToString());
      return;
    }
    LOG_DEBUG("range " << id_ << ": deleted " << path);
  }
}

}  // namespace rangekv::kvnode
