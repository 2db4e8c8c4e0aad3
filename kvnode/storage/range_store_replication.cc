// RangeStore's replication surface (kvnode/storage/range_store.h): the commit
// gate, epochs, the owner's ReadLog, and the replica's AppendReplicated,
// which spans both halves (the log queues the records, the map notes their
// keys pending).
#include <future>

#include "common/escape.h"
#include "common/log.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

// Checks one shipped record and decodes it into a pending write.
// Keys outside the range's bounds are fine: a log from before a split names
// keys that are another range's now (the map leaves them out, Retain).
Status DecodeShipped(const LogRecord& r, PendingWrite* w) {
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
  if (impl_->map.SetGate(on)) impl_->NotifyLog();
}

void RangeStore::Commit(Seq through) {
  if (impl_->map.Commit(through)) impl_->NotifyLog();
}

void RangeStore::CommitHere(Seq through) {
  if (impl_->map.Commit(through)) impl_->TurnHere(false);
}

void RangeStore::SetWriteTurns(std::function<void()> ask) {
  {
    MutexLock lock(impl_->write_turns_mu);
    impl_->write_turns = impl_->CallerWrites() ? std::move(ask) : nullptr;
    impl_->write_turn_asked.store(false);
  }
  impl_->NotifyLog();
}

void RangeStore::WriteTurn() {
  impl_->write_turn_asked.store(false);
  impl_->TurnHere(true);
}

Seq RangeStore::committed() const { return impl_->map.applied(); }
Seq RangeStore::durable() const { return impl_->log.durable(); }
LogPosition RangeStore::last() const { return impl_->log.last(); }
Seq RangeStore::assigned() const {
  MutexLock lock(impl_->log.mu());
  return impl_->log.AssignedLocked();
}
Seq RangeStore::log_start() const { return impl_->log.LogStart(); }
Seq RangeStore::consistent_from() const { return impl_->log.consistent_from(); }

Status RangeStore::BeginEpoch(Epoch e) { return impl_->log.BeginEpoch(e); }
Epoch RangeStore::epoch() const { return impl_->log.epoch(); }
Seq RangeStore::EpochEnd(Epoch e) const { return impl_->log.EpochEnd(e); }
Epoch RangeStore::EpochAt(Seq seq) const { return impl_->log.EpochAt(seq); }

Result<LogRead> RangeStore::ReadLog(Seq from, size_t max_bytes) const {
  return impl_->log.ReadLog(from, max_bytes);
}

void RangeStore::SetLogListener(std::function<void(Seq, Seq)> fn) {
  impl_->log.SetListener(std::move(fn));
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

Result<SnapshotExport> RangeStore::ExportSnapshot() { return impl_->snapshots.Export(); }

void RangeStore::ExportSnapshotAsync(std::function<void(Result<SnapshotExport>)> done) {
  impl_->snapshots.ExportAsync(std::move(done));
}

// ---- Impl ----

void RangeStore::Impl::AskWriteTurn() {
  {
    MutexLock lock(write_turns_mu);
    if (write_turns) {
      if (!write_turn_asked.exchange(true)) write_turns();
      return;
    }
  }
  NotifyLog();
}

void RangeStore::Impl::AppendReplicated(std::vector<LogRecord> records, WriteCallback cb) {
  if (records.empty()) return cb(log.durable());
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
    if (Status st = DecodeShipped(records[i], &ws[i]); !st.ok()) return cb(std::move(st));
  }
  MutexLock hist_lock(log.history_mu());
  std::optional<EpochHistory> changed;
  {
    MutexLock log_lock(log.mu());
    MutexLock map_lock(map.mu());
    if (Status st = log.CheckAppendLocked(records); !st.ok()) {
      map_lock.Unlock();
      log_lock.Unlock();
      hist_lock.Unlock();
      return cb(std::move(st));
    }
    for (const PendingWrite& w : ws) map.AddPendingLocked(w.seq, w.ops);
    ws.back().durable_cb = std::move(cb);
    changed = log.EnqueueReplicatedLocked(std::move(ws));
  }
  // The log thread writes while a new epoch's history is saved (an
  // fsync); a caller's turn comes after it, epochs being rare.
  if (!CallerWrites()) NotifyLog();
  // The records carry their epochs, so a history saved late (or not at
  // all, on an I/O error) is rebuilt from them at the next Open.
  if (changed) (void)log.SaveHistory(*changed);
  hist_lock.Unlock();
  if (CallerWrites()) TurnHere(true);
}

}  // namespace rangekv::kvnode
