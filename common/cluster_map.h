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
//   | R/draining/<node-id>   | persistent           | empty                  |
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
//   initial_splits 6b3a33,6b3a36
//            (optional: hex keys, ascending; initial_ranges is their count + 1)
//                             started_ms 1763772000123     epoch 5
//                             incarnation 6f1c...          owner n1        (or "owner -": none)
//                             replaces n4   (optional)     replicas n1,n2,n3
//                             life 93ab...  (optional)     isr n1,n2
//                             suspect 1     (optional)     state active    (active|unavailable)
//                             opening 1     (optional)
//                             log_ends 1:4:325,2:2:4
//                                           (optional)
//                                                          owner_life 93ab...       (optional)
//                                                          isr_incarnations 6f1c...,20d4...
//                                                                                   (optional)
//                                                          handoff_from 4           (optional)
//                                                          generation 2             (optional)
//                                                          split_from 3@1542        (optional)
//                             load 1:523,4:12             move_to n2               (optional)
//                                                          move_replica n1>n4       (optional)
//                                           (optional)     history split-from:3:6b:1542
//                             bytes 1:52428800,4:900                                (optional)
//                                           (optional)
//                                                          merged_from 3@1542,7@980 (optional)
//                                                          merge_key 6b             (optional)
//
// Grants are to a process and a copy of the data, not to a node id (so a
// restarted process, or a node back with an empty or replaced disk, never
// inherits what its previous life was trusted with):
//   - NodeInfo "life": random per process start. RangeInfo "owner_life": the
//     life the owner had when it was made owner. A node leads a range only
//     while owner_life is its own life; an owner whose live znode shows
//     another life has restarted since, and the coordinator treats it as
//     gone (promotes an in-sync replica, at a new epoch).
//   - RangeInfo "isr_incarnations": for each ISR member, in order, the
//     incarnation (data directory identity) it had when it joined the ISR
//     ("-": unknown, written before the field existed). A member counts as
//     in sync only while its live znode shows that incarnation: a wiped or
//     replaced disk is a new incarnation, so such a node is not in sync
//     until it has copied the range again and the owner adds it back.
//   - NodeInfo "suspect": this node's copies may lack records it had
//     acknowledged: the machine restarted since its last unclean stop and
//     it runs with fsync batch or never (a power loss may have taken what
//     was not fsynced; a process that merely died in the same boot, told
//     by the OS boot id, lost nothing the page cache held), opening a range
//     cut a damaged end off its log, a store hit an I/O error and was
//     reopened, or a range's copy was found lost and is copied again. Set
//     until every range it holds has caught up with its owner, and kept
//     across restarts until then by a marker in the data directory. NodeInfo "opening": the
//     process has not opened its ranges yet, so whether it is suspect is
//     not known; cleared (and suspect decided) once it has. The coordinator
//     makes an in-sync replica owner only if it is neither opening nor
//     suspect; a suspect one only when every in-sync replica is live,
//     opened and suspect, and then one whose log reaches furthest.
//   - NodeInfo "log_ends": written only while suspect; for each range the
//     node holds, "<range id>:<epoch>:<seq>" of the last record of its log
//     (comma-separated, ascending range id). Ordered by epoch, then seq, as
//     Raft compares logs: a copy that lost a suffix of committed records
//     (a damaged last record cut at open reads exactly like a torn write)
//     ends below a copy that kept them, and every record of a newer epoch
//     follows all that was committed before it. Refreshed while the node
//     stays suspect; a range it does not list counts as an empty log.
//   - RangeInfo "handoff_from": written only by an owner that hands the
//     range to an in-sync replica itself (a transfer): the epoch it owned
//     the range at. It stopped serving reads and writes before writing the
//     record, so the lease promises replicas made to it protect nothing:
//     neither the new owner nor the replicas wait them out. It counts only
//     on the record of the very next epoch (epoch == handoff_from + 1); the
//     coordinator clears it whenever it grants a new epoch.
//   - RangeInfo "generation": grows by one with every split of the range's
//     span (both parts take the parent's generation + 1), so a map that
//     predates a split is told apart from one that follows it even where
//     bounds repeat. Absent: 0.
//   - RangeInfo "split_from": "<parent id>@<seq>": this range was cut off
//     the right of the parent when the parent's log ended at seq (every ISR
//     member held it durably). A replica in this range's ISR builds its copy
//     from its own copy of the parent as of seq (docs/elastic.md §3); the
//     range's log continues at seq + 1. Kept for history; written only by a
//     split (the parent's owner, in one multi with the parent's new bounds).
//   - RangeInfo "merged_from": "<left id>@<seq>,<right id>@<seq>", with
//     "merge_key" (hex) where the two met: this range was made by merging
//     the two adjacent ranges, whose logs ended at those seqs (every ISR
//     member held them durably; the same owner had fenced both). Both
//     znodes were deleted in the multi that created this one. A replica in
//     this range's ISR builds its copy from its own copies of the two
//     (docs/elastic.md §4); the log continues above the larger seq. Written
//     only by a merge (the owner of both, in one multi); a split keeps it
//     on the left part (whose bounds may then end before merge_key) and
//     leaves it off the part split off.
//   - RangeInfo "history": what happened to the range, oldest first, for
//     operators (REPL `history <range-id>`): comma-separated events, each
//     colon-separated words of [A-Za-z0-9_.>@-] (keys in hex):
//       split:<key>:<new range>:<seq>      split at key; the right part is
//                                          the new range (its log from seq+1)
//       split-from:<parent>:<key>:<seq>    created by a split of parent
//       merged-from:<l>@<seq>:<r>@<seq>:<key>
//                                          created by merging l and r
//       handed:<from>><to>:<epoch>         transferred by its owner
//       promoted:<from|->><to>:<epoch>     the coordinator named a new owner
//     Only the last kHistoryMax events are kept. Never read by any rule.
// Records without these fields (older writers) read as "unknown", which
// every check treats as a match.
//
//   - NodeInfo "load": for each range the node owns, the requests a second
//     its owner admitted over the last three seconds ("<range id>:<n>",
//     ascending id); looked at every second, rewritten when a range came
//     or went or its figure changed much. The coordinator balances
//     owners by it (coordinator/planner.h, balance).
//   - NodeInfo "bytes": for each range the node owns, the bytes of its
//     keys and values ("<range id>:<n>", ascending id), as its store
//     counts them; rewritten when a range came or went or its figure moved
//     by a quarter and 1 MiB. The coordinator spreads the copies by the
//     bytes they hold once the cluster holds enough (planner.h).
//   - NodeInfo "mergeable": the owned ranges (ascending ids, comma-
//     separated) this owner finds small and cold enough to merge with a
//     neighbour (kvnode --merge-delay-ms). The coordinator moves the right
//     one of two such neighbours to the left one's owner, which then merges
//     them (docs/elastic.md §4). Absent: none.
//   - NodeInfo "unreachable": the nodes (ascending ids, comma-separated)
//     owning a range this node replicates whose stream it lost: a fetch
//     failed and none has been answered since, or one has waited well past
//     its long poll. Rewritten when the set changes; absent: none. Only a
//     report: the coordinator declares such a node failed once its own
//     pings go unanswered too (coordinator/failure_detector.h).
//   - RangeInfo "move_to": the coordinator asks the owner to hand the range
//     to this in-sync replica (a transfer, docs/elastic.md §5). The
//     handoff's record clears it, as does any new grant; the coordinator
//     clears one that can no longer happen.
//   - RangeInfo "move_replica": "<from>><to>": the replica on node <from>
//     moves to node <to>. Written (with <to> added to replicas, not to the
//     isr) by the coordinator's balancer or by an operator (REPL `move`);
//     <to> then copies the range like any new replica and the owner adds
//     it to the isr once it has caught up. Only then does the coordinator
//     take <from> out of replicas and isr (after handing the ownership to
//     <to> when <from> owns the range) and clear the field, so the range
//     never has fewer in-sync copies than before the move. Cleared with
//     <to> taken out again when <to> is no longer live before it caught
//     up (coordinator/planner.h, rule 11). A split copies it to both
//     parts, a merge keeps the left one's.
//
// R/draining/<node-id> (persistent, empty; the directory is made by the
// first decommission): the node is being decommissioned (REPL
// `decommission`, undone by `recommission`, which deletes it). The
// coordinator moves every replica off it and never gives it a new one
// (coordinator/planner.h); once no range names it, it is safe to stop.
//
// R/next_range_id (persistent, decimal text): the lowest id no range has
// had, so a split never reuses the id of a range that existed before.
// Created by the first split (as one more than the highest id then), and
// changed only inside the multi that creates a range.
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
  // Keys the key space was first cut at (strictly ascending, none empty):
  // initial_ranges is then their count + 1. Empty: equal slices of the
  // first byte (InitialSplit below).
  std::vector<std::string> initial_splits{};
  friend bool operator==(const ClusterConfig&, const ClusterConfig&) = default;
};

// Checks split keys as initial_splits holds them (at most 255, none empty,
// strictly ascending); BAD_REQUEST naming the first offender.
Status CheckInitialSplits(const std::vector<std::string>& keys);

// Where a copy's log ends (see "log_ends" above); {0, 0}: empty.
struct LogEnd {
  Epoch epoch{0};
  Seq seq{0};
  friend auto operator<=>(const LogEnd&, const LogEnd&) = default;
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
  std::string life{};    // random per process start ("" when unknown)
  bool suspect = false;  // may have lost acknowledged records (see above)
  bool opening = false;  // ranges not opened yet: suspect unknown (see above)
  std::map<RangeId, LogEnd> log_ends{};  // while suspect (see above)
  std::map<RangeId, uint32_t> load{};    // requests/s of owned ranges (see above)
  std::map<RangeId, uint64_t> bytes{};   // data bytes of owned ranges (see above)
  std::vector<RangeId> mergeable{};      // owned ranges that may merge (see above)
  std::vector<NodeId> unreachable{};     // owners whose stream it lost (see above)
  // log_ends[range], or {0, 0} when not listed.
  LogEnd LogEndOf(RangeId range) const;
  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

// A replica on its way from one node to another (see "move_replica" above).
struct ReplicaMove {
  NodeId from;
  NodeId to;
  friend bool operator==(const ReplicaMove&, const ReplicaMove&) = default;
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
  std::string owner_life{};  // the owner's life when made owner ("" unknown)
  // The epoch whose owner handed the range to this one itself (see
  // "handoff_from" above); 0: none.
  Epoch handoff_from{0};
  // Parallel to isr: each member's incarnation when it joined ("" unknown);
  // empty when every one is unknown. Change the ISR through the helpers
  // below, which keep the two in step.
  std::vector<std::string> isr_incarnations{};
  uint64_t generation = 0;  // see "generation" above
  // The parent this range was split from, and the parent's last seq then
  // (see "split_from" above); id 0: not split from anything.
  RangeId split_parent{0};
  Seq split_seq{0};
  // The two ranges merged into this one, their last seqs then and the key
  // where they met (see "merged_from" above); ids 0: not a merge.
  RangeId merge_left{0};
  Seq merge_left_seq{0};
  RangeId merge_right{0};
  Seq merge_right_seq{0};
  std::string merge_key{};
  std::optional<NodeId> move_to{};  // see "move_to" above
  std::optional<ReplicaMove> move_replica{};  // see "move_replica" above
  std::vector<std::string> history{};  // see "history" above; oldest first
  friend bool operator==(const RangeInfo&, const RangeInfo&) = default;

  static constexpr size_t kHistoryMax = 16;
  bool merged() const { return merge_left.value() != 0; }
  // Appends an event (words joined by ':'), dropping the oldest beyond
  // kHistoryMax.
  void AddHistory(const std::vector<std::string>& words);

  // The owner at epoch e gave the range to the present owner itself, and
  // this record is that handoff (epoch is e + 1): promises made to it are
  // void.
  bool HandedOverFrom(Epoch e) const;
  // The incarnation recorded for ISR member n ("" when unknown or absent).
  std::string IsrIncarnation(const NodeId& n) const;
  // Adds n with its incarnation, or removes n (and its entry).
  void AddToIsr(const NodeId& n, std::string incarnation);
  void RemoveFromIsr(const NodeId& n);
  // Replaces the ISR, taking each member's incarnation from `incarnation`
  // (nodes it does not name keep what this record had for them).
  void SetIsr(std::vector<NodeId> members,
              const std::map<NodeId, std::string>& incarnation = {});
};

// Whether ISR member n of r is still the copy that joined: a live node whose
// incarnation matches the record (or either is unknown).
bool IsrMemberValid(const RangeInfo& r, const NodeId& n, const NodeInfo* live);
// Whether the live znode `live` is the process r's owner grant was for.
bool OwnerLifeValid(const RangeInfo& r, const NodeInfo* live);

bool IsValidNodeId(std::string_view id);
// Lower-case hex of bytes, as keys appear in the records above.
std::string ToHex(std::string_view bytes);

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
  std::string draining() const { return root_ + "/draining"; }
  std::string draining(const NodeId& id) const { return draining() + "/" + id.str(); }
  std::string next_range_id() const { return root_ + "/next_range_id"; }
  // Parses a child name of ranges(); nullopt when it is not one.
  static std::optional<RangeId> ParseRangeName(std::string_view name);

 private:
  std::string root_;
};

// The initial split: n ranges over the first key byte, as even as 256 allows
// (n in 1..256). Range ids are 1..n in key order; the last is unbounded.
std::vector<KeyRange> InitialSplit(int n);
// The ranges a cluster with `config` starts with: cut at initial_splits,
// or InitialSplit(initial_ranges) when there are none.
std::vector<KeyRange> InitialSplit(const ClusterConfig& config);

// A consistent view of the map as one reader saw it.
struct ClusterMap {
  std::optional<ClusterConfig> config;
  std::map<NodeId, NodeInfo> live_nodes;  // nodes with an ephemeral znode
  std::map<RangeId, RangeInfo> ranges;

  // The range containing key; nullptr if none does (a hole in the map).
  const RangeInfo* Locate(std::string_view key) const;
  // Whether ranges other than `except` hold every key of [start, end)
  // (end nullopt: to the end of the key space). A read of the map that
  // straddled a split shows a hole (znodes are read one by one).
  bool Covers(std::string start, const std::optional<std::string>& end,
              RangeId except = RangeId(0)) const;
  // The address of a live node, or nullptr.
  const NodeInfo* Node(const NodeId& id) const;
  // The ranges as one multi wrote them (nullopt: deleted).
  using Written = std::map<RangeId, std::optional<RangeInfo>>;
  // A split's or merge's multi as its owner tells it (the replicas' fetch
  // answers carry it, kvnode/replication/replicator.h "news"), over a read
  // that may predate it, straddle it or follow it. Every range a split or
  // merge makes has a generation G above every range it replaces, and a
  // span's generations only grow, so:
  //   ShowsNews: every range the multi made overlaps a range of this map
  //     at generation >= its own (this read follows the multi; the news
  //     has nothing left to add, now or to any later read).
  //   PatchNews: replaces the ranges the multi changed where this map has
  //     them older, deletes those it deleted, and adds those it made where
  //     no range of the map overlaps them. It never makes an overlap, and
  //     leaves a map newer than the news as it is; a map older than the
  //     multi's inputs (a range it changed not listed yet) gains nothing.
  bool ShowsNews(const Written& news) const;
  void PatchNews(const Written& news);
};

}  // namespace rangekv::cluster
