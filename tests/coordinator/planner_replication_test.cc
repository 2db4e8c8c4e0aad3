// Unit tests of the planner's replication rules (coordinator/planner.h rules
// 1, 2 and 6-10): promotion of an ISR member, ISR shrink, replacement of
// dead replicas, filling up to rf, and the invariants of every record.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "coordinator/planner.h"
#include "tests/coordinator/planner_test_util.h"

namespace rangekv::coordinator {
namespace {

using cluster::RangeInfo;
using cluster::RangeState;
using planner_test::Apply;
using planner_test::Bootstrapped;
using planner_test::Config;
using planner_test::Consistent;
using planner_test::Ids;
using planner_test::Live;
using std::chrono::milliseconds;

const RangeWrite* WriteFor(const Plan& plan, uint64_t id) {
  for (const RangeWrite& w : plan.writes) {
    if (w.record.id == RangeId(id)) return &w;
  }
  return nullptr;
}

std::vector<NodeId> Without(std::vector<NodeId> ids, const std::string& gone) {
  ids.erase(std::remove(ids.begin(), ids.end(), NodeId(gone)), ids.end());
  return ids;
}

bool Has(const std::vector<NodeId>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), NodeId(id)) != ids.end();
}

// Bootstrapped(rf 3, 8 ranges, n1..n3): range i is owned by n((i-1)%3+1),
// so n1 owns 1,4,7, n2 owns 2,5,8, n3 owns 3,6; everyone replicates all.
TEST(PlannerFailover, DeadOwnersRangesGoToLiveIsrMembersSpreadWithEpochPlusOne) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  const ClusterSnapshot before = s;
  s.live_nodes.erase(NodeId("n1"));
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 8u);  // 3 promotions, 5 ISR shrinks
  std::map<NodeId, int> owned;
  for (const RangeWrite& w : plan.writes) {
    const RangeInfo& old = *before.ranges.at(w.record.id).info;
    EXPECT_TRUE(Consistent(w.record));
    EXPECT_EQ(w.record.replicas, old.replicas) << "the old owner stays a replica";
    EXPECT_EQ(w.record.isr, Without(old.isr, "n1"));
    EXPECT_EQ(w.record.state, RangeState::kActive);
    ++owned[*w.record.owner];
    if (*old.owner == NodeId("n1")) {
      EXPECT_EQ(w.kind, WriteKind::kPromote) << w.reason;
      EXPECT_EQ(w.deposed, NodeId("n1"));
      EXPECT_NE(*w.record.owner, NodeId("n1"));
      EXPECT_EQ(w.record.epoch, Epoch(2));
      EXPECT_NE(w.reason.find("promoted ISR member"), std::string::npos) << w.reason;
    } else {
      EXPECT_EQ(w.kind, WriteKind::kShrinkIsr) << w.reason;
      EXPECT_EQ(w.record.owner, old.owner);
      EXPECT_EQ(w.record.epoch, Epoch(1));
      EXPECT_FALSE(w.deposed.has_value());
    }
  }
  // n2 owned 3 and n3 owned 2; the 3 promotions even that out to 4 and 4.
  EXPECT_EQ(owned, (std::map<NodeId, int>{{NodeId("n2"), 4}, {NodeId("n3"), 4}}));
  // The first promotion (range 1) goes to the least-loaded member, n3.
  EXPECT_EQ(*WriteFor(plan, 1)->record.owner, NodeId("n3"));
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());

  // The old owner returns as a plain replica: nothing moves back, and it
  // stays out of the ISR until the owner adds it.
  s.live_nodes = before.live_nodes;
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerFailover, EpochFollowsTheHighestEpochEverSeen) {
  ClusterSnapshot s = Bootstrapped(Config(3, 3), {"n1", "n2", "n3"});
  s.known_epochs[RangeId(1)] = Epoch(9);
  s.live_nodes.erase(NodeId("n1"));
  const Plan plan = PlanReconcile(s);
  const RangeWrite* w = WriteFor(plan, 1);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->kind, WriteKind::kPromote);
  EXPECT_EQ(w->record.epoch, Epoch(10));
}

TEST(PlannerFailover, NeverPromotesAReplicaOutsideTheIsr) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3"});
  RangeInfo& r = *s.ranges.at(RangeId(1)).info;
  r.isr = Ids({"n1", "n2"});
  s.live_nodes.erase(NodeId("n1"));
  s.live_nodes.erase(NodeId("n2"));
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const RangeWrite& w = plan.writes[0];
  EXPECT_EQ(w.kind, WriteKind::kMarkUnavailable);
  EXPECT_EQ(*w.record.owner, NodeId("n1"));
  EXPECT_EQ(w.record.epoch, Epoch(1));
  // The ISR is kept: n2 still holds every committed write and may return.
  EXPECT_EQ(w.record.isr, Ids({"n1", "n2"}));
  EXPECT_EQ(w.record.replicas, r.replicas);
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());

  // n2 (in the ISR) comes back first: it is promoted, the range is active.
  // n1 stays in the ISR while the ISR is no larger than min-insync: it
  // still holds every committed write should n2 fail before n3 catches up.
  s.live_nodes = Live({"n2", "n3"});
  plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kPromote);
  EXPECT_EQ(*plan.writes[0].record.owner, NodeId("n2"));
  EXPECT_EQ(plan.writes[0].record.isr, Ids({"n2", "n1"}));
  EXPECT_EQ(plan.writes[0].record.epoch, Epoch(2));
  EXPECT_EQ(plan.writes[0].record.state, RangeState::kActive);
}

// Every in-sync copy is suspect (each may have lost a suffix of its log):
// the owner goes to one whose log reaches furthest, by epoch and then seq
// (a copy that lists no end for the range counts as empty); a trusted copy
// still comes before any suspect one.
TEST(PlannerFailover, AmongSuspectIsrMembersTheFurthestLogIsPromoted) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3"});
  RangeInfo& r = *s.ranges.at(RangeId(1)).info;
  r.owner_life = "before";  // n1 restarted since it was made owner
  auto suspect = [&](const std::string& id, uint64_t epoch, uint64_t seq) {
    cluster::NodeInfo& n = s.live_nodes.at(NodeId(id));
    n.life = "now";
    n.suspect = true;
    n.log_ends.clear();
    if (seq > 0) n.log_ends[RangeId(1)] = cluster::LogEnd{Epoch(epoch), Seq(seq)};
  };
  auto promoted = [&]() -> std::string {
    Plan plan = PlanReconcile(s);
    const RangeWrite* w = WriteFor(plan, 1);
    if (w == nullptr || w->kind != WriteKind::kPromote) return "none";
    return w->record.owner->str();
  };
  suspect("n1", 1, 10);
  suspect("n2", 1, 12);
  suspect("n3", 0, 0);
  EXPECT_EQ(promoted(), "n2");
  suspect("n3", 2, 3);  // a newer epoch follows everything committed before it
  EXPECT_EQ(promoted(), "n3");
  suspect("n3", 1, 12);  // a tie: the load order decides between n2 and n3
  const std::string tied = promoted();
  EXPECT_TRUE(tied == "n2" || tied == "n3") << tied;
  s.live_nodes.at(NodeId("n1")).suspect = false;  // trusted, though shorter
  EXPECT_EQ(promoted(), "n1");
}

TEST(PlannerFailover, UnavailableRangeWhoseOwnerReturnsIsActiveAndShedsDeadIsrMembers) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3"});
  s.live_nodes.clear();
  Apply(PlanReconcile(s), s);
  ASSERT_EQ(s.ranges.at(RangeId(1)).info->state, RangeState::kUnavailable);
  s.live_nodes = Live({"n1"});  // the owner, alone
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kMarkActive);
  EXPECT_EQ(*plan.writes[0].record.owner, NodeId("n1"));
  EXPECT_EQ(plan.writes[0].record.epoch, Epoch(1));
  // Dead members leave only down to min-insync (2): n3 stays a candidate.
  EXPECT_EQ(plan.writes[0].record.isr, Ids({"n1", "n3"}));
  EXPECT_NE(plan.writes[0].reason.find("n2 not live: removed from isr"), std::string::npos)
      << plan.writes[0].reason;
}

TEST(PlannerIsr, DeadNonOwnerMemberLeavesTheIsrOwnerStays) {
  ClusterSnapshot s = Bootstrapped(Config(3, 3), {"n1", "n2", "n3"});
  s.live_nodes.erase(NodeId("n3"));
  s.ranges.at(RangeId(3)).info->owner = NodeId("n1");  // so n3 owns nothing
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 3u);
  for (const RangeWrite& w : plan.writes) {
    EXPECT_EQ(w.kind, WriteKind::kShrinkIsr) << w.reason;
    EXPECT_FALSE(Has(w.record.isr, "n3"));
    EXPECT_TRUE(Has(w.record.replicas, "n3"));  // replaced only after replace_after
    EXPECT_TRUE(Consistent(w.record));
  }
}

TEST(PlannerReplace, NamedReplacementTakesTheDeadNodesPlaceEverywhere) {
  ClusterSnapshot s = Bootstrapped(Config(3, 8), {"n1", "n2", "n3"});
  s.live_nodes.erase(NodeId("n1"));
  cluster::NodeInfo n4;
  n4.id = NodeId("n4");
  n4.address = "127.0.0.1:7004";
  n4.replaces = NodeId("n1");
  s.live_nodes.emplace(n4.id, n4);
  cluster::NodeInfo n5 = n4;  // a second claim on n1: the smaller id wins
  n5.id = NodeId("n5");
  s.live_nodes.emplace(n5.id, n5);
  const ClusterSnapshot before = s;
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 8u);
  for (const RangeWrite& w : plan.writes) {
    const RangeInfo& old = *before.ranges.at(w.record.id).info;
    EXPECT_TRUE(Consistent(w.record));
    std::vector<NodeId> replicas = old.replicas;
    std::replace(replicas.begin(), replicas.end(), NodeId("n1"), NodeId("n4"));
    EXPECT_EQ(w.record.replicas, replicas) << "same place, n4 for n1";
    EXPECT_FALSE(Has(w.record.isr, "n1"));
    EXPECT_FALSE(Has(w.record.isr, "n4")) << "it recovers before joining the isr";
    EXPECT_FALSE(Has(w.record.replicas, "n5"));
    EXPECT_NE(w.reason.find("n4 replaces dead n1"), std::string::npos) << w.reason;
    // A dead owner is first succeeded by an ISR member, then replaced.
    EXPECT_EQ(w.kind, *old.owner == NodeId("n1") ? WriteKind::kPromote : WriteKind::kShrinkIsr);
  }
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerReplace, NamedReplacementWaitsWhileTheDeadNodeOwnsAnUnavailableRange) {
  ClusterSnapshot s = Bootstrapped(Config(1, 1), {"n1"});
  s.live_nodes = Live({"n4"});
  s.live_nodes.at(NodeId("n4")).replaces = NodeId("n1");
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kMarkUnavailable);
  EXPECT_EQ(plan.writes[0].record.replicas, Ids({"n1"}));

  // A live D is not replaced either: it is not dead.
  ClusterSnapshot t = Bootstrapped(Config(2, 2), {"n1", "n2"});
  cluster::NodeInfo n4;
  n4.id = NodeId("n4");
  n4.address = "h:4";
  n4.replaces = NodeId("n2");
  t.live_nodes.emplace(n4.id, n4);
  EXPECT_TRUE(PlanReconcile(t).empty());
}

TEST(PlannerReplace, ReplicaDeadLongerThanReplaceAfterGoesToTheLeastReplicatedNonMember) {
  // 4 nodes, rf 3, 4 ranges: each range leaves one node out.
  ClusterSnapshot s = Bootstrapped(Config(3, 4), {"n1", "n2", "n3", "n4"});
  s.live_nodes.erase(NodeId("n2"));
  s.replace_after = milliseconds(30000);
  s.dead_for[NodeId("n2")] = milliseconds(10000);
  const ClusterSnapshot before = s;
  // Not dead long enough: the ISR shrinks and the owner moves, no more.
  for (const RangeWrite& w : PlanReconcile(s).writes) {
    EXPECT_TRUE(Has(w.record.replicas, "n2")) << w.reason;
    EXPECT_TRUE(w.kind == WriteKind::kShrinkIsr || w.kind == WriteKind::kPromote);
  }
  s.dead_for[NodeId("n2")] = milliseconds(30001);
  Plan plan = PlanReconcile(s);
  int replaced = 0;
  for (const RangeWrite& w : plan.writes) {
    const RangeInfo& old = *before.ranges.at(w.record.id).info;
    EXPECT_TRUE(Consistent(w.record));
    EXPECT_EQ(w.record.replicas.size(), 3u);
    if (!Has(old.replicas, "n2")) continue;
    EXPECT_FALSE(Has(w.record.replicas, "n2")) << w.reason;
    // The only live non-member of such a range is the node it left out.
    std::set<NodeId> in(old.replicas.begin(), old.replicas.end());
    NodeId left_out("n1");
    for (const char* id : {"n1", "n3", "n4"}) {
      if (!in.count(NodeId(id))) left_out = NodeId(id);
    }
    EXPECT_TRUE(Has(w.record.replicas, left_out.str())) << w.reason;
    EXPECT_FALSE(Has(w.record.isr, left_out.str()));
    EXPECT_NE(w.reason.find("replaced by " + left_out.str()), std::string::npos) << w.reason;
    ++replaced;
  }
  EXPECT_EQ(replaced, 3);
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());
}

// A long-dead replica that is one of only min-insync ISR members still
// holds every committed write: were it dropped, the owner would be the
// last copy. Its replacement is added first (replicas above rf for a
// while); once the owner has taken the replacement into the ISR, the dead
// one leaves the ISR (rule 6) and then the replicas.
TEST(PlannerReplace, DeadIsrMemberAtMinInsyncStaysUntilItsReplacementIsInSync) {
  ClusterSnapshot s = Bootstrapped(Config(3, 1), {"n1", "n2", "n3", "n4"});
  RangeInfo& r = *s.ranges.at(RangeId(1)).info;
  ASSERT_EQ(*r.owner, NodeId("n1"));
  r.replicas = Ids({"n1", "n2", "n3"});
  r.SetIsr(Ids({"n1", "n2"}));  // n3 lags behind
  s.live_nodes.erase(NodeId("n2"));
  s.replace_after = milliseconds(1000);
  s.dead_for[NodeId("n2")] = milliseconds(5000);

  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const RangeInfo& added = plan.writes[0].record;
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kReplace);
  EXPECT_EQ(added.isr, Ids({"n1", "n2"})) << plan.writes[0].reason;
  EXPECT_EQ(added.replicas, Ids({"n1", "n2", "n3", "n4"})) << plan.writes[0].reason;
  EXPECT_TRUE(Consistent(added));
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty()) << "the replacement is added once";

  s.ranges.at(RangeId(1)).info->AddToIsr(NodeId("n4"), "");  // caught up
  plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].record.isr, Ids({"n1", "n4"})) << plan.writes[0].reason;
  EXPECT_EQ(plan.writes[0].record.replicas, Ids({"n1", "n3", "n4"})) << plan.writes[0].reason;
  Apply(plan, s);
  EXPECT_TRUE(PlanReconcile(s).empty());
}

TEST(PlannerReplace, NothingToReplaceWithOrSwitchedOff) {
  ClusterSnapshot s = Bootstrapped(Config(3, 3), {"n1", "n2", "n3"});
  s.live_nodes.erase(NodeId("n2"));
  s.dead_for[NodeId("n2")] = milliseconds(3600000);
  s.replace_after = milliseconds(1000);
  Apply(PlanReconcile(s), s);  // shrink + promote; no live non-member exists
  for (const auto& [id, z] : s.ranges) EXPECT_TRUE(Has(z.info->replicas, "n2"));
  EXPECT_TRUE(PlanReconcile(s).empty());

  s.live_nodes.emplace(NodeId("n9"), Live({"n9"}).at(NodeId("n9")));
  s.replace_after = milliseconds(0);  // off
  EXPECT_TRUE(PlanReconcile(s).empty());
  s.replace_after = milliseconds(1000);
  EXPECT_EQ(PlanReconcile(s).writes.size(), 3u);
}

TEST(PlannerReplicas, RangeBelowRfGetsLiveNonMembersAsReplicasNotIsr) {
  ClusterSnapshot s = Bootstrapped(Config(3, 3), {"n1", "n2", "n3", "n4"});
  RangeInfo& r = *s.ranges.at(RangeId(2)).info;
  r.replicas = {*r.owner};
  r.isr = {*r.owner};
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  const RangeWrite& w = plan.writes[0];
  EXPECT_EQ(w.kind, WriteKind::kAddReplica);
  EXPECT_EQ(w.record.replicas.size(), 3u);
  EXPECT_EQ(w.record.replicas.front(), *r.owner);
  EXPECT_EQ(w.record.isr, std::vector<NodeId>{*r.owner});
  EXPECT_EQ(w.record.epoch, r.epoch);
  EXPECT_TRUE(Consistent(w.record));
}

TEST(PlannerReplicas, RecordBreakingTheInvariantsIsNormalised) {
  ClusterSnapshot s = Bootstrapped(Config(2, 2), {"n1", "n2"});
  RangeInfo& r = *s.ranges.at(RangeId(1)).info;  // owner n1, replicas n1,n2
  r.isr = Ids({"n2", "n7"});                     // owner missing, n7 no replica
  Plan plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  // n7 is not live either, but the ISR is no larger than min-insync, so
  // it is the invariants (rule 10) that drop it.
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kRepair);
  EXPECT_EQ(plan.writes[0].record.isr, Ids({"n1", "n2"}));
  EXPECT_TRUE(Consistent(plan.writes[0].record));

  r.isr = Ids({"n2"});
  plan = PlanReconcile(s);
  ASSERT_EQ(plan.writes.size(), 1u);
  EXPECT_EQ(plan.writes[0].kind, WriteKind::kRepair);
  EXPECT_EQ(plan.writes[0].record.isr, Ids({"n1", "n2"}));
}

// Every combination of dead nodes over a 4-node, rf-3 cluster, with and
// without replacement: whatever is written keeps the invariants, a range
// never gets an owner outside its previous ISR unless it had none, and a
// second plan over the applied result writes nothing.
TEST(PlannerReplicas, EveryDeadSetKeepsTheInvariantsAndSettlesInOnePlan) {
  const std::vector<std::string> all = {"n1", "n2", "n3", "n4"};
  for (int dead_mask = 0; dead_mask < 16; ++dead_mask) {
    for (int replace : {0, 1}) {
      ClusterSnapshot s = Bootstrapped(Config(3, 8), all);
      const ClusterSnapshot before = s;
      s.replace_after = milliseconds(replace ? 1000 : 0);
      for (int i = 0; i < 4; ++i) {
        if (dead_mask & (1 << i)) {
          s.live_nodes.erase(NodeId(all[i]));
          s.dead_for[NodeId(all[i])] = milliseconds(5000);
        }
      }
      SCOPED_TRACE("dead mask " + std::to_string(dead_mask) + ", replace " +
                   std::to_string(replace));
      Plan plan = PlanReconcile(s);
      for (const RangeWrite& w : plan.writes) {
        const RangeInfo& old = *before.ranges.at(w.record.id).info;
        EXPECT_TRUE(Consistent(w.record)) << w.reason;
        if (w.record.owner != old.owner) {
          EXPECT_TRUE(Has(old.isr, w.record.owner->str())) << w.reason;
          EXPECT_EQ(w.record.epoch, old.epoch.Next());
        }
      }
      Apply(plan, s);
      Plan again = PlanReconcile(s);
      EXPECT_TRUE(again.empty()) << again.writes.front().reason;
    }
  }
}

}  // namespace
}  // namespace rangekv::coordinator
