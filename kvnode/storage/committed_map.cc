// CommittedMap: reads, cas checks against map + pending writes, the commit
// point, and applying what it covers (kvnode/storage/committed_map.h).
#include "kvnode/storage/committed_map.h"

#include "common/escape.h"

namespace rangekv::kvnode {
namespace {

void ApplyPut(KeyMap& map, std::string_view key, std::string_view value, Seq seq) {
  map.Put(key, value, seq.value());
}

// A record recovery keeps staged (past the commit point), as the log
// thread would hold it after writing it.
Result<PendingWrite> StagedRecord(const wal::RecordView& rec) {
  RANGEKV_ASSIGN_OR_RETURN(wal::DecodedBatch batch, wal::DecodeBatchPayload(rec.payload));
  PendingWrite w;
  w.seq = rec.seq;
  w.epoch = batch.epoch;
  for (const wal::BatchOp& op : batch.ops) {
    if (op.op == wal::OpCode::kPut) {
      w.ops.push_back(proto::WriteOp::Put(std::string(op.key), std::string(op.value)));
    } else {
      w.ops.push_back(proto::WriteOp::Delete(std::string(op.key)));
    }
  }
  return w;
}

}  // namespace

// ---- reads ----

std::optional<proto::Entry> CommittedMap::Get(std::string_view key) const {
  ReaderMutexLock lock(map_mu_);
  const KeyMap::Entry* e = map_.Find(key);
  if (e == nullptr) return std::nullopt;
  return proto::Entry{std::string(key), std::string(e->value()), e->version};
}

std::vector<proto::Entry> CommittedMap::Scan(std::string_view start,
                                             const std::optional<std::string>& end,
                                             uint32_t limit, bool* more) const {
  std::vector<proto::Entry> out;
  bool has_more = false;
  {
    ReaderMutexLock lock(map_mu_);
    for (auto it = map_.LowerBound(start); it != map_.ordered().end(); ++it) {
      if (end && it->key() >= *end) break;
      if (out.size() == limit) {
        has_more = true;
        break;
      }
      out.push_back(proto::Entry{std::string(it->key()), std::string(it->value()), it->version});
    }
  }
  if (more != nullptr) *more = has_more;
  return out;
}

Seq CommittedMap::applied() const {
  ReaderMutexLock lock(map_mu_);
  return applied_seq_;
}

void CommittedMap::Stats(Seq* applied, size_t* keys, uint64_t* bytes) const {
  ReaderMutexLock lock(map_mu_);
  *applied = applied_seq_;
  *keys = map_.size();
  *bytes = map_.bytes();
}

std::optional<std::string> CommittedMap::MiddleKey(const KeyRange& span) const {
  ReaderMutexLock lock(map_mu_);
  auto first = map_.LowerBound(span.start());
  auto last = span.end() ? map_.LowerBound(*span.end()) : map_.ordered().end();
  uint64_t total = 0;
  for (auto it = first; it != last; ++it) total += it->key().size() + it->value().size();
  uint64_t seen = 0;
  for (auto it = first; it != last; ++it) {
    if (it != first && seen * 2 >= total) return std::string(it->key());
    seen += it->key().size() + it->value().size();
  }
  return std::nullopt;
}

size_t CommittedMap::size() const {
  ReaderMutexLock lock(map_mu_);
  return map_.size();
}

// ---- writes ----

// Each lookup takes map_mu_ on its own, and only when the key has no
// pending write (so a cas on a busy key never waits for an apply). The
// versions read are still of one moment: with mu_ held, a key no pending
// write touches cannot change, because every record the log thread may be
// applying keeps its keys pending until ErasePendingLocked, under mu_.
Status CommittedMap::CheckConditionsLocked(const std::vector<proto::WriteOp>& ops,
                                           Seq* wait) const {
  *wait = Seq(0);
  for (const proto::WriteOp& op : ops) {
    if (op.kind != proto::WriteOp::Kind::kCas) continue;
    uint64_t current = 0;
    if (auto p = pending_.find(std::string_view(op.key)); p != pending_.end()) {
      current = p->second.exists ? p->second.seq.value() : 0;
      *wait = p->second.seq;
    } else {
      current = CommittedVersion(op.key);
    }
    if (current != op.expected_version) {
      return Status(Code::kCasFailed, "key " + QuoteIfNeeded(op.key) + " has version " +
                                          std::to_string(current) + ", expected " +
                                          std::to_string(op.expected_version));
    }
  }
  return Status::Ok();
}

uint64_t CommittedMap::CommittedVersion(std::string_view key) const {
  ReaderMutexLock lock(map_mu_);
  const KeyMap::Entry* e = map_.Find(key);
  return e == nullptr ? 0 : e->version;
}

void CommittedMap::DeferLocked(Seq wait, Status st, WriteCallback cb) {
  deferred_.emplace(wait, DeferredFailure{std::move(st), std::move(cb)});
}

void CommittedMap::AddPendingLocked(Seq seq, const std::vector<proto::WriteOp>& ops) {
  for (const proto::WriteOp& op : ops) {
    auto [it, inserted] = pending_.try_emplace(op.key);
    it->second = PendingKey{seq, op.kind != proto::WriteOp::Kind::kDelete};
  }
}

// ---- the commit point ----

bool CommittedMap::SetGate(bool on) {
  MutexLock lock(mu_);
  gate_ = on;
  return CanApplyLocked();
}

bool CommittedMap::Commit(Seq through) {
  MutexLock lock(mu_);
  if (through <= commit_seq_) return false;
  commit_seq_ = through;
  return CanApplyLocked();
}

bool CommittedMap::CanApplyLocked() const {
  return !staged_.empty() && (!gate_ || staged_.front().seq <= commit_seq_);
}

// ---- the log thread ----

void CommittedMap::Stage(std::vector<PendingWrite>& group) {
  MutexLock lock(mu_);
  for (PendingWrite& w : group) staged_.push_back(std::move(w));
}

// committing_seq_ marks the batch taken before the map changes, so a
// TruncateAfter racing with this sees it as applied.
bool CommittedMap::ApplyCommitted() {
  std::vector<PendingWrite>& batch = applying_;
  batch.clear();
  {
    MutexLock lock(mu_);
    while (CanApplyLocked()) {
      batch.push_back(std::move(staged_.front()));
      staged_.pop_front();
    }
    if (batch.empty()) return false;
    committing_seq_ = batch.back().seq;
  }
  ApplyGroup(batch);
  {
    MutexLock lock(mu_);
    ErasePendingLocked(batch);
  }
  for (PendingWrite& w : batch) {
    if (w.cb) w.cb(w.seq);
  }
  FireDeferredUpTo(batch.back().seq);
  batch.clear();
  if (batch.capacity() > kKeptGroupCapacity) std::vector<PendingWrite>().swap(batch);
  return true;
}

void CommittedMap::ApplyGroup(std::vector<PendingWrite>& group) {
  WriterMutexLock lock(map_mu_);
  for (PendingWrite& w : group) {
    for (proto::WriteOp& op : w.ops) {
      if (!Kept(op.key)) continue;
      if (op.kind == proto::WriteOp::Kind::kDelete) {
        map_.Delete(op.key);
      } else {
        ApplyPut(map_, op.key, op.value, w.seq);
      }
    }
  }
  applied_seq_ = group.back().seq;
}

// The map now holds these records: pending entries that still name one of
// them can go (a newer pending write to the same key keeps its entry).
void CommittedMap::ErasePendingLocked(const std::vector<PendingWrite>& applied) {
  for (const PendingWrite& w : applied) {
    for (const proto::WriteOp& op : w.ops) {
      auto it = pending_.find(std::string_view(op.key));
      if (it != pending_.end() && it->second.seq == w.seq) pending_.erase(it);
    }
  }
}

void CommittedMap::FireDeferredUpTo(Seq applied) {
  std::vector<DeferredFailure> due;
  {
    MutexLock lock(mu_);
    auto end = deferred_.upper_bound(applied);
    for (auto it = deferred_.begin(); it != end; ++it) due.push_back(std::move(it->second));
    deferred_.erase(deferred_.begin(), end);
  }
  for (DeferredFailure& d : due) d.cb(std::move(d.status));
}

void CommittedMap::FailDeferredAbove(Seq seq, const Status& st) {
  std::vector<DeferredFailure> due;
  {
    MutexLock lock(mu_);
    auto begin = deferred_.upper_bound(seq);
    for (auto it = begin; it != deferred_.end(); ++it) due.push_back(std::move(it->second));
    deferred_.erase(begin, deferred_.end());
  }
  for (DeferredFailure& d : due) d.cb(st);
}

void CommittedMap::FailStaged(const Status& st) {
  std::deque<PendingWrite> doomed;
  {
    MutexLock lock(mu_);
    doomed.swap(staged_);
    pending_.clear();
  }
  for (PendingWrite& w : doomed) {
    if (w.cb) w.cb(st);
  }
  FailDeferredAbove(Seq(0), st);
}

// ---- truncation ----

Status CommittedMap::TruncateRefusalLocked(Seq seq) const {
  if (seq >= committing_seq_) return Status::Ok();
  return Status(Code::kBadRequest, "cannot truncate the log after seq " +
                                       std::to_string(seq.value()) + ": seq " +
                                       std::to_string(committing_seq_.value()) +
                                       " is already applied");
}

void CommittedMap::LowerCommitLocked(Seq seq) {
  if (commit_seq_ > seq) commit_seq_ = seq;
}

void CommittedMap::DropStagedAboveLocked(Seq seq, std::vector<PendingWrite>* dropped) {
  while (!staged_.empty() && staged_.back().seq > seq) {
    dropped->push_back(std::move(staged_.back()));
    staged_.pop_back();
  }
}

void CommittedMap::RebuildPendingLocked(const std::vector<PendingWrite>& queued) {
  pending_.clear();
  for (const PendingWrite& w : staged_) AddPendingLocked(w.seq, w.ops);
  for (const PendingWrite& w : queued) AddPendingLocked(w.seq, w.ops);
}

// ---- Open ----

void CommittedMap::Load(KeyMap map) {
  WriterMutexLock lock(map_mu_);
  map_ = std::move(map);
  if (keep_) DropOutsideLocked();
}

KeyMap CommittedMap::Release() {
  WriterMutexLock lock(map_mu_);
  KeyMap out = std::move(map_);
  map_ = KeyMap();
  return out;
}

Status CommittedMap::ReplayRecovered(const wal::RecordView& rec) {
  RANGEKV_ASSIGN_OR_RETURN(wal::DecodedBatch batch, wal::DecodeBatchPayload(rec.payload));
  WriterMutexLock lock(map_mu_);
  for (const wal::BatchOp& op : batch.ops) {
    if (!Kept(op.key)) continue;
    if (op.op == wal::OpCode::kPut) {
      ApplyPut(map_, op.key, op.value, rec.seq);
    } else {
      map_.Delete(op.key);
    }
  }
  return Status::Ok();
}

Status CommittedMap::StageRecovered(const wal::RecordView& rec) {
  RANGEKV_ASSIGN_OR_RETURN(PendingWrite w, StagedRecord(rec));
  MutexLock lock(mu_);
  AddPendingLocked(w.seq, w.ops);
  staged_.push_back(std::move(w));
  return Status::Ok();
}

void CommittedMap::FinishRecovery(Seq last) {
  MutexLock lock(mu_);
  const Seq applied = staged_.empty() ? last : Seq(staged_.front().seq.value() - 1);
  committing_seq_ = commit_seq_ = applied;
  WriterMutexLock map_lock(map_mu_);
  applied_seq_ = applied;
}

size_t CommittedMap::staged_count() const {
  MutexLock lock(mu_);
  return staged_.size();
}

// ---- snapshots ----

bool CommittedMap::AddChunk(snapshot::SnapshotWriter* writer, size_t chunk_bytes, bool started,
                            std::string* last_key, Seq* end) const {
  ReaderMutexLock lock(map_mu_);
  const KeyMap::Ordered& tree = map_.ordered();
  auto it = started ? map_.UpperBound(*last_key) : tree.begin();
  for (; it != tree.end() && writer->buffered() < chunk_bytes; ++it) {
    writer->Add(it->key(), it->value(), it->version);
  }
  const bool done = it == tree.end();
  if (!done) *last_key = std::prev(it)->key();
  *end = applied_seq_;  // grows monotonically; the last chunk's is the max
  return done;
}

bool CommittedMap::CopySpanChunk(KeyMap* out, const KeyRange& span, size_t max_entries,
                                 bool started, std::string* last_key, uint64_t* max_version) const {
  ReaderMutexLock lock(map_mu_);
  const KeyMap::Ordered& tree = map_.ordered();
  auto it = started ? map_.UpperBound(*last_key) : map_.LowerBound(span.start());
  for (size_t n = 0; it != tree.end() && span.Contains(it->key()) && n < max_entries; ++it, ++n) {
    out->PutInOrder(it->key(), it->value(), it->version);
    *max_version = std::max(*max_version, it->version);
  }
  const bool done = it == tree.end() || !span.Contains(it->key());
  if (!done) *last_key = std::prev(it)->key();
  return done;
}

namespace {

bool Inside(const KeyRange& inner, const KeyRange& outer) {
  return inner.end() ? outer.ContainsSpan(inner.start(), std::string_view(*inner.end()))
                     : outer.ContainsSpan(inner.start(), std::nullopt);
}

}  // namespace

bool CommittedMap::GiveSpan(const KeyRange& span, bool all, Seq at, KeyMap* out,
                            uint64_t* max_version) {
  WriterMutexLock lock(map_mu_);
  if (hollow_) return false;
  const KeyMap::Ordered& tree = map_.ordered();
  const KeyRange extent = keep_.value_or(KeyRange());
  auto first = tree.begin();
  if (all) {
    if (!tree.empty() &&
        (!span.Contains(tree.begin()->key()) || !span.Contains(tree.rbegin()->key()))) {
      return false;
    }
  } else {
    if (span.end() != extent.end() || span.start() <= extent.start()) return false;
    first = map_.LowerBound(span.start());
  }
  // The fence check of CopySpanChunk: a read-only walk of the span, needed
  // only when records after `at` were applied (a split's parent writes on
  // to the left part); no key has a version above the applied seq.
  if (applied_seq_ > at) {
    for (auto it = first; it != tree.end(); ++it) {
      *max_version = std::max(*max_version, it->version);
    }
    if (*max_version > at.value()) return false;  // the caller's check reports it
  }
  if (all) {
    out->Append(std::move(map_));
    map_ = KeyMap();
    hollow_ = true;
  } else {
    out->Append(map_.TakeFrom(span.start()));
    keep_ = KeyRange(extent.start(), span.start());
  }
  gave_ = true;
  return true;
}

bool CommittedMap::gave_pending() const {
  ReaderMutexLock lock(map_mu_);
  return gave_;
}

bool CommittedMap::Holds(const KeyRange& span) const {
  ReaderMutexLock lock(map_mu_);
  return !hollow_ && (!keep_ || Inside(span, *keep_));
}

void CommittedMap::Retain(const KeyRange& keep) {
  WriterMutexLock lock(map_mu_);
  // The files now say `keep`: what GiveSpan took is theirs no longer when
  // the map holds no more than that.
  if (!keep_ || Inside(keep, *keep_)) {
    keep_ = keep;
    gave_ = hollow_;
  }
  DropOutsideLocked();
}

void CommittedMap::DropOutsideLocked() {
  const KeyMap::Ordered& tree = map_.ordered();
  // keep_ is one span: with the first and last keys inside it, all are.
  if (tree.empty() ||
      (keep_->Contains(tree.begin()->key()) && keep_->Contains(tree.rbegin()->key()))) {
    return;
  }
  std::vector<std::string> drop;
  for (const KeyMap::Entry& e : map_.ordered()) {
    if (!keep_->Contains(e.key())) drop.emplace_back(e.key());
  }
  for (const std::string& key : drop) map_.Delete(key);
}

bool CommittedMap::HasKeysOutside(const KeyRange& b) const {
  ReaderMutexLock lock(map_mu_);
  const KeyMap::Ordered& tree = map_.ordered();
  if (!tree.empty() && tree.begin()->key() < b.start()) return true;
  return b.end() && map_.LowerBound(*b.end()) != tree.end();
}

std::optional<KeyRange> CommittedMap::retained() const {
  ReaderMutexLock lock(map_mu_);
  return keep_;
}

}  // namespace rangekv::kvnode
