#include "tests/sim/sim_run.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "common/escape.h"
#include "common/fs.h"
#include "common/log.h"
#include "tests/sim/sim_scenario.h"

namespace rangekv::sim {
namespace {

constexpr int kClients = 3;
constexpr int kKeys = 8;

std::string Ms(Nanos t) { return std::to_string(t / kMilli) + " ms"; }

ClusterParams ChooseParams(Rng& w) {
  ClusterParams p;
  p.nodes = static_cast<int>(w.Uniform(3, 5));
  p.rf = 3;
  p.min_insync = 2;
  p.ranges = static_cast<int>(w.Uniform(1, 4));
  p.coordinators = static_cast<int>(w.Uniform(1, 2));
  p.fsync = w.Chance(0.5) ? kvnode::FsyncPolicy::kAlways : kvnode::FsyncPolicy::kBatch;
  p.session_timeout = w.Uniform(1500, 3000) * kMilli;
  p.replication.lease = std::chrono::milliseconds(w.Uniform(500, 1200));
  p.replication.isr_lag_timeout = std::chrono::milliseconds(w.Uniform(400, 2000));
  p.replication.fetch_wait = std::chrono::milliseconds(w.Uniform(50, 250));
  p.replication.snapshot_chunk_bytes = 8 << 10;
  return p;
}

std::string Describe(const ClusterParams& p) {
  return std::to_string(p.nodes) + " nodes, " + std::to_string(p.coordinators) + " coordinators, " +
         std::to_string(p.ranges) + " ranges, rf " + std::to_string(p.rf) + ", min-insync " +
         std::to_string(p.min_insync) + ", fsync " + kvnode::FsyncPolicyName(p.fsync) +
         ", session " + Ms(p.session_timeout) + ", lease " +
         std::to_string(p.replication.lease.count()) + " ms, isr-lag " +
         std::to_string(p.replication.isr_lag_timeout.count()) + " ms, fetch-wait " +
         std::to_string(p.replication.fetch_wait.count()) + " ms" +
         (p.detector.failure_timeout.count() != 0
              ? ", failure-timeout " + std::to_string(p.detector.failure_timeout.count()) + " ms"
              : ", no detector") +
         (p.balance ? ", balance" : "") +
         (p.replication.split_qps != 0
              ? ", split-qps " + std::to_string(p.replication.split_qps) + " for " +
                    std::to_string(p.replication.split_load_window.count()) + " ms"
              : "");
}

// Strikes faults at random moments and undoes each after a while. At most
// one node at a time may lose data (power loss, wiped or corrupt disk),
// and the next such fault waits until that node has been back for a while:
// the store promises to keep an acknowledged write while one in-sync replica
// keeps it, not when all of them lose it.
class Nemesis {
 public:
  Nemesis(Cluster& c, Rng& plan, RunResult& result)
      : c_(c), w_(c.world), r_(plan), result_(result) {}

  void Start(Nanos until) {
    until_ = until;
    Schedule();
  }

  // Transfers of a range's ownership to one of its in-sync replicas, asked
  // of the owner like an operator would, on a schedule of their own (drawn
  // from `rng`, so that adding them left the fault schedule of every seed
  // as it was).
  void StartTransfers(Nanos until, Rng& rng) {
    transfer_rng_ = &rng;
    until_ = until;
    ScheduleTransfer();
  }

  // Splits at the checked keys (or just after one), asked of the owner like
  // an operator would, on a schedule of their own too.
  // Merges of the range holding a checked key with its right neighbour;
  // when they have different owners, the right one is first handed to the
  // left's owner (as an operator would), and the merge asked once that is
  // answered.
  void StartMerges(Nanos until, Rng& rng, std::vector<std::string> keys) {
    merge_rng_ = &rng;
    merge_keys_ = std::move(keys);
    until_ = until;
    ScheduleMerge();
  }

  void StartSplits(Nanos until, Rng& rng, std::vector<std::string> keys) {
    split_rng_ = &rng;
    split_keys_ = std::move(keys);
    until_ = until;
    ScheduleSplit();
  }

 private:
  void Schedule() {
    const Nanos at = w_.now() + r_.Uniform(200, 1500) * kMilli;
    if (at >= until_) return;
    w_.At(at, nullptr, [this] {
      Strike();
      Schedule();
    });
  }

  SimNode& AnyNode() {
    return *c_.nodes[static_cast<size_t>(r_.Uniform(0, static_cast<int64_t>(c_.nodes.size()) - 1))];
  }
  int Down() const {
    int n = 0;
    for (auto& node : c_.nodes) n += node->up() ? 0 : 1;
    return n;
  }
  // The store keeps an acknowledged write while one in-sync copy keeps it,
  // so data is lost on one node at a time, and only on a node none of whose
  // ranges depends on it alone: each range whose ISR holds it has another
  // ISR member that is live and not suspect. (Losing the last good copy
  // leaves the range unavailable, rightly: no checker could tell that from
  // a liveness bug.)
  bool MayLoseData(const SimNode& n) const {
    if (w_.now() < data_loss_ok_after_) return false;
    const cluster::ClusterMap map = c_.MapNow();
    for (const auto& [id, r] : map.ranges) {
      bool in = false, other = false;
      for (const NodeId& m : r.isr) {
        if (m.str() == n.id()) {
          in = true;
          continue;
        }
        const cluster::NodeInfo* live = map.Node(m);
        other = other || (live != nullptr && !live->suspect && !live->opening);
      }
      if (in && !other) return false;
    }
    return true;
  }
  void Note(const std::string& what) {
    result_.faults.push_back(Ms(w_.now() - World::kEpochStart) + ": " + what);
    LOG_INFO("nemesis: " << what);
  }
  void RestartLater(SimNode& n, Nanos after) {
    w_.After(after, nullptr, [&n] {
      if (!n.up()) n.Start();
    });
  }
  void DataLost(SimNode& n, Nanos down_for) {
    data_loss_ok_after_ = w_.now() + down_for + 6 * kSecond;
    RestartLater(n, down_for);
  }

  void Strike() {
    SimNode& n = AnyNode();
    const int64_t dice = r_.Uniform(0, 99);
    const Nanos span = r_.Uniform(100, 2500) * kMilli;
    if (dice < 14) {
      if (!n.up() || Down() >= 2) return;
      Note("kill -9 " + n.id() + ", restart after " + Ms(span));
      n.Kill();
      RestartLater(n, span);
    } else if (dice < 22) {
      if (!n.up() || Down() >= 2 || !MayLoseData(n)) return;
      Note("power loss of " + n.id() + ", back after " + Ms(span));
      n.PowerLoss();
      DataLost(n, span);
    } else if (dice < 28) {
      if (!n.up() || Down() >= 2) return;
      Note("SIGTERM " + n.id() + ", restart after " + Ms(span));
      n.Terminate();
      RestartLater(n, span);
    } else if (dice < 40) {
      if (!n.up()) return;
      const Nanos pause = r_.Uniform(100, 4000) * kMilli;
      Note("SIGSTOP " + n.id() + " for " + Ms(pause));
      n.Pause(pause);
    } else if (dice < 55) {
      SimNode& other = AnyNode();
      if (&other == &n) return;
      const bool both = r_.Chance(0.6);
      Note("cut " + n.id() + (both ? " <-> " : " -> ") + other.id() + " for " + Ms(span));
      Cut(n.id(), other.id(), both, span);
    } else if (dice < 63) {
      Note("isolate " + n.id() + " from every node for " + Ms(span));
      for (auto& other : c_.nodes) {
        if (other.get() != &n) Cut(n.id(), other->id(), true, span);
      }
    } else if (dice < 73) {
      Note("cut " + n.id() + " from ZooKeeper for " + Ms(span * 2));
      c_.net.SetZkCut(n.id(), true);
      w_.After(span * 2, nullptr, [this, id = n.id()] { c_.net.SetZkCut(id, false); });
    } else if (dice < 78) {
      if (!n.up() || Down() >= 2 || !MayLoseData(n)) return;
      Note("wipe the disk of " + n.id() + ", back after " + Ms(span));
      n.Kill();
      n.WipeDisk();
      DataLost(n, span);
    } else if (dice < 83) {
      if (!n.up() || Down() >= 2 || !MayLoseData(n)) return;
      n.Kill();
      const bool corrupted = n.CorruptRange();
      Note(std::string(corrupted ? "corrupt a range file of " : "kill -9 ") + n.id() +
           ", back after " + Ms(span));
      DataLost(n, span);
    } else if (dice < 88) {
      // A store whose fsync failed reopens with what its disk kept, maybe
      // less than it had made durable: its copy is made again, a data loss
      // like the ones above (seed 889: fsync failures on one node while
      // another's disk was wiped left a range no trusted in-sync copy).
      if (!MayLoseData(n)) return;
      Note("fsync fails sometimes on " + n.id() + " for " + Ms(span));
      data_loss_ok_after_ = w_.now() + span + 6 * kSecond;
      c_.fs.SetSyncFailure(n.data_dir(), 0.3);
      w_.After(span, nullptr, [this, dir = n.data_dir()] { c_.fs.SetSyncFailure(dir, 0); });
    } else if (dice < 94) {
      auto& co = *c_.coordinators[static_cast<size_t>(
          r_.Uniform(0, static_cast<int64_t>(c_.coordinators.size()) - 1))];
      if (!co.up()) return;
      Note("kill -9 " + co.id() + ", restart after " + Ms(span));
      co.Kill();
      w_.After(span, nullptr, [&co] { co.Start(); });
    } else {
      Note("cut " + n.id() + " from ZooKeeper and every node for " + Ms(span));
      c_.net.SetZkCut(n.id(), true);
      for (auto& other : c_.nodes) {
        if (other.get() != &n) Cut(n.id(), other->id(), true, span);
      }
      w_.After(span, nullptr, [this, id = n.id()] { c_.net.SetZkCut(id, false); });
    }
  }

  void ScheduleTransfer() {
    const Nanos at = w_.now() + transfer_rng_->Uniform(300, 2000) * kMilli;
    if (at >= until_) return;
    w_.At(at, nullptr, [this] {
      Transfer();
      ScheduleTransfer();
    });
  }

  void Transfer() {
    const cluster::ClusterMap map = c_.MapNow();
    std::vector<std::pair<const cluster::RangeInfo*, NodeId>> choices;
    for (const auto& [id, r] : map.ranges) {
      if (!r.owner || map.Node(*r.owner) == nullptr) continue;
      for (const NodeId& m : r.isr) {
        if (m != *r.owner && map.Node(m) != nullptr) choices.emplace_back(&r, m);
      }
    }
    if (choices.empty()) return;
    const auto& [r, target] = choices[static_cast<size_t>(
        transfer_rng_->Uniform(0, static_cast<int64_t>(choices.size()) - 1))];
    const std::string what = "transfer range " + std::to_string(r->id.value()) + " from " +
                             r->owner->str() + " to " + target.str();
    Note(what);
    c_.Transfer(r->id, target.str(),
                [what](const Status& st) { LOG_INFO("nemesis: " << what << ": " << st.ToString()); });
  }

  void ScheduleMerge() {
    const Nanos at = w_.now() + merge_rng_->Uniform(500, 3000) * kMilli;
    if (at >= until_) return;
    w_.At(at, nullptr, [this] {
      Merge();
      ScheduleMerge();
    });
  }

  void Merge() {
    const std::string key = merge_keys_[static_cast<size_t>(
        merge_rng_->Uniform(0, static_cast<int64_t>(merge_keys_.size()) - 1))];
    const cluster::ClusterMap map = c_.MapNow();
    const cluster::RangeInfo* left = map.Locate(key);
    if (left == nullptr || !left->owner || !left->bounds.end()) return;
    const cluster::RangeInfo* right = map.Locate(*left->bounds.end());
    const std::string what = "merge at " + QuoteIfNeeded(key);
    auto merge = [this, key, what] {
      Note(what);
      c_.Merge(key, [what](const Status& st) {
        LOG_INFO("nemesis: " << what << ": " << st.ToString());
      });
    };
    if (right == nullptr || right->owner == left->owner) return merge();
    const std::string move = "transfer range " + std::to_string(right->id.value()) + " to " +
                             left->owner->str() + " to merge it";
    Note(move);
    c_.Transfer(right->id, left->owner->str(), [this, move, merge](const Status& st) {
      LOG_INFO("nemesis: " << move << ": " << st.ToString());
      if (st.ok() && w_.now() < until_)
        w_.After(merge_rng_->Uniform(0, 200) * kMilli, nullptr, merge);
    });
  }

  void ScheduleSplit() {
    const Nanos at = w_.now() + split_rng_->Uniform(300, 2500) * kMilli;
    if (at >= until_) return;
    w_.At(at, nullptr, [this] {
      Split();
      ScheduleSplit();
    });
  }

  void Split() {
    const size_t i = static_cast<size_t>(
        split_rng_->Uniform(0, static_cast<int64_t>(split_keys_.size()) - 1));
    std::string key = split_keys_[i];
    if (split_rng_->Chance(0.3)) key.push_back('\x01');  // between two checked keys
    const std::string what = "split at " + QuoteIfNeeded(key);
    Note(what);
    c_.Split(key, [what](const Status& st) { LOG_INFO("nemesis: " << what << ": " << st.ToString()); });
  }

  void Cut(const std::string& a, const std::string& b, bool both, Nanos span) {
    c_.net.SetCut(a, b, true);
    if (both) c_.net.SetCut(b, a, true);
    w_.After(span, nullptr, [this, a, b, both] {
      c_.net.SetCut(a, b, false);
      if (both) c_.net.SetCut(b, a, false);
    });
  }

  Cluster& c_;
  World& w_;
  Rng& r_;  // every decision of the schedule
  RunResult& result_;
  Rng* transfer_rng_ = nullptr;
  Rng* split_rng_ = nullptr;
  std::vector<std::string> split_keys_;
  Rng* merge_rng_ = nullptr;
  std::vector<std::string> merge_keys_;
  Nanos until_ = 0;
  Nanos data_loss_ok_after_ = 0;
};

}  // namespace

RunResult RunSeed(const RunOptions& options) {
  RunResult result;
  result.seed = options.seed;
  Rng plan(options.seed * 0x9e3779b97f4a7c15ull + 1);
  ClusterParams params = ChooseParams(plan);
  // Splits have a stream of their own (old seeds replay unchanged without
  // them): the nemesis splits at checked keys, and in some runs the owners
  // also split by load, at a threshold the clients pass.
  Rng splits(options.seed * 0x165667b19e3779f9ull + 13);
  if (options.splits && splits.Chance(0.3)) {
    params.replication.split_qps = static_cast<uint32_t>(splits.Uniform(20, 120));
    params.replication.split_load_window = std::chrono::milliseconds(splits.Uniform(500, 2000));
  } else {
    params.replication.split_qps = 0;
  }
  params.replication.split_bytes = 0;
  // Merges have a stream of their own too: the nemesis asks for some, and
  // owners merge cold neighbours by themselves after a short delay.
  Rng merges(options.seed * 0x27d4eb2f165667c5ull + 29);
  params.replication.merge_delay = options.splits && options.merges
                                       ? std::chrono::milliseconds(merges.Uniform(1000, 4000))
                                       : std::chrono::milliseconds(0);
  // Splits leave every part with its owner: the coordinator moves owners
  // (by ranges owned) in the runs that split.
  params.balance = options.splits;
  Rng detector(options.seed * 0x85ebca6b0f6d2a1bull + 17);
  params.detector.failure_timeout = options.detector && detector.Chance(0.8)
                                        ? std::chrono::milliseconds(detector.Uniform(200, 800))
                                        : std::chrono::milliseconds(0);
  if (options.failure_timeout) params.detector.failure_timeout = *options.failure_timeout;
  result.setup = Describe(params);
  Scenario s(options.seed, params, options.verbose, options.max_events);
  if (!s.Boot([&plan](int) { return plan.Uniform(0, 300) * kMilli; })) {
    result.problems.push_back("the cluster never bootstrapped");
  }
  const std::vector<std::string> keys = SpreadKeys(kKeys);
  const Nanos end = s.world().now() + options.duration;
  s.StartClients(kClients, end, keys);
  Nemesis nemesis(s.cluster(), plan, result);
  if (options.faults) nemesis.Start(end);
  Rng transfers(options.seed * 0xc2b2ae3d27d4eb4full + 7);
  if (options.transfers) nemesis.StartTransfers(end, transfers);
  if (options.splits) nemesis.StartSplits(end, splits, keys);
  if (options.splits && options.merges) nemesis.StartMerges(end, merges, keys);
  s.world().RunUntil(end);
  s.RunUntil(5 * kSecond, [&s] { return s.ClientsIdle(); });
  s.HealAll();
  s.FinalReads(keys, plan.Uniform(500, 2000) * kMilli, options.settle, &result.problems);
  s.Check(&result.problems);
  result.events = s.world().events_run();
  result.committed = s.committed_records();
  result.ops = s.client_ops();
  return result;
}

}  // namespace rangekv::sim
