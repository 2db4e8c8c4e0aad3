#include "kvnode/replication/range_slot.h"

namespace rangekv::kvnode {
namespace {

std::string Name(RangeId id) { return "range " + std::to_string(id.value()); }

}  // namespace

void RangeSlot::OpenAll() {
  write_state_.store(WriteState::kOpen);
  reads_ready_.store(true);
  lease_ns_.store(Clock::time_point::max().time_since_epoch().count());
  stale_ok_.store(true);
}

Status RangeSlot::Admit(Access access) const {
  switch (access) {
    case Access::kStaleRead:
      if (stale_ok_.load()) return Status::Ok();
      return Status(Code::kRangeUnavailable, Name(id_) + " is still catching up on this node");
    case Access::kRead:
      if (!reads_ready_.load()) {
        return Status(Code::kRangeUnavailable,
                      Name(id_) + ": the new owner is still committing its predecessor's log");
      }
      if (Clock::now().time_since_epoch().count() >= lease_ns_.load()) {
        return Status(Code::kRangeUnavailable,
                      Name(id_) + ": the owner's read lease is not confirmed by its in-sync "
                                  "replicas right now; retry");
      }
      return Status::Ok();
    case Access::kWrite:
      switch (write_state_.load()) {
        case WriteState::kOpen: return Status::Ok();
        case WriteState::kNotOwner:
          return Status(Code::kRangeUnavailable, Name(id_) + ": ownership is starting on this node");
        case WriteState::kLeaseWait:
          return Status(Code::kRangeUnavailable,
                        Name(id_) + ": the new owner waits out the previous owner's lease");
        case WriteState::kNotEnoughReplicas:
          return Status(Code::kNotEnoughReplicas,
                        Name(id_) + " has " + std::to_string(isr_.load()) +
                            " in-sync replicas, fewer than min-insync " +
                            std::to_string(min_insync_.load()) + "; writes pause");
        case WriteState::kDeposed:
          return Status(Code::kRangeUnavailable,
                        Name(id_) + ": a newer owner exists; this node's map is catching up");
        case WriteState::kHandingOff:
          return Status(Code::kRangeUnavailable,
                        Name(id_) + ": the owner is handing the range to another node");
        case WriteState::kSplitting:
          return Status(Code::kRangeUnavailable, Name(id_) + " is splitting; retry");
        case WriteState::kMerging:
          return Status(Code::kRangeUnavailable, Name(id_) + " is merging; retry");
      }
  }
  return Status(Code::kInternal, "unknown access");
}

}  // namespace rangekv::kvnode
