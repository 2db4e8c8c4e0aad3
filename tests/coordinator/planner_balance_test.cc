// Balance (coordinator/planner.h, PlanBalance): owners move between
// in-sync replicas by the load the nodes report, or by ranges owned when
// the cluster is idle; one move at a time.
#include <gtest/gtest.h>

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

TEST(PlannerBalance, IdleClusterSpreadsRangesOwnedOneMoveAtATime) {
  ClusterSnapshot s = AllOnN1();
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kBalance);
  ASSERT_TRUE(plan.writes[0].record.move_to.has_value());
  EXPECT_NE(*plan.writes[0].record.move_to, NodeId("n1"));
  EXPECT_EQ(plan.writes[0].record.owner, NodeId("n1"));  // the owner moves it itself
  Apply(plan, s);
  // While the ask stands, nothing else moves.
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
  ASSERT_EQ(plan.writes.size(), 1u);
  // Gap 4000 (n1) - 0: the range nearest 2000 below the gap is range 4.
  EXPECT_EQ(plan.writes[0].record.id, RangeId(4));
  EXPECT_NE(plan.writes[0].reason.find("req/s"), std::string::npos) << plan.writes[0].reason;
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
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.id, RangeId(3));
  s.recently_moved = {RangeId(1), RangeId(2), RangeId(3), RangeId(4)};
  EXPECT_TRUE(PlanReconcile(s).empty());
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

}  // namespace
}  // namespace rangekv::coordinator
