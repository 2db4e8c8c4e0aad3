// kvnode/cluster/map_reader.h — reads the cluster map (common/cluster_map.h) from
// ZooKeeper, tolerating garbage.
//
// One Read is the re-read step of the level-triggered pattern (docs/design.md §4):
//
//   Sync(R)                      the session's server catches up with the
//                                leader (the watch may use another server)
//   Children(R/nodes), Children(R/ranges)
//                                sent with the Sync, without waiting for it:
//                                a session's requests are served in order
//   Get(R/config), Get of every child, in parallel (async calls, one wait)
//
// Two round trips in all.
//
// A range listed but gone by its Get means the read straddled a merge (or
// a deletion): the map would show neither the ranges merged nor the range
// they became, and a node would close both for nothing. Such a read is
// made again, at most kTornRereads times (the change is complete by then
// nearly always); the last one is returned as read.
//
// A missing R, R/nodes or R/ranges reads as empty (the coordinator has not
// bootstrapped the cluster yet). A znode whose data does not decode — or a
// range znode whose name is not a range id, or whose "id" differs from its
// name — is logged once per znode version (its mzxid) and ignored; a range
// keeps the last valid version this reader saw, so garbage written over a
// range does not move it. Nodes and config have no such memory: a node
// znode that does not decode is simply not a live node.
//
// Thread-safety: none; one reader per member thread. Read blocks (ZooKeeper
// round trips): never call it on an Asio thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/zk/session.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

struct MapRead {
  cluster::ClusterMap map;
  // ephemeral_owner of R/nodes/<self>, nullopt if that znode is missing or
  // unreadable: tells whether our registration still stands.
  std::optional<int64_t> self_owner;
};

// What a split's or a merge's multi is conditioned on (cluster_member.cc),
// read with async calls and one wait: one round trip where reading them
// one by one took one each, with the new range's writes waiting. The
// reads need not agree with each other: the multi checks the versions of
// the range znodes and of the id counter, which every range creation
// moves on.
struct ChangeReads {
  std::vector<std::optional<zk::ZnodeData>> ranges;  // as asked; nullopt: gone
  std::optional<zk::ZnodeData> counter;              // R/next_range_id; nullopt: not yet
  std::vector<std::string> range_names;              // the children of R/ranges
};
Result<ChangeReads> ReadForChange(zk::Session& session, const cluster::Paths& paths,
                                  const std::vector<RangeId>& ranges,
                                  std::chrono::milliseconds timeout);

class MapReader {
 public:
  MapReader(std::string cluster, NodeId self);

  // See above. Errors: the session's (kUnavailable when disconnected,
  // kTimeout past `timeout` for the parallel reads).
  Result<MapRead> Read(zk::Session& session, std::chrono::milliseconds timeout);

  const cluster::Paths& paths() const { return paths_; }

  static constexpr int kTornRereads = 2;

 private:
  // One read; *torn: a listed range was gone by its Get.
  Result<MapRead> ReadOnce(zk::Session& session, std::chrono::milliseconds timeout, bool* torn);
  // Logs a bad znode unless this version was logged already.
  void ReportGarbage(const std::string& path, const zk::ZnodeStat& stat, const std::string& why);
  // Forgets the logged version once a znode is valid again or gone.
  void ClearGarbage(const std::string& path) { garbage_.erase(path); }

  const cluster::Paths paths_;
  const NodeId self_;
  std::map<RangeId, cluster::RangeInfo> last_valid_;
  std::map<std::string, int64_t> garbage_;  // path -> mzxid already logged
};

}  // namespace rangekv::kvnode
