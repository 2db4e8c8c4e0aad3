// The owner's side of replication (kvnode/replication/replicator.h).
#include <algorithm>
#include <utility>

#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode::replication {
namespace {

proto::Response Error(uint64_t id, Code code, std::string msg) {
  return proto::Response::Error(id, Status(code, std::move(msg)));
}

// How long a split's or merge's news is told to replicas that fetch: one
// that does not fetch by then reads the map anyway.
constexpr milliseconds kNewsFor{3000};
// What one fetch of a replica outside the ISR (a new or moved copy
// catching up) reads at most: its old records come from disk on this
// thread, and the ISR's fetches, which commits wait on, are answered in
// between.
constexpr uint32_t kCatchUpFetchBytes = 1u << 20;
// A new copy is not started from an export the store handed over this
// many records ago: the store is asked again (it keeps the export or
// writes a newer snapshot, by bytes).
constexpr uint64_t kFreshExportRecords = 10000;

// A copy that would start at the beginning of the log is sent a snapshot
// instead when the log outweighs the range's data by this factor (and
// kCatchUpFetchBytes): a few keys written over and over leave a log many
// times their size, all of it read from disk on this thread.
constexpr uint64_t kLogOverDataFactor = 2;

// True when a replica outside the ISR asking for the log from its start
// should be given a snapshot: the log is far bigger than what it holds.
bool SnapshotBeatsLog(const RangeStore& store, Seq from) {
  if (from > store.log_start()) return false;
  const StoreStats st = store.Stats();
  return st.wal_bytes > kLogOverDataFactor * st.bytes + kCatchUpFetchBytes;
}

uint64_t MsSince(Clock::time_point t, Clock::time_point now) {
  if (t == Clock::time_point{}) return UINT64_MAX;
  return static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(now - t).count());
}

// The owner is always in its own ISR (the map's invariant; enforced here so
// a hand-written map cannot make the owner wait for itself).
HeldRange WithSelfInIsr(HeldRange r, const NodeId& self) {
  if (std::find(r.info.isr.begin(), r.info.isr.end(), self) == r.info.isr.end()) {
    r.info.AddToIsr(self, "");
  }
  if (std::find(r.info.replicas.begin(), r.info.replicas.end(), self) == r.info.replicas.end()) {
    r.info.replicas.push_back(self);
  }
  return r;
}
}  // namespace

Leader::Leader(Context& ctx, HeldRange range, Clock::time_point serve_after)
    : ctx_(ctx),
      range_(WithSelfInIsr(std::move(range), ctx.self)),
      store_(range_.slot->store()),
      alive_(std::make_shared<bool>(true)),
      // A takeover (the log's epoch is older than ours) may follow an owner
      // whose lease this node confirmed in an earlier life of the process:
      // wait a whole lease from the process start too. Epoch 1 follows
      // nobody (only a bootstrap grants it; a split or merge keeps its
      // sources' owner), so a new cluster serves at once.
      serve_after_(store_->epoch() < range_.info.epoch && range_.info.epoch > Epoch(1)
                       ? std::max(serve_after, ctx.started + ctx.options.lease)
                       : serve_after),
      created_(Clock::now()) {
  RangeSlot& slot = *range_.slot;
  slot.set_reads_ready(false);
  slot.set_write_state(WriteState::kLeaseWait);
  store_->SetCommitGate(true);
  Begin();
}

// Starts the epoch in the store (a retry after an I/O error saving the
// epoch history finds it begun in memory; the records carry their epochs,
// so the history file is rebuilt from them at the next open).
void Leader::Begin() {
  if (Status st = store_->BeginEpoch(range_.info.epoch); !st.ok()) {
    if (!begin_failed_) {
      LOG_ERROR(Name(range_.info.id) << ": cannot begin epoch " << range_.info.epoch.value()
                                     << ": " << st.ToString() << "; retrying");
    }
    begin_failed_ = true;
    range_.slot->set_write_state(WriteState::kNotOwner);
    return;
  }
  begun_ = true;
  takeover_last_ = store_->last().seq;
  commit_point_ = store_->committed();
  for (const NodeId& n : range_.info.replicas) {
    if (n != ctx_.self) progress_[n].caught_up_at = created_;
  }
  std::weak_ptr<bool> alive = alive_;
  exec::Executor& exec = ctx_.exec;
  store_->SetLogListener([this, alive, &exec](Seq, Seq) {
    exec.Post([this, alive] {
      if (alive.lock()) OnLog();
    });
  });
  store_->SetWriteTurns([this, alive, &exec] {
    exec.Post([this, alive] {
      if (alive.lock()) store_->WriteTurn();
    });
  });
  LOG_INFO(Name(range_.info.id) << ": owner at epoch " << range_.info.epoch.value() << " (log ends at "
                                << takeover_last_.value() << ", committed "
                                << store_->committed().value() << ")");
  RecomputeCommit();
  RefreshAdmission();
}

Leader::~Leader() {
  *alive_ = false;
  if (handoff_ && handoff_->done) {
    handoff_->done(Status(Code::kRangeUnavailable,
                          Name(range_.info.id) + ": the owner stepped down during the transfer"));
  }
  if (split_ && split_->done) {
    split_->done(Status(Code::kRangeUnavailable,
                        Name(range_.info.id) + ": the owner stepped down during the split"));
  }
  if (begun_) {
    store_->SetLogListener(nullptr);
    store_->SetWriteTurns(nullptr);
  }
  range_.slot->set_write_state(WriteState::kNotOwner);
  range_.slot->set_reads_ready(false);
  range_.slot->set_mergeable(false);
  for (Waiter& w : waiters_) {
    w.reply(Error(w.req.id, Code::kRangeUnavailable, Name(range_.info.id) + ": owner stepping down"));
  }
}

void Leader::Update(HeldRange range) {
  const std::vector<NodeId> old_isr = range_.info.isr;
  range_ = WithSelfInIsr(std::move(range), ctx_.self);
  for (const NodeId& n : old_isr) {
    if (!InIsr(n) && n != ctx_.self) progress_[n].left_isr_at = Clock::now();
  }
  for (const NodeId& n : range_.info.replicas) {
    if (n != ctx_.self && !progress_.count(n)) progress_[n].caught_up_at = Clock::now();
  }
  // An addition the map now shows is done; one of a node that is no longer
  // a replica can never be (the coordinator took it out).
  for (auto it = pending_adds_.begin(); it != pending_adds_.end();) {
    const bool replica = std::find(range_.info.replicas.begin(), range_.info.replicas.end(),
                                   *it) != range_.info.replicas.end();
    it = InIsr(*it) || !replica ? pending_adds_.erase(it) : std::next(it);
  }
  for (auto it = pending_removes_.begin(); it != pending_removes_.end();) {
    it = InIsr(*it) ? std::next(it) : pending_removes_.erase(it);
  }
  RecomputeCommit();
  CheckSplit();
  RefreshAdmission();
}

int Leader::IsrAfterRemovals() const {
  int n = 0;
  for (const NodeId& m : range_.info.isr) n += pending_removes_.count(m) == 0 ? 1 : 0;
  return n;
}

bool Leader::InIsr(const NodeId& n) const {
  return std::find(range_.info.isr.begin(), range_.info.isr.end(), n) != range_.info.isr.end();
}

std::vector<NodeId> Leader::Counted() const {
  std::vector<NodeId> out = range_.info.isr;
  for (const NodeId& n : pending_adds_) {
    if (!InIsr(n)) out.push_back(n);
  }
  return out;
}

void Leader::RecomputeCommit() {
  if (!begun_ || deposed_) return;
  if (static_cast<int>(range_.info.isr.size()) < ctx_.min_insync) return;  // writes pause
  Seq c = store_->durable();
  for (const NodeId& n : Counted()) {
    if (n == ctx_.self) continue;
    auto it = progress_.find(n);
    Seq acked = it == progress_.end() ? Seq(0) : it->second.acked;
    c = std::min(c, acked);
  }
  if (c > commit_point_) {
    commit_point_ = c;
    store_->CommitHere(c);
  }
}

void Leader::RefreshAdmission() {
  RangeSlot& slot = *range_.slot;
  if (!begun_) return;
  Clock::time_point now = Clock::now();
  if (deposed_) {
    slot.set_write_state(WriteState::kDeposed);
    slot.set_reads_ready(false);
    return;
  }
  if (HandingOff()) {
    // No read may be served past this point: the new owner and the
    // replicas will not wait out this owner's lease (handoff_from).
    slot.set_write_state(WriteState::kHandingOff);
    slot.set_reads_ready(false);
    slot.set_read_lease_until(Clock::time_point{});
    return;
  }
  // A split only fences writes: reads see the same data throughout.
  const bool splitting = split_.has_value();
  // Members that are down stay in the ISR while it would otherwise drop
  // below min-insync (they hold what was committed); writes then wait, and
  // are refused as NOT_ENOUGH_REPLICAS rather than left to time out.
  int isr = 0;
  for (const NodeId& n : range_.info.isr) {
    if (n == ctx_.self || range_.live.count(n)) ++isr;
  }
  slot.set_isr_info(isr, ctx_.min_insync);
  if (now < serve_after_) {
    slot.set_write_state(WriteState::kLeaseWait);
  } else if (splitting) {
    slot.set_write_state(WriteState::kSplitting);
  } else if (merging_) {
    slot.set_write_state(WriteState::kMerging);
  } else {
    slot.set_write_state(isr < ctx_.min_insync ? WriteState::kNotEnoughReplicas : WriteState::kOpen);
  }
  // Lease: the earliest promise among the other members counted.
  Clock::time_point lease = Clock::time_point::max();
  for (const NodeId& n : Counted()) {
    if (n == ctx_.self) continue;
    auto it = progress_.find(n);
    lease = std::min(lease, it == progress_.end() ? Clock::time_point{} : it->second.lease_until);
  }
  slot.set_read_lease_until(now < serve_after_ ? Clock::time_point{} : lease);
  slot.set_reads_ready(store_->committed() >= takeover_last_);
  slot.set_stale_ok(true);
}

void Leader::OnLog() {
  RecomputeCommit();
  CheckHandoff();
  CheckSplit();
  AnswerWaiters();
  RefreshAdmission();
}

void Leader::AnswerWaiters() {
  for (size_t i = 0; i < waiters_.size();) {
    if (TryAnswer(waiters_[i], false)) {
      waiters_.erase(waiters_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

void Leader::Tick() {
  if (!begun_) Begin();
  Clock::time_point now = Clock::now();
  for (size_t i = 0; i < waiters_.size();) {
    if (now >= waiters_[i].deadline && TryAnswer(waiters_[i], true)) {
      waiters_.erase(waiters_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  CheckIsr();
  RecomputeCommit();
  CheckHandoff();
  CheckSplit();
  CheckAutoSplit();
  CheckMoveAsked();
  ResignAfterHandoff();
  RefreshAdmission();
}

void Leader::CheckIsr() {
  if (!begun_ || deposed_) return;
  Clock::time_point now = Clock::now();
  Seq last = store_->last().seq;
  std::weak_ptr<bool> alive = alive_;
  for (auto& [node, p] : progress_) {
    // caught_up_at moves only when a fetch arrives (OnFetch): a dead
    // replica whose last ack happens to equal an idle log's end is not
    // caught up.
    const NodeId n = node;
    const bool in_isr = InIsr(n);
    const bool pending = pending_adds_.count(n) != 0;
    const bool member = std::find(range_.info.replicas.begin(), range_.info.replicas.end(), n) !=
                        range_.info.replicas.end();
    if (now - p.isr_request_at < ctx_.options.isr_lag_timeout / 2) continue;  // asked recently
    const bool lagging = now - p.caught_up_at > ctx_.options.isr_lag_timeout;
    // Never below min-insync: writes pause either way, and keeping the
    // member keeps it a candidate for promotion should this owner die.
    // Removals asked for but not yet in the map count as done, or two
    // laggards checked in one pass would both go.
    const int left = IsrAfterRemovals() - (pending_removes_.count(n) != 0 ? 0 : 1);
    const bool can_shrink = left >= ctx_.min_insync;
    auto live = range_.live.find(n);
    if ((in_isr && can_shrink && lagging) || (pending && !in_isr && lagging)) {
      LOG_WARN(Name(range_.info.id) << ": replica " << n.str() << " acked " << p.acked.value()
                                    << " of " << last.value() << " and is "
                                    << MsSince(p.caught_up_at, now)
                                    << " ms behind; removing it from the ISR");
      p.isr_request_at = now;
      if (in_isr) pending_removes_.insert(n);
      ctx_.RequestIsrChange({range_.info.id, range_.info.epoch, n, false, false, ""},
                            [this, alive, n, pending](Status st) {
                              if (!alive.lock()) return;
                              // Removed (or never there): it counts no more.
                              if (st.ok() && pending) pending_adds_.erase(n);
                              // Surely not written: it is a member again.
                              if (SurelyNotWritten(st)) pending_removes_.erase(n);
                            });
    } else if (!in_isr && member && p.fetched && p.acked >= store_->committed() &&
               live != range_.live.end() &&
               (live->second.life.empty() || live->second.life == p.life) &&
               now - p.last_fetch < ctx_.options.isr_lag_timeout / 4 &&
               p.last_fetch > p.left_isr_at &&
               now - p.caught_up_at < ctx_.options.isr_lag_timeout / 4) {
      // Asked before with no answer we could trust (ZooKeeper unreachable,
      // session lost) and the map still lacks it: ask again; adding a
      // member already there changes nothing.
      LOG_INFO(Name(range_.info.id) << ": replica " << n.str() << " caught up at "
                                    << p.acked.value() << "; adding it to the ISR"
                                    << (pending ? " (asking again)" : ""));
      p.isr_request_at = now;
      pending_adds_.insert(n);
      ctx_.RequestIsrChange(
          {range_.info.id, range_.info.epoch, n, true, false, live->second.incarnation},
          [this, alive, n](Status st) {
            if (!alive.lock()) return;
            // Not written for sure: it does not count. Unknown outcome: it
            // may be in ZooKeeper's ISR, so it keeps counting.
            if (SurelyNotWritten(st)) pending_adds_.erase(n);
            if (st.ok()) ctx_.Step("isr.added", range_.info.id);
          });
    }
  }
}

void Leader::Answer(const std::string& replica, proto::Response resp,
                    const Replicator::Reply& reply) {
  auto it = progress_.find(NodeId(replica));
  if (it != progress_.end()) {
    it->second.answered_at = Clock::now();
    it->second.end_at_answer = store_->last().seq;
    if (resp.kind == proto::Response::Kind::kFetched) {
      it->second.hwm_told = std::max(it->second.hwm_told, resp.fetched.hwm);
    }
  }
  reply(std::move(resp));
}

bool Leader::TryAnswer(Waiter& w, bool at_deadline) {
  const proto::FetchArgs& f = w.req.fetch;
  uint32_t max_bytes = f.max_bytes == 0 ? ctx_.options.fetch_max_bytes : f.max_bytes;
  const NodeId replica(f.replica);
  const bool snapshot_first = !InIsr(replica) && SnapshotBeatsLog(*store_, f.from);
  if (!InIsr(replica)) max_bytes = std::min(max_bytes, kCatchUpFetchBytes);
  auto read = snapshot_first ? Result<LogRead>(LogRead{}) : store_->ReadLog(f.from, max_bytes);
  proto::Response resp;
  resp.id = w.req.id;
  resp.kind = proto::Response::Kind::kFetched;
  // The commit point as decided (the store applies it a moment later):
  // every ISR member holds these records durably, so replicas may apply them.
  resp.fetched.hwm = std::max(commit_point_, store_->committed());
  if (!read.ok()) {
    Answer(f.replica, proto::Response::Error(w.req.id, read.status()), w.reply);
    return true;
  }
  auto it = progress_.find(replica);
  const bool tell =
      it != progress_.end() && it->second.news_told < news_seq_ && Clock::now() < news_until_;
  if (read->below_log_start || snapshot_first) {
    resp.fetched.snapshot_needed = true;
  } else if (read->records.empty()) {
    // Nothing new to send: hold the fetch, unless the commit point moved
    // past what this replica was told (it applies on the news at once, so
    // its stale reads and a takeover by it do not wait for the long poll),
    // or there is news of a split or merge to tell.
    bool moved = it != progress_.end() && resp.fetched.hwm > it->second.hwm_told;
    if (!at_deadline && !moved && !tell) return false;
  } else {
    size_t bytes = 0;
    for (const LogRecord& r : read->records) bytes += r.bytes.size();
    resp.fetched.records.reserve(bytes);
    for (const LogRecord& r : read->records) resp.fetched.records += r.bytes;
  }
  if (tell && !resp.fetched.snapshot_needed) {
    resp.fetched.news = news_;
    it->second.news_told = news_seq_;
  }
  Answer(f.replica, std::move(resp), w.reply);
  return true;
}

void Leader::ShareNews(const cluster::ClusterMap::Written& wrote) {
  news_.clear();
  for (const auto& [id, record] : wrote) {
    news_.push_back(proto::RangeNews{id, record ? cluster::EncodeRange(*record) : std::string()});
  }
  ++news_seq_;
  news_until_ = Clock::now() + kNewsFor;
  AnswerWaiters();
}

void Leader::OnFetch(proto::Request req, Replicator::Reply reply) {
  const RangeId id = range_.info.id;
  if (!begun_) {
    reply(Error(req.id, Code::kRangeUnavailable, Name(id) + ": owner not ready"));
    return;
  }
  if (req.epoch > range_.info.epoch) {
    if (!deposed_) {
      LOG_WARN(Name(id) << ": replica " << req.fetch.replica << " knows epoch "
                        << req.epoch.value() << " > ours " << range_.info.epoch.value()
                        << "; refusing everything until the map catches up");
    }
    deposed_ = true;
    RefreshAdmission();
    reply(Error(req.id, Code::kRangeUnavailable, Name(id) + ": this owner is deposed"));
    return;
  }
  if (req.epoch < range_.info.epoch) {
    reply(Error(req.id, Code::kStaleEpoch,
                Name(id) + " is at epoch " + std::to_string(range_.info.epoch.value())));
    return;
  }
  NodeId replica(req.fetch.replica);
  if (std::find(range_.info.replicas.begin(), range_.info.replicas.end(), replica) ==
      range_.info.replicas.end()) {
    reply(Error(req.id, Code::kNotOwner, replica.str() + " is not a replica of " + Name(id)));
    return;
  }
  const Seq from = req.fetch.from;
  const Seq have = Seq(from.value() - 1);
  // Divergence: a tail written under an older epoch may not be in our log.
  LogPosition last = store_->last();
  Seq agreed = have;
  bool older_epoch = false;
  if (req.fetch.last_epoch < range_.info.epoch && have.value() > 0) {
    agreed = std::min(have, store_->EpochEnd(req.fetch.last_epoch));
    // Equal seqs are not enough: when our record there is of an older
    // epoch than the replica's last, the replica wrote (or took from an
    // owner we never followed) records we do not have. (Only across
    // epochs: records of our own epoch came from us.)
    older_epoch = std::min(agreed, last.seq).value() > 0 &&
                  store_->EpochAt(std::min(agreed, last.seq)) < req.fetch.last_epoch;
  }
  agreed = std::min(agreed, last.seq);
  const Epoch agreed_epoch = store_->EpochAt(agreed);
  if (agreed < have || older_epoch) {
    LOG_DEBUG(Name(id) << ": " << replica.str() << " diverged: from " << from.value()
                       << " last_epoch " << req.fetch.last_epoch.value() << "; ours: last "
                       << last.seq.value() << "@" << last.epoch.value() << ", agreed "
                       << agreed.value() << "@" << agreed_epoch.value()
                       << (older_epoch ? " (our record there is of an older epoch)" : ""));
    proto::Response resp;
    resp.id = req.id;
    resp.kind = proto::Response::Kind::kFetched;
    resp.fetched.diverged = true;
    resp.fetched.truncate_to = agreed;
    resp.fetched.agreed_epoch = agreed_epoch;
    resp.fetched.hwm = store_->committed();
    Answer(replica.str(), std::move(resp), reply);
    return;
  }
  Clock::time_point now = Clock::now();
  Progress& p = progress_[replica];
  if (Status st = CheckCopy(req.fetch, p); !st.ok()) {
    reply(proto::Response::Error(req.id, st));
    return;
  }
  p.acked = std::max(p.acked, have);
  p.fetched = true;
  p.last_fetch = now;
  // Caught up: it had everything we had when its previous answer left (a
  // replica under steady load is always a little behind the very end).
  if (p.acked >= last.seq) {
    p.caught_up_at = now;
  } else if (p.answered_at && p.acked >= p.end_at_answer) {
    p.caught_up_at = std::max(p.caught_up_at, *p.answered_at);
  }
  if (p.answered_at) {
    auto credit = std::chrono::duration_cast<Clock::duration>(ctx_.options.lease * 9 / 10);
    p.lease_until = std::max(p.lease_until, *p.answered_at + credit);
  }
  const Seq commit_before = commit_point_;
  RecomputeCommit();
  // This ack may have moved the commit point: the other replicas hear of
  // it now rather than at the end of their long poll (they apply it, and a
  // range split off waits for exactly that).
  if (commit_point_ > commit_before) AnswerWaiters();
  CheckHandoff();
  CheckSplit();
  RefreshAdmission();
  uint32_t wait = std::min<uint32_t>(req.fetch.wait_ms, 10000);
  Waiter w{std::move(req), std::move(reply), now + milliseconds(wait)};
  if (!TryAnswer(w, wait == 0)) waiters_.push_back(std::move(w));
}

// A fetch speaks for one copy of the range in one process of the replica.
// The process must be the one the map shows live (a dead life's fetch still
// in flight must not count); a later copy starts the count over, an earlier
// one is refused.
Status Leader::CheckCopy(const proto::FetchArgs& f, Progress& p) {
  const NodeId replica(f.replica);
  auto live = range_.live.find(replica);
  if (live != range_.live.end() && !live->second.life.empty() && !f.replica_life.empty() &&
      live->second.life != f.replica_life) {
    return Status(Code::kRangeUnavailable,
                  Name(range_.info.id) + ": " + replica.str() +
                      " is not the process the map shows (it restarted); retry");
  }
  if (p.life == f.replica_life && f.copy < p.copy) {
    return Status(Code::kRangeUnavailable,
                  Name(range_.info.id) + ": a fetch of an earlier copy of " + replica.str());
  }
  if (p.life != f.replica_life || f.copy != p.copy) {
    const Clock::time_point asked = p.isr_request_at;
    p = Progress{};
    p.life = f.replica_life;
    p.copy = f.copy;
    p.caught_up_at = Clock::now();  // it gets the lag timeout to catch up
    p.isr_request_at = asked;
  }
  return Status::Ok();
}

void Leader::OnSnapshot(proto::Request req, Replicator::Reply reply) {
  const RangeId id = range_.info.id;
  if (!begun_ || req.epoch != range_.info.epoch) {
    reply(Error(req.id, req.epoch < range_.info.epoch ? Code::kStaleEpoch : Code::kRangeUnavailable,
                Name(id) + ": snapshot from the owner at epoch " +
                    std::to_string(range_.info.epoch.value()) + " only"));
    return;
  }
  const proto::SnapshotArgs& a = req.snapshot;
  // A new copy starts from an export the log still continues (else the
  // replica would need records the log no longer has), and not one the
  // store handed over long ago (it may have a newer snapshot or write one:
  // RangeSnapshots::Export).
  if (a.replay_from.value() == 0 && export_ &&
      (export_->replay_from.Next() < store_->log_start() ||
       store_->last().seq.value() > export_checked_at_.value() + kFreshExportRecords)) {
    export_.reset();
  }
  if (a.replay_from.value() == 0 || !export_ || export_->replay_from != a.replay_from) {
    if (a.replay_from.value() != 0 && (!export_ || export_->replay_from != a.replay_from)) {
      reply(Error(req.id, Code::kRangeUnavailable, Name(id) + ": that snapshot is gone"));
      return;
    }
    if (export_error_) {
      Status st = *std::exchange(export_error_, std::nullopt);
      reply(proto::Response::Error(req.id, st));
      return;
    }
    if (!export_) {
      // Exporting may write a whole snapshot: the store's snapshot worker
      // does it, and the replica retries meanwhile.
      if (!exporting_) {
        exporting_ = true;
        std::weak_ptr<bool> alive = alive_;
        exec::Executor& exec = ctx_.exec;
        store_->ExportSnapshotAsync([this, alive, &exec](Result<SnapshotExport> ex) {
          exec.Post([this, alive, ex = std::move(ex)]() mutable {
            if (!alive.lock()) return;
            exporting_ = false;
            if (ex.ok()) {
              export_ = *ex;
              export_checked_at_ = store_->last().seq;
            } else {
              export_error_ = ex.status();
            }
          });
        });
      }
      reply(Error(req.id, Code::kRangeUnavailable, Name(id) + ": preparing a snapshot; retry"));
      return;
    }
    LOG_INFO(Name(id) << ": shipping snapshot (replay from " << export_->replay_from.value()
                      << ", " << export_->bytes << " bytes) to " << a.replica);
  }
  uint64_t n = std::min<uint64_t>(a.max_bytes == 0 ? ctx_.options.snapshot_chunk_bytes : a.max_bytes,
                                  export_->bytes > a.offset ? export_->bytes - a.offset : 0);
  proto::Response resp;
  resp.id = req.id;
  resp.kind = proto::Response::Kind::kSnapshotChunk;
  resp.chunk.replay_from = export_->replay_from;
  resp.chunk.end = export_->end;
  // The epoch the record at replay_from really carries: a replica's history
  // based on any other would disagree with the owners it follows later
  // (and an older-epoch record after it could never enter its history).
  resp.chunk.epoch = store_->EpochAt(export_->replay_from);
  resp.chunk.total_bytes = export_->bytes;
  resp.chunk.offset = a.offset;
  resp.chunk.data.resize(n);
  if (n > 0) {
    auto file = ctx_.fs().OpenRead(export_->path);
    Result<size_t> got = file.ok() ? (*file)->ReadAt(a.offset, resp.chunk.data.data(), n)
                                   : Result<size_t>(file.status());
    if (!got.ok() || *got != n) {
      export_.reset();
      reply(Error(req.id, Code::kRangeUnavailable, Name(id) + ": snapshot file unreadable; retry"));
      return;
    }
  }
  reply(std::move(resp));
}

proto::RangeStatus Leader::Report() const {
  proto::RangeStatus s;
  s.range = range_.info.id;
  s.epoch = range_.info.epoch;
  s.owner = true;
  s.last_seq = store_->last().seq;
  s.hwm = store_->committed();
  const StoreStats stats = store_->Stats();
  s.keys = stats.keys;
  s.bytes = stats.bytes;
  s.requests_per_sec = last_qps_;
  Clock::time_point now = Clock::now();
  for (const NodeId& n : range_.info.replicas) {
    if (n == ctx_.self) continue;
    proto::ReplicaProgress rp;
    rp.node_id = n.str();
    rp.in_isr = InIsr(n);
    auto it = progress_.find(n);
    if (it != progress_.end()) {
      rp.acked = it->second.acked;
      rp.since_contact_ms = it->second.fetched ? MsSince(it->second.last_fetch, now) : UINT64_MAX;
    }
    s.replicas.push_back(std::move(rp));
  }
  return s;
}

}  // namespace rangekv::kvnode::replication
