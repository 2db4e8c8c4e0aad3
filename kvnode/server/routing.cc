#include "kvnode/server/routing.h"

#include <algorithm>

#include "common/escape.h"

namespace rangekv::kvnode {
namespace {

// Keys may be 4 KiB of binary; error messages show a readable prefix.
std::string ShortKey(std::string_view key) {
  constexpr size_t kShown = 64;
  if (key.size() <= kShown) return QuoteIfNeeded(key);
  return QuoteIfNeeded(key.substr(0, kShown)) + "...";
}

std::string Num(uint64_t v) { return std::to_string(v); }

// Where the range lives and what it covers, as this node's map says.
proto::OwnerHint Hint(const RangeRoute& r) {
  return proto::OwnerHint{r.owner->str(), r.owner_address, r.epoch, r.id, r.bounds, r.generation};
}

Route Fail(Code code, std::string message) {
  Route r;
  r.error = Status(code, std::move(message));
  return r;
}

}  // namespace

RoutingTable::RoutingTable(NodeId self, bool joined, std::string reason,
                           std::vector<RangeRoute> ranges)
    : self_(std::move(self)),
      joined_(joined),
      reason_(std::move(reason)),
      ranges_(std::move(ranges)) {
  for (const auto& r : ranges_) served_ += r.slot != nullptr;
}

std::shared_ptr<const RoutingTable> RoutingTable::Unavailable(NodeId self, std::string reason) {
  return std::shared_ptr<const RoutingTable>(
      new RoutingTable(std::move(self), false, std::move(reason), {}));
}

std::shared_ptr<const RoutingTable> RoutingTable::Build(NodeId self, std::vector<RangeRoute> ranges,
                                                        std::vector<RangeId>* overlapping) {
  std::sort(ranges.begin(), ranges.end(),
            [](const RangeRoute& a, const RangeRoute& b) { return a.bounds < b.bounds; });
  std::vector<RangeRoute> kept;
  kept.reserve(ranges.size());
  for (auto& r : ranges) {
    if (!kept.empty() && kept.back().bounds.Overlaps(r.bounds)) {
      if (overlapping != nullptr) overlapping->push_back(r.id);
      continue;
    }
    kept.push_back(std::move(r));
  }
  return std::shared_ptr<const RoutingTable>(
      new RoutingTable(std::move(self), true, "", std::move(kept)));
}

const RangeRoute* RoutingTable::Find(RangeId id) const {
  for (const auto& r : ranges_) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

const RangeRoute* RoutingTable::Locate(std::string_view key) const {
  // The last range starting at or before key is the only one that can hold it.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), key,
                             [](std::string_view k, const RangeRoute& r) {
                               return k < std::string_view(r.bounds.start());
                             });
  if (it == ranges_.begin() || !std::prev(it)->bounds.Contains(key)) return nullptr;
  return &*std::prev(it);
}

std::optional<Route> RoutingTable::Fence(RangeId requested, Epoch epoch) const {
  if (!joined_) return Fail(Code::kRangeUnavailable, "node " + self_.str() + ": " + reason_);
  if (requested.value() == 0 || epoch.value() == 0) return std::nullopt;
  const RangeRoute* r = Find(requested);
  if (r == nullptr) return std::nullopt;  // rule 6 will say where the key lives
  if (epoch < r->epoch) {
    Route stale = Fail(Code::kStaleEpoch, "range " + Num(requested.value()) + " is at epoch " +
                                              Num(r->epoch.value()) +
                                              "; the request carries epoch " + Num(epoch.value()));
    // The client's map is behind: say what this node knows, like NOT_OWNER does.
    if (r->owner) stale.hint = Hint(*r);
    return stale;
  }
  if (epoch > r->epoch) {
    return Fail(Code::kRangeUnavailable,
                "node " + self_.str() + " knows epoch " + Num(r->epoch.value()) + " of range " +
                    Num(requested.value()) + ", the request carries " + Num(epoch.value()) +
                    ": this node's map is catching up");
  }
  return std::nullopt;
}

Route RoutingTable::NoRange(std::string_view key) const {
  // A map read across a split: the next read has the new range.
  Route r = Fail(Code::kRangeUnavailable, "no range of the cluster map holds key " + ShortKey(key));
  r.wait = true;
  return r;
}

Route RoutingTable::Owner(RangeId requested, const RangeRoute& r, Access access) const {
  std::string range = "range " + Num(r.id.value());
  if (!r.owner) return Fail(Code::kRangeUnavailable, range + " has no owner");
  // The hint goes with a NOT_OWNER only: built per request, it cost a
  // copy of the range's bounds on every read and write.
  Route route;
  if (requested.value() != 0 && requested != r.id) {
    route.hint = Hint(r);
    route.error =
        Status(Code::kNotOwner, "the key is in " + range + ", not range " + Num(requested.value()));
    return route;
  }
  if (r.state == cluster::RangeState::kUnavailable) {
    return Fail(Code::kRangeUnavailable, range + " is marked unavailable");
  }
  if (*r.owner != self_) {
    route.hint = Hint(r);
    route.error =
        Status(Code::kNotOwner, range + " is owned by node " + r.owner->str() + " (epoch " +
                                    Num(r.epoch.value()) + "), not " + self_.str());
    return route;
  }
  std::shared_ptr<RangeStore> store = r.slot ? r.slot->store() : nullptr;
  if (store == nullptr) {
    std::string why = r.unavailable.ok() ? "its store is not open yet" : r.unavailable.ToString();
    Route refused =
        Fail(Code::kRangeUnavailable, range + " on node " + self_.str() + " cannot serve: " + why);
    // Being built (or waiting for its parent's copy to be): soon open.
    // An open failure is no reason to wait.
    refused.wait =
        r.unavailable.code() == Code::kOk || r.unavailable.code() == Code::kRangeUnavailable;
    return refused;
  }
  if (Status st = r.slot->Admit(access); !st.ok()) {
    Route refused;
    if (auto to = r.slot->handed_to()) {
      refused.error = Status(Code::kNotOwner, range + " was handed to node " + to->node_id +
                                                  " (epoch " + Num(to->epoch.value()) + ")");
      refused.hint = *to;
      return refused;
    }
    refused.error = std::move(st);
    refused.wait = access == Access::kWrite && RangeSlot::Fenced(r.slot->write_state());
    return refused;
  }
  Route ok;
  ok.store = std::move(store);
  ok.slot = r.slot;
  return ok;
}

Route RoutingTable::SplitAhead(Route route, const RangeRoute& r, std::string_view key) const {
  // Equal generations (every request but the few around a split): one
  // atomic load, no lock.
  if (r.slot->generation() <= r.generation || route.store->Admits(key)) return route;
  Route refused = Fail(Code::kNotOwner, "key " + ShortKey(key) + " left range " +
                                            Num(r.id.value()) + " in a split; the map follows");
  refused.wait = true;
  return refused;
}

Route RoutingTable::ForKey(RangeId requested, Epoch epoch, std::string_view key,
                           Access access) const {
  if (access == Access::kStaleRead && joined_) {
    const RangeRoute* r = Locate(key);
    if (r != nullptr && r->slot != nullptr && r->slot->stale_ok()) {
      if (std::shared_ptr<RangeStore> store = r->slot->store()) {
        Route ok;
        ok.store = std::move(store);
        return ok;
      }
    }
  }
  if (std::optional<Route> fenced = Fence(requested, epoch)) return std::move(*fenced);
  const RangeRoute* r = Locate(key);
  if (r == nullptr) return NoRange(key);
  Route route = Owner(requested, *r, access == Access::kStaleRead ? Access::kRead : access);
  if (route.ok() && access == Access::kWrite) route = SplitAhead(std::move(route), *r, key);
  if (route.ok()) r->slot->CountRequest(key);
  return route;
}

Route RoutingTable::ForBatch(RangeId requested, Epoch epoch,
                             const std::vector<proto::WriteOp>& ops) const {
  if (ops.empty()) return Fail(Code::kBadRequest, "empty batch");
  if (std::optional<Route> fenced = Fence(requested, epoch)) return std::move(*fenced);
  const std::string& first = ops.front().key;
  const RangeRoute* r = Locate(first);
  if (r == nullptr) return NoRange(first);
  for (const auto& op : ops) {
    if (!r->bounds.Contains(op.key)) {
      return Fail(Code::kCrossRange, "batch keys " + ShortKey(first) + " and " + ShortKey(op.key) +
                                         " are in different ranges (range " + Num(r->id.value()) +
                                         " is " + r->bounds.ToString() + ")");
    }
  }
  Route route = Owner(requested, *r, Access::kWrite);
  if (route.ok()) route = SplitAhead(std::move(route), *r, first);
  if (route.ok()) r->slot->CountRequest(first);
  return route;
}

}  // namespace rangekv::kvnode
