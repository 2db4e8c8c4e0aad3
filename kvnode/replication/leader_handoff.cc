// The owner's side of a transfer (protocol.capnp "transfer"): a handoff of
// the range to an in-sync replica without a failover.
//
// Steps, all on the replication thread:
//   1. Checks: this leader serves (begun, not deposed, writes open), the
//      target is another ISR member that the map shows live with a known
//      process (life). Otherwise an error and nothing changes.
//   2. Stop: writes and reads are refused (kHandingOff) from here on. Reads
//      must stop before the record below is written, since neither the new
//      owner nor the replicas will wait out this owner's lease.
//   3. Drain: wait until every record of the log is committed and the
//      target's present process (the life the map shows) has acknowledged
//      it (the target's log then equals ours), at most a third of a lease;
//      else TIMEOUT and serving resumes. A suspect or opening target is
//      refused at step 1.
//   4. Write: an IsrChange with transfer (compare-and-set on the range
//      znode, still naming this node owner at this epoch): owner = target,
//      its life, epoch + 1, handoff_from = this epoch.
//   5. Outcome: written -> pong; the map soon makes this node a follower.
//      Surely not written -> the error, and serving resumes. Unknown -> the
//      error; this owner never serves again at this epoch and gives the
//      ownership up (resign, keeping its ISR place; asked again every
//      second until the map moves on), so that either the handoff or a
//      coordinator grant at a newer epoch follows.
#include <algorithm>

#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode::replication {
namespace {

std::string Join(const std::vector<NodeId>& ids) {
  std::string s;
  for (const NodeId& n : ids) s += (s.empty() ? "" : ",") + n.str();
  return s;
}

}  // namespace

void Leader::OnTransfer(proto::Request req, Replicator::Reply reply) {
  const NodeId target(req.transfer_to);
  OnOperatorRequest(req, std::move(reply), [&](std::function<void(Status)> done) {
    return StartTransfer(target, std::move(done));
  });
}

void Leader::OnOperatorRequest(const proto::Request& req, Replicator::Reply reply,
                               const std::function<Status(std::function<void(Status)>)>& start) {
  const uint64_t rid = req.id;
  if (req.epoch.value() != 0 && req.epoch != range_.info.epoch) {
    return reply(proto::Response::Error(
        rid, Status(Code::kStaleEpoch, Name(range_.info.id) + ": owned at epoch " +
                                           std::to_string(range_.info.epoch.value()) + ", not " +
                                           std::to_string(req.epoch.value()))));
  }
  auto shared = std::make_shared<Replicator::Reply>(std::move(reply));
  Status st = start([shared, rid](Status st) {
    (*shared)(st.ok() ? Pong(rid) : proto::Response::Error(rid, std::move(st)));
  });
  if (!st.ok()) (*shared)(proto::Response::Error(rid, std::move(st)));
}

Status Leader::StartTransfer(const NodeId& target, std::function<void(Status)> done) {
  const RangeId id = range_.info.id;
  auto refuse = [&](Code code, std::string why) { return Status(code, Name(id) + ": " + why); };
  if (target == ctx_.self) {  // already there
    done(Status::Ok());
    return Status::Ok();
  }
  if (HandingOff()) return refuse(Code::kRangeUnavailable, "a transfer is already under way");
  if (split_) return refuse(Code::kRangeUnavailable, "a split is under way; retry");
  if (merging_) return refuse(Code::kRangeUnavailable, "a merge is under way");
  // Still waiting out a predecessor's lease is fine: the target and the
  // replicas keep waiting out the promises made to that predecessor.
  const WriteState state = range_.slot->write_state();
  if (!begun_ || deposed_ || (state != WriteState::kOpen && state != WriteState::kLeaseWait)) {
    return refuse(Code::kRangeUnavailable, "the owner is not serving writes right now; retry");
  }
  if (!InIsr(target)) {
    return refuse(Code::kBadRequest,
                  target.str() + " is not an in-sync replica (isr " + Join(range_.info.isr) + ")");
  }
  auto live = range_.live.find(target);
  if (live == range_.live.end() || live->second.life.empty()) {
    return refuse(Code::kRangeUnavailable, target.str() + " is not live in the map");
  }
  // A copy that may lack records it acknowledged (or whose state is not
  // known yet) is never handed a range: the coordinator would not promote
  // it either.
  if (live->second.suspect || live->second.opening) {
    return refuse(Code::kRangeUnavailable,
                  target.str() + (live->second.opening ? " is still opening its ranges"
                                                       : " is suspect (it may lack records it "
                                                         "acknowledged)"));
  }
  LOG_INFO(Name(id) << ": handing over to " << target.str() << " (epoch "
                    << range_.info.epoch.value() << " -> " << range_.info.epoch.Next().value()
                    << ")");
  const Clock::time_point now = Clock::now();
  handoff_ = Handoff{target, live->second.life, now + ctx_.options.lease / 3, std::move(done)};
  handoff_->since = now;
  RefreshAdmission();
  // Only a fetch that arrives from now on shows the target's process holds
  // the log: the map may still show a process that was killed after it
  // acknowledged (its disk since wiped; simulation seed 81150). Its waiting
  // fetch is answered at once so that the next one comes in a round trip.
  for (size_t i = 0; i < waiters_.size(); ++i) {
    if (waiters_[i].req.fetch.replica != target.str() || !TryAnswer(waiters_[i], true)) continue;
    waiters_.erase(waiters_.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  ctx_.Step("transfer.fenced", id);
  CheckHandoff();
  return Status::Ok();
}

// The coordinator asked for a move (RangeInfo::move_to): the same handoff,
// tried at most once a second while the ask stands.
void Leader::CheckMoveAsked() {
  const std::optional<NodeId>& to = range_.info.move_to;
  const Clock::time_point now = Clock::now();
  if (!to || *to == ctx_.self || HandingOff() || split_ || now < next_move_try_) return;
  next_move_try_ = now + std::chrono::seconds(1);
  const NodeId target = *to;
  Status st = StartTransfer(target, [id = range_.info.id, target](Status st) {
    if (st.ok()) {
      LOG_INFO(Name(id) << ": moved to " << target.str() << " to balance load");
    } else {
      LOG_INFO(Name(id) << ": move to " << target.str() << " asked by the coordinator: "
                        << st.message() << " (asked again while the ask stands)");
    }
  });
  if (!st.ok()) LOG_DEBUG(st.message());
}

void Leader::CheckHandoff() {
  if (!handoff_ || handoff_->asked) return;
  const Seq last = store_->last().seq;
  auto it = progress_.find(handoff_->target);
  // Only acknowledgements of the very process the grant names count: an
  // earlier life of the target (restarted, maybe after losing what it had
  // acknowledged) left its count behind until the new one fetches.
  const bool same_life = it != progress_.end() && it->second.life == handoff_->life &&
                         it->second.last_fetch >= handoff_->since;
  const Seq acked = same_life ? it->second.acked : Seq(0);
  const Seq committed = std::min(commit_point_, store_->committed());
  if (committed < last || acked < last) {
    if (Clock::now() < handoff_->deadline) return;
    const bool heard = it != progress_.end() && it->second.last_fetch >= handoff_->since;
    const std::string why =
        !heard         ? handoff_->target.str() + " did not fetch since the transfer began"
        : acked < last ? handoff_->target.str() + " holds records through " +
                             std::to_string(acked.value()) + " of " + std::to_string(last.value())
                       : "records are committed through " + std::to_string(committed.value()) +
                             " of " + std::to_string(last.value()) + " (an in-sync replica lags)";
    return EndHandoff(Status(Code::kTimeout, Name(range_.info.id) + ": transfer: " + why +
                                                 " after " +
                                                 std::to_string(ctx_.options.lease.count() / 3) +
                                                 " ms; the owner serves on"));
  }
  handoff_->asked = true;
  std::weak_ptr<bool> alive = alive_;
  IsrChange change{range_.info.id, range_.info.epoch, handoff_->target, false, false, "", false};
  change.transfer = true;
  change.life = handoff_->life;
  ctx_.Step("transfer.asked", range_.info.id);
  ctx_.RequestIsrChange(std::move(change), [this, alive](Status st) {
    if (!alive.lock() || !handoff_) return;
    if (!st.ok() && !SurelyNotWritten(st)) {
      // It may be in ZooKeeper: never serve at this epoch again, and give
      // the ownership up until the map moves on (ResignAfterHandoff).
      handed_off_ = true;
      must_resign_ = true;
      ResignAfterHandoff();
    }
    EndHandoff(st.ok() ? st
                       : Status(st.code(), Name(range_.info.id) + ": transfer: " + st.message()));
  });
}

// Leaves the ownership (keeping its ISR place), at most once a second,
// until the map names another owner or a new epoch and this leader ends:
// a resign that meets the handoff already written changes nothing.
void Leader::ResignAfterHandoff() {
  const Clock::time_point now = Clock::now();
  if (!must_resign_ || now < resign_at_) return;
  resign_at_ = now + std::chrono::seconds(1);
  ctx_.RequestIsrChange({range_.info.id, Epoch(0), ctx_.self, false, true, "", true},
                        [](Status) {});
}

void Leader::EndHandoff(Status st) {
  if (st.ok()) {
    handed_off_ = true;
    ++ctx_.transfers_done;
    auto live = range_.live.find(handoff_->target);
    range_.slot->set_handed_to(std::make_shared<const proto::OwnerHint>(proto::OwnerHint{
        handoff_->target.str(), live == range_.live.end() ? "" : live->second.address,
        range_.info.epoch.Next(), range_.info.id, range_.info.bounds, range_.info.generation}));
    LOG_INFO(Name(range_.info.id) << ": handed over to " << handoff_->target.str());
    ctx_.Step("transfer.written", range_.info.id);
  } else {
    LOG_WARN(st.message());
  }
  std::function<void(Status)> done = std::move(handoff_->done);
  handoff_.reset();
  RefreshAdmission();
  if (done) done(std::move(st));
}

}  // namespace rangekv::kvnode::replication
