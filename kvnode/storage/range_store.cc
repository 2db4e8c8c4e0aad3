// RangeStore: the public surface, reads, and the caller side of the write
// path (validation, Seq assignment, enqueue). See range_store_impl.h for the
// threads and the lock order.
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
  Impl* raw = impl.get();
  const std::string name = "range-" + std::to_string(id.value());
  raw->log_worker = raw->env.StartWorker(name + "-log", [raw] { return raw->LogStep(); });
  if (raw->opts.fsync == FsyncPolicy::kBatch) {
    raw->sync_worker = raw->env.StartWorker(name + "-sync", [raw] { return raw->SyncStep(); });
  }
  raw->snapshot_worker =
      raw->env.StartWorker(name + "-snapshot", [raw] { return raw->SnapshotStep(); });
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
const KeyRange& RangeStore::bounds() const { return impl_->bounds; }

std::optional<proto::Entry> RangeStore::Get(std::string_view key) const {
  std::shared_lock lock(impl_->map_mu);
  const StoredValue* v = impl_->map.Find(key);
  if (v == nullptr) return std::nullopt;
  return proto::Entry{std::string(key), v->value, v->version};
}

std::vector<proto::Entry> RangeStore::Scan(std::string_view start,
                                           const std::optional<std::string>& end, uint32_t limit,
                                           bool* more) const {
  std::vector<proto::Entry> out;
  bool has_more = false;
  {
    std::shared_lock lock(impl_->map_mu);
    const KeyMap::Ordered& map = impl_->map.ordered();
    for (auto it = map.lower_bound(start); it != map.end(); ++it) {
      if (end && it->first >= *end) break;
      if (out.size() == limit) {
        has_more = true;
        break;
      }
      out.push_back(proto::Entry{it->first, it->second.value, it->second.version});
    }
  }
  if (more != nullptr) *more = has_more;
  return out;
}

void RangeStore::Write(std::vector<proto::WriteOp> ops, WriteCallback cb) {
  impl_->Write(std::move(ops), std::move(cb));
}

bool RangeStore::cut_tail_at_open() const { return impl_->cut_tail; }

Status RangeStore::health() const {
  std::lock_guard lock(impl_->mu);
  return impl_->failed;
}

StoreStats RangeStore::Stats() const {
  StoreStats s;
  {
    std::shared_lock lock(impl_->map_mu);
    s.last_seq = impl_->applied_seq;
    s.keys = impl_->map.size();
  }
  {
    std::lock_guard lock(impl_->seg_mu);
    s.segments = impl_->segments.size();
    for (const SegmentInfo& seg : impl_->segments) s.wal_bytes += seg.bytes;
  }
  s.snapshot_seq = Seq(impl_->snapshot_seq.load());
  return s;
}

Status RangeStore::SnapshotNow() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->closing) return Status(Code::kUnavailable, "range store is closed");
  }
  return impl_->TakeSnapshot();
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
    if (!bounds.Contains(op.key)) {
      return Status(Code::kBadRequest,
                    "key " + QuoteIfNeeded(op.key) + " is outside range " + bounds.ToString());
    }
  }
  return Status::Ok();
}

// Every cas in a batch compares against the state before the batch (latest
// pending write, else the committed map), so the outcome does not depend on
// the order of ops inside the batch.
Status RangeStore::Impl::CheckConditionsLocked(const std::vector<proto::WriteOp>& ops,
                                               Seq* wait) {
  std::shared_lock<std::shared_mutex> map_lock(map_mu, std::defer_lock);
  *wait = Seq(0);
  for (const proto::WriteOp& op : ops) {
    if (op.kind != proto::WriteOp::Kind::kCas) continue;
    uint64_t current = 0;
    if (auto p = pending.find(std::string_view(op.key)); p != pending.end()) {
      current = p->second.exists ? p->second.seq.value() : 0;
      *wait = p->second.seq;
    } else {
      if (!map_lock.owns_lock()) map_lock.lock();
      const StoredValue* v = map.Find(op.key);
      current = v == nullptr ? 0 : v->version;
    }
    if (current != op.expected_version) {
      return Status(Code::kCasFailed, "key " + QuoteIfNeeded(op.key) + " has version " +
                                          std::to_string(current) + ", expected " +
                                          std::to_string(op.expected_version));
    }
  }
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
  w.epoch = Epoch(write_epoch.load());
  w.record = EncodeRecord(ops, w.epoch, payload_size);
  {
    std::unique_lock lock(mu);
    Status st = closing ? Status(Code::kUnavailable, "range store is closed") : failed;
    Seq wait(0);
    if (st.ok()) st = CheckConditionsLocked(ops, &wait);
    if (st.code() == Code::kCasFailed && wait.value() != 0) {
      deferred.emplace(wait, DeferredFailure{std::move(st), std::move(cb)});
      return;
    }
    if (!st.ok()) {
      lock.unlock();
      return cb(std::move(st));
    }
    if (w.epoch != history.last_epoch()) {  // BeginEpoch ran meanwhile: rare
      w.epoch = history.last_epoch();
      w.record = EncodeRecord(ops, w.epoch, payload_size);
    }
    last_record_epoch = w.epoch;
    w.seq = next_seq;
    next_seq = next_seq.Next();
    wal::FinishRecordHeader(w.seq, w.record.data());
    for (proto::WriteOp& op : ops) {
      const bool del = op.kind == proto::WriteOp::Kind::kDelete;
      if (op.kind == proto::WriteOp::Kind::kCas) op.kind = proto::WriteOp::Kind::kPut;
      auto [it, inserted] = pending.try_emplace(op.key);
      it->second = PendingKey{w.seq, !del};
    }
    w.ops = std::move(ops);
    w.cb = std::move(cb);
    queue.push_back(std::move(w));
  }
  NotifyLog();
}

Status RangeStore::Impl::Close() {
  std::lock_guard close_lock(close_mu);
  if (closed) return close_status;
  {
    std::lock_guard lock(mu);
    closing = true;
  }
  // Snapshots first: the log must not change under a snapshot being
  // finished, and a pending export is answered now.
  stop_snapshots.store(true);
  {
    std::lock_guard lock(bg_mu);
    bg_stop = true;
  }
  if (snapshot_worker) {
    snapshot_worker->Notify();
    snapshot_worker->Join();
  }
  // The log thread drains the queue, fsyncs and exits.
  if (log_worker) {
    log_worker->Notify();
    log_worker->Join();
  }
  StopSyncWorker();  // after the log thread, whose exit made the log durable
  if (opts.commit_gate) {
    Status saved = SaveCheckpoint();  // what was applied last, for the next Open
    if (!saved.ok()) LOG_WARN("range " << id << ": saving the commit point: " << saved.ToString());
  }
  Status st;
  if (active) st = active->Close();
  {
    std::lock_guard lock(mu);
    if (!failed.ok()) st = failed;
  }
  closed = true;
  close_status = st;
  return st;
}

}  // namespace rangekv::kvnode
