// The nemesis' partition kinds (fault_nemesis.h): cuts between hosts of
// their own, and faults of the ZooKeeper ensemble's leader.
#include <algorithm>
#include <iostream>
#include <set>
#include <thread>

#include "tests/fault/fault_nemesis.h"
#include "tests/lincheck/lincheck.h"
#include "tests/testutil/host_net.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_ensemble.h"

namespace rangekv::testing {
namespace {

using Cut = std::pair<std::string, std::string>;

void CutBoth(std::vector<Cut>& cuts, const std::string& a, const std::string& b) {
  cuts.emplace_back(a, b);
  cuts.emplace_back(b, a);
}

// Every host but `but`, the clients' (the test's) included.
std::vector<std::string> AllHostsBut(HostNet& net, const std::string& but) {
  std::vector<std::string> out;
  for (const std::string& h : net.Hosts()) {
    if (h != but) out.push_back(h);
  }
  out.push_back(HostNet::kTestHost);
  return out;
}

// Applies every cut; on an error heals what was cut and says why.
Status ApplyCuts(HostNet& net, const std::vector<Cut>& cuts) {
  for (const auto& [from, to] : cuts) {
    Status st = net.Cut(from, to);
    if (!st.ok()) {
      (void)net.Heal();
      return st;
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<Cut> Nemesis::Cuts(const cluster::RangeInfo& r, FaultRecord& f) {
  HostNet& net = *c_.net();
  std::vector<Cut> cuts;
  switch (f.kind) {
    case FaultKind::kIsolateOwner:
      for (const std::string& h : AllHostsBut(net, f.node)) CutBoth(cuts, f.node, h);
      f.target = "cut from every host";
      break;
    case FaultKind::kCutOwnerZk:
      for (const std::string& h : c_.ZkHosts()) CutBoth(cuts, f.node, h);
      f.target = "cut from ZooKeeper";
      break;
    case FaultKind::kCutOwnerReplicas:
      f.target = "cut from";
      for (const NodeId& n : r.isr) {
        if (n.str() == f.node) continue;
        CutBoth(cuts, f.node, n.str());
        f.target += " " + n.str();
      }
      break;
    case FaultKind::kOneWayOwner: {
      const bool sends = rng_() % 2 == 0;
      for (const std::string& h : AllHostsBut(net, f.node)) {
        sends ? cuts.emplace_back(f.node, h) : cuts.emplace_back(h, f.node);
      }
      f.target = sends ? "what it sends is dropped" : "what it is sent is dropped";
      break;
    }
    case FaultKind::kSplitMinority: {
      // The clients stay on both sides: a deposed owner must refuse them
      // itself, nothing stops them reaching it.
      const std::string zk = c_.ZkHosts().front();
      const std::set<std::string> minority = {f.node, zk};
      for (const std::string& h : net.Hosts()) {
        if (minority.count(h)) continue;
        for (const std::string& m : minority) CutBoth(cuts, m, h);
      }
      f.target = f.node + " and " + zk + " apart from the rest";
      break;
    }
    default:
      break;
  }
  return cuts;
}

bool Nemesis::Partition(const cluster::ClusterMap& map, const cluster::RangeInfo& r, FaultRecord f,
                        std::string* why) {
  NoteRanges(map, f);
  // Past the coordinator's failure timeout only, or past the node's
  // ZooKeeper session too.
  f.down_ms = rng_() % 2 == 0 ? 1500 : options_.session_timeout.count() + 1500;
  const std::vector<Cut> cuts = Cuts(r, f);
  std::cout << "[nemesis] " << WallClockNow() << " " << FaultKindName(f.kind) << " " << f.node
            << " (owner of ranges " << JoinRanges(f.owned) << ", follower of "
            << JoinRanges(f.followed) << "), " << f.target << ", for " << f.down_ms << " ms"
            << std::endl;
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  HostNet& net = *c_.net();
  if (Status st = ApplyCuts(net, cuts); !st.ok()) {
    *why = "could not cut: " + st.ToString();
    return false;
  }
  ProbeDeposedOwner(r, f, ReplClock::now() + std::chrono::milliseconds(f.down_ms));
  return Healed(std::move(f), net.Heal(), ": could not heal: ", why);
}

// Lasts until `end` (the partition's length is what is being tested, not a
// wait for a state). Where the owner is cut from ZooKeeper but the clients
// still reach it, once the map names another owner of r the old one must
// refuse a read of r: it had to stop serving before anyone else could be
// granted the range, and cut from ZooKeeper it cannot be granted it again
// before the heal. (Cut from its replicas only, it keeps ZooKeeper, and the
// balancer may hand the range back at any moment: not probed.)
void Nemesis::ProbeDeposedOwner(const cluster::RangeInfo& r, FaultRecord& f,
                                ReplClock::time_point end) {
  const bool reachable = f.kind == FaultKind::kCutOwnerZk || f.kind == FaultKind::kSplitMinority;
  std::optional<std::string> key;
  if (reachable && options_.split_keys) {
    for (const std::string& k : options_.split_keys()) {
      if (r.bounds.Contains(k)) {
        key = k;
        break;
      }
    }
  }
  while (ReplClock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!key || !f.deposed_answer.empty()) continue;
    auto now = c_.ReadRange(r.id);
    if (!now.ok() || !now->owner || now->owner->str() == f.node) continue;
    static uint64_t next_id = uint64_t{1} << 40;
    auto resp = c_.CallNode(f.node, GetRequest(next_id++, *key), std::chrono::milliseconds(500));
    ++f.deposed_probes;
    if (resp.ok() && (resp->kind == proto::Response::Kind::kFound ||
                      resp->kind == proto::Response::Kind::kNotFound)) {
      f.deposed_answer = "served a read of " + *key + " after range " +
                         std::to_string(r.id.value()) + " moved to " + now->owner->str();
    }
  }
}

// What a cluster-wide fault does, and what undoes it.
Status Nemesis::StartClusterWide(FaultRecord& f) {
  switch (f.kind) {
    case FaultKind::kKillZkLeader:
      c_.ensemble()->Kill(f.node);
      return Status::Ok();
    case FaultKind::kPauseZkLeader:
      return c_.ensemble()->Pause(f.node);
    case FaultKind::kIsolateZkLeader: {
      std::vector<Cut> cuts;
      for (const std::string& h : AllHostsBut(*c_.net(), f.node)) CutBoth(cuts, f.node, h);
      return ApplyCuts(*c_.net(), cuts);
    }
    default:
      return c_.net()->SetDelayAll(20, 10);
  }
}

Status Nemesis::EndClusterWide(const FaultRecord& f) {
  switch (f.kind) {
    case FaultKind::kKillZkLeader:
      return c_.ensemble()->Restart(f.node);
    case FaultKind::kPauseZkLeader:
      return c_.ensemble()->Resume(f.node);
    case FaultKind::kIsolateZkLeader:
      return c_.net()->Heal();
    default:
      return c_.net()->ClearLinks();
  }
}

bool Nemesis::ClusterWideFault(const cluster::ClusterMap& map, FaultRecord f, std::string* why) {
  ZkEnsemble& zk = *c_.ensemble();
  if (f.kind == FaultKind::kSlowLinks) {
    f.node = "every host";
    f.target = "20 ms +/- 10 ms each way";
  } else {
    f.node = zk.Leader();
    if (f.node.empty()) {
      *why = "no ZooKeeper server leads the ensemble";
      return false;
    }
  }
  for (const auto& [rid, ri] : map.ranges) {
    f.owned.push_back(rid);
    f.spans.emplace(rid, ri.bounds);
  }
  const int64_t span = (options_.max_down - options_.min_down).count();
  f.down_ms = options_.min_down.count() + (span > 0 ? static_cast<int64_t>(rng_() % span) : 0);
  std::cout << "[nemesis] " << WallClockNow() << " " << FaultKindName(f.kind) << " " << f.node
            << " for " << f.down_ms << " ms" << std::endl;
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  if (Status st = StartClusterWide(f); !st.ok()) {
    *why = std::string(FaultKindName(f.kind)) + " failed: " + st.ToString();
    return false;
  }
  // The fault's length is what is being tested, not a wait for a state.
  std::this_thread::sleep_for(std::chrono::milliseconds(f.down_ms));
  Status healed = EndClusterWide(f);
  // The next fault must find the whole ensemble again, or two faults in a
  // row could take its quorum.
  if (healed.ok() && !WaitFor([&] { return zk.Serving(); }, options_.settle_timeout,
                              std::chrono::milliseconds(100))) {
    healed = Status(Code::kUnavailable, "the ZooKeeper ensemble did not recover:\n" + zk.log());
  }
  return Healed(std::move(f), healed, ": could not heal: ", why);
}

}  // namespace rangekv::testing
