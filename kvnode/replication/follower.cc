// The replica's side of replication (kvnode/replication/replicator.h).
#include "common/log.h"
#include "kvnode/replication/replication_internal.h"
#include "kvnode/storage/wal_format.h"

namespace rangekv::kvnode::replication {
namespace {

constexpr milliseconds kRetryDelay{100};
// After the map named a new owner: that node may learn it a moment after
// this one (its answer is NOT_OWNER meanwhile), so the first retries come
// sooner; a handoff costs a watch's propagation, not a retry delay. The
// very first ones come sooner still: a range just split off or merged
// opens on its owner within a millisecond or two of its replicas, and
// the first write to it waits for their first fetch.
constexpr milliseconds kNewOwnerRetryDelay{5};
constexpr milliseconds kNewOwnerFirstRetryDelay{1};
constexpr int kNewOwnerQuickRetries = 20;
constexpr int kNewOwnerFirstRetries = 5;  // of the quick ones
constexpr milliseconds kRequestSlack{2000};
// How long past its long poll a fetch may wait before the owner counts as
// lost (a report only: the coordinator's pings decide).
constexpr milliseconds kLostAfterPoll{150};

// The records' count, once every header checks and no record is cut short.
Result<size_t> CountRecords(const std::string& bytes) {
  size_t n = 0;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < wal::kRecordHeaderSize) {
      return Status(Code::kCorruption, "fetched records end inside a record header");
    }
    wal::RecordHeader h;
    if (wal::CheckRecordHeader(bytes.data() + at, &h) != wal::HeaderCheck::kValid) {
      return Status(Code::kCorruption, "fetched record header at byte " + std::to_string(at) +
                                           " does not check");
    }
    size_t total = wal::kRecordHeaderSize + h.length;
    if (bytes.size() - at < total || h.length < 8) {
      return Status(Code::kCorruption, "fetched record at byte " + std::to_string(at) +
                                           " is cut short");
    }
    ++n;
    at += total;
  }
  return n;
}

}  // namespace

// Sized once: a vector grown record by record reallocates for every
// doubling, and large reallocations are what make glibc's malloc
// consolidate its free lists on the replication thread.
Result<std::vector<LogRecord>> SplitRecords(const std::string& bytes) {
  Result<size_t> n = CountRecords(bytes);
  if (!n.ok()) return n.status();
  std::vector<LogRecord> out;
  out.reserve(*n);
  size_t at = 0;
  while (at < bytes.size()) {
    wal::RecordHeader h;
    (void)wal::CheckRecordHeader(bytes.data() + at, &h);
    const size_t total = wal::kRecordHeaderSize + h.length;
    Epoch epoch(wal::GetFixed64(bytes.data() + at + wal::kRecordHeaderSize));
    out.push_back(LogRecord{h.seq, epoch, bytes.substr(at, total)});
    at += total;
  }
  return out;
}

Follower::Follower(Context& ctx, HeldRange range, Clock::time_point not_before)
    : ctx_(ctx),
      range_(std::move(range)),
      alive_(std::make_shared<bool>(true)),
      timer_(ctx.exec.NewTimer()),
      not_before_(not_before),
      quick_retries_(kNewOwnerQuickRetries) {
  range_.slot->set_write_state(WriteState::kNotOwner);
  range_.slot->set_reads_ready(false);
  range_.slot->set_handed_to(nullptr);  // the map has caught up with the handoff
  if (auto store = range_.slot->store()) store->SetCommitGate(true);
  RefreshStaleOk();
  Schedule(not_before_);
}

Follower::~Follower() {
  *alive_ = false;
  timer_->Cancel();
}

void Follower::Update(HeldRange range) {
  bool new_owner = range.info.epoch != range_.info.epoch || range.info.owner != range_.info.owner;
  range_ = std::move(range);
  if (new_owner) {
    // Keep the promise made to the previous owner before following a new
    // one, unless that owner handed the range over itself (it stopped
    // serving first: cluster_map.h "handoff_from").
    if (range_.info.HandedOverFrom(promise_epoch_)) promise_until_ = Clock::now();
    not_before_ = std::max(Clock::now(), promise_until_);
    quick_retries_ = kNewOwnerQuickRetries;
    stream_lost_ = false;
    if (fetch_sent_) {
      // The old owner (stopped, or cut off with the connection up) may
      // hold our fetch for seconds: it is abandoned, not waited for. Its
      // answer promises nothing: an owner credits an answer only when the
      // replica's next fetch arrives (Leader::OnFetch), and none will.
      ++fetch_gen_;
      fetch_sent_.reset();
      in_flight_ = false;
    }
    LOG_INFO(Name(range_.info.id) << ": following "
                                  << (range_.info.owner ? range_.info.owner->str() : "-")
                                  << " at epoch " << range_.info.epoch.value());
  }
  if (!in_flight_) Schedule(not_before_);
}

void Follower::RefreshStaleOk() {
  auto store = range_.slot->store();
  range_.slot->set_stale_ok(store != nullptr && !snapshotting_ &&
                           store->committed() >= store->consistent_from());
}

void Follower::Schedule(Clock::time_point at) {
  std::weak_ptr<bool> alive = alive_;
  timer_->ExpiresAt(std::max(at, not_before_), [this, alive] {
    if (!alive.lock() || in_flight_ || installing_) return;
    if (restart_copy_) {
      restart_copy_ = false;
      StartSnapshot();
    } else if (snapshotting_) {
      FetchChunk();
    } else {
      SendFetch();
    }
  });
}

void Follower::Retry(const Status& why) {
  if (why.ToString() != last_error_) {
    last_error_ = why.ToString();
    LOG_WARN(Name(range_.info.id) << ": replication from "
                                  << (range_.info.owner ? range_.info.owner->str() : "-") << ": "
                                  << last_error_ << "; retrying");
  }
  const bool quick = why.code() == Code::kNotOwner && quick_retries_ > 0;
  const bool first = quick && quick_retries_ > kNewOwnerQuickRetries - kNewOwnerFirstRetries;
  if (quick) --quick_retries_;
  Schedule(Clock::now() + (first   ? kNewOwnerFirstRetryDelay
                           : quick ? kNewOwnerRetryDelay
                                   : kRetryDelay));
}

void Follower::SendFetch() {
  auto store = range_.slot->store();
  if (store == nullptr) return;
  if (!range_.info.owner || range_.owner_address.empty()) {
    Schedule(Clock::now() + kRetryDelay * 5);  // no live owner: wait for the map
    return;
  }
  // Every path that fetches again comes here: a promise made to a previous
  // owner is kept even when the fetch that made it completes after the
  // map named a new owner.
  if (Clock::now() < not_before_) return Schedule(not_before_);
  LogPosition last = store->last();
  proto::Request req;
  req.kind = proto::OpKind::kFetch;
  req.range = range_.info.id;
  req.epoch = range_.info.epoch;
  req.fetch.replica = ctx_.self.str();
  req.fetch.from = last.seq.Next();
  req.fetch.last_epoch = last.epoch;
  req.fetch.max_bytes = ctx_.options.fetch_max_bytes;
  req.fetch.wait_ms = static_cast<uint32_t>(ctx_.options.fetch_wait.count());
  req.fetch.replica_life = ctx_.life;
  req.fetch.copy = store->instance();
  asked_at_ = Clock::now();
  if (store->instance() != copy_) {
    copy_ = store->instance();
    caught_up_ = false;  // a reopened or new copy: caught up again first
  }
  in_flight_ = true;
  fetch_sent_.emplace(asked_at_, *range_.info.owner);
  const uint64_t gen = fetch_gen_;
  std::weak_ptr<bool> alive = alive_;
  const Epoch sent_epoch = range_.info.epoch;
  const std::optional<NodeId> sent_owner = range_.info.owner;
  ctx_.Send(
      range_.owner_address, std::move(req), ctx_.options.fetch_wait + kRequestSlack,
      [this, alive, gen, sent_epoch, sent_owner, sent_copy = copy_](Result<proto::Response> r) {
        if (!alive.lock() || gen != fetch_gen_) return;  // gone, or abandoned
        in_flight_ = false;
        fetch_sent_.reset();
        if (sent_owner == range_.info.owner) stream_lost_ = !r.ok();
        // The owner credits our next fetch with a lease running from
        // when it sent this answer, so the promise runs from now (we
        // received it later). Fetches that get no answer extend
        // nothing: a dead owner's lease runs out while we retry.
        // An owner that has handed the range over serves no more.
        if (r.ok() && !range_.info.HandedOverFrom(sent_epoch)) {
          promise_until_ = std::max(promise_until_, Clock::now() + ctx_.options.lease);
          promise_epoch_ = sent_epoch;
        }
        if (sent_epoch != range_.info.epoch || sent_owner != range_.info.owner) {
          // Not reached: Update abandons a fetch to an owner we no
          // longer follow. Were it, the promise above is kept.
          not_before_ = std::max(not_before_, promise_until_);
          return Schedule(not_before_);
        }
        // The copy it was sent for was reopened or rebuilt meanwhile:
        // its records and commit point do not fit this one.
        auto now_store = range_.slot->store();
        if (now_store == nullptr || now_store->instance() != sent_copy) {
          return Schedule(Clock::now());
        }
        OnFetched(std::move(r));
      });
}

std::optional<NodeId> Follower::LostOwner(Clock::time_point now) const {
  if (!range_.info.owner || *range_.info.owner == ctx_.self) return std::nullopt;
  const bool waited_long = fetch_sent_ && fetch_sent_->second == *range_.info.owner &&
                           now - fetch_sent_->first > ctx_.options.fetch_wait + kLostAfterPoll;
  if (stream_lost_ || waited_long) return range_.info.owner;
  return std::nullopt;
}

bool Follower::caught_up() const {
  auto store = range_.slot->store();
  return caught_up_ && store != nullptr && store->instance() == copy_;
}

void Follower::OnFetched(Result<proto::Response> r) {
  if (!r.ok()) return Retry(r.status());
  if (r->kind == proto::Response::Kind::kError) return Retry(r->error);
  if (r->kind != proto::Response::Kind::kFetched) {
    return Retry(Status(Code::kInternal, "unexpected answer to a fetch"));
  }
  auto store = range_.slot->store();
  if (store == nullptr) return;
  proto::Fetched& f = r->fetched;
  if (f.snapshot_needed) return StartSnapshot();
  if (f.diverged) {
    // Our records of epochs the owner's log skips diverge too, even where
    // the owner has records of an older epoch at the same seqs.
    const Seq to = std::min(f.truncate_to, store->EpochEnd(f.agreed_epoch));
    LOG_INFO(Name(range_.info.id) << ": log diverged from the owner's; truncating after "
                                  << to.value());
    in_flight_ = true;
    std::weak_ptr<bool> alive = alive_;
    exec::Executor& exec = ctx_.exec;
    store->TruncateAfterAsync(to, [this, alive, &exec](Status st) {
      exec.Post([this, alive, st = std::move(st)] {
        if (!alive.lock()) return;
        in_flight_ = false;
        if (!st.ok()) {
          LOG_WARN(Name(range_.info.id) << ": cannot truncate (" << st.ToString()
                                        << "); copying the owner's snapshot instead");
          return StartSnapshot();
        }
        SendFetch();
      });
    });
    return;
  }
  last_error_.clear();
  hwm_ = f.hwm;
  auto records = SplitRecords(f.records);
  if (!records.ok()) return Retry(records.status());
  if (records->empty()) {
    store->CommitHere(std::min(hwm_, store->durable()));
    if (store->durable() >= hwm_) caught_up_ = true;
    RefreshStaleOk();
    TellNews(f.news);
    return SendFetch();
  }
  TellNews(f.news);
  in_flight_ = true;
  std::weak_ptr<bool> alive = alive_;
  Seq hwm = hwm_;
  const size_t bytes = f.records.size();
  exec::Executor& exec = ctx_.exec;
  store->AppendReplicated(
      std::move(*records), [this, alive, hwm, bytes, &exec](Result<Seq> durable) {
        exec.Post([this, alive, hwm, bytes, durable = std::move(durable)]() mutable {
          if (!alive.lock()) return;
          in_flight_ = false;
          OnAppended(std::move(durable), hwm, bytes);
        });
      });
}

// The next chunk of a copy no sooner than its share of the node's byte
// budget (--move-rate), which every copy under way on this node draws from
// (so two copies at once each get half); it ends with the copies. The
// budget runs from when a chunk was asked for, so the chunk's round trip
// (reading, sending and writing it: about as long as the pause itself at
// 1 MiB and 100 MiB/s) overlaps the pause instead of adding to it.
Clock::time_point Follower::PaceCopy(size_t bytes, Clock::time_point asked) {
  auto pause = std::chrono::microseconds(
      bytes * 1000000 / std::max<uint64_t>(1, ctx_.options.snapshot_bytes_per_sec));
  ctx_.copy_paced_until = std::max(asked, ctx_.copy_paced_until) + pause;
  return std::max(Clock::now(), ctx_.copy_paced_until);
}

void Follower::TellNews(const std::vector<proto::RangeNews>& news) {
  if (news.empty() || !ctx_.news_listener) return;
  cluster::ClusterMap::Written wrote;
  for (const proto::RangeNews& n : news) {
    if (n.record.empty()) {
      wrote[n.range] = std::nullopt;
      continue;
    }
    auto info = cluster::DecodeRange(n.record);
    if (!info.ok() || info->id != n.range) {
      LOG_WARN(Name(range_.info.id) << ": the owner's news of range " << n.range.value()
                                    << " does not decode; waiting for the map instead");
      return;
    }
    wrote[n.range] = std::move(*info);
  }
  // News of this range only: an owner speaks for the ranges it leads.
  if (!wrote.count(range_.info.id)) return;
  ctx_.news_listener(range_.info.id, std::move(wrote));
}

void Follower::OnAppended(Result<Seq> durable, Seq hwm, size_t bytes) {
  auto store = range_.slot->store();
  if (store == nullptr) return;
  // Appended to a copy that was reopened or rebuilt meanwhile: nothing
  // to commit in this one.
  if (store->instance() != copy_) return SendFetch();
  if (!durable.ok()) return Retry(durable.status());
  store->CommitHere(std::min(hwm, *durable));
  if (*durable >= hwm) caught_up_ = true;
  RefreshStaleOk();
  // A copy outside the ISR catching up on the owner's log (a new or moved
  // replica whose owner still has the log it needs) is a copy too.
  if (bytes > 0 && std::find(range_.info.isr.begin(), range_.info.isr.end(), ctx_.self) ==
                       range_.info.isr.end()) {
    return Schedule(PaceCopy(bytes, asked_at_));
  }
  SendFetch();
}

// ---- snapshot copy ----

void Follower::StartSnapshot() {
  StoreOptions opts = ctx_.store_options(range_.info.id);
  snap_path_ = opts.dir + ".incoming";
  snap_file_.reset();
  snapshotting_ = true;
  RefreshStaleOk();
  if (ResumeCopy()) return FetchChunk();
  snap_ = proto::SnapshotChunk{};
  snap_offset_ = 0;
  (void)ctx_.fs().Remove(CopyIdentityPath(opts.dir));  // before the bytes it names go
  auto file = ctx_.fs().OpenAppend(snap_path_, fs::AppendFile::Mode::kTruncate);
  if (!file.ok()) return Retry(file.status());
  snap_file_ = std::move(*file);
  LOG_INFO(Name(range_.info.id) << ": copying the owner's snapshot");
  ctx_.Step("copy.started", range_.info.id);
  FetchChunk();
}

void Follower::FetchChunk() {
  if (!range_.info.owner || range_.owner_address.empty()) {
    Schedule(Clock::now() + kRetryDelay * 5);
    return;
  }
  proto::Request req;
  req.kind = proto::OpKind::kSnapshot;
  req.range = range_.info.id;
  req.epoch = range_.info.epoch;
  req.snapshot.replica = ctx_.self.str();
  req.snapshot.replay_from = snap_.replay_from;
  req.snapshot.offset = snap_offset_;
  req.snapshot.max_bytes = ctx_.options.snapshot_chunk_bytes;
  in_flight_ = true;
  asked_at_ = Clock::now();
  std::weak_ptr<bool> alive = alive_;
  ctx_.Send(range_.owner_address, std::move(req), milliseconds(10000),
            [this, alive](Result<proto::Response> r) {
              if (!alive.lock()) return;
              in_flight_ = false;
              OnChunk(std::move(r));
            });
}

void Follower::OnChunk(Result<proto::Response> r) {
  if (!r.ok()) return Retry(r.status());  // resumes at snap_offset_
  if (r->kind == proto::Response::Kind::kError) {
    if (r->error.code() == Code::kRangeUnavailable && snap_.replay_from.value() != 0) {
      LOG_INFO(Name(range_.info.id) << ": the owner's snapshot changed; starting the copy again");
      return StartSnapshot();
    }
    return Retry(r->error);
  }
  if (r->kind != proto::Response::Kind::kSnapshotChunk || r->chunk.offset != snap_offset_) {
    return StartSnapshot();
  }
  const proto::SnapshotChunk& c = r->chunk;
  if (snap_.replay_from.value() == 0) {
    snap_.replay_from = c.replay_from;
    snap_.end = c.end;
    snap_.epoch = c.epoch;
    snap_.total_bytes = c.total_bytes;
    SaveCopyIdentity();
  }
  if (!c.data.empty()) {
    if (Status st = snap_file_->Append(c.data); !st.ok()) {
      restart_copy_ = true;  // what was written is unknown: copy again
      return Retry(st);
    }
  }
  snap_offset_ += c.data.size();
  ctx_.copied_bytes.fetch_add(c.data.size(), std::memory_order_relaxed);
  if (snap_offset_ >= snap_.total_bytes) return InstallSnapshot();
  ctx_.Step("copy.chunk", range_.info.id);
  Schedule(PaceCopy(c.data.size(), asked_at_));
}

// Closing the old store and opening the copy can take long: it runs on the
// background executor, and the range neither fetches nor serves stale reads
// meanwhile (the slot keeps the closed old store until then).
void Follower::InstallSnapshot() {
  if (Status st = snap_file_->Close(); !st.ok()) {
    restart_copy_ = true;
    return Retry(st);
  }
  snap_file_.reset();
  installing_ = true;
  snapshotting_ = false;
  range_.slot->set_stale_ok(false);
  StoreOptions opts = ctx_.store_options(range_.info.id);
  std::shared_ptr<RangeStore> old = range_.slot->store();
  std::weak_ptr<bool> alive = alive_;
  exec::Executor& exec = ctx_.exec;
  fs::FileSystem& fs = ctx_.fs();
  ctx_.background.Post([this, alive, &exec, &fs, old, opts, id = range_.info.id,
                        bounds = range_.info.bounds, path = snap_path_, epoch = snap_.epoch] {
    if (old) (void)old->Close();
    auto store = RangeStore::OpenFromSnapshot(id, bounds, opts, path, epoch);
    (void)fs.Remove(CopyIdentityPath(opts.dir));  // first: it names the bytes below
    (void)fs.Remove(path);
    Result<std::shared_ptr<RangeStore>> fresh =
        store.ok() ? Result<std::shared_ptr<RangeStore>>(std::shared_ptr<RangeStore>(std::move(*store)))
                   : Result<std::shared_ptr<RangeStore>>(store.status());
    exec.Post([this, alive, fresh = std::move(fresh)]() mutable {
      if (alive.lock()) OnInstalled(std::move(fresh));
    });
  });
}

void Follower::OnInstalled(Result<std::shared_ptr<RangeStore>> fresh) {
  installing_ = false;
  if (!fresh.ok()) {
    // The old store is closed: the range waits here, copying again later.
    LOG_ERROR(Name(range_.info.id) << ": installing the snapshot: " << fresh.status().ToString()
                                   << "; copying it again in 1 s");
    restart_copy_ = true;
    range_.slot->set_stale_ok(false);
    return Schedule(Clock::now() + milliseconds(1000));
  }
  (*fresh)->SetCommitGate(true);
  range_.slot->set_store(*fresh);
  caught_up_ = false;  // a new copy: caught up again once it has the commit point
  LOG_INFO(Name(range_.info.id) << ": installed the owner's snapshot (" << snap_.total_bytes
                                << " bytes, replay from " << snap_.replay_from.value() << ")");
  ctx_.Step("copy.installed", range_.info.id);
  RefreshStaleOk();
  SendFetch();
}

proto::RangeStatus Follower::Report() const {
  proto::RangeStatus s;
  s.range = range_.info.id;
  s.epoch = range_.info.epoch;
  s.owner = false;
  if (auto store = range_.slot->store()) {
    s.last_seq = store->last().seq;
    s.hwm = store->committed();
  }
  return s;
}

}  // namespace rangekv::kvnode::replication
