#include "tests/fault/fault_nemesis.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/escape.h"
#include "tests/lincheck/lincheck.h"
#include "tests/testutil/testutil.h"

namespace rangekv::testing {
namespace {

using std::chrono::milliseconds;

int64_t NsToMs(int64_t ns) { return ns / 1'000'000; }

}  // namespace

const char* FaultKindName(FaultKind k) {
  switch (k) {
    case FaultKind::kKillOwner: return "kill-owner";
    case FaultKind::kKillReplica: return "kill-replica";
    case FaultKind::kPauseOwner: return "pause-owner";
    case FaultKind::kStopOwner: return "stop-owner";
    case FaultKind::kTransfer: return "transfer";
    case FaultKind::kSplit: return "split";
    case FaultKind::kMerge:
      return "merge";
    case FaultKind::kWipe:
      return "wipe";
    case FaultKind::kMove:
      return "move";
    case FaultKind::kDecommission:
      return "decommission";
    case FaultKind::kAdd:
      return "add";
    case FaultKind::kIsolateOwner:
      return "isolate-owner";
    case FaultKind::kCutOwnerZk:
      return "cut-owner-zk";
    case FaultKind::kCutOwnerReplicas:
      return "cut-owner-replicas";
    case FaultKind::kOneWayOwner:
      return "oneway-owner";
    case FaultKind::kSplitMinority:
      return "split-minority";
    case FaultKind::kKillZkLeader:
      return "kill-zk-leader";
    case FaultKind::kPauseZkLeader:
      return "pause-zk-leader";
    case FaultKind::kIsolateZkLeader:
      return "isolate-zk-leader";
    case FaultKind::kSlowLinks:
      return "slow-links";
  }
  return "?";
}

std::vector<FaultKind> AllFaultKinds() {
  return {FaultKind::kKillOwner,    FaultKind::kKillReplica, FaultKind::kPauseOwner,
          FaultKind::kStopOwner,    FaultKind::kTransfer,    FaultKind::kSplit,
          FaultKind::kMerge,        FaultKind::kWipe,        FaultKind::kMove,
          FaultKind::kDecommission, FaultKind::kAdd};
}

std::vector<FaultKind> PartitionFaultKinds() {
  return {FaultKind::kIsolateOwner,  FaultKind::kCutOwnerZk,      FaultKind::kCutOwnerReplicas,
          FaultKind::kOneWayOwner,   FaultKind::kSplitMinority,   FaultKind::kKillZkLeader,
          FaultKind::kPauseZkLeader, FaultKind::kIsolateZkLeader, FaultKind::kSlowLinks};
}

bool IsPartitionKind(FaultKind k) {
  auto all = PartitionFaultKinds();
  return std::find(all.begin(), all.end(), k) != all.end();
}

const char* FaultVerb(FaultKind k) {
  switch (k) {
    case FaultKind::kKillOwner:
    case FaultKind::kKillReplica: return "kill";
    case FaultKind::kPauseOwner: return "pause";
    case FaultKind::kStopOwner: return "stop";
    default:
      return FaultKindName(k);  // the other kinds are named by what they do
  }
}

std::optional<std::vector<FaultKind>> ParseFaultKinds(const std::string& list) {
  std::vector<FaultKind> out;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (name.empty()) continue;
    bool known = false;
    std::vector<FaultKind> kinds = AllFaultKinds();
    for (FaultKind k : PartitionFaultKinds()) kinds.push_back(k);
    for (FaultKind k : kinds) {
      if (name == FaultKindName(k)) {
        out.push_back(k);
        known = true;
      }
    }
    if (!known) return std::nullopt;
  }
  return out;
}

std::string WallClockNow() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", ts, static_cast<int>(ms));
  return out;
}

std::string JoinRanges(const std::vector<RangeId>& ids) {
  std::string out;
  for (RangeId r : ids) out += (out.empty() ? "" : ",") + std::to_string(r.value());
  return out.empty() ? "-" : out;
}

Nemesis::Nemesis(ReplCluster& cluster, NemesisOptions options)
    : c_(cluster), options_(options), rng_(options.seed) {}

FaultKind Nemesis::NextKind() {
  if (deck_.empty()) {
    deck_ = options_.kinds;
    if (deck_.empty()) deck_ = AllFaultKinds();
    std::shuffle(deck_.begin(), deck_.end(), rng_);
  }
  FaultKind k = deck_.back();
  deck_.pop_back();
  return k;
}

std::string Nemesis::Describe(const FaultRecord& f) {
  std::ostringstream o;
  o << "fault " << f.index << ": " << FaultKindName(f.kind) << " " << f.node << " at "
    << f.fault_wall << " (t=" << NsToMs(f.fault_ns) << " ms) for " << f.down_ms
    << " ms; owned ranges " << JoinRanges(f.owned) << ", followed " << JoinRanges(f.followed)
    << "; healed after "
    << (f.heal_ns ? std::to_string(NsToMs(f.heal_ns - f.fault_ns)) + " ms" : "never")
    << ", settled after "
    << (f.settled_ns ? std::to_string(NsToMs(f.settled_ns - f.fault_ns)) + " ms" : "never");
  if (f.kind == FaultKind::kTransfer) {
    o << "; to " << f.target << ": " << f.transfer_status.ToString();
  }
  if (f.kind == FaultKind::kSplit || f.kind == FaultKind::kMerge) {
    o << "; at " << f.target << ": " << f.transfer_status.ToString();
  }
  if (f.kind == FaultKind::kMove || f.kind == FaultKind::kDecommission ||
      f.kind == FaultKind::kAdd) {
    o << (f.target.empty() ? "" : "; " + f.target) << ": " << f.transfer_status.ToString();
  }
  if (IsPartitionKind(f.kind) && !f.target.empty()) o << "; " << f.target;
  if (f.deposed_probes > 0) {
    o << "; deposed owner probed " << f.deposed_probes
      << " times: " << (f.deposed_answer.empty() ? "refused" : f.deposed_answer);
  }
  if (f.kind == FaultKind::kStopOwner) {
    o << (f.stop_exit == -1 ? "; it did NOT exit within 5 s of SIGTERM (killed)"
                            : "; exit code " + std::to_string(f.stop_exit));
  }
  return o.str();
}

std::string Nemesis::StateDump(const cluster::ClusterMap& map) {
  std::ostringstream o;
  o << "map: live nodes";
  for (const auto& [id, n] : map.live_nodes) o << " " << id.str();
  o << "\n";
  for (const auto& [rid, r] : map.ranges) o << "  " << testing::Describe(r) << "\n";
  for (const std::string& id : c_.NodeIds()) {
    o << "node " << id << (c_.Running(id) ? "" : " (not running)") << ":";
    auto st = c_.RangeStatus(id);
    if (!st.ok()) {
      o << " " << st.status().ToString() << "\n";
      continue;
    }
    o << "\n";
    for (const proto::RangeStatus& s : *st) o << "  " << testing::Describe(s) << "\n";
  }
  return o.str();
}

bool Nemesis::Inject(const cluster::ClusterMap& map, std::string* why) {
  FaultRecord f;
  f.index = static_cast<int>(faults_.size()) + 1;
  f.kind = NextKind();
  if (f.kind == FaultKind::kAdd && added_ >= kMaxAddedNodes) f.kind = FaultKind::kMove;
  auto pick = rng_() % map.ranges.size();
  const cluster::RangeInfo& r = std::next(map.ranges.begin(), static_cast<long>(pick))->second;
  if (f.kind == FaultKind::kKillReplica) {
    // Every node usually owns some range too; take the follower owning the
    // fewest, so this differs from kill-owner where it can.
    auto owns = [&](const std::string& node) {
      return std::count_if(map.ranges.begin(), map.ranges.end(), [&](const auto& e) {
        return e.second.owner && e.second.owner->str() == node;
      });
    };
    std::vector<std::string> followers;
    for (const NodeId& n : r.isr) {
      if (n != *r.owner) followers.push_back(n.str());
    }
    if (followers.empty()) {
      *why = "range " + std::to_string(r.id.value()) + " has no follower although settled";
      return false;
    }
    std::shuffle(followers.begin(), followers.end(), rng_);
    f.node = *std::min_element(followers.begin(), followers.end(),
                               [&](const auto& a, const auto& b) { return owns(a) < owns(b); });
  } else {
    f.node = r.owner->str();
  }
  if (f.kind == FaultKind::kSplit) {
    f.owned.push_back(r.id);
    f.spans.emplace(r.id, r.bounds);
    return Split(r, std::move(f), why);
  }
  if (f.kind == FaultKind::kMerge) return Merge(map, r, std::move(f), why);
  if (f.kind == FaultKind::kMove) return Move(map, r, std::move(f), why);
  if (f.kind == FaultKind::kDecommission) return Decommission(map, std::move(f), why);
  if (f.kind == FaultKind::kAdd) return Add(std::move(f), why);
  if (IsPartitionKind(f.kind) && !c_.net()) {
    *why = std::string(FaultKindName(f.kind)) + " needs a cluster on hosts of its own";
    return false;
  }
  if (f.kind == FaultKind::kKillZkLeader || f.kind == FaultKind::kPauseZkLeader ||
      f.kind == FaultKind::kIsolateZkLeader || f.kind == FaultKind::kSlowLinks) {
    return ClusterWideFault(map, std::move(f), why);
  }
  if (IsPartitionKind(f.kind)) return Partition(map, r, std::move(f), why);
  if (f.kind == FaultKind::kTransfer) {
    // Only this range changes hands; the owner's others go on.
    std::vector<std::string> others;
    for (const NodeId& n : r.isr) {
      if (n != *r.owner) others.push_back(n.str());
    }
    if (others.empty()) {
      *why = "range " + std::to_string(r.id.value()) + " has no follower although settled";
      return false;
    }
    f.target = others[rng_() % others.size()];
    f.owned.push_back(r.id);
    f.spans.emplace(r.id, r.bounds);
    return Transfer(r, std::move(f), why);
  }
  NoteRanges(map, f);
  const int64_t span = (options_.max_down - options_.min_down).count();
  f.down_ms = options_.min_down.count() + (span > 0 ? static_cast<int64_t>(rng_() % span) : 0);
  // A pause outlives either the coordinator's failure timeout only (the
  // owner resumes, still registered, to a map that moved on) or its
  // ZooKeeper session too.
  if (f.kind == FaultKind::kPauseOwner) {
    f.down_ms = rng_() % 2 == 0 ? 1500 : options_.session_timeout.count() + 1500;
  }

  std::cout << "[nemesis] " << WallClockNow() << " " << FaultKindName(f.kind) << " " << f.node
            << " (owner of ranges " << JoinRanges(f.owned) << ", follower of "
            << JoinRanges(f.followed) << ") for " << f.down_ms << " ms" << std::endl;
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  switch (f.kind) {
    case FaultKind::kKillOwner:
    case FaultKind::kKillReplica: c_.KillNode(f.node); break;
    case FaultKind::kPauseOwner: c_.PauseNode(f.node); break;
    case FaultKind::kStopOwner: f.stop_exit = c_.StopNode(f.node); break;
    case FaultKind::kWipe:
      c_.KillNode(f.node);
      c_.WipeNode(f.node);
      break;
    default:
      break;  // the kinds that stop no process are done above
  }
  // The fault's length is what is being tested, not a wait for a state.
  std::this_thread::sleep_for(milliseconds(f.down_ms));
  Status healed = Status::Ok();
  if (f.kind == FaultKind::kPauseOwner) {
    c_.ResumeNode(f.node);
  } else {
    healed = c_.RestartNode(f.node);
  }
  return Healed(std::move(f), healed, " did not come back: ", why);
}

bool Nemesis::Healed(FaultRecord f, const Status& healed, const std::string& failed_as,
                     std::string* why) {
  faults_.push_back(std::move(f));
  FaultRecord& rec = faults_.back();
  if (!healed.ok()) {
    *why = rec.node + failed_as + healed.ToString();
    return false;
  }
  rec.heal_ns = lincheck::MonotonicNowNs();
  return Settle(rec, why);
}

void Nemesis::NoteRanges(const cluster::ClusterMap& map, FaultRecord& f) {
  for (const auto& [rid, ri] : map.ranges) {
    if (ri.owner && ri.owner->str() == f.node) {
      f.owned.push_back(rid);
      f.spans.emplace(rid, ri.bounds);
    } else if (Contains(ri.isr, f.node)) {
      f.followed.push_back(rid);
      f.spans.emplace(rid, ri.bounds);
    }
  }
}

// Waits until the whole cluster is settled again after fault `rec`.
bool Nemesis::Settle(FaultRecord& rec, std::string* why) {
  cluster::ClusterMap last;
  if (!c_.WaitAllActive(options_.settle_timeout, &last)) {
    *why = "the cluster did not settle within " + std::to_string(options_.settle_timeout.count()) +
           " ms after " + Describe(rec) + "\n" + StateDump(last);
    return false;
  }
  rec.settled_ns = lincheck::MonotonicNowNs();
  std::cout << "[nemesis] " << Describe(rec) << std::endl;
  return true;
}

// A transfer stops nothing: it is asked of the owner and answered once
// ZooKeeper names the target (or refused, when the target lagged: then
// the owner serves on, which is a valid outcome too).
bool Nemesis::Transfer(const cluster::RangeInfo& r, FaultRecord f, std::string* why) {
  std::cout << "[nemesis] " << WallClockNow() << " transfer range " << r.id.value() << " from "
            << f.node << " to " << f.target << std::endl;
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  f.transfer_status =
      proto::TransferOutcome(c_.CallNode(f.node, proto::MakeTransfer(r.id, r.epoch, f.target)));
  f.heal_ns = lincheck::MonotonicNowNs();
  faults_.push_back(f);
  FaultRecord& rec = faults_.back();
  return Settle(rec, why);
}

// A split stops nothing either: asked of the owner at a workload key
// inside the range (past its start), answered once ZooKeeper holds the new
// map; refused when the range has no such key or was busy (a valid outcome).
bool Nemesis::Split(const cluster::RangeInfo& r, FaultRecord f, std::string* why) {
  std::vector<std::string> inside;
  const std::vector<std::string> keys =
      options_.split_keys ? options_.split_keys() : std::vector<std::string>();
  for (const std::string& k : keys) {
    if (r.bounds.Contains(k) && k != r.bounds.start()) inside.push_back(k);
  }
  std::sort(inside.begin(), inside.end());
  inside.erase(std::unique(inside.begin(), inside.end()), inside.end());
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  if (inside.empty()) {
    f.transfer_status = Status(Code::kBadRequest, "no workload key inside the range");
  } else {
    const std::string key = inside[rng_() % inside.size()];
    f.target = QuoteIfNeeded(key);
    std::cout << "[nemesis] " << WallClockNow() << " split range " << r.id.value() << " "
              << r.bounds.ToString() << " at " << f.target << std::endl;
    // Asked again while the owner is not serving writes (a lease wait or
    // an ISR change left by the last fault), as the REPL does.
    for (int attempt = 0; attempt < 20; ++attempt) {
      f.transfer_status =
          proto::TransferOutcome(c_.CallNode(f.node, proto::MakeSplit(r.id, r.epoch, key)));
      if (f.transfer_status.code() != Code::kRangeUnavailable) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  f.heal_ns = lincheck::MonotonicNowNs();
  faults_.push_back(f);
  return Settle(faults_.back(), why);
}

// A merge stops nothing either: two neighbours held by the same replicas
// (a random such pair; else the picked range and the one right of it),
// the right one handed to the left's owner first when they differ, then
// the merge asked of that owner; refused when the two cannot merge (a
// valid outcome).
bool Nemesis::Merge(const cluster::ClusterMap& map, const cluster::RangeInfo& picked, FaultRecord f,
                    std::string* why) {
  auto sorted = [](std::vector<NodeId> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  std::vector<const cluster::RangeInfo*> pairable;
  for (const auto& [id, r] : map.ranges) {
    const cluster::RangeInfo* next = r.bounds.end() ? map.Locate(*r.bounds.end()) : nullptr;
    if (next && sorted(next->replicas) == sorted(r.replicas)) pairable.push_back(&r);
  }
  const cluster::RangeInfo* left = pairable.empty() ? &picked : pairable[rng_() % pairable.size()];
  if (!left->bounds.end()) {
    const std::string start = left->bounds.start();
    left = nullptr;
    for (const auto& [id, r] : map.ranges) {
      if (r.bounds.end() == start) left = &r;
    }
  }
  const cluster::RangeInfo* right =
      left && left->bounds.end() ? map.Locate(*left->bounds.end()) : nullptr;
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  if (!left || !right || !left->owner || !right->owner) {
    f.transfer_status = Status(Code::kBadRequest, "no neighbour to merge with");
  } else {
    f.node = left->owner->str();
    f.target =
        "range " + std::to_string(left->id.value()) + "+" + std::to_string(right->id.value());
    for (const cluster::RangeInfo* r : {left, right}) {
      f.owned.push_back(r->id);
      f.spans.emplace(r->id, r->bounds);
    }
    std::cout << "[nemesis] " << WallClockNow() << " merge range " << left->id.value() << " "
              << left->bounds.ToString() << " with range " << right->id.value() << std::endl;
    f.transfer_status = Status::Ok();
    if (right->owner != left->owner) {
      f.transfer_status = Retried([&] {
        return c_.CallNode(right->owner->str(),
                           proto::MakeTransfer(right->id, right->epoch, f.node));
      });
    }
    if (f.transfer_status.ok()) {
      f.transfer_status =
          Retried([&] { return c_.CallNode(f.node, proto::MakeMerge(left->id, left->epoch)); });
    }
  }
  f.heal_ns = lincheck::MonotonicNowNs();
  faults_.push_back(f);
  return Settle(faults_.back(), why);
}

// Asks again while the answer is "not now" (the owner is not serving
// writes yet, or has not read the map naming it), as the REPL does.
Status Nemesis::Retried(const std::function<Result<proto::Response>()>& call) {
  Status st;
  for (int attempt = 0; attempt < 20; ++attempt) {
    st = proto::TransferOutcome(call());
    const bool not_now = st.code() == Code::kRangeUnavailable ||
                         (st.code() == Code::kBadRequest &&
                          st.message().find("not owned by this node") != std::string::npos);
    if (!not_now) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return st;
}

Status Nemesis::Repl(const std::string& command) {
  std::vector<std::string> argv = {BuildPath("repl/kvrepl"), "--zk", c_.zk_connect(), "--cluster",
                                   c_.cluster_name()};
  const std::vector<std::string> tls = c_.ClientTlsFlags();  // none on a plaintext cluster
  argv.insert(argv.end(), tls.begin(), tls.end());
  argv.insert(argv.end(), {"-c", command});
  RunResult r = testing::Run(argv, "", std::chrono::seconds(120));
  if (r.exit_code == 0) return Status::Ok();
  std::string out = r.out + r.err;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return Status(Code::kUnavailable,
                "kvrepl -c '" + command + "' exited " + std::to_string(r.exit_code) + ": " + out);
}

// A move stops nothing: one replica of the range (the owner's one time in
// two, so ownership moves by a transfer first) goes to a node holding none
// of it. The REPL answers once the new copy is in the ISR and the old one
// left; a refusal or a dropped move (the target fell behind) is a valid
// outcome too, one the test prints.
bool Nemesis::Move(const cluster::ClusterMap& map, const cluster::RangeInfo& r, FaultRecord f,
                   std::string* why) {
  std::vector<std::string> to;
  for (const auto& [id, n] : map.live_nodes) {
    if (!Contains(r.replicas, id.str())) to.push_back(id.str());
  }
  std::vector<std::string> from;
  for (const NodeId& n : r.replicas) {
    if (n != *r.owner) from.push_back(n.str());
  }
  f.node = rng_() % 2 == 0 || from.empty() ? r.owner->str() : from[rng_() % from.size()];
  (f.node == r.owner->str() ? f.owned : f.followed).push_back(r.id);
  f.spans.emplace(r.id, r.bounds);
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  if (to.empty()) {
    f.transfer_status = Status(Code::kBadRequest, "every live node holds a copy");
  } else {
    f.target = to[rng_() % to.size()];
    const std::string command =
        "move " + std::to_string(r.id.value()) + " " + f.node + " " + f.target;
    std::cout << "[nemesis] " << WallClockNow() << " " << command << std::endl;
    f.transfer_status = Repl(command);
  }
  f.heal_ns = lincheck::MonotonicNowNs();
  faults_.push_back(f);
  return Settle(faults_.back(), why);
}

// A decommission moves every copy off a random node, a replica at a time;
// the REPL answers once no range names it. Then it is recommissioned and
// the balancer gives it copies back while the next faults run.
bool Nemesis::Decommission(const cluster::ClusterMap& map, FaultRecord f, std::string* why) {
  auto pick = std::next(map.live_nodes.begin(), static_cast<long>(rng_() % map.live_nodes.size()));
  f.node = pick->first.str();
  NoteRanges(map, f);
  std::cout << "[nemesis] " << WallClockNow() << " decommission " << f.node << " (owner of ranges "
            << JoinRanges(f.owned) << ", follower of " << JoinRanges(f.followed) << ")"
            << std::endl;
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  f.transfer_status = Repl("decommission " + f.node);
  const Status back = Repl("recommission " + f.node);
  if (f.transfer_status.ok() && !back.ok()) f.transfer_status = back;
  f.heal_ns = lincheck::MonotonicNowNs();
  faults_.push_back(f);
  if (!back.ok()) {
    *why = f.node + " could not be recommissioned: " + back.ToString();
    return false;
  }
  return Settle(faults_.back(), why);
}

// A new node joins (a name no node had); the balancer moves copies to it
// while the next faults run. Past kMaxAddedNodes, a move instead.
bool Nemesis::Add(FaultRecord f, std::string* why) {
  const std::vector<std::string> ids = c_.NodeIds();
  int last = 0;
  for (const std::string& id : ids) last = std::max(last, std::atoi(id.c_str() + 1));
  f.node = "n" + std::to_string(last + 1);
  std::cout << "[nemesis] " << WallClockNow() << " add " << f.node << std::endl;
  f.fault_wall = WallClockNow();
  f.fault_ns = lincheck::MonotonicNowNs();
  f.transfer_status = c_.StartNewNode(f.node);
  f.heal_ns = lincheck::MonotonicNowNs();
  ++added_;
  faults_.push_back(f);
  if (!faults_.back().transfer_status.ok()) {
    *why = f.node + " did not start: " + faults_.back().transfer_status.ToString();
    return false;
  }
  return Settle(faults_.back(), why);
}

bool Nemesis::Run(ReplClock::time_point end, std::string* why) {
  cluster::ClusterMap map;
  if (!c_.WaitAllActive(options_.settle_timeout, &map)) {
    *why = "the cluster was not settled before the first fault\n" + StateDump(map);
    return false;
  }
  // Enough time left for the fault, its failover and the clients' writes
  // after it?
  auto room = [&] {
    return ReplClock::now() + options_.max_down + options_.session_timeout + options_.tail < end;
  };
  while (room()) {
    if (!Inject(map, why)) return false;
    // Some fault-free time between faults, so the clients also run on a
    // healthy cluster that has just healed.
    std::this_thread::sleep_for(milliseconds(500 + static_cast<int64_t>(rng_() % 1000)));
    auto m = c_.ReadMap();
    if (!m.ok()) {
      *why = "cannot read the map: " + m.status().ToString();
      return false;
    }
    map = std::move(*m);
  }
  return true;
}

}  // namespace rangekv::testing
