// tests/fault/fault_nemesis.h — the fault injector of the fault tests.
//
// The Nemesis runs on the test thread (it uses the ReplCluster's node
// connections, which are for one thread) and injects one fault at a time:
//   kill-owner    SIGKILL the owner of a random range, restart it (same data
//                 directory) after 1-3 s
//   kill-replica  SIGKILL a non-owner replica of a random range, restart it
//                 after 1-3 s
//   pause-owner   SIGSTOP the owner of a random range for 1.5 s (past the
//                 coordinator's failure timeout: another node takes over
//                 while its session lives on) or for the node session
//                 timeout + 1.5 s (its session expires too), then SIGCONT
//                 (it must notice it was deposed)
//   stop-owner    SIGTERM the owner of a random range, restart it after 1-3 s
//   transfer      ask the owner of a random range to hand it to another of
//                 its in-sync replicas (no process stops; the window is the
//                 handoff's)
//   split         ask the owner of a random range to split it at one of the
//                 workload's keys inside it (no process stops; the window
//                 is the split's, over the keys of both parts)
//   merge         ask the owner of a random range to merge it with the range
//                 right of it, handing that one to it first when another
//                 node owns it (the window is the merge's, over both)
//   wipe          SIGKILL the owner of a random range, delete its data
//                 directory and restart it with the same id after 1-3 s
//                 (often before its old session expired): it must copy
//                 every range again before it counts as a replica
//   move          REPL `move` of a random range's replica (the owner's,
//                 one time in two) to a node that holds none of it
//   decommission  REPL `decommission` of a random node (every copy and
//                 ownership moves off it), then `recommission` (the
//                 balancer gives it copies back, during later faults)
//   add           start a new node (at most kMaxAddedNodes per run); the
//                 balancer gives it copies and ownership
// With a cluster on hosts of their own (ReplClusterOptions::hosts), the
// partition kinds, each lasting 1.5 s (past the coordinator's failure
// timeout) or the session timeout + 1.5 s, then healed:
//   isolate-owner       cut the owner of a random range from every other
//                       host, both ways (the clients included)
//   cut-owner-zk        cut it from the ZooKeeper servers only
//   cut-owner-replicas  cut it from the range's other ISR members only
//   oneway-owner        drop only what it sends (to every host), or only
//                       what it is sent (one in two)
//   split-minority      the owner and zk1 on one side, every other node,
//                       ZooKeeper server and the coordinator on the other;
//                       the clients reach both sides
//   kill-zk-leader      SIGKILL the ZooKeeper server leading the ensemble,
//                       restart it after 1-3 s
//   pause-zk-leader     SIGSTOP that server for 1-3 s, then SIGCONT
//   isolate-zk-leader   cut that server from every other host
//   slow-links          20 ms +/- 10 ms each way between every two hosts
//                       (the clients' included) for 1-3 s; needs emulated
//                       links (ReplClusterOptions::emulated_links)
// The kinds are dealt in shuffled rounds so a short run sees each of them.
// Before every fault it waits until the whole cluster is settled again
// (ReplCluster::WaitAllActive), so each fault starts from a clean state and
// at most one node is down or paused at a time.
//
// Each fault is recorded with the ranges the node owned and followed (was a
// non-owner ISR member of) per the map read just before it, and its times on
// the checker's clock (lincheck::MonotonicNowNs), so the test can measure
// the clients' failover window from the history; the wall-clock time is
// kept too, in the form of the node logs, to find the fault in them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "tests/kvnode/replication/repl_cluster.h"

namespace rangekv::testing {

enum class FaultKind {
  kKillOwner,
  kKillReplica,
  kPauseOwner,
  kStopOwner,
  kTransfer,
  kSplit,
  kMerge,
  kWipe,
  kMove,
  kDecommission,
  kAdd,
  kIsolateOwner,
  kCutOwnerZk,
  kCutOwnerReplicas,
  kOneWayOwner,
  kSplitMinority,
  kKillZkLeader,
  kPauseZkLeader,
  kIsolateZkLeader,
  kSlowLinks
};
// Every kind that needs no hosts (the default deck), in the order
// FaultKindName lists them.
std::vector<FaultKind> AllFaultKinds();
// The kinds that need a cluster on hosts of their own.
std::vector<FaultKind> PartitionFaultKinds();
bool IsPartitionKind(FaultKind k);
const char* FaultKindName(FaultKind k);  // "kill-owner", ...
// "kill", "pause", "stop"; the other kinds' names
const char* FaultVerb(FaultKind k);
// Parses a comma-separated list of FaultKindName()s (partition kinds too);
// nullopt on an unknown name.
std::optional<std::vector<FaultKind>> ParseFaultKinds(const std::string& list);

struct FaultRecord {
  int index = 0;
  FaultKind kind = FaultKind::kKillOwner;
  std::string node;
  std::vector<RangeId> owned;     // ranges the node owned at the fault
  std::vector<RangeId> followed;  // ranges where it was a non-owner ISR member
  // The bounds of the ranges above at the fault (later splits move keys to
  // other ranges): the window is measured over the keys they held then.
  std::map<RangeId, KeyRange> spans;
  int64_t down_ms = 0;            // how long it stayed down / paused
  int64_t fault_ns = 0;           // signal sent (lincheck::MonotonicNowNs)
  std::string fault_wall;         // the same moment, UTC, as the logs print it
  int64_t heal_ns = 0;            // restarted (serving) or SIGCONT sent; 0: never
  int64_t settled_ns = 0;         // whole cluster settled again; 0: never
  // stop-owner: the exit code after SIGTERM; -1 when it had not exited
  // within the harness' 5 s and was killed.
  int stop_exit = 0;
  // transfer and move: the node the range went to; split: the key
  // (quoted); and the answer (of the owner, or of the REPL); partitions:
  // the cuts made.
  std::string target;
  Status transfer_status;
  // Partitions where the clients still reach the owner: reads sent to it
  // once the map named another owner, and what went wrong ("": every one
  // refused).
  int deposed_probes = 0;
  std::string deposed_answer;
};

struct NemesisOptions {
  std::chrono::milliseconds session_timeout{2500};
  std::chrono::milliseconds settle_timeout{60000};
  // No fault starts later than this before the end, so the clients see the
  // failover through (the window is measured from their writes).
  std::chrono::milliseconds tail{12000};
  std::chrono::milliseconds min_down{1000};
  std::chrono::milliseconds max_down{3000};
  uint64_t seed = 1;
  // The kinds dealt; empty = all.
  std::vector<FaultKind> kinds;
  // The keys a split may cut at (the workload's keys so far).
  std::function<std::vector<std::string>()> split_keys;
};

class Nemesis {
 public:
  Nemesis(ReplCluster& cluster, NemesisOptions options);

  // Injects faults until `end`. False when the cluster did not settle
  // within settle_timeout or a node did not come back; *why then describes
  // the state (map and every node's range status).
  bool Run(ReplClock::time_point end, std::string* why);

  const std::vector<FaultRecord>& faults() const { return faults_; }

  // One line per fault, for the report and the timeline file.
  static std::string Describe(const FaultRecord& f);

 private:
  FaultKind NextKind();
  bool Inject(const cluster::ClusterMap& map, std::string* why);
  bool Transfer(const cluster::RangeInfo& r, FaultRecord f, std::string* why);
  bool Split(const cluster::RangeInfo& r, FaultRecord f, std::string* why);
  Status Retried(const std::function<Result<proto::Response>()>& call);
  bool Move(const cluster::ClusterMap& map, const cluster::RangeInfo& r, FaultRecord f,
            std::string* why);
  bool Decommission(const cluster::ClusterMap& map, FaultRecord f, std::string* why);
  bool Add(FaultRecord f, std::string* why);
  // The partition kinds: cut, wait f.down_ms, heal, settle.
  bool Partition(const cluster::ClusterMap& map, const cluster::RangeInfo& r, FaultRecord f,
                 std::string* why);
  // The one-way cuts (from, to) a partition kind makes around f.node.
  std::vector<std::pair<std::string, std::string>> Cuts(const cluster::RangeInfo& r,
                                                        FaultRecord& f);
  void ProbeDeposedOwner(const cluster::RangeInfo& r, FaultRecord& f, ReplClock::time_point end);
  // The faults of the whole cluster (the ZooKeeper leader's, slow links):
  // every range is counted as the fault's.
  bool ClusterWideFault(const cluster::ClusterMap& map, FaultRecord f, std::string* why);
  Status StartClusterWide(FaultRecord& f);
  Status EndClusterWide(const FaultRecord& f);
  // Runs one kvrepl command against the cluster: OK, or its output as the
  // error.
  Status Repl(const std::string& command);
  // Marks the ranges the node owned and followed in f (and their spans).
  static void NoteRanges(const cluster::ClusterMap& map, FaultRecord& f);
  bool Merge(const cluster::ClusterMap& map, const cluster::RangeInfo& r, FaultRecord f,
             std::string* why);
  bool Settle(FaultRecord& rec, std::string* why);
  // Records the fault once its heal was tried: false with *why (the node,
  // failed_as, the status) when healed is an error, else Settle.
  bool Healed(FaultRecord f, const Status& healed, const std::string& failed_as, std::string* why);
  std::string StateDump(const cluster::ClusterMap& map);

  ReplCluster& c_;
  NemesisOptions options_;
  std::mt19937_64 rng_;
  std::vector<FaultKind> deck_;
  std::vector<FaultRecord> faults_;
  int added_ = 0;
};

inline constexpr int kMaxAddedNodes = 2;

// The current UTC time as the logs print it ("2026-11-22T00:41:34.123Z").
std::string WallClockNow();

// "1,5" for messages.
std::string JoinRanges(const std::vector<RangeId>& ids);

}  // namespace rangekv::testing
