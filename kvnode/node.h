// kvnode/node.h — one kvnode: its data directory, the ranges it serves, and
// routing a key to the RangeStore that holds it.
//
// The data directory's identity file, lock and layout are specified in
// kvnode/data_dir.h. Range data lives in DIR/ranges/<range-id>/.
//
// Modes:
//   - standalone (now): one range, kStandaloneRange, covering the whole key
//     space; the set of ranges is fixed at Open.
//   - cluster (later): the coordinator assigns ranges. The set will then be
//     an immutable snapshot swapped atomically, so routing stays lock-free on
//     the I/O threads; the routing signatures below already carry what that
//     needs (the request's range id, NOT_OWNER as an error value).
//
// Lifecycle:
//
//   Open --> serving --Close()--> closed --~Node--> stores destroyed
//
// Thread-safety: routing (Range*) is safe from any thread at any time while
// the Node exists; after Close() it returns the closed stores, whose Write
// fails. Close() is called once, by the owner, after the server stopped.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/protocol.h"
#include "common/types.h"
#include "kvnode/data_dir.h"
#include "kvnode/range_store.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

// Node id of a standalone data directory created without --id.
inline constexpr std::string_view kDefaultStandaloneNodeId = "standalone";

struct NodeConfig {
  std::string data_dir;
  std::optional<NodeId> id;  // nullopt: the directory's, else the default
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  std::chrono::milliseconds fsync_interval{10};
};

class Node {
 public:
  // Opens the data directory (DataDir::Open's errors) and the single
  // standalone range's store (RangeStore::Open's errors, e.g. CORRUPTION,
  // with the range named). On error nothing stays locked or open.
  static Result<std::unique_ptr<Node>> OpenStandalone(const NodeConfig& config);

  ~Node();  // Close() if not yet closed
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const NodeId& id() const { return dir_->node_id(); }
  const DataDir& data_dir() const { return *dir_; }
  size_t range_count() const { return ranges_.size(); }

  // The store whose range contains key. `requested` is the range id the
  // request names (0: unknown, route by key). NOT_OWNER when no range of
  // this node contains the key, or the key's range is not `requested`.
  // The pointer stays valid for the Node's lifetime.
  Result<RangeStore*> RangeForKey(RangeId requested, std::string_view key) const;

  // The one store holding every key of ops (a batch). CROSS_RANGE when the
  // keys fall in different ranges; NOT_OWNER as above. ops must not be empty.
  Result<RangeStore*> RangeForBatch(RangeId requested,
                                    const std::vector<proto::WriteOp>& ops) const;

  // Closes every store (queued writes complete, logs fsynced). Returns the
  // first error; later calls return OK.
  Status Close();

 private:
  Node(std::unique_ptr<DataDir> dir, std::vector<std::unique_ptr<RangeStore>> ranges);
  std::unique_ptr<DataDir> dir_;
  // Sorted by bounds().start(), pairwise disjoint. Fixed after Open.
  std::vector<std::unique_ptr<RangeStore>> ranges_;
  bool closed_ = false;
};

}  // namespace rangekv::kvnode
