// Balance (coordinator/planner.h, PlanBalance): owners move between
// in-sync replicas by the load the nodes report, or by ranges owned when
// the cluster is idle; one move into each node per round.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/coordinator/planner_test_util.h"

namespace rangekv::coordinator {
namespace {

using namespace planner_test;

// Four ranges over three nodes, all owned by n1 (as after splits).
ClusterSnapshot AllOnN1() {
  ClusterSnapshot s = Bootstrapped(Config(3, 4), {"n1", "n2", "n3"});
  for (auto& [id, z] : s.ranges) z.info->owner = NodeId("n1");
  s.balance = true;
  return s;
}

// By count: four ranges on n1 become two on n1 and one each on n2 and n3
// in one round, each cold node taking one.
TEST(PlannerBalance, IdleClusterSpreadsRangesOwnedOneMoveIntoEachNode) {
  ClusterSnapshot s = AllOnN1();
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 2u);
  std::set<NodeId> to;
  for (const RangeWrite& w : plan.writes) {
    EXPECT_EQ(w.kind, WriteKind::kBalance);
    ASSERT_TRUE(w.record.move_to.has_value());
    EXPECT_EQ(w.record.owner, NodeId("n1"));  // the owner moves it itself
    to.insert(*w.record.move_to);
  }
  EXPECT_EQ(to, (std::set<NodeId>{NodeId("n2"), NodeId("n3")}));
  Apply(plan, s);
  // While the asks stand, nothing else moves.
  EXPECT_TRUE(PlanReconcile(s).empty());
  // Off: nothing.
  ClusterSnapshot off = AllOnN1();
  off.balance = false;
  EXPECT_TRUE(PlanReconcile(off).empty());
}

TEST(PlannerBalance, BusyClusterMovesTheRangeNearestHalfTheGap) {
  ClusterSnapshot s = AllOnN1();
  s.live_nodes.at(NodeId("n1")).load = {{RangeId(1), 100}, {RangeId(2), 900},
                                        {RangeId(3), 1000}, {RangeId(4), 2000}};
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 2u);
  // Gap 4000 (n1) - 0: the range nearest 2000 below the gap is range 4.
  EXPECT_EQ(plan.writes[0].record.id, RangeId(4));
  EXPECT_NE(plan.writes[0].reason.find("req/s"), std::string::npos) << plan.writes[0].reason;
  // Counted on the loads that move leaves (n1 2000, its target 2000, the
  // third node 0): the range nearest 1000 goes to the third node.
  EXPECT_EQ(plan.writes[1].record.id, RangeId(3));
  EXPECT_NE(plan.writes[1].record.move_to, plan.writes[0].record.move_to);
}

// Right after a move the new owner has not reported the range yet, and the
// previous owner no longer does: nothing moves until the loads settle, or
// the range would count as idle and the next move would overshoot.
TEST(PlannerBalance, NothingMovesWhileAnOwnerHasNotReportedARangeItOwns) {
  ClusterSnapshot s = AllOnN1();
  s.live_nodes.at(NodeId("n1")).load = {{RangeId(1), 900}, {RangeId(2), 900}, {RangeId(3), 900}};
  s.ranges.at(RangeId(4)).info->owner = NodeId("n2");
  s.live_nodes.at(NodeId("n2")).load = {};
  EXPECT_TRUE(PlanReconcile(s).empty());
  s.live_nodes.at(NodeId("n2")).load = {{RangeId(4), 900}};
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.move_to, NodeId("n3"));
}

// A range just moved for balance is not moved again within the cooldown,
// whatever the (jittering) loads say; another range may go instead.
TEST(PlannerBalance, ARangeMovedRecentlyStaysPut) {
  ClusterSnapshot s = AllOnN1();
  s.live_nodes.at(NodeId("n1")).load = {
      {RangeId(1), 100}, {RangeId(2), 900}, {RangeId(3), 1000}, {RangeId(4), 2000}};
  s.recently_moved = {RangeId(4)};
  Plan plan = PlanReconcile(s);
  ASSERT_GE(plan.writes.size(), 2u);
  EXPECT_EQ(plan.writes[0].record.id, RangeId(3));
  EXPECT_EQ(plan.writes[1].record.id, RangeId(2));
  for (const RangeWrite& w : plan.writes) EXPECT_NE(w.record.id, RangeId(4));
  s.recently_moved = {RangeId(1), RangeId(2), RangeId(3), RangeId(4)};
  EXPECT_TRUE(PlanReconcile(s).empty());
}

// A load split leaves many small ranges on one node: each round moves up
// to kBalanceMovesPerNode of them into every colder node, planned on the
// loads the earlier moves of the round leave, and none out of a node
// that takes one.
TEST(PlannerBalance, ManySmallRangesMoveSeveralIntoEachNodePerRound) {
  ClusterSnapshot s = Bootstrapped(Config(3, 12), {"n1", "n2", "n3"});
  s.balance = true;
  for (auto& [id, z] : s.ranges) {
    z.info->owner = NodeId("n1");
    s.live_nodes.at(NodeId("n1")).load[id] = 1000;
  }
  Plan plan = PlanReconcile(s);
  std::map<NodeId, int> into;
  for (const RangeWrite& w : plan.writes) {
    ASSERT_TRUE(w.record.move_to.has_value());
    EXPECT_EQ(w.record.owner, NodeId("n1"));
    ++into[*w.record.move_to];
  }
  EXPECT_EQ(into, (std::map<NodeId, int>{{NodeId("n2"), kBalanceMovesPerNode},
                                         {NodeId("n3"), kBalanceMovesPerNode}}));
}

TEST(PlannerBalance, BalancedOrSmallGapsStayPut) {
  ClusterSnapshot s = Bootstrapped(Config(3, 3), {"n1", "n2", "n3"});
  s.balance = true;
  EXPECT_TRUE(PlanReconcile(s).empty());  // one range each
  for (const char* n : {"n1", "n2", "n3"}) s.live_nodes.at(NodeId(n)).load.clear();
  s.live_nodes.at(NodeId(s.ranges.at(RangeId(1)).info->owner->str())).load = {{RangeId(1), 500}};
  s.live_nodes.at(NodeId(s.ranges.at(RangeId(2)).info->owner->str())).load = {{RangeId(2), 450}};
  s.live_nodes.at(NodeId(s.ranges.at(RangeId(3)).info->owner->str())).load = {{RangeId(3), 420}};
  EXPECT_TRUE(PlanReconcile(s).empty());  // within a fifth of the hottest
}

TEST(PlannerBalance, AMoveThatCanNoLongerHappenIsDropped) {
  ClusterSnapshot s = AllOnN1();
  // n3 left range 2's ISR (it lags): it can no longer take the range.
  cluster::RangeInfo& r = *s.ranges.at(RangeId(2)).info;
  r.move_to = NodeId("n3");
  std::vector<NodeId> isr;
  for (const NodeId& n : r.isr) {
    if (n != NodeId("n3")) isr.push_back(n);
  }
  r.SetIsr(isr);
  Plan plan = PlanReconcile(s);
  bool dropped = false;
  for (const RangeWrite& w : plan.writes) {
    if (w.record.id == RangeId(2) && w.kind == WriteKind::kBalance) {
      dropped = !w.record.move_to.has_value();
    }
  }
  EXPECT_TRUE(dropped);
}

TEST(PlannerBalance, ANewGrantClearsTheAsk) {
  ClusterSnapshot s = AllOnN1();
  s.ranges.at(RangeId(1)).info->move_to = NodeId("n2");
  s.live_nodes.erase(NodeId("n1"));  // owner gone: rule 1 promotes
  Plan plan = PlanReconcile(s);
  for (const RangeWrite& w : plan.writes) {
    if (w.record.id == RangeId(1)) {
      EXPECT_EQ(w.kind, WriteKind::kPromote);
      EXPECT_FALSE(w.record.move_to.has_value());
    }
  }
}

// Two neighbours their owners report mergeable, held by the same copies
// but owned by different nodes: the right one is moved to the left one's
// owner, so that it merges them; such a pair is not moved apart again.
TEST(PlannerBalance, MergeableNeighboursAreBroughtToOneOwner) {
  ClusterSnapshot s = Bootstrapped(Config(3, 4), {"n1", "n2", "n3"});
  s.balance = true;
  const cluster::RangeInfo& r1 = *s.ranges.at(RangeId(1)).info;
  const cluster::RangeInfo& r2 = *s.ranges.at(RangeId(2)).info;
  ASSERT_NE(r1.owner, r2.owner);
  s.live_nodes.at(*r1.owner).mergeable = {RangeId(1)};
  s.live_nodes.at(*r2.owner).mergeable = {RangeId(2)};
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.id, RangeId(2));
  EXPECT_EQ(plan.writes[0].record.move_to, r1.owner);
  EXPECT_NE(plan.writes[0].reason.find("so that they merge"), std::string::npos)
      << plan.writes[0].reason;
  // Only one of the two reported: nothing to bring together.
  s.live_nodes.at(*r2.owner).mergeable.clear();
  for (const RangeWrite& w : PlanReconcile(s).writes) EXPECT_NE(w.record.id, RangeId(2));
}

// Replica moves (planner.h rule 11 and the replica balance).

// What the owners do meanwhile: a move's target that is live joins the ISR
// (it caught up), and an owner asked to hand a range over does so.
void OwnersCatchUp(ClusterSnapshot& s) {
  for (auto& [id, z] : s.ranges) {
    cluster::RangeInfo& r = *z.info;
    if (r.move_replica && s.live_nodes.count(r.move_replica->to) &&
        std::find(r.isr.begin(), r.isr.end(), r.move_replica->to) == r.isr.end()) {
      r.AddToIsr(r.move_replica->to, "");
    }
    if (r.move_to) {
      r.owner = *r.move_to;
      r.epoch = Epoch(r.epoch.value() + 1);
      r.move_to.reset();
    }
  }
}

std::map<NodeId, int> ReplicasPerNode(const ClusterSnapshot& s) {
  std::map<NodeId, int> out;
  for (const auto& [id, z] : s.ranges) {
    for (const NodeId& n : z.info->replicas) ++out[n];
  }
  return out;
}

TEST(PlannerReplicaMove, NodeAddedToARunningClusterIsGivenReplicasOneMoveAtATime) {
  ClusterSnapshot s = Bootstrapped(Config(3, 4), {"n1", "n2", "n3"});
  s.balance = true;
  s.moves_per_node = 1;
  s.live_nodes = Live({"n1", "n2", "n3", "n4"});
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const RangeWrite first = plan.writes[0];
  EXPECT_EQ(first.kind, WriteKind::kMoveReplica);
  ASSERT_TRUE(first.record.move_replica.has_value());
  EXPECT_EQ(first.record.move_replica->to, NodeId("n4"));
  EXPECT_NE(first.record.owner, first.record.move_replica->from);  // no transfer needed
  EXPECT_EQ(first.record.replicas.size(), 4u);                     // n4 added, not in sync
  EXPECT_EQ(first.record.isr.size(), 3u);
  EXPECT_TRUE(Consistent(first.record));
  Apply(plan, s);
  // While it copies, nothing else moves.
  EXPECT_TRUE(PlanReconcile(s).empty());
  // Once the owner took n4 into the ISR, the source leaves.
  OwnersCatchUp(s);
  plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kMoveReplica);
  const cluster::RangeInfo& done = plan.writes[0].record;
  EXPECT_FALSE(done.move_replica.has_value());
  EXPECT_EQ(done.replicas.size(), 3u);
  EXPECT_EQ(done.isr.size(), 3u);
  EXPECT_EQ(std::count(done.replicas.begin(), done.replicas.end(), first.record.move_replica->from),
            0);
  EXPECT_TRUE(Consistent(done));
  // And so on until every node holds its share: 12 copies over 4 nodes.
  for (int i = 0; i < 40; ++i) {
    Apply(plan, s);
    OwnersCatchUp(s);
    plan = PlanReconcile(s);
    if (plan.empty()) break;
  }
  EXPECT_TRUE(plan.empty());
  for (const auto& [id, z] : s.ranges) {
    EXPECT_TRUE(Consistent(*z.info));
    EXPECT_EQ(z.info->replicas.size(), 3u);
  }
  for (const auto& [node, n] : ReplicasPerNode(s)) EXPECT_EQ(n, 3) << node.str();
}

// Bytes held per node, as the owners report them (all in n1's report here).
std::map<NodeId, uint64_t> BytesPerNode(const ClusterSnapshot& s) {
  std::map<NodeId, uint64_t> out;
  const auto& bytes = s.live_nodes.at(NodeId("n1")).bytes;
  for (const auto& [id, z] : s.ranges) {
    for (const NodeId& n : z.info->replicas) out[n] += bytes.at(id);
  }
  return out;
}

constexpr uint64_t kMiB = uint64_t{1} << 20;

// Once the copies hold kBytesBalanceFloor or more, they spread by bytes: a
// node added to three that hold three 100 MiB ranges and three of 10 MiB
// takes the big ones first, and the nodes end as close as 100 MiB pieces
// allow (nine big copies over four nodes: one node holds three).
TEST(PlannerReplicaMove, CopiesSpreadByBytesOnceTheClusterHoldsEnough) {
  ClusterSnapshot s = Bootstrapped(Config(3, 6), {"n1", "n2", "n3"});
  s.balance = true;
  s.live_nodes = Live({"n1", "n2", "n3", "n4"});
  for (uint64_t i = 1; i <= 6; ++i) {
    s.live_nodes.at(NodeId("n1")).bytes[RangeId(i)] = (i <= 3 ? 100 : 10) * kMiB;
  }
  Plan plan = PlanReconcile(s);
  ASSERT_FALSE(plan.writes.empty());
  for (const RangeWrite& w : plan.writes) {
    ASSERT_TRUE(w.record.move_replica.has_value());
    EXPECT_EQ(w.record.move_replica->to, NodeId("n4"));
    EXPECT_LE(w.record.id.value(), 3u) << "a 100 MiB range first";
    EXPECT_NE(w.reason.find("bytes"), std::string::npos) << w.reason;
  }
  for (int i = 0; i < 40 && !plan.empty(); ++i) {
    Apply(plan, s);
    OwnersCatchUp(s);
    plan = PlanReconcile(s);
  }
  EXPECT_TRUE(plan.empty());
  const std::map<NodeId, uint64_t> held = BytesPerNode(s);
  ASSERT_EQ(held.size(), 4u);
  for (const auto& [node, b] : held) {
    EXPECT_GE(b, 200 * kMiB) << node.str();
    EXPECT_LE(b, 300 * kMiB) << node.str();
  }
  for (const auto& [id, z] : s.ranges) EXPECT_TRUE(Consistent(*z.info));
}

// While a range's bytes are not reported, big copies do not move: a move by
// count could be undone by the next round's by bytes.
TEST(PlannerReplicaMove, BigCopiesWaitForEveryRangesBytes) {
  ClusterSnapshot s = Bootstrapped(Config(3, 6), {"n1", "n2", "n3"});
  s.balance = true;
  s.live_nodes = Live({"n1", "n2", "n3", "n4"});
  for (uint64_t i = 1; i <= 5; ++i) s.live_nodes.at(NodeId("n1")).bytes[RangeId(i)] = 100 * kMiB;
  EXPECT_TRUE(PlanReconcile(s).empty());
  s.live_nodes.at(NodeId("n1")).bytes[RangeId(6)] = 100 * kMiB;
  EXPECT_FALSE(PlanReconcile(s).empty());
}

// Two nodes added at once: each takes up to moves_per_node copies at a
// time (one move per range), no more until one of them is done, and the
// copies end up spread evenly.
TEST(PlannerReplicaMove, AddedNodesTakeUpToTheLimitOfCopiesAtOnce) {
  ClusterSnapshot s = Bootstrapped(Config(3, 6), {"n1", "n2", "n3"});
  s.balance = true;
  ASSERT_EQ(s.moves_per_node, 2);  // the default
  s.live_nodes = Live({"n1", "n2", "n3", "n4", "n5"});
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 4u);
  std::map<NodeId, int> inbound;
  std::set<RangeId> ranges;
  for (const RangeWrite& w : plan.writes) {
    ASSERT_TRUE(w.record.move_replica.has_value());
    EXPECT_TRUE(Consistent(w.record));
    ++inbound[w.record.move_replica->to];
    ranges.insert(w.record.id);
  }
  EXPECT_EQ(inbound, (std::map<NodeId, int>{{NodeId("n4"), 2}, {NodeId("n5"), 2}}));
  EXPECT_EQ(ranges.size(), 4u);
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty()) << "both targets are at their limit";
  int rounds = 0;
  for (; rounds < 60; ++rounds) {
    OwnersCatchUp(s);
    plan = PlanReconcile(s);
    if (plan.empty()) break;
    Apply(plan, s);
    std::map<NodeId, int> now;
    for (const auto& [id, z] : s.ranges) {
      if (z.info->move_replica) ++now[z.info->move_replica->to];
    }
    for (const auto& [n, k] : now) EXPECT_LE(k, 2) << n.str();
  }
  EXPECT_TRUE(plan.empty());
  for (const auto& [id, z] : s.ranges) {
    EXPECT_TRUE(Consistent(*z.info));
    EXPECT_EQ(z.info->replicas.size(), 3u);
    EXPECT_FALSE(z.info->move_replica.has_value());
  }
  for (const auto& [node, n] : ReplicasPerNode(s)) {
    EXPECT_TRUE(n == 3 || n == 4) << node.str() << " holds " << n;  // 18 copies over 5
  }
}

TEST(PlannerReplicaMove, TheOwnersReplicaMovesAfterItHandedTheRangeOver) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3"});
  s.live_nodes = Live({"n1", "n2", "n3", "n4"});
  cluster::RangeInfo& r = *s.ranges.at(RangeId(1)).info;
  const NodeId owner = *r.owner;
  r.replicas.push_back(NodeId("n4"));
  r.move_replica = cluster::ReplicaMove{owner, NodeId("n4")};
  EXPECT_TRUE(PlanReconcile(s).empty());  // copying
  r.AddToIsr(NodeId("n4"), "");
  s.live_nodes.at(NodeId("n4")).suspect = true;
  EXPECT_TRUE(PlanReconcile(s).empty());  // not fit to own yet: no ask
  s.live_nodes.at(NodeId("n4")).suspect = false;
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.move_to, NodeId("n4"));  // the owner hands it over first
  EXPECT_EQ(plan.writes[0].record.owner, owner);
  EXPECT_EQ(plan.writes[0].record.replicas.size(), 4u);
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());  // the owner's handoff is awaited
  OwnersCatchUp(s);
  plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const cluster::RangeInfo& done = plan.writes[0].record;
  EXPECT_EQ(done.owner, NodeId("n4"));
  EXPECT_FALSE(done.move_replica.has_value());
  EXPECT_EQ(std::count(done.replicas.begin(), done.replicas.end(), owner), 0);
  EXPECT_TRUE(Consistent(done));
}

// Moves whose source owns its range hand the ranges over one at a time:
// each handoff pauses that range's writes, and several at once (a drain of
// an owner) made one long stall.
TEST(PlannerReplicaMove, OwnersHandOverOneRangeAtATime) {
  ClusterSnapshot s = Bootstrapped(Config(3, 6), {"n1", "n2", "n3"});
  s.live_nodes = Live({"n1", "n2", "n3", "n4"});
  std::vector<RangeId> moving;
  for (auto& [id, z] : s.ranges) {
    cluster::RangeInfo& r = *z.info;
    if (r.owner != NodeId("n1")) continue;
    r.replicas.push_back(NodeId("n4"));
    r.move_replica = cluster::ReplicaMove{NodeId("n1"), NodeId("n4")};
    r.AddToIsr(NodeId("n4"), "");  // caught up
    moving.push_back(id);
  }
  ASSERT_GE(moving.size(), 2u);
  Plan plan = PlanReconcile(s);
  int asked = 0;
  for (const RangeWrite& w : plan.writes) asked += w.record.move_to.has_value() ? 1 : 0;
  EXPECT_EQ(asked, 1);
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty()) << "a handoff is under way";
  for (int i = 0; i < 20; ++i) {
    OwnersCatchUp(s);
    plan = PlanReconcile(s);
    if (plan.empty()) break;
    asked = 0;
    for (const RangeWrite& w : plan.writes) asked += w.record.move_to.has_value() ? 1 : 0;
    EXPECT_LE(asked, 1);
    Apply(plan, s);
  }
  for (RangeId id : moving) {
    const cluster::RangeInfo& r = *s.ranges.at(id).info;
    EXPECT_EQ(r.owner, NodeId("n4"));
    EXPECT_FALSE(r.move_replica.has_value());
    EXPECT_TRUE(Consistent(r));
  }
}

// Range 1 on n1..n3, its last replica moving to n4, which has not been
// live for `gone`.
ClusterSnapshot MovingToAGoneTarget(std::chrono::milliseconds gone) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3"});
  cluster::RangeInfo& r = *s.ranges.at(RangeId(1)).info;
  const NodeId from = r.replicas.back();
  r.replicas.push_back(NodeId("n4"));
  r.move_replica = cluster::ReplicaMove{from, NodeId("n4")};
  s.dead_for[NodeId("n4")] = gone;
  return s;
}

TEST(PlannerReplicaMove, ATargetGoneBeforeItCaughtUpIsTakenOutAgain) {
  Plan plan = PlanReconcile(MovingToAGoneTarget(kMoveTargetGrace + std::chrono::milliseconds(1)));
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kMoveReplica);
  const cluster::RangeInfo& back = plan.writes[0].record;
  EXPECT_FALSE(back.move_replica.has_value());
  EXPECT_EQ(back.replicas, Ids({"n1", "n2", "n3"}));
  EXPECT_NE(plan.writes[0].reason.find("dropped"), std::string::npos) << plan.writes[0].reason;
}

// Killed and started again at once, a target resumes its copy: the move
// waits for it, and the coordinator looks again when the grace ends.
TEST(PlannerReplicaMove, ATargetGoneForLessThanTheGraceKeepsItsMove) {
  Plan plan = PlanReconcile(MovingToAGoneTarget(std::chrono::milliseconds(2000)));
  EXPECT_TRUE(plan.writes.empty()) << plan.writes[0].reason;
  ASSERT_TRUE(plan.recheck_after.has_value());
  EXPECT_EQ(*plan.recheck_after, kMoveTargetGrace - std::chrono::milliseconds(1999));
}

TEST(PlannerReplicaMove, ReplicasThatDifferByOneStayPut) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3"});
  s.balance = true;
  s.live_nodes = Live({"n1", "n2", "n3", "n4"});  // 1, 1, 1, 0
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerReplicaMove, DecommissionMovesEveryCopyOffTheNodeEvenWithBalanceOff) {
  ClusterSnapshot s = Bootstrapped(Config(3, 4), {"n1", "n2", "n3", "n4"});
  s.balance = false;
  s.draining = {NodeId("n2")};
  Plan plan = PlanReconcile(s);
  for (int i = 0; i < 60 && !plan.empty(); ++i) {
    for (const RangeWrite& w : plan.writes) {
      EXPECT_TRUE(Consistent(w.record));
      // Never a target: no new copy of anything lands on n2.
      if (w.record.move_replica) {
        EXPECT_NE(w.record.move_replica->to, NodeId("n2"));
      }
    }
    Apply(plan, s);
    OwnersCatchUp(s);
    plan = PlanReconcile(s);
  }
  EXPECT_TRUE(plan.empty());
  auto held = ReplicasPerNode(s);
  EXPECT_EQ(held.count(NodeId("n2")), 0u) << "n2 still holds copies";
  for (const auto& [id, z] : s.ranges) {
    EXPECT_EQ(z.info->replicas.size(), 3u);
    EXPECT_NE(z.info->owner, NodeId("n2"));
  }
}

// A drain moves several copies at once, never more into one node than
// moves_per_node.
TEST(PlannerReplicaMove, ADrainMovesSeveralCopiesAtOnceWithinTheLimit) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3", "n4", "n5", "n6"});
  s.draining = {NodeId("n1")};
  s.moves_per_node = 1;
  const int held = ReplicasPerNode(s)[NodeId("n1")];
  ASSERT_GE(held, 3);
  Plan plan = PlanReconcile(s);
  ASSERT_GE(plan.writes.size(), 2u);
  std::set<NodeId> targets;
  for (const RangeWrite& w : plan.writes) {
    ASSERT_TRUE(w.record.move_replica.has_value());
    EXPECT_EQ(w.record.move_replica->from, NodeId("n1"));
    EXPECT_TRUE(targets.insert(w.record.move_replica->to).second)
        << "two moves into " << w.record.move_replica->to.str();
  }
}

TEST(PlannerReplicaMove, DecommissionWithNoNodeToTakeTheCopySaysSo) {
  ClusterSnapshot s = Bootstrapped(Config(3, 2), {"n1", "n2", "n3"});
  s.draining = {NodeId("n3")};
  Plan plan = PlanReconcile(s);
  EXPECT_TRUE(plan.writes.empty());
  ASSERT_FALSE(plan.notes.empty());
  EXPECT_NE(plan.notes[0].find("cannot finish decommissioning n3"), std::string::npos)
      << plan.notes[0];
}

TEST(PlannerReplicaMove, ADrainingNodeIsNeitherANewReplicaNorAPreferredOwner) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3"});
  s.live_nodes = Live({"n1", "n2", "n3", "n4"});
  s.draining = {NodeId("n3")};
  cluster::RangeInfo& r = *s.ranges.at(RangeId(1)).info;
  ASSERT_EQ(r.replicas, Ids({"n1", "n2", "n3"}));
  r.replicas = Ids({"n1", "n2"});  // below rf: rule 9 adds n4, not draining n3
  r.isr = r.replicas;
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.replicas, Ids({"n1", "n2", "n4"}));
  // The owner dies: of two in-sync candidates the one not draining owns.
  r.replicas = Ids({"n1", "n2", "n3"});
  r.isr = r.replicas;
  s.draining = {NodeId("n2")};
  s.live_nodes.erase(NodeId("n1"));
  plan = PlanReconcile(s);
  ASSERT_FALSE(plan.writes.empty());
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kPromote);
  EXPECT_EQ(plan.writes[0].record.owner, NodeId("n3"));
}

}  // namespace
}  // namespace rangekv::coordinator
