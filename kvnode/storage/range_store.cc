// RangeStore: the public surface, reads, and the caller side of the write
// path (validation, Seq assignment, enqueue), Open and Close. See
// range_store_impl.h for the parts, the threads and the lock order.
#include "kvnode/storage/range_store.h"

#include "common/escape.h"
#include "common/log.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {

const char* FsyncPolicyName(FsyncPolicy p) {
  switch (p) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kBatch:
      return "batch";
    case FsyncPolicy::kNever:
      return "never";
  }
  return "unknown";
}

std::optional<FsyncPolicy> ParseFsyncPolicy(std::string_view s) {
  if (s == "always") return FsyncPolicy::kAlways;
  if (s == "batch") return FsyncPolicy::kBatch;
  if (s == "never") return FsyncPolicy::kNever;
  return std::nullopt;
}

Result<std::unique_ptr<RangeStore>> RangeStore::Open(RangeId id, KeyRange bounds,
                                                     StoreOptions opts) {
  auto impl = std::make_unique<Impl>(id, std::move(bounds), std::move(opts));
  RANGEKV_RETURN_IF_ERROR(impl->Recover());
  impl->Start();
  return std::unique_ptr<RangeStore>(new RangeStore(std::move(impl)));
}

RangeStore::RangeStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RangeStore::~RangeStore() {
  Status st = Close();
  if (!st.ok()) LOG_WARN("range " << impl_->id << ": close: " << st.ToString());
}

uint64_t NextInstance() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}

RangeId RangeStore::id() const { return impl_->id; }
uint64_t RangeStore::instance() const { return impl_->instance; }
KeyRange RangeStore::bounds() const { return impl_->bounds(); }

std::optional<proto::Entry> RangeStore::Get(std::string_view key) const {
  return impl_->map.Get(key);
}

std::vector<proto::Entry> RangeStore::Scan(std::string_view start,
                                           const std::optional<std::string>& end, uint32_t limit,
                                           bool* more) const {
  return impl_->map.Scan(start, end, limit, more);
}

Status RangeStore::Impl::Outside(std::string_view key) const {
  return Status(Code::kNotOwner, "key " + QuoteIfNeeded(key) + " is outside range " +
                                     std::to_string(id.value()) + " " + bounds().ToString() +
                                     " (it was split)");
}

// The bounds are checked before the read and, for an absent key, after it
// too: RetainOnly narrows them before it drops the keys, so an absent key
// still inside them afterwards was absent indeed.
bool RangeStore::Admits(std::string_view key) const { return impl_->InBounds(key); }

Result<std::optional<proto::Entry>> RangeStore::GetInBounds(std::string_view key) const {
  if (!impl_->InBounds(key)) return impl_->Outside(key);
  std::optional<proto::Entry> e = impl_->map.Get(key);
  if (!e && !impl_->InBounds(key)) return impl_->Outside(key);
  return e;
}

Result<std::vector<proto::Entry>> RangeStore::ScanInBounds(std::string_view start,
                                                           const std::optional<std::string>& end,
                                                           uint32_t limit, bool* more) const {
  const KeyRange b = impl_->bounds();
  if (!impl_->InBounds(start) || !b.Contains(start)) return impl_->Outside(start);
  // Stop at the range's end; `more` then tells the caller to go on there.
  const bool clamped = b.end() && (!end || *b.end() < *end);
  const std::optional<std::string>& stop = clamped ? b.end() : end;
  *more = false;
  if (stop && *stop <= start) return std::vector<proto::Entry>();
  std::vector<proto::Entry> out = impl_->map.Scan(start, stop, limit, more);
  if (impl_->bounds() != b || !impl_->InBounds(start)) {
    return impl_->Outside(start);  // narrowed meanwhile
  }
  if (clamped) *more = true;
  return out;
}

void RangeStore::Write(std::vector<proto::WriteOp> ops, WriteCallback cb) {
  impl_->Write(std::move(ops), std::move(cb));
}

bool RangeStore::cut_tail_at_open() const { return impl_->log.cut_tail(); }

Status RangeStore::health() const { return impl_->log.health(); }

StoreStats RangeStore::Stats() const {
  StoreStats s;
  impl_->map.Stats(&s.last_seq, &s.keys, &s.bytes);
  impl_->log.SegmentStats(&s.segments, &s.wal_bytes);
  s.snapshot_seq = impl_->snapshots.snapshot_seq();
  return s;
}

Status RangeStore::SnapshotNow() {
  if (impl_->log.closing()) return Status(Code::kUnavailable, "range store is closed");
  return impl_->snapshots.TakeSnapshot();
}

Status RangeStore::Close() { return impl_->Close(); }

// ---- Impl: caller side of the write path ----

Status RangeStore::Impl::CheckOps(const std::vector<proto::WriteOp>& ops) const {
  if (ops.empty()) return Status(Code::kBadRequest, "write with no ops");
  if (ops.size() > proto::Limits::kMaxBatchOps) {
    return Status(Code::kTooLarge, "batch of " + std::to_string(ops.size()) + " ops exceeds " +
                                       std::to_string(proto::Limits::kMaxBatchOps));
  }
  for (const proto::WriteOp& op : ops) {
    if (op.key.size() > proto::Limits::kMaxKeyBytes) {
      return Status(Code::kTooLarge, "key of " + std::to_string(op.key.size()) + " bytes exceeds " +
                                         std::to_string(proto::Limits::kMaxKeyBytes));
    }
    if (op.value.size() > proto::Limits::kMaxValueBytes) {
      return Status(Code::kTooLarge, "value of " + std::to_string(op.value.size()) +
                                         " bytes exceeds " +
                                         std::to_string(proto::Limits::kMaxValueBytes));
    }
  }
  const std::string* outside = nullptr;
  {
    MutexLock lock(bounds_mu_);  // one lock for the whole batch, no copy
    for (const proto::WriteOp& op : ops) {
      if (admits_none_ || !bounds_.Contains(op.key)) {
        outside = &op.key;
        break;
      }
    }
  }
  if (outside != nullptr) return Outside(*outside);
  return Status::Ok();
}

namespace {

// Encodes ops as one WAL record whose Seq is filled in later. The payload
// and its crc are computed here, outside every lock.
std::string EncodeRecord(const std::vector<proto::WriteOp>& ops, Epoch epoch, size_t payload_size) {
  std::string rec;
  rec.reserve(wal::kRecordHeaderSize + payload_size);
  rec.resize(wal::kRecordHeaderSize);
  wal::AppendBatchPayloadHeader(epoch, static_cast<uint32_t>(ops.size()), &rec);
  for (const proto::WriteOp& op : ops) {
    const bool del = op.kind == proto::WriteOp::Kind::kDelete;
    wal::AppendBatchOp(del ? wal::OpCode::kDelete : wal::OpCode::kPut, op.key, op.value, &rec);
  }
  std::string_view payload = std::string_view(rec).substr(wal::kRecordHeaderSize);
  wal::RecordHeader h;
  h.length = static_cast<uint32_t>(payload.size());
  h.type = wal::RecordType::kBatch;
  h.payload_crc = wal::PayloadCrc(h.type, payload);
  wal::EncodeRecordHeader(h, rec.data());
  return rec;
}

}  // namespace

void RangeStore::Impl::Write(std::vector<proto::WriteOp> ops, WriteCallback cb) {
  if (Status st = CheckOps(ops); !st.ok()) return cb(std::move(st));
  size_t payload_size = wal::kBatchPayloadFixed;
  for (const proto::WriteOp& op : ops) {
    const bool del = op.kind == proto::WriteOp::Kind::kDelete;
    payload_size += wal::BatchOpSize(del ? wal::OpCode::kDelete : wal::OpCode::kPut, op.key.size(),
                                     op.value.size());
  }
  if (payload_size > wal::kMaxRecordPayload) {
    return cb(Status(Code::kTooLarge, "batch of " + std::to_string(payload_size) +
                                          " bytes exceeds the log record limit"));
  }
  PendingWrite w;
  w.epoch = log.write_epoch();
  w.record = EncodeRecord(ops, w.epoch, payload_size);
  {
    // One step across both halves: the cas outcome, the Seq and the
    // pending keys must agree with every other Write's.
    MutexLock log_lock(log.mu());
    MutexLock map_lock(map.mu());
    Status st = log.RefusalLocked();
    Seq wait(0);
    if (st.ok()) st = map.CheckConditionsLocked(ops, &wait);
    if (st.code() == Code::kCasFailed && wait.value() != 0) {
      map.DeferLocked(wait, std::move(st), std::move(cb));
      return;
    }
    if (!st.ok()) {
      map_lock.Unlock();
      log_lock.Unlock();
      return cb(std::move(st));
    }
    if (w.epoch != log.EpochLocked()) {  // BeginEpoch ran meanwhile: rare
      w.epoch = log.EpochLocked();
      w.record = EncodeRecord(ops, w.epoch, payload_size);
    }
    w.seq = log.TakeSeqLocked(w.epoch);
    wal::FinishRecordHeader(w.seq, w.record.data());
    for (proto::WriteOp& op : ops) {
      if (op.kind == proto::WriteOp::Kind::kCas) op.kind = proto::WriteOp::Kind::kPut;
    }
    map.AddPendingLocked(w.seq, ops);
    w.ops = std::move(ops);
    w.cb = std::move(cb);
    log.EnqueueLocked(std::move(w));
  }
  AskWriteTurn();
}

Status RangeStore::Impl::Close() {
  MutexLock close_lock(close_mu);
  if (closed) return close_status;
  log.BeginClose();
  // Snapshots first: the log must not change under a snapshot being
  // finished, and a pending export is answered now.
  snapshots.Stop();
  // The log thread drains the queue, fsyncs and exits.
  if (log_worker) {
    log_worker->Notify();
    log_worker->Join();
  }
  log.StopSyncWorker();  // after the log thread, whose exit made the log durable
  if (opts.commit_gate) {
    Status saved = snapshots.SaveCheckpoint();  // what was applied last, for the next Open
    if (!saved.ok()) LOG_WARN("range " << id << ": saving the commit point: " << saved.ToString());
  }
  Status st = log.CloseFile();
  closed = true;
  close_status = st;
  return st;
}

}  // namespace rangekv::kvnode
