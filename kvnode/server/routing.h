// kvnode/server/routing.h — which RangeStore serves a request, or the error that
// tells the client where to go instead.
//
// A RoutingTable is an immutable snapshot of the cluster map as this node
// last read it (every range, its epoch and owner, the owners' addresses) plus
// the stores this node has open. The Node swaps whole tables atomically
// (kvnode/server/node.h), so routing on the I/O threads takes no lock and never
// waits for ZooKeeper or the disk.
//
// Rules, first match wins (R, E: the request's range id and epoch, 0 =
// unknown; K: the key, or a batch's first key, or a scan's start):
//
// | # | condition                                        | answer                         |
// |---|--------------------------------------------------|--------------------------------|
// | 1 | the table is not joined (no map yet, session     | RANGE_UNAVAILABLE (the reason, |
// |   | lost)                                            | e.g. "not yet joined")         |
// | 2 | R != 0 is in the map at epoch e, E != 0, E < e   | STALE_EPOCH + hint for R       |
// | 3 | R != 0 is in the map at epoch e, E > e           | RANGE_UNAVAILABLE (this node's |
// |   |                                                  | map is behind; retry)          |
// | 4 | no range of the map holds K                      | RANGE_UNAVAILABLE              |
// | 5 | batch keys outside K's range                     | CROSS_RANGE                    |
// | 6 | K's range has no owner                           | RANGE_UNAVAILABLE              |
// | 7 | R != 0 and R is not K's range                    | NOT_OWNER + hint for K's range |
// | 8 | K's range's state is unavailable                 | RANGE_UNAVAILABLE              |
// | 9 | K's range is owned by another node               | NOT_OWNER + hint               |
// |10 | K's range is this node's, but its store is not   | RANGE_UNAVAILABLE (why: open   |
// |   | open                                             | failed, e.g. CORRUPTION)       |
// |11 | K's range is this node's and open, but its slot  | the slot's error (kvnode/      |
// |   | does not admit the access                        | range_slot.h); NOT_OWNER + hint|
// |   |                                                  | for the new owner once this    |
// |   |                                                  | node handed the range over     |
// |12 | K's range is this node's and open                | the store                      |
//
// Rule 12 has one more refusal: when this node's owner wrote a split the
// table does not show yet (the slot's generation is past the route's), the
// store admits only the left part, and a key of the right part is refused
// NOT_OWNER until the table has the new range.
//
// Route::wait marks the refusals that end by themselves within
// milliseconds (rules 4, 10 before an open failure, 11 while fenced, and
// the one above); a write refused so waits on the node
// (kvnode/server/write_parking.h) rather than going back to the client.
//
// A stale read (Access::kStaleRead) first tries a shortcut: when this node
// holds K's range (owner or replica) and its slot admits stale reads, the
// store answers, whatever the epochs; otherwise the rules above apply.
//
// The hint (NOT_OWNER; STALE_EPOCH when R has an owner) carries the owner's
// id, its address when the owner has a live node znode ("" otherwise), the
// range's epoch and id — what the node knows; the client still re-reads the
// map when the hint turns out stale. Rule 2 is
// the fence of docs/design.md §5; rule 3 keeps a node whose map lags from serving a
// range that may already have moved.
//
// Thread-safety: immutable after Build/Unavailable; share freely.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cluster_map.h"
#include "common/key_range.h"
#include "common/protocol.h"
#include "common/types.h"
#include "kvnode/replication/range_slot.h"
#include "kvnode/storage/range_store.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

// One range of the map, as this node routes it.
struct RangeRoute {
  RangeId id{0};
  KeyRange bounds;
  Epoch epoch{0};
  std::optional<NodeId> owner;
  std::string owner_address;  // "" when the owner has no live node znode
  cluster::RangeState state = cluster::RangeState::kActive;
  uint64_t generation = 0;  // of the bounds (cluster_map.h), sent in hints
  // Set iff this node holds the range's store (owner or replica) and it is open.
  std::shared_ptr<RangeSlot> slot;
  // When this node owns the range but has no store: why (rule 10).
  Status unavailable;
};

// The outcome of routing one request: a store, or an error (with a hint for
// NOT_OWNER when the owner is known).
struct Route {
  std::shared_ptr<RangeStore> store;
  std::shared_ptr<RangeSlot> slot;  // with store on the owner path: its admission state
  Status error;
  std::optional<proto::OwnerHint> hint;
  // A write refused so may wait on the node for the refusal to end
  // (write_parking.h): the range is fenced for a split, merge or transfer
  // (rule 11), its store is not built yet (rule 10), no range holds the
  // key in a map read across a split (rule 4), or the store already
  // admits only the left part of a split the table does not show yet.
  bool wait = false;
  bool ok() const { return store != nullptr; }
};

class RoutingTable {
 public:
  // Rule 1 for every request: RANGE_UNAVAILABLE with `reason`.
  static std::shared_ptr<const RoutingTable> Unavailable(NodeId self, std::string reason);
  // A joined table. Ranges may come in any order. A range overlapping one
  // with a smaller start is left out (the map is broken there; the node
  // logs it) and its id is appended to *overlapping when given.
  static std::shared_ptr<const RoutingTable> Build(NodeId self, std::vector<RangeRoute> ranges,
                                                   std::vector<RangeId>* overlapping = nullptr);

  // get/put/delete/cas/scan: route by one key.
  Route ForKey(RangeId requested, Epoch epoch, std::string_view key,
               Access access = Access::kWrite) const;
  // batch: every op's key must be in the range of the first (rule 5).
  // ops must not be empty (BAD_REQUEST otherwise).
  Route ForBatch(RangeId requested, Epoch epoch, const std::vector<proto::WriteOp>& ops) const;

  bool joined() const { return joined_; }
  // Why a not-joined table refuses requests.
  const std::string& reason() const { return reason_; }
  // Sorted by bounds().start(), pairwise disjoint.
  const std::vector<RangeRoute>& ranges() const { return ranges_; }
  // Ranges whose store is open here (owned or replicated).
  size_t served() const { return served_; }
  // The entry for id, or nullptr.
  const RangeRoute* Find(RangeId id) const;

 private:
  RoutingTable(NodeId self, bool joined, std::string reason, std::vector<RangeRoute> ranges);
  // The entry whose bounds contain key, or nullptr.
  const RangeRoute* Locate(std::string_view key) const;
  // Rules 1-3; nullopt when none applies.
  std::optional<Route> Fence(RangeId requested, Epoch epoch) const;
  // Rule 4.
  Route NoRange(std::string_view key) const;
  // Rules 6-11 for the key's range r.
  Route Owner(RangeId requested, const RangeRoute& r, Access access) const;
  // The refusal of rule 12 for a write of key admitted by Owner.
  Route SplitAhead(Route route, const RangeRoute& r, std::string_view key) const;

  NodeId self_;
  bool joined_;
  std::string reason_;
  std::vector<RangeRoute> ranges_;
  size_t served_ = 0;
};

}  // namespace rangekv::kvnode
