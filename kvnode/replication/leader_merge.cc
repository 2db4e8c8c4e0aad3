// The owner's side of a merge (protocol.capnp "merge"; docs/elastic.md §4).
//
// Steps, all on the replication thread, for two adjacent ranges this
// process owns with the same replicas and ISR:
//   1. Checks: both leaders serve writes, no transfer, split or merge is
//      under way, every ISR member has fetched both from this owner, and
//      the two can merge (CheckMergeable). Otherwise an error and nothing
//      changes.
//   2. Fence: writes to both are refused (kMerging, which clients retry);
//      reads go on, the data does not change.
//   3. Drain: wait until every record each store took is written and
//      committed (every ISR member holds both logs through their ends),
//      at most a third of a lease; else TIMEOUT and writes resume.
//   4. Write: one ZooKeeper multi (the member's ApplyMerge) deletes both
//      znodes and creates the merged range under a new id, with
//      merged_from = left@S_left,right@S_right.
//   5. Outcome: written -> pong; both leaders tell their replicas the
//      znodes written (ShareNews) and stay fenced until their roles
//      end (the next map has neither range), and every holder builds the
//      merged range from its two copies (kvnode/server/node_merge.cc).
//      Surely not written -> the error and writes resume. Unknown -> the
//      error; both ranges are given up (resign, keeping the ISR place) so
//      that a new epoch follows: resuming could write to a range ZooKeeper
//      no longer has.
#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode::replication {

Status Leader::MergeCheck() const {
  const RangeId id = range_.info.id;
  auto refuse = [&](std::string why) {
    return Status(Code::kRangeUnavailable, Name(id) + ": " + why);
  };
  if (HandingOff()) return refuse("a transfer is under way");
  if (split_) return refuse("a split is under way; retry");
  if (merging_) return refuse("a merge is already under way; retry");
  if (!begun_ || deposed_ || range_.slot->write_state() != WriteState::kOpen) {
    return refuse("the owner is not serving writes right now; retry");
  }
  if (store_->bounds() != range_.info.bounds) {
    return refuse("the last split is still being applied here; retry");
  }
  // Every ISR member must build the merged range from its own copy of
  // this one, and the map forgets how this range was made once it is
  // merged away: a member that has not fetched it from this owner (down
  // since before it was split off or merged, or still copying it) may
  // hold only its ancestors, and could then build the merged range from
  // nothing. It waits until the member follows, or leaves the ISR.
  for (const NodeId& n : range_.info.isr) {
    if (n == ctx_.self) continue;
    auto it = progress_.find(n);
    if (it == progress_.end() || !it->second.fetched) {
      return refuse("in-sync replica " + n.str() +
                    " has not fetched it from this owner yet; a merge waits until every "
                    "in-sync replica holds both ranges (or leaves the ISR); retry");
    }
  }
  return Status::Ok();
}

void Leader::SetMergeFence(bool on) {
  merging_ = on;
  RefreshAdmission();
}

std::optional<Seq> Leader::MergePoint() const {
  const Seq last = store_->assigned();
  const Seq committed = std::min(commit_point_, store_->committed());
  if (store_->last().seq < last || committed < last) return std::nullopt;
  return last;
}

void Leader::MergeWritten() {
  merging_ = true;  // for good: the range no longer exists
  RefreshAdmission();
}

void Leader::MergeUnknown() {
  handed_off_ = true;  // never writes again at this epoch
  must_resign_ = true;
  ResignAfterHandoff();
  RefreshAdmission();
}

bool Leader::JudgeMergeable(Clock::time_point now) {
  const ReplicationOptions& o = ctx_.options;
  if (o.merge_delay.count() == 0 || MergeCheck().ok() == false) return false;
  RangeSlot& slot = *range_.slot;
  if (now - slot.changed_at() < o.merge_delay) return false;
  const uint64_t split_bytes =
      o.split_bytes != 0 ? o.split_bytes : ReplicationOptions{}.split_bytes;
  const uint32_t split_qps = o.split_qps != 0 ? o.split_qps : ReplicationOptions{}.split_qps;
  if (store_->Stats().bytes >= split_bytes / 4) return false;
  return slot.ColdFor(split_qps / 4.0, o.split_load_window, now, range_.info.bounds);
}

MergeRun::MergeRun(Context& ctx, Lookup lookup, RangeId left, RangeId right,
                   std::function<void(Status)> done)
    : ctx_(ctx), lookup_(std::move(lookup)), left_(left), right_(right), done_(std::move(done)) {}

MergeRun::~MergeRun() {
  *alive_ = false;
  if (!finished_) {
    Finish(Status(Code::kUnavailable, "ranges " + std::to_string(left_.value()) + " and " +
                                          std::to_string(right_.value()) +
                                          ": the node stopped during the merge"));
  }
}

Status MergeRun::Start() {
  Status st = Check();
  if (!st.ok()) {
    finished_ = true;  // nothing started: done is not called
    return st;
  }
  Leader* left = lookup_(left_);
  Leader* right = lookup_(right_);
  LOG_INFO("merging " << Name(left_) << " " << left->info().bounds.ToString() << " and "
                      << Name(right_) << " " << right->info().bounds.ToString());
  left->SetMergeFence(true);
  right->SetMergeFence(true);
  deadline_ = Clock::now() + ctx_.options.lease / 3;
  ctx_.Step("merge.fenced", left_);
  ctx_.PrefetchChange(left_, right_);  // read while the logs drain
  return Status::Ok();
}

Status MergeRun::Check() const {
  Leader* left = lookup_(left_);
  Leader* right = lookup_(right_);
  if (!left || !right) return Status(Code::kNotOwner, "both ranges must be owned here");
  RANGEKV_RETURN_IF_ERROR(CheckMergeable(left->info(), right->info()));
  RANGEKV_RETURN_IF_ERROR(left->MergeCheck());
  return right->MergeCheck();
}

bool MergeRun::Poll() {
  if (finished_ || asked_) return finished_;
  Leader* left = lookup_(left_);
  Leader* right = lookup_(right_);
  if (!left || !right) {
    Finish(Status(Code::kRangeUnavailable, "merge of ranges " + std::to_string(left_.value()) +
                                               " and " + std::to_string(right_.value()) +
                                               ": the owner stepped down; nothing changed"));
    return true;
  }
  std::optional<Seq> left_at = left->MergePoint();
  std::optional<Seq> right_at = right->MergePoint();
  if (left_at && right_at) {
    Ask(*left, *right, *left_at, *right_at);
    return finished_;
  }
  if (Clock::now() < deadline_) return false;
  Finish(Status(Code::kTimeout, "merge of ranges " + std::to_string(left_.value()) + " and " +
                                    std::to_string(right_.value()) +
                                    ": an in-sync replica did not catch up within " +
                                    std::to_string(ctx_.options.lease.count() / 3) +
                                    " ms; nothing changed"));
  return true;
}

void MergeRun::Ask(Leader& left, Leader& right, Seq left_at, Seq right_at) {
  asked_ = true;
  IsrChange change{left_, left.epoch(), ctx_.self, false, false, "", false};
  change.merge = true;
  change.merge_left_seq = left_at;
  change.merge_right = right_;
  change.merge_right_epoch = right.epoch();
  change.merge_right_seq = right_at;
  change.wrote = std::make_shared<cluster::ClusterMap::Written>();
  ctx_.Step("merge.asked", left_);
  std::weak_ptr<bool> alive = alive_;
  ctx_.RequestIsrChange(change, [this, alive, wrote = change.wrote](Status st) {
    if (!alive.lock() || finished_) return;
    Leader* left = lookup_(left_);
    Leader* right = lookup_(right_);
    if (st.ok()) {
      for (Leader* l : {left, right}) {
        if (!l) continue;
        l->MergeWritten();
        if (!wrote->empty()) l->ShareNews(*wrote);
      }
      ++ctx_.merges_done;
      ctx_.Step("merge.written", left_);
    } else if (!SurelyNotWritten(st)) {
      if (left) left->MergeUnknown();
      if (right) right->MergeUnknown();
    }
    Finish(st.ok()
               ? st
               : Status(st.code(), "merge of ranges " + std::to_string(left_.value()) + " and " +
                                       std::to_string(right_.value()) + ": " + st.message()));
  });
}

void MergeRun::Finish(Status st) {
  if (finished_) return;
  finished_ = true;
  if (!st.ok()) {
    LOG_WARN(st.message());
    // Writes resume unless the merge may have been written (MergeUnknown
    // keeps them refused through handed_off_).
    if (Leader* left = lookup_(left_)) left->SetMergeFence(false);
    if (Leader* right = lookup_(right_)) right->SetMergeFence(false);
  } else {
    LOG_INFO("ranges " << left_.value() << " and " << right_.value() << " merged");
  }
  if (done_) done_(std::move(st));
}

}  // namespace rangekv::kvnode::replication
