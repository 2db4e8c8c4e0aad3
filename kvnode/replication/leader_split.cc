// The owner's side of a split (protocol.capnp "split"; docs/elastic.md §3).
//
// Steps, all on the replication thread:
//   1. Checks: this leader serves writes (begun, not deposed, open), no
//      transfer or split is under way, and the key lies inside the range
//      after its start. Otherwise an error and nothing changes.
//   2. Fence: writes are refused (kSplitting, which clients retry); reads
//      go on, since the data does not change.
//   3. Drain: wait until every record the store took is written and
//      committed (every ISR member holds it), at most a third of a lease;
//      else TIMEOUT and writes resume. The log's end S is the split point.
//      Meanwhile the member reads the znodes the multi is conditioned on
//      (IsrChange::prefetch).
//   4. Write: one ZooKeeper multi (the member's ApplySplit) narrows the
//      range to [start, key) and creates [key, end) with split_from = this
//      range @ S, at the same owner, epoch and ISR.
//   5. Outcome: written -> pong, the replicas are told the znodes written
//      (ShareNews), and writes resume at once on [start, key):
//      the store admits no key of the new range from then on
//      (NarrowWrites), so none ever lands in this log after S, while its
//      map keeps them until Node::Apply has built the new range from this
//      copy (then RetainOnly drops them). Writes to the new range wait for
//      that build. Surely not written -> the error and writes resume.
//      Unknown -> the error; the owner gives the range up (resign, keeping
//      its ISR place) so that a new epoch follows, as after an unknown
//      transfer: resuming could put a key of the new range after S.
#include <algorithm>

#include "common/escape.h"
#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode::replication {

void Leader::OnSplit(proto::Request req, Replicator::Reply reply) {
  const std::string key = req.ops.empty() ? std::string() : req.ops.front().key;  // Validate: 1 op
  OnOperatorRequest(req, std::move(reply),
                    [&](std::function<void(Status)> done) { return StartSplit(key, std::move(done)); });
}

Status Leader::StartSplit(const std::string& key, std::function<void(Status)> done) {
  const RangeId id = range_.info.id;
  auto refuse = [&](Code code, std::string why) { return Status(code, Name(id) + ": " + why); };
  const KeyRange& b = range_.info.bounds;
  if (!b.Contains(key) || key == b.start()) {
    return refuse(Code::kBadRequest,
                  "is " + b.ToString() + ": a split key must lie inside it, after its start");
  }
  if (HandingOff()) return refuse(Code::kRangeUnavailable, "a transfer is under way");
  if (split_) return refuse(Code::kRangeUnavailable, "a split is already under way; retry");
  if (merging_) return refuse(Code::kRangeUnavailable, "a merge is under way");
  if (!begun_ || deposed_ || range_.slot->write_state() != WriteState::kOpen) {
    return refuse(Code::kRangeUnavailable, "the owner is not serving writes right now; retry");
  }
  if (store_->bounds() != b) {
    return refuse(Code::kRangeUnavailable, "the last split is still being applied here; retry");
  }
  LOG_INFO(Name(id) << ": splitting " << b.ToString() << " at " << QuoteIfNeeded(key));
  const Clock::time_point now = Clock::now();
  split_ = SplitFence{key, range_.info.generation, now + ctx_.options.lease / 3, std::move(done)};
  split_->fenced = now;
  RefreshAdmission();
  ctx_.Step("split.fenced", id);
  // The member reads what the multi is conditioned on while the replicas
  // take the log's end (one ZooKeeper round trip off the pause).
  ctx_.PrefetchChange(id);
  CheckSplit();
  return Status::Ok();
}

// Once a second: a split by size (the map's bytes past split_bytes, at the
// key that halves them) or by load (past split_qps for the whole window,
// at the median of the sampled keys; load_history.h). The owner decides:
// it holds the data and sees the traffic.
void Leader::CheckAutoSplit() {
  const Clock::time_point now = Clock::now();
  if (now < next_auto_check_) return;
  const bool first = next_auto_check_ == Clock::time_point{};
  const auto elapsed = now - (next_auto_check_ - std::chrono::seconds(1));
  next_auto_check_ = now + std::chrono::seconds(1);
  const uint64_t count = range_.slot->requests();
  const uint64_t served = count - load_count_;
  load_count_ = count;
  if (first || split_ || !begun_) return;
  const ReplicationOptions& o = ctx_.options;
  const double secs = std::chrono::duration<double>(elapsed).count();
  const double qps = secs > 0 ? static_cast<double>(served) / secs : 0;
  last_qps_ = static_cast<uint32_t>(std::min(qps, 4e9));
  RangeSlot& slot = *range_.slot;
  slot.RecordLoad({now, qps, slot.TakeSamples()}, o.split_load_window + std::chrono::seconds(2));
  slot.set_mergeable(JudgeMergeable(now));
  std::optional<std::string> key;
  const char* why = "";
  if (o.split_bytes != 0 && store_->Stats().bytes > o.split_bytes) {
    key = store_->MiddleKey();
    why = "size";
  }
  if (!key && o.split_qps != 0) {
    key = slot.LoadSplitKey(o.split_qps, o.split_load_window, now, range_.info.bounds);
    why = "load";
  }
  if (!key) return;
  const std::string at = *key;
  Status st = StartSplit(at, [id = range_.info.id, at, why](Status st) {
    if (st.ok()) {
      LOG_INFO(Name(id) << ": split by " << why << " at " << QuoteIfNeeded(at));
    } else {
      LOG_WARN(Name(id) << ": split by " << why << " at " << QuoteIfNeeded(at) << ": "
                        << st.message());
    }
  });
  if (!st.ok()) LOG_DEBUG(st.message());
}

void Leader::CheckSplit() {
  if (!split_) return;
  // The map may show the split before the member's answer arrives.
  if (split_->asked && range_.info.generation > split_->generation) split_->written = true;
  if (split_->written) {
    const KeyRange left(range_.info.bounds.start(), split_->key);
    range_.slot->RaiseGeneration(split_->generation + 1);
    if (Status st = store_->NarrowWrites(left); !st.ok()) {
      // Narrowed already (the map and Node::Apply were first): fine.
      LOG_DEBUG(st.message());
    }
    auto ms = [](Clock::duration d) {
      return std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 1000.0;
    };
    LOG_INFO(Name(range_.info.id) << ": split at seq " << split_->at.value()
                                  << " written; writes resume on " << left.ToString()
                                  << " (committed in " << ms(split_->asked_at - split_->fenced)
                                  << " ms, map written in " << ms(Clock::now() - split_->asked_at)
                                  << " ms)");
    ++ctx_.splits_done;
    if (split_->done) split_->done(Status::Ok());
    split_.reset();
    RefreshAdmission();
    ctx_.Step("split.written", range_.info.id);
    return;
  }
  if (split_->asked) return;
  const Seq last = store_->assigned();
  const Seq committed = std::min(commit_point_, store_->committed());
  if (store_->last().seq < last || committed < last) {
    if (Clock::now() < split_->deadline) return;
    return EndSplit(Status(Code::kTimeout,
                           Name(range_.info.id) + ": split: records are committed through " +
                               std::to_string(committed.value()) + " of " +
                               std::to_string(last.value()) + " after " +
                               std::to_string(ctx_.options.lease.count() / 3) +
                               " ms (an in-sync replica lags); nothing changed"));
  }
  split_->asked = true;
  split_->asked_at = Clock::now();
  split_->at = last;
  std::weak_ptr<bool> alive = alive_;
  IsrChange change{range_.info.id, range_.info.epoch, ctx_.self, false, false, "", false};
  change.split = true;
  change.split_key = split_->key;
  change.split_seq = last;
  change.wrote = std::make_shared<cluster::ClusterMap::Written>();
  ctx_.Step("split.asked", range_.info.id);
  ctx_.RequestIsrChange(change, [this, alive, wrote = change.wrote](Status st) {
    if (!alive.lock()) return;
    // The replicas build the new range from this news rather than from
    // their next map read (also when the map showed the split first).
    if (st.ok() && !wrote->empty()) ShareNews(*wrote);
    if (!split_) return;
    if (st.ok()) {
      split_->written = true;
      return CheckSplit();
    }
    if (!SurelyNotWritten(st)) {
      handed_off_ = true;  // never writes again at this epoch
      must_resign_ = true;
      ResignAfterHandoff();
    }
    EndSplit(Status(st.code(), Name(range_.info.id) + ": split: " + st.message()));
  });
}

void Leader::EndSplit(Status st) {
  if (!st.ok()) LOG_WARN(st.message());
  std::function<void(Status)> done = std::move(split_->done);
  split_.reset();
  RefreshAdmission();
  if (done) done(std::move(st));
}

}  // namespace rangekv::kvnode::replication
