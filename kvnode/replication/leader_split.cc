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
//   4. Write: one ZooKeeper multi (the member's ApplySplit) narrows the
//      range to [start, key) and creates [key, end) with split_from = this
//      range @ S, at the same owner, epoch and ISR.
//   5. Outcome: written -> pong; the fence stays until the map names the
//      new generation and the store is narrowed (Node::Apply builds the new
//      range from this copy first), so no write to a key of the new range
//      ever lands in this log after S. Surely not written -> the error and
//      writes resume. Unknown -> the error; the owner gives the range up
//      (resign, keeping its ISR place) so that a new epoch follows, as
//      after an unknown transfer: resuming could put a key of the new
//      range after S.
#include "common/escape.h"
#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode::replication {
namespace {

proto::Response Pong(uint64_t id) {
  proto::Response r;
  r.id = id;
  r.kind = proto::Response::Kind::kPong;
  return r;
}

}  // namespace

void Leader::OnSplit(proto::Request req, Replicator::Reply reply) {
  const RangeId id = range_.info.id;
  const uint64_t rid = req.id;
  auto refuse = [&](Code code, std::string why) {
    reply(proto::Response::Error(rid, Status(code, Name(id) + ": " + std::move(why))));
  };
  if (req.ops.empty()) return refuse(Code::kBadRequest, "split needs a key");
  const std::string& key = req.ops.front().key;
  if (req.epoch.value() != 0 && req.epoch != range_.info.epoch) {
    return refuse(Code::kStaleEpoch, "owned at epoch " + std::to_string(range_.info.epoch.value()) +
                                         ", not " + std::to_string(req.epoch.value()));
  }
  const KeyRange& b = range_.info.bounds;
  if (!b.Contains(key) || key == b.start()) {
    return refuse(Code::kBadRequest, "is " + b.ToString() +
                                         ": a split key must lie inside it, after its start");
  }
  if (HandingOff()) return refuse(Code::kRangeUnavailable, "a transfer is under way");
  if (split_) return refuse(Code::kRangeUnavailable, "a split is already under way; retry");
  if (!begun_ || deposed_ || range_.slot->write_state() != WriteState::kOpen) {
    return refuse(Code::kRangeUnavailable, "the owner is not serving writes right now; retry");
  }
  if (store_->bounds() != b) {
    return refuse(Code::kRangeUnavailable, "the last split is still being applied here; retry");
  }
  LOG_INFO(Name(id) << ": splitting " << b.ToString() << " at " << QuoteIfNeeded(key));
  split_ = SplitFence{key, range_.info.generation, Clock::now() + ctx_.options.lease / 3,
                      [reply = std::move(reply), rid](Status st) {
                        reply(st.ok() ? Pong(rid) : proto::Response::Error(rid, std::move(st)));
                      }};
  RefreshAdmission();
  CheckSplit();
}

void Leader::CheckSplit() {
  if (!split_) return;
  // The map may show the split before the member's answer arrives.
  if (split_->asked && range_.info.generation > split_->generation) split_->written = true;
  if (split_->written) {
    // Resume once the map shows the split and the store holds only the
    // narrowed range (built and narrowed by Node::Apply before this Update).
    if (range_.info.generation > split_->generation && store_->bounds() == range_.info.bounds) {
      LOG_INFO(Name(range_.info.id) << ": split done; writes resume on "
                                    << range_.info.bounds.ToString());
      split_.reset();
      RefreshAdmission();
    }
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
  split_->at = last;
  std::weak_ptr<bool> alive = alive_;
  IsrChange change{range_.info.id, range_.info.epoch, ctx_.self, false, false, "", false};
  change.split = true;
  change.split_key = split_->key;
  change.split_seq = last;
  ctx_.RequestIsrChange(std::move(change), [this, alive](Status st) {
    if (!alive.lock() || !split_) return;
    if (st.ok()) {
      split_->written = true;
      if (split_->done) split_->done(Status::Ok());
      split_->done = nullptr;
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
