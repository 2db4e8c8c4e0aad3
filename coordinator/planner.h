// coordinator/planner.h — the leader's decisions, as a pure function of
// one snapshot of the cluster map.
//
// The coordinator is level-triggered (docs/design.md §4): every reconcile re-reads
// R/config, R/nodes and R/ranges and asks PlanReconcile what to write. The
// answer depends only on that snapshot (plus the highest epoch the
// coordinator has ever seen per range id, and for how long each dead node
// has been dead, both given as data), never on the event that triggered
// the run, so a lost notification costs a delay, never a wrong map. No I/O
// here: the coordinator turns the plan into ZooKeeper writes, each a
// compare-and-set on the version the snapshot read, and a failed CAS only
// means that the next reconcile plans again from fresher data.
//
// The whole map first:
//
// | snapshot                                        | plan                                  |
// |-------------------------------------------------|---------------------------------------|
// | no range znode at all, >= max(rf, expect_nodes) | bootstrap: InitialSplit(config), K    |
// | live nodes                                      |                                       |
// |                                                 | ranges (cut at initial_splits, else K |
// |                                                 | first-byte slices), ids 1..K, owner   |
// |                                                 | of range i = node i mod N             |
// |                                                 | (sorted ids), replicas = owner + the  |
// |                                                 | rf-1 least replicated other nodes so  |
// |                                                 | far (nearest after the owner first),  |
// |                                                 | isr = replicas, epoch 1, active; all  |
// |                                                 | created in one multi                  |
// | no range znode at all, fewer live nodes         | nothing; a note says what it waits for|
// | range data does not decode (or names another id)| repair, see below                     |
//
// Then the rules for each range whose data decoded. They run in the order below and
// all their changes go into ONE write (one CAS on the version read), whose
// kind is that of the first rule that changed something; the reason names
// every change. "Live" = the node has a valid R/nodes znode. Grants are to
// a process and a copy (cluster_map.h): the owner is "usable" when it is
// live with the life recorded in owner_life and the incarnation recorded
// for it in the ISR; an ISR member is "valid" when live with its recorded
// incarnation. "Candidates" are the valid ISR members that are neither
// opening (still reading their stores) nor suspect (may lack records it
// acknowledged: cluster_map.h); suspect ones only when every ISR member is
// live, opened and suspect (so none that could turn out trusted is passed
// over), and of those only the ones whose logs reach furthest (the
// "log_ends" of their znodes), since a suspect copy may have lost a suffix
// of committed records that another still holds.
//
// | # | when                                        | change                                 |
// |---|---------------------------------------------|----------------------------------------|
// | 1 | owner set, not usable, some candidate       | promote: owner = least-loaded          |
// |   |                                             | candidate, owner_life = its life,      |
// |   |                                             | epoch + 1, isr = valid members plus    |
// |   |                                             | down ones up to min-insync (the old    |
// |   |                                             | owner stays in replicas), active       |
// |   |                                             | (kPromote)                             |
// | 2 | owner set, not usable, no candidate         | state unavailable if active; the rest  |
// |   |                                             | kept; no further rule                  |
// |   |                                             | (kMarkUnavailable). Never an unclean   |
// |   |                                             | promotion of a non-ISR replica         |
// | 3 | owner usable, state unavailable             | state active (kMarkActive)             |
// | 4 | no owner, some candidate                    | owner = least-loaded candidate, as in  |
// |   |                                             | 1; replicas filled up to rf            |
// |   |                                             | (kAssignOwner). Never any other node:  |
// |   |                                             | it may hold none of the range's data   |
// | 5 | no owner, no candidate                      | state unavailable if active, saying    |
// |   |                                             | why; stop                              |
// | -- from here on the owner is usable (after 1, 3 or 4) --                                |
// | 6 | a non-owner ISR member is live with another | removed from isr (kShrinkIsr); one     |
// |   | incarnation, or not live                    | that is not live only while the isr    |
// |   |                                             | is larger than min-insync              |
// | 7 | live X has NodeInfo.replaces = D, D not     | D replaced by X in replicas (same      |
// |   | live, D in replicas, X not                  | place), D out of isr; X not in isr: it |
// |   |                                             | recovers, the owner adds it (kReplace) |
// | 8 | a non-owner replica not live for longer     | replaced by the least replicated live  |
// |   | than replace_after (dead_for; 0 = never)    | non-member, if any (kReplace). One of  |
// |   |                                             | only min-insync isr members stays: the |
// |   |                                             | replacement is added (replicas > rf),  |
// |   |                                             | and the dead one dropped once rule 6   |
// |   |                                             | has let it out of the isr              |
// | 9 | fewer than rf replicas                      | least replicated live non-members      |
// |   |                                             | added to replicas, not isr             |
// |   |                                             | (kAddReplica)                          |
// |11 | move_replica F>T set (cluster_map.h)         | F or T no longer a replica: field      |
// |   |                                             | cleared. T not live for longer than    |
// |   |                                             | kMoveTargetGrace and not a valid isr   |
// |   |                                             | member: T out of replicas, field       |
// |   |                                             | cleared. T a valid isr member: F owns  |
// |   |                                             | -> move_to = T (a transfer first; one  |
// |   |                                             | range handed over at a time);          |
// |   |                                             | else F out of replicas and isr, field  |
// |   |                                             | cleared. Else (T copying) nothing      |
// |   |                                             | (kMoveReplica)                         |
// |10 | owner missing from replicas/isr, or an isr  | owner put first in replicas and isr,   |
// |   | member outside replicas                     | stray isr members dropped (kRepair)    |
//
// So every record written has owner in replicas and in isr, and isr a
// subset of replicas. Down members stay in the ISR until the live ones
// alone reach min-insync: nothing commits while fewer than min-insync
// members acknowledge, so a down member still holds every committed write
// and may be the only candidate left should the new owner fail before a
// replica catches up. With no candidate (rule 2) the ISR is left alone on
// purpose: nothing can commit without an owner, so every ISR member still
// holds every committed write, and whichever comes back first can be
// promoted. Rules 6-9 wait for a usable owner for the same reason (a new
// replica could not recover from anyone anyway). When several live nodes
// name the same D, the smallest id takes its place; X never replaces a node
// that is the range's owner (rule 1 must move the owner first).
//
// "Least replicated" (replica placement) compares ranges replicated, then
// ranges owned, then the id; "least-loaded" (owner choice) compares ranges
// owned, then replicated, then the id. Both count only live nodes and are
// updated as the plan assigns, so one plan spreads its choices.
//
// Repair of a garbage range znode: its bounds are the key span that the
// valid ranges leave uncovered next to it, so the map has no hole and no
// overlap afterwards. The span is found as follows: if the id is one of the
// initial split (1..K) and that initial span lies inside an uncovered span,
// that uncovered span is its place (neighbouring garbage ranges in one span
// share it at their initial split points); otherwise it takes the first
// uncovered span nobody else took. A garbage range with no uncovered span
// left stays as it is (with a note). Who holds its data is known only from
// the last valid version of its record this coordinator saw (last_valid):
// with one, the record is that version with the new bounds and rule 4 picks
// an owner among its ISR (epoch = 1 + the highest epoch seen for the id);
// without one, or with no candidate, it gets no owner and state
// unavailable, and the reason says what would bring it back.
//
// Every choice is deterministic.
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/key_range.h"
#include "common/types.h"
#include "common/zk/session.h"

namespace rangekv::coordinator {

// One znode under R/ranges as read.
// Replica moves into one node at once, unless kvcoord --moves-per-node
// says otherwise (PlanBalance below).
inline constexpr int kDefaultMovesPerNode = 2;
// A move's target that is not live is taken out again only once it has
// been gone this long (dead_for): a target killed and started again at
// once (its znode replaced) resumes its copy instead of losing it.
inline constexpr std::chrono::milliseconds kMoveTargetGrace{10000};

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
  // The last valid record seen per id: whom a damaged znode's data is with.
  std::map<RangeId, cluster::RangeInfo> last_valid;
  // For nodes named in ranges that are not live: for how long they have not
  // been (as the coordinator measures it). A node missing here is treated
  // as dead for 0 ms (never replaced by rule 8).
  std::map<NodeId, std::chrono::milliseconds> dead_for;
  // Rule 8's threshold; 0 disables it.
  std::chrono::milliseconds replace_after{0};
  // Bootstrap waits for max(rf, expect_nodes) live nodes.
  int expect_nodes = 0;
  // Whether owners and replicas are balanced (PlanBalance below; moves
  // off draining nodes happen either way).
  bool balance = false;
  // At most this many replica moves into one node at once (kvcoord
  // --moves-per-node).
  int moves_per_node = kDefaultMovesPerNode;
  // Ranges moved for balance within kBalanceCooldown: not moved again yet.
  std::set<RangeId> recently_moved;
  // Nodes being decommissioned (children of R/draining, cluster_map.h):
  // never picked for a new replica, picked as owner only when no other
  // candidate is, and their replicas moved away one at a time (PlanBalance).
  std::set<NodeId> draining;
};

enum class WriteKind : uint8_t {
  kMarkUnavailable,  // owner's node is gone, no ISR member to promote
  kMarkActive,       // owner's node is back
  kAssignOwner,      // the range had no owner
  kRepair,           // the znode held garbage, or broke the replica invariants
  kPromote,          // owner's node is gone: a live ISR member took over
  kShrinkIsr,        // dead members left the ISR
  kReplace,          // a dead replica was swapped for a live node
  kAddReplica,       // fewer replicas than rf
  kBalance,          // an owner asked to hand a range over (move_to set or cleared)
  kMoveReplica,      // a replica move started, went on, ended or was dropped
};
const char* WriteKindName(WriteKind kind);

// A compare-and-set of one range znode: write `record` if the znode is
// still at `expected_version`.
struct RangeWrite {
  WriteKind kind = WriteKind::kMarkUnavailable;
  cluster::RangeInfo record;
  zk::ZnodeVersion expected_version{0};
  std::string reason;  // one line for the log
  // kPromote: the owner it replaced (for the failover log and metrics).
  std::optional<NodeId> deposed;
};

struct Plan {
  // Non-empty: create these range znodes, all or none (one multi).
  std::vector<cluster::RangeInfo> bootstrap;
  std::vector<RangeWrite> writes;
  // Conditions worth a log line that need no write (waiting for nodes, a
  // hole no garbage range can fill, ...). Stable text while the condition
  // lasts, so callers can rate-limit by text.
  std::vector<std::string> notes;
  // Set when rule 8 will replace a replica later: the time until the first
  // such replica is due. The snapshot would plan nothing new before then,
  // so the caller reconciles again after it even if nothing else happens.
  std::optional<std::chrono::milliseconds> recheck_after;

  bool empty() const { return bootstrap.empty() && writes.empty(); }
};

Plan PlanReconcile(const ClusterSnapshot& snapshot);

// Balance (planner_balance.cc), after every rule above and only when they
// planned no write: a move_to that can no longer happen (its node is no
// longer a valid in-sync member fit to own: live, opened, not suspect, or
// the owner's grant is gone) is cleared; while one is pending nothing else
// moves. Then two neighbours both reported mergeable by their owners
// (NodeInfo "mergeable") and held by the same copies but owned by
// different nodes: the right one gets move_to = the left one's owner, so
// that the owner merges them (one such move at a time, kBalance). Then,
// when every range is active with an owner, the live nodes
// fit to own are compared by the requests/s their node znodes report for
// the ranges they own ("load"; a range counts with the highest load any
// node reports for it, so one just moved is not taken for idle), or by
// ranges owned when the whole cluster
// serves fewer than kBalanceMinQps. By load, only once every range is in
// its owner's report (a range just moved or split off is not yet, and
// would count as idle). When the hottest carries more than the
// coldest by more than max(kBalanceMinGapQps, a fifth of its own) (by
// count: by 2 or more), one range the hottest owns and the coldest holds
// in sync gets move_to = coldest (kBalance): the one whose load is nearest
// half the gap, below it, among those not moved for balance within
// kBalanceCooldown and not one of two mergeable neighbours. The owner
// performs the move (a transfer) and its record clears move_to. Within one
// round this repeats on the loads the planned moves leave, with at most
// kBalanceMovesPerNode moves into a node and none out of a node that took
// one (a load split leaves a dozen ranges of a few percent each on one
// node: one move per round took five rounds of 2-3 s); while any stands,
// nothing else moves, so the loads reported next decide the next round. A
// range moved for balance is not moved again for kBalanceCooldown: request
// rates jitter by a quarter from one look to the next, and without it the
// same range went back and forth between two nodes every few seconds.
//
// Before owners, replicas. A range moves one replica at a time (rule 11
// takes a move_replica on), a node takes in at most s.moves_per_node
// copies at once, and while any move is under way the owners below stay
// put. When every range without a move is active, owned and at rf: first
// (balance on or off) each replica on a node being decommissioned
// (s.draining) moves to the node fit to take it (live, opened, not
// suspect, not draining, not holding the range, below its limit) with the
// fewest copies, ranges by id; a range with no such node at all gets a
// note. Then (balance on) the nodes fit to take a copy are compared by the
// replicas they will hold once the moves under way are done: by their
// bytes (NodeInfo "bytes", the owners' reports) once every range's are
// reported and all copies hold kBytesBalanceFloor or more; not at all
// while they do but some range's are not; by count otherwise. While the
// most exceeds the fewest with room for another move by
// kReplicaBalanceMinGap copies (by bytes: while one of the two is more
// than a tenth off the mean and they differ by more than
// kBytesBalanceMinGap), a range the first holds and the second
// does not gets the second added to its replicas and move_replica =
// first>second (kMoveReplica): by count one the first does not own
// first, then the lowest id; by bytes the one below the gap nearest what
// both can take without passing the mean. So nodes added to a running cluster are given copies a
// few ranges at a time, and then ownership by load; a draining node is
// never a target of either kind of move. The owner moves below happen only
// with balance on.
inline constexpr int kReplicaBalanceMinGap = 2;
inline constexpr uint64_t kBytesBalanceFloor = uint64_t{256} << 20;
inline constexpr uint64_t kBytesBalanceMinGap = uint64_t{32} << 20;
inline constexpr std::chrono::seconds kBalanceCooldown{30};
inline constexpr uint64_t kBalanceMinQps = 200;
inline constexpr uint64_t kBalanceMinGapQps = 100;
inline constexpr int kBalanceMovesPerNode = 2;
void PlanBalance(const ClusterSnapshot& snapshot, Plan& plan);

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
                                             const std::vector<KeyRange>& initial,
                                             std::vector<std::string>* notes);

}  // namespace rangekv::coordinator
