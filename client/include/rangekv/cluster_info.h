// rangekv/cluster_info.h — what a cluster client knows about the cluster.
//
// Values copied from the client's current cluster map (read from ZooKeeper,
// kept current by a watch plus a periodic re-read), for tools and
// diagnostics. They may lag the real cluster by a notification round trip,
// or by up to the 5 s re-read period when notifications are lost.
//
// No Asio, Cap'n Proto or ZooKeeper type appears in this header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rangekv {

// The cluster name used when none is given, by this library's callers and
// by every rangekv program and script (kvnode, kvcoord, kvrepl, kvbench,
// scripts/kvcluster).
inline constexpr const char kDefaultCluster[] = "default";

struct NodeStatus {
  std::string id;
  std::string address;  // "" when the node is down (no live znode)
  // up: the node has a live (ephemeral) znode. down: it is named as an
  // owner or replica of a range but has none.
  bool up = false;
  // Being decommissioned (R/draining): its replicas are moving off it.
  // Filled by the REPL, which reads that directory; false from Client.
  bool draining = false;
};

enum class RangeHealth { kActive, kUnavailable };
// "active" / "unavailable".
const char* RangeHealthName(RangeHealth h);

struct RangeStatus {
  uint64_t id = 0;
  std::string start;               // bytes, inclusive
  std::optional<std::string> end;  // bytes, exclusive; nullopt = unbounded
  uint64_t epoch = 0;
  std::optional<std::string> owner;  // node id; nullopt = no owner
  std::string owner_address;         // "" when the owner is not live
  std::vector<std::string> replicas;
  std::vector<std::string> isr;
  RangeHealth state = RangeHealth::kActive;
  // A replica on its way from node `from` to node `to` (`to` copies the
  // range; `from` leaves once `to` is in the isr); nullopt when none.
  struct Move {
    std::string from;
    std::string to;
  };
  std::optional<Move> move;
  // What happened to the range, oldest first (common/cluster_map.h
  // "history": split, split-from, handed, promoted events).
  std::vector<std::string> history;
};

}  // namespace rangekv
