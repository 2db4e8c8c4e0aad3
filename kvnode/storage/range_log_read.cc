// RangeLog's readers: ReadLog for the owner's replication (tail cache, else
// the segment files), the published points, and the epoch history queries.
#include <algorithm>

#include "kvnode/storage/range_log.h"

namespace rangekv::kvnode {
namespace {

constexpr int kReadAttempts = 4;

}  // namespace

Seq RangeLog::durable() const {
  MutexLock lock(mu_);
  return written_seq_;
}

LogPosition RangeLog::last() const {
  MutexLock lock(mu_);
  return log_end_;
}

Status RangeLog::health() const {
  MutexLock lock(mu_);
  return failed_;
}

bool RangeLog::closing() const {
  MutexLock lock(mu_);
  return closing_;
}

Epoch RangeLog::epoch() const {
  MutexLock lock(mu_);
  return history_.last_epoch();
}

Seq RangeLog::EpochEnd(Epoch e) const {
  MutexLock lock(mu_);
  return history_.EpochEnd(e, log_end_.seq);
}

Epoch RangeLog::EpochAt(Seq seq) const {
  MutexLock lock(mu_);
  return history_.EpochAt(seq);
}

Seq RangeLog::LogStart() const {
  MutexLock lock(seg_mu_);
  return segments_.empty() ? Seq(1) : segments_.front().first;
}

size_t RangeLog::segment_count() const {
  MutexLock lock(seg_mu_);
  return segments_.size();
}

void RangeLog::SegmentStats(size_t* segments, uint64_t* bytes) const {
  MutexLock lock(seg_mu_);
  *segments = segments_.size();
  for (const SegmentInfo& seg : segments_) *bytes += seg.bytes;
}

// A read races with truncations (a replica's log cut back, the owner's old
// segments deleted): it is retried when log_gen_ moved under it.
Result<LogRead> RangeLog::ReadLog(Seq from, size_t max_bytes) const {
  if (from.value() == 0) from = Seq(1);
  for (int attempt = 0;; ++attempt) {
    Seq through;
    uint64_t gen;
    {
      MutexLock lock(mu_);
      through = log_end_.seq;
      gen = log_gen_;
    }
    LogRead out;
    if (from < LogStart()) {
      out.below_log_start = true;
      return out;
    }
    if (from > through) return out;
    Status st;
    if (!ReadTail(from, through, max_bytes, &out))
      st = ReadSegments(from, through, max_bytes, &out);
    if (!st.ok() && from < LogStart()) {  // the segment was deleted under us
      out.records.clear();
      out.below_log_start = true;
      return out;
    }
    {
      MutexLock lock(mu_);
      if (log_gen_ == gen) {
        if (!st.ok()) return st;
        return out;
      }
    }
    if (attempt + 1 == kReadAttempts) {
      return Status(Code::kUnavailable, "the log was truncated while being read; retry");
    }
  }
}

// From the tail cache, when it reaches back to `from`.
bool RangeLog::ReadTail(Seq from, Seq through, size_t max_bytes, LogRead* out) const {
  MutexLock lock(tail_mu_);
  if (tail_.empty() || tail_.front().seq > from) return false;
  const uint64_t skip = from.value() - tail_.front().seq.value();
  if (skip >= tail_.size()) return false;
  size_t bytes = 0;
  for (auto it = tail_.begin() + static_cast<std::ptrdiff_t>(skip); it != tail_.end(); ++it) {
    if (it->seq > through) break;
    if (!out->records.empty() && bytes + it->bytes.size() > max_bytes) break;
    bytes += it->bytes.size();
    out->records.push_back(*it);
  }
  return true;
}

// From the segment files, starting each scan at the nearest indexed
// position at or before the Seq wanted.
Status RangeLog::ReadSegments(Seq from, Seq through, size_t max_bytes, LogRead* out) const {
  size_t bytes = 0;
  Seq cur = from;
  while (cur <= through) {
    std::string path;
    wal::RecordPosition start;
    Seq seg_last = through;
    {
      MutexLock lock(seg_mu_);
      auto it = std::upper_bound(segments_.begin(), segments_.end(), cur,
                                 [](Seq s, const SegmentInfo& seg) { return s < seg.first; });
      if (it == segments_.begin()) {
        return Status(Code::kUnavailable,
                      "seq " + std::to_string(cur.value()) + " is no longer in the log");
      }
      const SegmentInfo& seg = *std::prev(it);
      if (it != segments_.end()) seg_last = std::min(seg_last, Seq(it->first.value() - 1));
      path = seg.path;
      start = wal::RecordPosition{seg.first, wal::kSegmentHeaderSize};
      for (const wal::RecordPosition& p : seg.index) {
        if (p.seq > cur) break;
        start = p;
      }
    }
    std::vector<wal::RawRecord> raw;
    const size_t budget = out->records.empty() ? max_bytes : max_bytes - bytes;
    RANGEKV_ASSIGN_OR_RETURN(wal::RecordPosition next, wal::ReadSegmentRecords(fs_, path, start, cur,
                                                                             seg_last, budget, &raw));
    for (wal::RawRecord& r : raw) {
      if (!out->records.empty() && bytes + r.bytes.size() > max_bytes) return Status::Ok();
      bytes += r.bytes.size();
      out->records.push_back(LogRecord{r.seq, r.epoch, std::move(r.bytes)});
    }
    if (raw.empty() || next.seq <= seg_last) return Status::Ok();  // budget used up
    cur = next.seq;
  }
  return Status::Ok();
}

}  // namespace rangekv::kvnode
