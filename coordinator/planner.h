// coordinator/planner.h — the leader's decisions, as a pure function of
// one snapshot of the cluster map.
//
// The coordinator is level-triggered (DESIGN §4): every reconcile re-reads
// R/config, R/nodes and R/ranges and asks PlanReconcile what to write. The
// answer depends only on that snapshot (plus the highest epoch the
// coordinator has ever seen per range id), never on the event that triggered
// the run, so a lost notification costs a delay, never a wrong map. No I/O
// here: the coordinator turns the plan into ZooKeeper writes, each a
// compare-and-set on the version the snapshot read, and a failed CAS only
// means that the next reconcile plans again from fresher data.
//
// Rules, first match per range (this issue: no data replication yet, so an
// owner is never moved and an epoch is only raised for a new owner):
//
// | snapshot                                        | plan                                  |
// |-------------------------------------------------|---------------------------------------|
// | no range znode at all, >= rf live nodes         | bootstrap: InitialSplit(K) ranges ids |
// |                                                 | 1..K, owner of range i = node i mod N |
// |                                                 | (sorted ids), replicas = owner + the  |
// |                                                 | rf-1 least replicated other nodes so  |
// |                                                 | far (nearest after the owner first),  |
// |                                                 | isr = replicas, epoch 1, active; all  |
// |                                                 | created in one multi                  |
// | no range znode at all, < rf live nodes          | nothing; a note says what it waits for|
// | range data does not decode (or names another id)| repair, see below                     |
// | owner set, owner not live, state active         | state unavailable (owner, epoch kept) |
// | owner set, owner live, state unavailable        | state active                          |
// | no owner, some node live                        | owner = least-loaded live node (live  |
// |                                                 | ISR members first, then replicas, then|
// |                                                 | any); replicas filled up to rf;       |
// |                                                 | owner added to isr; epoch + 1; active |
// | no owner, no node live, state active            | state unavailable                     |
//
// Repair of a garbage range znode: its bounds are the key span that the
// valid ranges leave uncovered next to it, so the map has no hole and no
// overlap afterwards. The span is found as follows: if the id is one of the
// initial split (1..K) and that initial span lies inside an uncovered span,
// that uncovered span is its place (neighbouring garbage ranges in one span
// share it at their initial split points); otherwise it takes the first
// uncovered span nobody else took. A garbage range with no uncovered span
// left stays as it is (with a note). owner = least-loaded live node (none if
// no node is live: then state unavailable), replicas = owner + the rf-1
// least-loaded other live nodes, isr = replicas, epoch = 1 + the highest
// epoch seen for that id (1 if never seen).
//
// Load of a live node = ranges it owns, then ranges it replicates; ties go
// to the smaller node id. Every choice is deterministic.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/key_range.h"
#include "common/types.h"
#include "common/zk/session.h"

namespace rangekv::coordinator {

// One znode under R/ranges as read.
struct RangeZnode {
  zk::ZnodeVersion version{0};
  std::optional<cluster::RangeInfo> info;  // nullopt: garbage (see error)
  std::string error;                       // why the data is not a valid record
};

// What one reconcile read.
struct ClusterSnapshot {
  cluster::ClusterConfig config;                   // effective config
  std::map<NodeId, cluster::NodeInfo> live_nodes;  // R/nodes children with valid data
  std::map<RangeId, RangeZnode> ranges;            // every child of R/ranges named by an id
  std::map<RangeId, Epoch> known_epochs;           // highest epoch ever seen per id
};

enum class WriteKind : uint8_t {
  kMarkUnavailable,  // owner's node is gone
  kMarkActive,       // owner's node is back
  kAssignOwner,      // the range had no owner
  kRepair,           // the znode held garbage
};
const char* WriteKindName(WriteKind kind);

// A compare-and-set of one range znode: write `record` if the znode is
// still at `expected_version`.
struct RangeWrite {
  WriteKind kind = WriteKind::kMarkUnavailable;
  cluster::RangeInfo record;
  zk::ZnodeVersion expected_version{0};
  std::string reason;  // one line for the log
};

struct Plan {
  // Non-empty: create these range znodes, all or none (one multi).
  std::vector<cluster::RangeInfo> bootstrap;
  std::vector<RangeWrite> writes;
  // Conditions worth a log line that need no write (waiting for nodes, a
  // hole no garbage range can fill, ...). Stable text while the condition
  // lasts, so callers can rate-limit by text.
  std::vector<std::string> notes;

  bool empty() const { return bootstrap.empty() && writes.empty(); }
};

Plan PlanReconcile(const ClusterSnapshot& snapshot);

// The initial ranges of a new cluster over `nodes` (sorted, >= rf of them),
// as in the table above. Exposed for tests.
std::vector<cluster::RangeInfo> PlanBootstrap(const cluster::ClusterConfig& config,
                                              const std::vector<NodeId>& nodes);

// The spans of the key space that no range of `ranges` covers, in key order.
std::vector<KeyRange> UncoveredSpans(std::vector<KeyRange> ranges);

// Bounds for the garbage ranges `garbage` (ids) given the bounds of the
// valid ranges, as described above. Ids that get no bounds are missing
// from the result; `notes` receives one line for each of them and for each
// uncovered span left without a range.
std::map<RangeId, KeyRange> PlanRepairBounds(const std::vector<KeyRange>& valid,
                                             const std::vector<RangeId>& garbage,
                                             int initial_ranges, std::vector<std::string>* notes);

}  // namespace rangekv::coordinator
