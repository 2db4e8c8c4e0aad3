// common/cluster_map.h — the cluster map kept in ZooKeeper, as values.
//
// ZooKeeper layout under the cluster root R = /rangekv/<cluster>:
//
//   | znode                  | kind                 | data (below)           |
//   |------------------------|----------------------|------------------------|
//   | R/config               | persistent           | ClusterConfig          |
//   | R/nodes/<node-id>      | ephemeral            | NodeInfo               |
//   | R/ranges/<range-id>    | persistent           | RangeInfo              |
//   | R/coordinator/leader-  | ephemeral sequential | coordinator id (text)  |
//
// <range-id> is the decimal RangeId zero-padded to 10 digits so children
// sort by id. Every change to a range znode is a compare-and-set on its
// znode version (or a multi), so two coordinators can never both win.
//
// Data encoding: UTF-8 text, one "field value" pair per line, the first line
// naming the record and its format version ("rangekv-range 1"). Byte strings
// (range bounds) are lower-case hex, so any key is representable and the
// data stays readable in zkCli. Unknown fields are ignored (forward
// compatible); a missing required field, a bad number or bad hex makes the
// whole record invalid (Decode* returns BAD_REQUEST naming the field), and
// readers log and skip such a record — the coordinator repairs it.
//
//   rangekv-config 1          rangekv-node 1               rangekv-range 1
//   rf 3                      id n1                        id 3
//   min_insync 2              address 127.0.0.1:7401       start 6d
//   initial_ranges 8          admin 127.0.0.1:9401         end 7a          (or "end -": unbounded)
//                             started_ms 1763772000123     epoch 5
//                             incarnation 6f1c...          owner n1        (or "owner -": none)
//                             replaces n4   (optional)     replicas n1,n2,n3
//                                                          isr n1,n2
//                                                          state active    (active|unavailable)
//
// Node ids: 1..64 bytes of [A-Za-z0-9._-]; they are znode names.
//
// NodeInfo "replaces": optional; present only when the node was started to
// take the place of a dead node (kvnode --replace <id>). While the named
// node has no live znode, the coordinator swaps it for this node in every
// range's replicas (coordinator/planner.h). Omitted when unset, so such a
// record reads the same as before the field existed; a reader that predates
// it ignores it; a value that is not a valid node id makes the record
// invalid, like any other bad field.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/key_range.h"
#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::cluster {

struct ClusterConfig {
  int rf = 3;
  int min_insync = 2;
  int initial_ranges = 8;
  friend bool operator==(const ClusterConfig&, const ClusterConfig&) = default;
};

struct NodeInfo {
  NodeId id;
  std::string address;        // host:port clients connect to
  std::string admin_address;  // host:port of the metrics endpoint ("" if none)
  uint64_t started_ms = 0;    // wall clock at process start
  std::string incarnation;    // random per data directory: tells a wiped node apart
  // The dead node this one takes over for (see above). `{}` keeps
  // positional initialisers of the fields above free of warnings.
  std::optional<NodeId> replaces{};
  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

enum class RangeState : uint8_t { kActive, kUnavailable };
const char* RangeStateName(RangeState s);

struct RangeInfo {
  RangeId id{0};
  KeyRange bounds;
  Epoch epoch{0};
  std::optional<NodeId> owner;
  std::vector<NodeId> replicas;  // includes the owner
  std::vector<NodeId> isr;       // subset of replicas; includes the owner
  RangeState state = RangeState::kActive;
  friend bool operator==(const RangeInfo&, const RangeInfo&) = default;
};

bool IsValidNodeId(std::string_view id);

std::string EncodeConfig(const ClusterConfig& c);
Result<ClusterConfig> DecodeConfig(std::string_view data);
std::string EncodeNode(const NodeInfo& n);
Result<NodeInfo> DecodeNode(std::string_view data);
std::string EncodeRange(const RangeInfo& r);
Result<RangeInfo> DecodeRange(std::string_view data);

// Paths of one cluster. cluster names follow the node id rule.
// The cluster name every program and script uses when none is given
// (kvnode, kvcoord, kvrepl, kvbench, scripts/kvcluster, and the client's
// rangekv::kDefaultCluster), so a bare ZooKeeper connect string reaches the
// cluster that scripts/kvcluster starts.
inline constexpr std::string_view kDefaultCluster = "default";

// The parent of every cluster's root: its children are the cluster names.
inline constexpr std::string_view kClustersRoot = "/rangekv";

class Paths {
 public:
  explicit Paths(std::string_view cluster)
      : root_(std::string(kClustersRoot) + "/" + std::string(cluster)) {}
  const std::string& root() const { return root_; }
  std::string config() const { return root_ + "/config"; }
  std::string nodes() const { return root_ + "/nodes"; }
  std::string node(const NodeId& id) const { return nodes() + "/" + id.str(); }
  std::string ranges() const { return root_ + "/ranges"; }
  std::string range(RangeId id) const;
  std::string coordinator() const { return root_ + "/coordinator"; }
  // Parses a child name of ranges(); nullopt when it is not one.
  static std::optional<RangeId> ParseRangeName(std::string_view name);

 private:
  std::string root_;
};

// The initial split: n ranges over the first key byte, as even as 256 allows
// (n in 1..256). Range ids are 1..n in key order; the last is unbounded.
std::vector<KeyRange> InitialSplit(int n);

// A consistent view of the map as one reader saw it.
struct ClusterMap {
  std::optional<ClusterConfig> config;
  std::map<NodeId, NodeInfo> live_nodes;  // nodes with an ephemeral znode
  std::map<RangeId, RangeInfo> ranges;

  // The range containing key; nullptr if none does (a hole in the map).
  const RangeInfo* Locate(std::string_view key) const;
  // The address of a live node, or nullptr.
  const NodeInfo* Node(const NodeId& id) const;
};

}  // namespace rangekv::cluster
