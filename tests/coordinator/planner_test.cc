// Unit tests of the coordinator's pure decisions (coordinator/planner.h) and
// the election naming rules (coordinator/election.h). No ZooKeeper.
#include "coordinator/planner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "coordinator/election.h"
#include "tests/coordinator/planner_test_util.h"

namespace rangekv::coordinator {
namespace {

using cluster::RangeInfo;
using cluster::RangeState;
using planner_test::Consistent;
using planner_test::Apply;
using planner_test::Bootstrapped;
using planner_test::Config;
using planner_test::Ids;
using planner_test::Live;

// True when `ranges` tile the whole key space: no hole, no overlap.
::testing::AssertionResult TilesKeySpace(std::vector<KeyRange> ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::string at;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].start() != at) {
      return ::testing::AssertionFailure()
             << "range " << ranges[i].ToString() << " does not start where the previous ends";
    }
    if (!ranges[i].end()) {
      if (i + 1 != ranges.size()) return ::testing::AssertionFailure() << "ranges after +inf";
      return ::testing::AssertionSuccess();
    }
    at = *ranges[i].end();
  }
  return ::testing::AssertionFailure() << "the key space above " << at << " is not covered";
}

std::vector<KeyRange> ValidBounds(const ClusterSnapshot& s) {
  std::vector<KeyRange> out;
  for (const auto& [id, z] : s.ranges) {
    if (z.info) out.push_back(z.info->bounds);
  }
  return out;
}

TEST(PlannerBootstrap, EightRangesOverThreeNodesSpreadOwners332WithDistinctReplicas) {
  ClusterSnapshot s;
  s.config = Config(3, 8);
  s.live_nodes = Live({"n1", "n2", "n3"});
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.bootstrap.size(), 8u);
  EXPECT_TRUE(plan.writes.empty());
  std::map<NodeId, int> owned;
  std::vector<KeyRange> bounds;
  std::vector<KeyRange> split = cluster::InitialSplit(8);
  for (size_t i = 0; i < plan.bootstrap.size(); ++i) {
    const RangeInfo& r = plan.bootstrap[i];
    EXPECT_EQ(r.id, RangeId(i + 1));
    EXPECT_EQ(r.bounds, split[i]);
    EXPECT_EQ(r.epoch, Epoch(1));
    EXPECT_EQ(r.state, RangeState::kActive);
    ASSERT_TRUE(r.owner.has_value());
    ++owned[*r.owner];
    ASSERT_EQ(r.replicas.size(), 3u);
    EXPECT_EQ(r.replicas.front(), *r.owner);
    EXPECT_EQ(std::set<NodeId>(r.replicas.begin(), r.replicas.end()).size(), 3u);
    EXPECT_EQ(r.isr, r.replicas);
    bounds.push_back(r.bounds);
  }
  std::vector<int> counts;
  for (const auto& [id, n] : owned) counts.push_back(n);
  std::sort(counts.begin(), counts.end());
  EXPECT_EQ(counts, (std::vector<int>{2, 3, 3}));
  EXPECT_TRUE(TilesKeySpace(bounds));
}

// Text keys all start with a few letters: cut where the user says, the
// ranges spread over the nodes and a garbage znode is repaired to the span
// the split gave its id.
TEST(PlannerBootstrap, InitialSplitsCutTheKeySpaceWhereTheUserSaid) {
  ClusterSnapshot s;
  s.config = Config(3, 3);
  s.config.initial_splits = {"key:3", "key:6"};
  s.live_nodes = Live({"n1", "n2", "n3"});
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.bootstrap.size(), 3u);
  std::set<NodeId> owners;
  std::vector<KeyRange> bounds;
  for (const RangeInfo& r : plan.bootstrap) {
    owners.insert(*r.owner);
    bounds.push_back(r.bounds);
  }
  EXPECT_EQ(owners.size(), 3u);
  EXPECT_TRUE(TilesKeySpace(bounds));
  EXPECT_EQ(bounds[1], KeyRange("key:3", std::string("key:6")));

  for (const RangeInfo& r : plan.bootstrap) s.ranges[r.id] = RangeZnode{zk::ZnodeVersion(0), r, ""};
  s.last_valid[RangeId(2)] = *s.ranges.at(RangeId(2)).info;
  s.ranges.at(RangeId(2)).info.reset();  // garbage
  Plan repair = PlanReconcile(s);
  ASSERT_EQ(repair.writes.size(), 1u);
  EXPECT_EQ(repair.writes[0].record.bounds, KeyRange("key:3", std::string("key:6")));
}

TEST(PlannerBootstrap, FiveNodesRf3OwnAtMostTwoEachAndReplicateEvenly) {
  ClusterSnapshot s;
  s.config = Config(3, 8);
  s.live_nodes = Live({"a", "b", "c", "d", "e"});
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.bootstrap.size(), 8u);
  std::map<NodeId, int> owned, replicated;
  for (const RangeInfo& r : plan.bootstrap) {
    ++owned[*r.owner];
    for (const NodeId& n : r.replicas) ++replicated[n];
    EXPECT_EQ(std::set<NodeId>(r.replicas.begin(), r.replicas.end()).size(), 3u);
  }
  for (const auto& [id, n] : owned) EXPECT_LE(n, 2) << id.str();
  for (const auto& [id, n] : replicated) {
    EXPECT_GE(n, 4) << id.str();  // 24 replica slots over 5 nodes
    EXPECT_LE(n, 5) << id.str();
  }
}

TEST(PlannerBootstrap, WaitsWhileFewerLiveNodesThanRf) {
  ClusterSnapshot s;
  s.config = Config(3, 8);
  s.live_nodes = Live({"n1", "n2"});
  Plan plan = PlanReconcile(s);
  EXPECT_TRUE(plan.empty());
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("2 of 3 live"), std::string::npos) << plan.notes[0];
}

// Nodes started together (kvcoord --expect-nodes) all get ranges at the
// bootstrap, not only the first rf that registered.
TEST(PlannerBootstrap, WaitsForTheExpectedNodes) {
  ClusterSnapshot s;
  s.config = Config(1, 8);
  s.expect_nodes = 3;
  s.live_nodes = Live({"n1", "n2"});
  Plan plan = PlanReconcile(s);
  EXPECT_TRUE(plan.bootstrap.empty());
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("waiting for nodes: 2 of 3 live (rf 1)"), std::string::npos)
      << plan.notes[0];
  s.live_nodes = Live({"n1", "n2", "n3"});
  plan = PlanReconcile(s);
  ASSERT_EQ(plan.bootstrap.size(), 8u);
  std::set<NodeId> owners;
  for (const auto& r : plan.bootstrap) owners.insert(*r.owner);
  EXPECT_EQ(owners.size(), 3u);
}

TEST(PlannerBootstrap, NoBootstrapOnceAnyRangeZnodeExistsEvenGarbage) {
  ClusterSnapshot s;
  s.config = Config(1, 4);
  s.live_nodes = Live({"n1"});
  s.ranges[RangeId(3)] = RangeZnode{zk::ZnodeVersion(0), std::nullopt, "not a record"};
  Plan plan = PlanReconcile(s);
  EXPECT_TRUE(plan.bootstrap.empty());
  // The garbage is repaired instead, covering everything (it is alone).
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kRepair);
  EXPECT_EQ(plan.writes[0].record.bounds, KeyRange());
}

TEST(PlannerLiveness, SteadyStateNeedsNoWrite) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  Plan plan = PlanReconcile(s);
  EXPECT_TRUE(plan.empty());
  EXPECT_TRUE(plan.notes.empty());
}

TEST(PlannerLiveness, DeadOwnerWithoutIsrPeersMarksItsRangesUnavailableKeepingOwnerAndEpoch) {
  ClusterSnapshot s = Bootstrapped(Config(1, 8), {"n1", "n2", "n3"});  // isr = {owner}
  s.ranges.at(RangeId(1)).version = zk::ZnodeVersion(7);
  s.live_nodes.erase(NodeId("n1"));
  Plan plan = PlanReconcile(s);
  std::set<RangeId> expected;
  for (const auto& [id, z] : s.ranges) {
    if (*z.info->owner == NodeId("n1")) expected.insert(id);
  }
  ASSERT_EQ(expected.size(), 3u);
  std::set<RangeId> written;
  for (const RangeWrite& w : plan.writes) {
    const RangeInfo& before = *s.ranges.at(w.record.id).info;
    EXPECT_EQ(w.kind, WriteKind::kMarkUnavailable);
    EXPECT_EQ(w.record.state, RangeState::kUnavailable);
    EXPECT_EQ(w.record.owner, before.owner);
    EXPECT_EQ(w.record.epoch, before.epoch);
    EXPECT_EQ(w.record.replicas, before.replicas);
    EXPECT_EQ(w.record.isr, before.isr);
    EXPECT_EQ(w.record.bounds, before.bounds);
    EXPECT_EQ(w.expected_version, s.ranges.at(w.record.id).version);
    EXPECT_FALSE(w.deposed.has_value());
    written.insert(w.record.id);
  }
  EXPECT_EQ(written, expected);
  EXPECT_EQ(s.ranges.at(RangeId(1)).version, zk::ZnodeVersion(7));

  // Applied, the same snapshot plans nothing more (idempotent).
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerLiveness, ReturningOwnerMarksItsRangesActiveAgain) {
  ClusterSnapshot s = Bootstrapped(Config(1, 8), {"n1", "n2", "n3"});
  auto all = s.live_nodes;
  s.live_nodes.erase(NodeId("n2"));
  Apply(PlanReconcile(s), s);
  s.live_nodes = all;
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 3u);
  for (const RangeWrite& w : plan.writes) {
    EXPECT_EQ(w.kind, WriteKind::kMarkActive);
    EXPECT_EQ(w.record.state, RangeState::kActive);
    EXPECT_EQ(*w.record.owner, NodeId("n2"));
    EXPECT_EQ(w.record.epoch, Epoch(1));
  }
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerOwnerless, RangeWithoutOwnerGoesToLeastLoadedLiveIsrMemberWithHigherEpoch) {
  ClusterSnapshot s = Bootstrapped(Config(2, 8), {"n1", "n2", "n3"});  // owns 3/3/2
  RangeInfo& r = *s.ranges.at(RangeId(1)).info;                        // owned by n1
  r.owner.reset();
  r.replicas = Ids({"n2", "n3"});
  r.isr = Ids({"n2", "n3"});
  r.epoch = Epoch(4);
  s.known_epochs[RangeId(1)] = Epoch(6);
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const RangeWrite& w = plan.writes[0];
  EXPECT_EQ(w.kind, WriteKind::kAssignOwner);
  // Of the ISR, n2 owns 3 (ranges 2, 5, 8) and n3 owns 2: n3.
  EXPECT_EQ(*w.record.owner, NodeId("n3"));
  EXPECT_EQ(w.record.isr, Ids({"n2", "n3"}));
  EXPECT_EQ(w.record.epoch, Epoch(7));
  EXPECT_EQ(w.record.state, RangeState::kActive);
  EXPECT_TRUE(Consistent(w.record));
}

// Item 2 of the replication review: a node outside the ISR may hold none
// of the range's data, so a range whose ISR is empty or has no live member
// is never handed to "any live node"; it is marked unavailable, saying why.
TEST(PlannerOwnerless, RangeWithoutOwnerOrLiveIsrMemberIsUnavailableNotGivenAway) {
  ClusterSnapshot s = Bootstrapped(Config(1, 8), {"n1", "n2", "n3"});
  RangeInfo& r = *s.ranges.at(RangeId(1)).info;
  r.owner.reset();
  r.replicas.clear();
  r.isr.clear();
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kMarkUnavailable);
  EXPECT_FALSE(plan.writes[0].record.owner.has_value());
  EXPECT_NE(plan.writes[0].reason.find("no in-sync replica"), std::string::npos)
      << plan.writes[0].reason;

  r.replicas = Ids({"n4"});
  r.isr = Ids({"n4"});  // its only in-sync replica is not live
  plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kMarkUnavailable);
  EXPECT_FALSE(plan.writes[0].record.owner.has_value());
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerOwnerless, PrefersALiveIsrMemberAndFillsReplicasToRf) {
  ClusterSnapshot s = Bootstrapped(Config(3, 3), {"a", "b", "c", "d"});
  RangeInfo& r = *s.ranges.at(RangeId(2)).info;
  r.owner.reset();
  r.replicas = Ids({"c"});
  r.isr = Ids({"c"});
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const RangeInfo& rec = plan.writes[0].record;
  EXPECT_EQ(*rec.owner, NodeId("c"));
  ASSERT_EQ(rec.replicas.size(), 3u);
  EXPECT_EQ(rec.replicas.front(), NodeId("c"));
  EXPECT_EQ(std::set<NodeId>(rec.replicas.begin(), rec.replicas.end()).size(), 3u);
  EXPECT_EQ(rec.isr.front(), NodeId("c"));
}

TEST(PlannerOwnerless, TwoOwnerlessRangesGoToDifferentNodes) {
  ClusterSnapshot s = Bootstrapped(Config(2, 2), {"n1", "n2"});
  for (auto& [id, z] : s.ranges) z.info->owner.reset();  // isr n1, n2 for both
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 2u);
  EXPECT_NE(*plan.writes[0].record.owner, *plan.writes[1].record.owner);
}

TEST(PlannerOwnerless, NoLiveNodeMarksItUnavailable) {
  ClusterSnapshot s = Bootstrapped(Config(1, 2), {"n1"});
  s.ranges.at(RangeId(1)).info->owner.reset();
  s.live_nodes.clear();
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 2u);  // range 1 (no owner), range 2 (owner dead)
  for (const RangeWrite& w : plan.writes) {
    EXPECT_EQ(w.kind, WriteKind::kMarkUnavailable);
  }
  EXPECT_FALSE(plan.writes[0].record.owner.has_value());
}

class PlannerRepair : public ::testing::TestWithParam<std::vector<uint64_t>> {};

TEST_P(PlannerRepair, GarbageRangesGetTheirNeighboursGapAndTheMapTilesTheKeySpace) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  const std::vector<KeyRange> split = cluster::InitialSplit(8);
  for (uint64_t id : GetParam()) {
    RangeZnode& z = s.ranges.at(RangeId(id));
    s.last_valid[RangeId(id)] = *z.info;  // the coordinator saw it before it broke
    z = RangeZnode{zk::ZnodeVersion(3), std::nullopt, "missing field 'epoch'"};
  }
  s.known_epochs[RangeId(GetParam().front())] = Epoch(9);
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), GetParam().size());
  EXPECT_TRUE(plan.notes.empty()) << plan.notes.front();
  std::map<NodeId, int> owned;
  for (const RangeWrite& w : plan.writes) {
    EXPECT_EQ(w.kind, WriteKind::kRepair);
    EXPECT_EQ(w.expected_version, zk::ZnodeVersion(3));
    const RangeInfo& r = w.record;
    EXPECT_EQ(r.bounds, split[r.id.value() - 1]) << r.id.value();
    // A new owner grant: one past the highest epoch seen for the id.
    EXPECT_EQ(r.epoch, r.id == RangeId(GetParam().front()) ? Epoch(10) : Epoch(2));
    EXPECT_EQ(r.state, RangeState::kActive);
    ASSERT_TRUE(r.owner.has_value());
    const RangeInfo& before = s.last_valid.at(r.id);
    EXPECT_NE(std::find(before.isr.begin(), before.isr.end(), *r.owner), before.isr.end());
    EXPECT_EQ(r.replicas.size(), 3u);
    EXPECT_EQ(std::set<NodeId>(r.isr.begin(), r.isr.end()),
              std::set<NodeId>(r.replicas.begin(), r.replicas.end()));
    ++owned[*r.owner];
  }
  for (const auto& [id, n] : owned) EXPECT_LE(n, 3) << id.str();
  Apply(plan, s);
  EXPECT_TRUE(TilesKeySpace(ValidBounds(s)));
  EXPECT_TRUE(PlanReconcile(s).empty());
}

INSTANTIATE_TEST_SUITE_P(Cases, PlannerRepair,
                         ::testing::Values(std::vector<uint64_t>{4}, std::vector<uint64_t>{1},
                                           std::vector<uint64_t>{8}, std::vector<uint64_t>{3, 4},
                                           std::vector<uint64_t>{2, 6},
                                           std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));

// With no valid version of the record ever seen, nobody is known to hold
// the range's data: the repair restores the map's shape but hands the range
// to no node (item 2 of the replication review), and says why.
TEST(PlannerRepairEdge, GarbageNeverSeenValidGetsItsBoundsButNoOwner) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  s.ranges.at(RangeId(4)) = RangeZnode{zk::ZnodeVersion(3), std::nullopt, "garbage"};
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const RangeWrite& w = plan.writes[0];
  EXPECT_EQ(w.kind, WriteKind::kRepair);
  EXPECT_EQ(w.record.bounds, cluster::InitialSplit(8)[3]);
  EXPECT_FALSE(w.record.owner.has_value());
  EXPECT_EQ(w.record.state, RangeState::kUnavailable);
  EXPECT_NE(w.reason.find("replicas are unknown"), std::string::npos) << w.reason;
  Apply(plan, s);
  EXPECT_TRUE(TilesKeySpace(ValidBounds(s)));
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerRepairEdge, IdOutsideTheInitialSplitTakesTheHoleOfAMissingRange) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  KeyRange hole = s.ranges.at(RangeId(5)).info->bounds;
  s.ranges.erase(RangeId(5));
  s.ranges[RangeId(12)] = RangeZnode{zk::ZnodeVersion(1), std::nullopt, "garbage"};
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.id, RangeId(12));
  EXPECT_EQ(plan.writes[0].record.bounds, hole);
  EXPECT_EQ(plan.writes[0].record.epoch, Epoch(1));
  Apply(plan, s);
  EXPECT_TRUE(TilesKeySpace(ValidBounds(s)));
}

TEST(PlannerRepairEdge, GarbageNextToAMissingRangeStretchesOverBoth) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  const std::vector<KeyRange> split = cluster::InitialSplit(8);
  s.ranges.erase(RangeId(5));
  s.ranges.at(RangeId(6)) = RangeZnode{zk::ZnodeVersion(1), std::nullopt, "garbage"};
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.bounds, KeyRange(split[4].start(), split[5].end()));
  Apply(plan, s);
  EXPECT_TRUE(TilesKeySpace(ValidBounds(s)));
}

TEST(PlannerRepairEdge, GarbageWithNoUncoveredSpanIsLeftAloneWithANote) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  s.ranges[RangeId(9)] = RangeZnode{zk::ZnodeVersion(0), std::nullopt, "garbage"};
  Plan plan = PlanReconcile(s);
  EXPECT_TRUE(plan.writes.empty());
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("range 9"), std::string::npos) << plan.notes[0];
}

TEST(PlannerRepairEdge, HoleWithoutAnyRangeIsReportedNotInvented) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  s.ranges.erase(RangeId(2));
  Plan plan = PlanReconcile(s);
  EXPECT_TRUE(plan.writes.empty());
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("covered by no range"), std::string::npos) << plan.notes[0];
}

TEST(PlannerRepairEdge, RepairWithoutLiveNodesLeavesItOwnerlessAndUnavailable) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  s.live_nodes.clear();
  s.ranges.at(RangeId(3)) = RangeZnode{zk::ZnodeVersion(2), std::nullopt, "garbage"};
  Plan plan = PlanReconcile(s);
  auto it = std::find_if(plan.writes.begin(), plan.writes.end(),
                         [](const RangeWrite& w) { return w.kind == WriteKind::kRepair; });
  ASSERT_NE(it, plan.writes.end());
  EXPECT_FALSE(it->record.owner.has_value());
  EXPECT_EQ(it->record.state, RangeState::kUnavailable);
  EXPECT_TRUE(it->record.replicas.empty());
}

TEST(UncoveredSpans, FindsGapsAtTheEdgesAndInside) {
  EXPECT_EQ(UncoveredSpans({}), (std::vector<KeyRange>{KeyRange()}));
  EXPECT_TRUE(UncoveredSpans({KeyRange()}).empty());
  std::vector<KeyRange> gaps =
      UncoveredSpans({KeyRange("b", std::string("c")), KeyRange("d", std::nullopt)});
  EXPECT_EQ(gaps, (std::vector<KeyRange>{KeyRange("", std::string("b")),
                                         KeyRange("c", std::string("d"))}));
  gaps = UncoveredSpans({KeyRange("", std::string("m"))});
  EXPECT_EQ(gaps, (std::vector<KeyRange>{KeyRange("m", std::nullopt)}));
}

TEST(Election, CandidateNamesAndLowestSequence) {
  EXPECT_EQ(CandidateSequence("leader-0000000042"), 42u);
  EXPECT_EQ(CandidateSequence("leader-0000000000"), 0u);
  EXPECT_FALSE(CandidateSequence("leader-42").has_value());
  EXPECT_FALSE(CandidateSequence("leader-00000000x2").has_value());
  EXPECT_FALSE(CandidateSequence("other-0000000001").has_value());
  EXPECT_EQ(
      LowestCandidate({"leader-0000000010", "junk", "leader-0000000003", "leader-0000000007"}),
      std::optional<std::string>("leader-0000000003"));
  EXPECT_FALSE(LowestCandidate({"junk"}).has_value());
  EXPECT_FALSE(LowestCandidate({}).has_value());
}

}  // namespace
}  // namespace rangekv::coordinator
