// coordinator/failure_detector.h — tells a dead or stalled node from a
// slow one well before its ZooKeeper session expires.
//
// A session is seconds long (the server's tick sets its floor), so waiting
// for an owner's session to expire keeps its ranges without writes for
// that long. The detector declares a node failed sooner, on two views that
// must agree:
//
//   1. a report: another live node lists it in its znode's "unreachable"
//      (common/cluster_map.h): one of its replicas lost the stream of a
//      range it owns (a fetch failed, or went unanswered well past its long
//      poll);
//   2. our own probes: while a node is reported (or failed), the
//      coordinator sends it a ping every probe_interval; the node fails
//      when the oldest ping it has not answered was sent failure_timeout
//      ago or more.
//
// Pauses: a process stopped for P < failure_timeout answers every ping
// sent during the stop when it resumes, so no ping can go unanswered for
// failure_timeout: a stop shorter than that is never a failure, however the
// reports fall. A connection refused or cut counts as no answer (never as
// proof of death: a firewall rejects the same way), so a killed process
// fails failure_timeout after the first report, too.
//
// Failure applies to one life of a node (NodeInfo "life"): the coordinator
// plans as if that node's znode were gone (coordinator/planner.h treats it
// as not live), so its ranges go to in-sync replicas at a new epoch, which
// wait out its read lease first. A node declared failed in error is fenced
// by the same means as one whose session expired: its replicas follow the
// new epoch and no longer acknowledge its writes. It is live again once
// nobody reports it, it answers its pings again (none sent more than two
// intervals ago is unanswered, and one sent after it failed was
// answered), and hold_down has passed since it failed: short, since until
// then the owners it replicates keep asking to add it back to their ISRs
// and the coordinator keeps taking it out; long enough that a node that
// stalls over and over is not owner, failed, owner again within a second.
// A new life (the process restarted) starts clean.
//
// Pure and single-threaded: time comes in as a steady-clock reading, the
// caller sends the pings and tells what came back. Both kvcoord and the
// simulation drive this same class.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/cluster_map.h"

namespace rangekv::coordinator {

struct DetectorOptions {
  // 0: no detector (a node fails only when its session expires).
  std::chrono::milliseconds failure_timeout{400};
  std::chrono::milliseconds probe_interval{100};
  std::chrono::milliseconds hold_down{1000};
};

class FailureDetector {
 public:
  using Time = std::chrono::nanoseconds;  // steady clock, any epoch

  struct Probe {
    NodeId node;
    std::string life;
    std::string address;
  };
  // A change of verdict, for the log.
  struct Verdict {
    NodeId node;
    bool failed = false;
    std::string why;
  };

  explicit FailureDetector(DetectorOptions options) : options_(options) {}

  bool enabled() const { return options_.failure_timeout.count() > 0; }

  // The live nodes of a fresh read of the map (every znode, failed ones
  // too). Reports from failed nodes do not count.
  void Observe(const std::map<NodeId, cluster::NodeInfo>& live);
  // Pings due now; the caller sends each and calls OnAnswer when one is
  // answered (nothing when it fails or times out).
  std::vector<Probe> DueProbes(Time now);
  void OnAnswer(const NodeId& node, const std::string& life, Time sent);
  // Decides at `now`; returns the verdicts that changed (a reconcile is
  // due when any did).
  std::vector<Verdict> Decide(Time now);
  // Removes failed nodes from a snapshot's live nodes.
  void Exclude(std::map<NodeId, cluster::NodeInfo>* live) const;
  bool failed(const NodeId& node) const;

 private:
  struct Peer {
    std::string life;
    std::string address;
    std::set<NodeId> reporters;
    std::deque<Time> unanswered;  // send times of pings after the last answered one
    std::optional<Time> last_probe;
    std::optional<Time> failed_at;
  };
  bool Probing(const Peer& p) const { return !p.reporters.empty() || p.failed_at.has_value(); }
  std::optional<Verdict> DecideOne(const NodeId& id, Peer& p, Time now);

  DetectorOptions options_;
  std::map<NodeId, Peer> peers_;
};

}  // namespace rangekv::coordinator
