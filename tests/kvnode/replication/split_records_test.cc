// The map records of a split (MakeSplitRecords) and the id a new range
// takes (NextRangeId).
#include <gtest/gtest.h>

#include "kvnode/replication/replicator.h"

namespace rangekv::kvnode {
namespace {

cluster::RangeInfo Parent() {
  cluster::RangeInfo r;
  r.id = RangeId(3);
  r.bounds = KeyRange("m", std::string("t"));
  r.epoch = Epoch(5);
  r.owner = NodeId("n1");
  r.owner_life = "life1";
  r.replicas = {NodeId("n1"), NodeId("n2"), NodeId("n3")};
  r.SetIsr({NodeId("n1"), NodeId("n2")}, {{NodeId("n1"), "i1"}, {NodeId("n2"), "i2"}});
  r.generation = 2;
  return r;
}

IsrChange SplitAt(std::string key, Epoch epoch = Epoch(5)) {
  IsrChange c{RangeId(3), epoch, NodeId("n1"), false, false, "", false};
  c.split = true;
  c.split_key = std::move(key);
  c.split_seq = Seq(900);
  return c;
}

TEST(SplitRecords, ParentNarrowsAndTheNewRangeTakesTheRestWithTheSameGrants) {
  auto out = MakeSplitRecords(Parent(), SplitAt("p"), NodeId("n1"), RangeId(9));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->parent.bounds, KeyRange("m", std::string("p")));
  EXPECT_EQ(out->child.bounds, KeyRange("p", std::string("t")));
  EXPECT_EQ(out->parent.generation, 3u);
  EXPECT_EQ(out->child.generation, 3u);
  EXPECT_EQ(out->child.id, RangeId(9));
  EXPECT_EQ(out->child.split_parent, RangeId(3));
  EXPECT_EQ(out->child.split_seq, Seq(900));
  EXPECT_EQ(out->parent.split_parent, RangeId(0));
  for (const cluster::RangeInfo* r : {&out->parent, &out->child}) {
    EXPECT_EQ(r->owner, NodeId("n1"));
    EXPECT_EQ(r->owner_life, "life1");
    EXPECT_EQ(r->epoch, Epoch(5));
    EXPECT_EQ(r->replicas, Parent().replicas);
    EXPECT_EQ(r->isr, Parent().isr);
    EXPECT_EQ(r->IsrIncarnation(NodeId("n2")), "i2");
  }
}

TEST(SplitRecords, RefusesKeysOutsideOrAtTheStartAndStaleOwners) {
  for (const char* key : {"m", "a", "t", "z"}) {
    auto out = MakeSplitRecords(Parent(), SplitAt(key), NodeId("n1"), RangeId(9));
    EXPECT_EQ(out.status().code(), Code::kBadRequest) << key;
  }
  EXPECT_EQ(MakeSplitRecords(Parent(), SplitAt("p", Epoch(4)), NodeId("n1"), RangeId(9))
                .status()
                .code(),
            Code::kStaleEpoch);
  EXPECT_EQ(MakeSplitRecords(Parent(), SplitAt("p"), NodeId("n2"), RangeId(9)).status().code(),
            Code::kStaleEpoch);
}

TEST(SplitRecords, NewIdsFollowTheCounterButNeverReuseOne) {
  const std::vector<RangeId> ids{RangeId(1), RangeId(2), RangeId(7)};
  EXPECT_EQ(*NextRangeId(std::nullopt, ids), RangeId(8));
  EXPECT_EQ(*NextRangeId(std::string("12"), ids), RangeId(12));
  EXPECT_EQ(*NextRangeId(std::string("5"), ids), RangeId(8));  // behind the ids in use
  EXPECT_EQ(*NextRangeId(std::nullopt, {}), RangeId(1));
  for (const char* bad : {"", "x", "0", "12a"}) {
    EXPECT_EQ(NextRangeId(std::string(bad), ids).status().code(), Code::kBadRequest) << bad;
  }
}

}  // namespace
}  // namespace rangekv::kvnode
