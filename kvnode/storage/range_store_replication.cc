// RangeStore's replication surface (kvnode/storage/range_store.h): the commit gate,
// epochs, the replica's AppendReplicated and the owner's ReadLog.
#include <algorithm>
#include <future>

#include "common/escape.h"
#include "common/log.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

constexpr int kReadAttempts = 4;

Status Closed() { return Status(Code::kUnavailable, "range store is closed"); }

// Checks one shipped record and decodes it into a pending write.
Status DecodeShipped(const LogRecord& r, const KeyRange& bounds, PendingWrite* w) {
  auto corrupt = [&r](const std::string& what) {
    return Status(Code::kCorruption,
                  "replicated record " + std::to_string(r.seq.value()) + ": " + what);
  };
  if (r.bytes.size() < wal::kRecordHeaderSize) return corrupt("shorter than a record header");
  wal::RecordHeader h;
  if (wal::CheckRecordHeader(r.bytes.data(), &h) != wal::HeaderCheck::kValid) {
    return corrupt("record header does not check");
  }
  std::string_view payload = std::string_view(r.bytes).substr(wal::kRecordHeaderSize);
  if (h.length != payload.size()) return corrupt("length does not match the bytes");
  if (h.seq != r.seq) return corrupt("header says seq " + std::to_string(h.seq.value()));
  if (wal::PayloadCrc(h.type, payload) != h.payload_crc) return corrupt("payload crc mismatch");
  auto batch = wal::DecodeBatchPayload(payload);
  if (!batch.ok()) return corrupt(batch.status().message());
  if (batch->epoch != r.epoch)
    return corrupt("payload says epoch " + std::to_string(batch->epoch.value()));
  w->seq = r.seq;
  w->epoch = r.epoch;
  w->ops.reserve(batch->ops.size());
  for (const wal::BatchOp& op : batch->ops) {
    if (!bounds.Contains(op.key)) {
      return Status(Code::kBadRequest, "replicated key " + QuoteIfNeeded(op.key) +
                                           " is outside range " + bounds.ToString());
    }
    if (op.op == wal::OpCode::kPut) {
      w->ops.push_back(proto::WriteOp::Put(std::string(op.key), std::string(op.value)));
    } else {
      w->ops.push_back(proto::WriteOp::Delete(std::string(op.key)));
    }
  }
  w->record = r.bytes;
  return Status::Ok();
}

}  // namespace

// ---- public wrappers ----

void RangeStore::SetCommitGate(bool on) {
  bool wake = false;
  {
    std::lock_guard lock(impl_->mu);
    impl_->gate = on;
    wake = impl_->CanApplyLocked();
  }
  if (wake) impl_->NotifyLog();
}

void RangeStore::Commit(Seq through) {
  bool wake = false;
  {
    std::lock_guard lock(impl_->mu);
    if (through <= impl_->commit_seq) return;
    impl_->commit_seq = through;
    wake = impl_->CanApplyLocked();
  }
  if (wake) impl_->NotifyLog();
}

Seq RangeStore::committed() const {
  std::shared_lock lock(impl_->map_mu);
  return impl_->applied_seq;
}

Seq RangeStore::durable() const {
  std::lock_guard lock(impl_->mu);
  return impl_->written_seq;
}

LogPosition RangeStore::last() const {
  std::lock_guard lock(impl_->mu);
  return impl_->log_end;
}

Seq RangeStore::log_start() const { return impl_->LogStart(); }
Seq RangeStore::consistent_from() const { return impl_->consistent_from; }

Status RangeStore::BeginEpoch(Epoch e) {
  Impl& s = *impl_;
  std::lock_guard hist_lock(s.hist_mu);
  EpochHistory copy;
  {
    std::lock_guard lock(s.mu);
    if (s.closing) return Closed();
    const Epoch current = s.history.last_epoch();
    if (e < current) {
      return Status(Code::kBadRequest, "epoch " + std::to_string(e.value()) + " is older than " +
                                           std::to_string(current.value()));
    }
    if (e == current) return Status::Ok();
    (void)s.history.Append(e, s.next_seq);
    s.write_epoch.store(e.value());
    copy = s.history;
  }
  return s.SaveHistory(copy);
}

Epoch RangeStore::epoch() const {
  std::lock_guard lock(impl_->mu);
  return impl_->history.last_epoch();
}

Seq RangeStore::EpochEnd(Epoch e) const {
  std::lock_guard lock(impl_->mu);
  return impl_->history.EpochEnd(e, impl_->log_end.seq);
}

Epoch RangeStore::EpochAt(Seq seq) const {
  std::lock_guard lock(impl_->mu);
  return impl_->history.EpochAt(seq);
}

Result<LogRead> RangeStore::ReadLog(Seq from, size_t max_bytes) const {
  return impl_->ReadLog(from, max_bytes);
}

void RangeStore::SetLogListener(std::function<void(Seq, Seq)> fn) {
  std::lock_guard lock(impl_->listener_mu);
  impl_->listener = std::move(fn);
}

void RangeStore::AppendReplicated(std::vector<LogRecord> records, WriteCallback cb) {
  impl_->AppendReplicated(std::move(records), std::move(cb));
}

Status RangeStore::TruncateAfter(Seq seq) {
  std::promise<Status> done;
  std::future<Status> result = done.get_future();
  impl_->TruncateAfter(seq, [&done](Status st) { done.set_value(std::move(st)); });
  return result.get();
}

void RangeStore::TruncateAfterAsync(Seq seq, std::function<void(Status)> done) {
  impl_->TruncateAfter(seq, std::move(done));
}

Result<SnapshotExport> RangeStore::ExportSnapshot() { return impl_->ExportSnapshot(); }

void RangeStore::ExportSnapshotAsync(std::function<void(Result<SnapshotExport>)> done) {
  {
    std::lock_guard lock(impl_->bg_mu);
    if (!impl_->bg_stop) {
      impl_->export_waiters.push_back(std::move(done));
      done = nullptr;
    }
  }
  if (done) return done(Status(Code::kUnavailable, "range store is closed"));
  impl_->snapshot_worker->Notify();
}

// ---- Impl ----

Status RangeStore::Impl::SaveHistory(const EpochHistory& h) {
  Status st = h.Save(fs, opts.dir);
  if (!st.ok()) LOG_WARN("range " << id << ": saving the epoch history: " << st.ToString());
  return st;
}

Seq RangeStore::Impl::LogStart() const {
  std::lock_guard lock(seg_mu);
  return segments.empty() ? Seq(1) : segments.front().first;
}

Status RangeStore::Impl::CheckAppendLocked(const std::vector<LogRecord>& records) const {
  if (closing) return Closed();
  if (!failed.ok()) return failed;
  if (records.front().seq != next_seq) {
    return Status(Code::kBadRequest,
                  "replicated records start at seq " + std::to_string(records.front().seq.value()) +
                      ", the log continues at " + std::to_string(next_seq.value()));
  }
  if (records.front().epoch < last_record_epoch) {
    return Status(Code::kBadRequest,
                  "replicated record " + std::to_string(records.front().seq.value()) +
                      " has epoch " + std::to_string(records.front().epoch.value()) +
                      ", older than the log's last record's " +
                      std::to_string(last_record_epoch.value()));
  }
  return Status::Ok();
}

void RangeStore::Impl::AppendReplicated(std::vector<LogRecord> records, WriteCallback cb) {
  if (records.empty()) {
    Seq d;
    {
      std::lock_guard lock(mu);
      d = written_seq;
    }
    return cb(d);
  }
  std::vector<PendingWrite> ws(records.size());
  for (size_t i = 0; i < records.size(); ++i) {
    if (i > 0 && records[i].seq != records[i - 1].seq.Next()) {
      return cb(Status(Code::kBadRequest, "replicated records are not consecutive at seq " +
                                              std::to_string(records[i].seq.value())));
    }
    if (i > 0 && records[i].epoch < records[i - 1].epoch) {
      return cb(Status(Code::kBadRequest, "replicated record epochs go down at seq " +
                                              std::to_string(records[i].seq.value())));
    }
    if (Status st = DecodeShipped(records[i], bounds, &ws[i]); !st.ok()) return cb(std::move(st));
  }
  std::unique_lock hist_lock(hist_mu);
  std::optional<EpochHistory> changed;
  {
    std::unique_lock lock(mu);
    if (Status st = CheckAppendLocked(records); !st.ok()) {
      lock.unlock();
      hist_lock.unlock();
      return cb(std::move(st));
    }
    for (PendingWrite& w : ws) {
      for (const proto::WriteOp& op : w.ops) {
        auto [it, inserted] = pending.try_emplace(op.key);
        it->second = PendingKey{w.seq, op.kind != proto::WriteOp::Kind::kDelete};
      }
      if (history.Append(w.epoch, w.seq)) changed = history;
    }
    if (changed) write_epoch.store(history.last_epoch().value());
    last_record_epoch = ws.back().epoch;
    next_seq = ws.back().seq.Next();
    ws.back().durable_cb = std::move(cb);
    for (PendingWrite& w : ws) queue.push_back(std::move(w));
  }
  NotifyLog();
  // The records carry their epochs, so a history saved late (or not at
  // all, on an I/O error) is rebuilt from them at the next Open.
  if (changed) (void)SaveHistory(*changed);
}

Result<LogRead> RangeStore::Impl::ReadLog(Seq from, size_t max_bytes) const {
  if (from.value() == 0) from = Seq(1);
  for (int attempt = 0;; ++attempt) {
    Seq through;
    uint64_t gen;
    {
      std::lock_guard lock(mu);
      through = log_end.seq;
      gen = log_gen;
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
      std::lock_guard lock(mu);
      if (log_gen == gen) {
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
bool RangeStore::Impl::ReadTail(Seq from, Seq through, size_t max_bytes, LogRead* out) const {
  std::lock_guard lock(tail_mu);
  if (tail.empty() || tail.front().seq > from) return false;
  const uint64_t skip = from.value() - tail.front().seq.value();
  if (skip >= tail.size()) return false;
  size_t bytes = 0;
  for (auto it = tail.begin() + static_cast<std::ptrdiff_t>(skip); it != tail.end(); ++it) {
    if (it->seq > through) break;
    if (!out->records.empty() && bytes + it->bytes.size() > max_bytes) break;
    bytes += it->bytes.size();
    out->records.push_back(*it);
  }
  return true;
}

// From the segment files, starting each scan at the nearest indexed
// position at or before the Seq wanted.
Status RangeStore::Impl::ReadSegments(Seq from, Seq through, size_t max_bytes, LogRead* out) const {
  size_t bytes = 0;
  Seq cur = from;
  while (cur <= through) {
    std::string path;
    wal::RecordPosition start;
    Seq seg_last = through;
    {
      std::lock_guard lock(seg_mu);
      auto it = std::upper_bound(segments.begin(), segments.end(), cur,
                                 [](Seq s, const SegmentInfo& seg) { return s < seg.first; });
      if (it == segments.begin()) {
        return Status(Code::kUnavailable,
                      "seq " + std::to_string(cur.value()) + " is no longer in the log");
      }
      const SegmentInfo& seg = *std::prev(it);
      if (it != segments.end()) seg_last = std::min(seg_last, Seq(it->first.value() - 1));
      path = seg.path;
      start = wal::RecordPosition{seg.first, wal::kSegmentHeaderSize};
      for (const wal::RecordPosition& p : seg.index) {
        if (p.seq > cur) break;
        start = p;
      }
    }
    std::vector<wal::RawRecord> raw;
    const size_t budget = out->records.empty() ? max_bytes : max_bytes - bytes;
    RANGEKV_ASSIGN_OR_RETURN(wal::RecordPosition next, wal::ReadSegmentRecords(fs, path, start, cur,
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
