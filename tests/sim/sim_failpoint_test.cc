// Crashes at every step of a split, a merge, a transfer (docs/elastic.md
// §3 step 7, §4) and a replica move (§8):
// the node taking the step, another node holding the range, or the leading
// coordinator is killed -9 right after the step (or the node taking it
// loses power, after the steps that prepare and open a new range) (the failpoints of
// ReplicationOptions::step_hook), restarted half a second later, and then
// everything is healed. Afterwards the map tiles the key space (checked
// after every ZooKeeper change), the operation either happened or did not
// (one range or two, never a hole), every acknowledged write is readable
// and the clients' history is linearizable.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/sim/sim_scenario.h"
#include "tests/sim/sim_test_util.h"

namespace rangekv::sim {
namespace {

enum class Victim { kStepper, kOtherNode, kCoordinator, kStepperPowerLoss };

const char* VictimName(Victim v) {
  switch (v) {
    case Victim::kStepper:
      return "the node taking the step";
    case Victim::kOtherNode:
      return "another node";
    case Victim::kCoordinator:
      return "the leading coordinator";
    case Victim::kStepperPowerLoss:
      return "the node taking the step, losing what was not durable";
  }
  return "?";
}

struct Case {
  std::string step;
  Victim victim;
};

// Kills the victim once, right after the first time any node takes `step`,
// and brings it back after `down`. True once it fired.
class Failpoint {
 public:
  Failpoint(Scenario& s, Case c, Nanos down) : s_(s), c_(std::move(c)), down_(down) {
    s_.cluster().on_step = [this](const std::string& node, std::string_view step, RangeId) {
      if (fired_ || step != c_.step) return;
      fired_ = true;
      // After this event: the step itself completes, nothing after it does.
      s_.world().After(0, nullptr, [this, node] { Crash(node); });
    };
  }
  ~Failpoint() { s_.cluster().on_step = nullptr; }
  bool fired() const { return fired_; }

 private:
  void Crash(const std::string& stepper) {
    Cluster& c = s_.cluster();
    if (c_.victim == Victim::kCoordinator) {
      for (auto& co : c.coordinators) {
        if (!co->leading()) continue;
        co->Kill();
        SimCoordinator* back = co.get();
        s_.world().After(down_, nullptr, [back] { back->Start(); });
        return;
      }
      return;
    }
    std::string victim = stepper;
    if (c_.victim == Victim::kOtherNode) {
      for (auto& n : c.nodes) {
        if (n->id() != stepper && n->up()) {
          victim = n->id();
          break;
        }
      }
    }
    SimNode& n = s_.node(victim);
    if (c_.victim == Victim::kStepperPowerLoss) {
      n.PowerLoss();
    } else {
      n.Kill();
    }
    s_.world().After(down_, nullptr, [&n] { n.Start(); });
  }

  Scenario& s_;
  const Case c_;
  const Nanos down_;
  bool fired_ = false;
};

ClusterParams TwoCoordinators() {
  ClusterParams p = ThreeNodes();
  p.coordinators = 2;
  return p;
}

std::vector<Case> Cases(const std::vector<std::string>& steps) {
  std::vector<Case> out;
  for (const std::string& step : steps) {
    for (Victim v : {Victim::kStepper, Victim::kOtherNode, Victim::kCoordinator}) {
      out.push_back({step, v});
    }
  }
  return out;
}

using Done = std::function<void(Status)>;

using Op = std::function<void(Scenario&, const std::vector<std::string>&, Done)>;

// Boots a cluster under load, runs `setup` (when given) until answered,
// arms the failpoint, asks for op (split, merge or transfer), then heals
// and checks everything. The map's range count after.
// With `last`, it sees the map as the heal left it.
size_t CrashDuring(uint64_t seed, const Case& c, const Op& op, const Op& setup = nullptr,
                   const ClusterParams& params = TwoCoordinators(),
                   const std::function<void(const cluster::ClusterMap&)>& last = nullptr) {
  SCOPED_TRACE("crash of " + std::string(VictimName(c.victim)) + " after " + c.step);
  Scenario s(seed, params, Verbose());
  EXPECT_TRUE(BootStaggered(s));
  const std::vector<std::string> keys = SpreadKeys(8);
  s.StartClients(3, s.world().now() + 6 * kSecond, keys);
  s.RunFor(2 * kSecond);
  if (setup) {
    std::optional<Status> st =
        AskUntilServed(s, [&](Done done) { setup(s, keys, std::move(done)); });
    EXPECT_TRUE(st && st->ok()) << (st ? st->ToString() : "no answer to the setup");
    s.RunFor(500 * kMilli);
  }
  Failpoint fp(s, c, 500 * kMilli);
  // The answer may be an error (its owner died under it): either is fine
  // as long as the map and the data are.
  (void)AskUntilServed(s, [&](Done done) { op(s, keys, std::move(done)); });
  s.RunFor(2 * kSecond);
  EXPECT_TRUE(fp.fired()) << "the operation never reached " << c.step;
  std::vector<std::string> problems = HealAndCheck(s, keys);
  EXPECT_TRUE(problems.empty()) << Join(problems);
  if (last) last(s.cluster().MapNow());
  return s.cluster().MapNow().ranges.size();
}

TEST(SimFailpoints, ACrashAtAnyStepOfASplitLosesNothing) {
  uint64_t seed = 100;
  for (const Case& c : Cases({"split.fenced", "split.asked", "split.written", "split.built",
                              "seed.opened", "split.narrowed"})) {
    const size_t ranges = CrashDuring(++seed, c, [](Scenario& s, const auto& keys, Done done) {
      s.cluster().Split(keys[4], std::move(done));
    });
    EXPECT_TRUE(ranges == 1 || ranges == 2) << c.step << ": " << ranges << " ranges";
  }
}

TEST(SimFailpoints, ACrashAtAnyStepOfAMergeLosesNothing) {
  uint64_t seed = 300;
  for (const Case& c : Cases({"merge.fenced", "merge.asked", "merge.written", "merge.built",
                              "seed.opened", "merge.dropped"})) {
    const size_t ranges = CrashDuring(
        ++seed, c,
        [](Scenario& s, const auto& keys, Done done) {
          s.cluster().Merge(keys[0], std::move(done));
        },
        [](Scenario& s, const auto& keys, Done done) {
          s.cluster().Split(keys[4], std::move(done));
        });
    EXPECT_TRUE(ranges == 1 || ranges == 2) << c.step << ": " << ranges << " ranges";
  }
}

// A new range's directory is prepared and opened without an fsync (its
// log's first sync makes it durable): a power loss right after either step
// takes it back, and the range is built again from the parent.
TEST(SimFailpoints, APowerLossRightAfterANewRangeIsPreparedLosesNothing) {
  uint64_t seed = 400;
  for (const char* step : {"split.built", "seed.opened"}) {
    const size_t ranges = CrashDuring(++seed, {step, Victim::kStepperPowerLoss},
                                      [](Scenario& s, const auto& keys, Done done) {
                                        s.cluster().Split(keys[4], std::move(done));
                                      });
    EXPECT_TRUE(ranges == 1 || ranges == 2) << step << ": " << ranges << " ranges";
  }
  for (const char* step : {"merge.built", "seed.opened"}) {
    const size_t ranges = CrashDuring(
        ++seed, {step, Victim::kStepperPowerLoss},
        [](Scenario& s, const auto& keys, Done done) {
          s.cluster().Merge(keys[0], std::move(done));
        },
        [](Scenario& s, const auto& keys, Done done) {
          s.cluster().Split(keys[4], std::move(done));
        });
    EXPECT_TRUE(ranges == 1 || ranges == 2) << step << ": " << ranges << " ranges";
  }
}

TEST(SimFailpoints, ACrashAtAnyStepOfATransferLosesNothing) {
  uint64_t seed = 200;
  for (const Case& c : Cases({"transfer.fenced", "transfer.asked", "transfer.written"})) {
    const size_t ranges = CrashDuring(++seed, c, [](Scenario& s, const auto&, Done done) {
      s.cluster().Transfer(RangeId(1), HoldersOf(s, RangeId(1)).first, std::move(done));
    });
    EXPECT_EQ(ranges, 1u) << c.step;
  }
}

// A replica move, of a follower's copy or of the owner's (handed over
// first), on four nodes: the target copies the owner's snapshot (chunk by
// chunk; killed after one, it resumes the copy), joins the ISR, the
// coordinator drops the source, and the source deletes its directory. Whatever dies on the way,
// afterwards the move is done or dropped (three replicas, no move pending) and nothing is lost.
TEST(SimFailpoints, ACrashAtAnyStepOfAReplicaMoveLosesNothing) {
  ClusterParams four = TwoCoordinators();
  four.nodes = 4;
  // Copies of several chunks: a target killed after one resumes its copy.
  four.replication.snapshot_chunk_bytes = 64;
  uint64_t seed = 500;
  for (bool of_owner : {false, true}) {
    for (const Case& c :
         Cases({"copy.started", "copy.chunk", "copy.installed", "isr.added", "range.dropped"})) {
      SCOPED_TRACE(of_owner ? "the owner's copy" : "a follower's copy");
      auto move = [of_owner](Scenario& s, const auto&, Done done) {
        const cluster::RangeInfo r = s.Range(RangeId(1));
        std::string from = r.owner->str(), to;
        for (auto& n : s.cluster().nodes) {
          const bool holds = Has(r.replicas, n->id());
          if (!holds) to = n->id();
          if (holds && !of_owner && n->id() != r.owner->str()) from = n->id();
        }
        s.cluster().Move(RangeId(1), from, to, 2500 * kMilli, std::move(done));
      };
      auto settled = [&](const cluster::ClusterMap& map) {
        ASSERT_EQ(map.ranges.size(), 1u);
        const cluster::RangeInfo& r = map.ranges.begin()->second;
        EXPECT_FALSE(r.move_replica.has_value()) << c.step;
        EXPECT_EQ(r.replicas.size(), 3u) << c.step;
      };
      CrashDuring(++seed, c, move, nullptr, four, settled);
    }
  }
}

}  // namespace
}  // namespace rangekv::sim
