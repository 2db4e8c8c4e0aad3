#include "common/cluster_map.h"

#include <gtest/gtest.h>

namespace rangekv::cluster {
namespace {

TEST(ClusterMapTest, RangeRoundTripsWithBinaryBounds) {
  RangeInfo r;
  r.id = RangeId(7);
  r.bounds = KeyRange(std::string("\x00\x80", 2), std::string("\xff", 1));
  r.epoch = Epoch(3);
  r.owner = NodeId("n1");
  r.replicas = {NodeId("n1"), NodeId("n2"), NodeId("n3")};
  r.isr = {NodeId("n1"), NodeId("n2")};
  r.state = RangeState::kUnavailable;
  auto back = DecodeRange(EncodeRange(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);

  RangeInfo open;
  open.id = RangeId(1);
  auto back2 = DecodeRange(EncodeRange(open));
  ASSERT_TRUE(back2.ok()) << back2.status().ToString();
  EXPECT_EQ(*back2, open);
  EXPECT_FALSE(back2->owner.has_value());
  EXPECT_TRUE(back2->bounds.unbounded());
}

TEST(ClusterMapTest, SplitFieldsRoundTripAndAreOptional) {
  RangeInfo r;
  r.id = RangeId(12);
  r.bounds = KeyRange("user:5", std::nullopt);
  r.epoch = Epoch(4);
  r.generation = 3;
  r.split_parent = RangeId(2);
  r.split_seq = Seq(1542);
  const std::string text = EncodeRange(r);
  EXPECT_NE(text.find("generation 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("split_from 2@1542\n"), std::string::npos) << text;
  auto back = DecodeRange(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  // A record from before splits existed: generation 0, split from nothing.
  RangeInfo plain;
  plain.id = RangeId(1);
  EXPECT_EQ(EncodeRange(plain).find("generation"), std::string::npos);
  for (const char* bad : {"split_from 2", "split_from @5", "split_from 0@5", "split_from 2@x"}) {
    auto rec = DecodeRange(EncodeRange(plain) + bad + "\n");
    EXPECT_EQ(rec.status().code(), Code::kBadRequest) << bad;
  }
}

TEST(ClusterMapTest, ReplicaMoveRoundTripsAndBadOnesAreRefused) {
  RangeInfo r;
  r.id = RangeId(4);
  r.owner = NodeId("n1");
  r.replicas = {NodeId("n1"), NodeId("n2"), NodeId("n3"), NodeId("n4")};
  r.isr = {NodeId("n1"), NodeId("n2"), NodeId("n3")};
  r.move_replica = ReplicaMove{NodeId("n2"), NodeId("n4")};
  const std::string text = EncodeRange(r);
  EXPECT_NE(text.find("move_replica n2>n4\n"), std::string::npos) << text;
  auto back = DecodeRange(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  RangeInfo plain;
  plain.id = RangeId(1);
  EXPECT_EQ(EncodeRange(plain).find("move_replica"), std::string::npos);
  for (const char* bad : {"move_replica n2", "move_replica n2>", "move_replica >n4",
                          "move_replica n2>n2", "move_replica n2>n/4"}) {
    auto rec = DecodeRange(EncodeRange(plain) + bad + "\n");
    EXPECT_EQ(rec.status().code(), Code::kBadRequest) << bad;
  }
}

TEST(ClusterMapTest, MergeFieldsRoundTripAndBadOnesAreRefused) {
  RangeInfo r;
  r.id = RangeId(7);
  r.bounds = KeyRange("a", std::nullopt);
  r.merge_left = RangeId(3);
  r.merge_left_seq = Seq(1542);
  r.merge_right = RangeId(5);
  r.merge_right_seq = Seq(980);
  r.merge_key = "m";
  const std::string text = EncodeRange(r);
  EXPECT_NE(text.find("merged_from 3@1542,5@980\nmerge_key 6d\n"), std::string::npos) << text;
  auto back = DecodeRange(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  EXPECT_TRUE(back->merged());
  RangeInfo plain;
  plain.id = RangeId(1);
  EXPECT_FALSE(plain.merged());
  EXPECT_EQ(EncodeRange(plain).find("merged_from"), std::string::npos);
  for (const char* bad : {"merged_from 3@1,5@2\n",                   // no merge_key
                          "merged_from 3@1\nmerge_key 6d\n",         // one range
                          "merged_from 0@1,5@2\nmerge_key 6d\n",     // id 0
                          "merged_from 3@1,5@x\nmerge_key 6d\n",     // not a seq
                          "merged_from 3@1,5@2\nmerge_key zz\n"}) {  // not hex
    auto rec = DecodeRange(EncodeRange(plain) + bad);
    EXPECT_EQ(rec.status().code(), Code::kBadRequest) << bad;
  }
}

TEST(ClusterMapTest, HistoryRoundTripsKeepsTheNewestAndRefusesStrayCharacters) {
  RangeInfo r;
  r.id = RangeId(9);
  r.bounds = KeyRange("m", std::nullopt);
  EXPECT_EQ(EncodeRange(r).find("history"), std::string::npos);  // optional
  r.AddHistory({"split-from", "3", ToHex("m"), "1542"});
  r.AddHistory({"handed", "n1>n2", "6"});
  const std::string text = EncodeRange(r);
  EXPECT_NE(text.find("history split-from:3:6d:1542,handed:n1>n2:6\n"), std::string::npos) << text;
  auto back = DecodeRange(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  for (size_t i = 0; i < RangeInfo::kHistoryMax + 5; ++i) {
    r.AddHistory({"promoted", "->n" + std::to_string(i), std::to_string(i)});
  }
  ASSERT_EQ(r.history.size(), RangeInfo::kHistoryMax);
  EXPECT_EQ(r.history.back(), "promoted:->n" + std::to_string(RangeInfo::kHistoryMax + 4) + ":" +
                                  std::to_string(RangeInfo::kHistoryMax + 4));
  RangeInfo plain;
  plain.id = RangeId(1);
  EXPECT_EQ(DecodeRange(EncodeRange(plain) + "history a b\n").status().code(), Code::kBadRequest);
}

TEST(ClusterMapTest, NodeAndConfigRoundTrip) {
  NodeInfo n{NodeId("node-1.a"), "127.0.0.1:7401", "127.0.0.1:9401", 1763772000123, "abc"};
  auto nb = DecodeNode(EncodeNode(n));
  ASSERT_TRUE(nb.ok()) << nb.status().ToString();
  EXPECT_EQ(*nb, n);
  ClusterConfig c{3, 2, 8};
  auto cb = DecodeConfig(EncodeConfig(c));
  ASSERT_TRUE(cb.ok());
  EXPECT_EQ(*cb, c);
}

TEST(ClusterMapTest, NodeReplacesIsOptionalAndRoundTrips) {
  NodeInfo plain{NodeId("n4"), "h:1", "", 5, "inc"};
  std::string text = EncodeNode(plain);
  // Unset: no line at all, so the record is what it was before the field.
  EXPECT_EQ(text.find("replaces"), std::string::npos) << text;
  auto back = DecodeNode(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back->replaces.has_value());

  NodeInfo swap = plain;
  swap.replaces = NodeId("n1");
  text = EncodeNode(swap);
  EXPECT_NE(text.find("\nreplaces n1\n"), std::string::npos) << text;
  back = DecodeNode(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, swap);

  auto dash = DecodeNode("rangekv-node 1\nid n4\naddress h:1\nreplaces -\n");
  ASSERT_TRUE(dash.ok()) << dash.status().ToString();
  EXPECT_FALSE(dash->replaces.has_value());
  auto bad = DecodeNode("rangekv-node 1\nid n4\naddress h:1\nreplaces a/b\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("replaces"), std::string::npos);
}

TEST(ClusterMapTest, NodeUnreachableRoundTripsAndRejectsBadIds) {
  NodeInfo n{NodeId("n2"), "h:1", "", 5, "inc"};
  EXPECT_EQ(EncodeNode(n).find("unreachable"), std::string::npos);
  n.unreachable = {NodeId("n1"), NodeId("n3")};
  const std::string text = EncodeNode(n);
  EXPECT_NE(text.find("\nunreachable n1,n3\n"), std::string::npos) << text;
  auto back = DecodeNode(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, n);
  auto bad = DecodeNode("rangekv-node 1\nid n4\naddress h:1\nunreachable n1,,n2\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unreachable"), std::string::npos);
}

TEST(ClusterMapTest, NodeLogEndsRoundTripAndOrderAsLogs) {
  NodeInfo n{NodeId("n2"), "h:1", "", 5, "inc"};
  EXPECT_EQ(EncodeNode(n).find("log_ends"), std::string::npos);
  n.suspect = true;
  n.log_ends = {{RangeId(1), LogEnd{Epoch(4), Seq(325)}}, {RangeId(7), LogEnd{Epoch(2), Seq(4)}}};
  const std::string text = EncodeNode(n);
  EXPECT_NE(text.find("\nlog_ends 1:4:325,7:2:4\n"), std::string::npos) << text;
  auto back = DecodeNode(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, n);
  EXPECT_EQ(back->LogEndOf(RangeId(7)), (LogEnd{Epoch(2), Seq(4)}));
  EXPECT_EQ(back->LogEndOf(RangeId(3)), LogEnd{});
  // A newer epoch wins over a longer log of an older one.
  EXPECT_LT((LogEnd{Epoch(4), Seq(900)}), (LogEnd{Epoch(5), Seq(1)}));
  EXPECT_LT((LogEnd{Epoch(5), Seq(1)}), (LogEnd{Epoch(5), Seq(2)}));

  for (const char* bad : {"1:4", "1:4:x", "1:4:5,", ":4:5", "1:4:5,1:4:6", "1:4:5;2:1:1", "-1:4:5"}) {
    auto r = DecodeNode(std::string("rangekv-node 1\nid n2\naddress h:1\nlog_ends ") + bad + "\n");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("log_ends"), std::string::npos) << bad;
  }
}

TEST(ClusterMapTest, NodeLoadAndBytesRoundTripAndBadOnesAreRefused) {
  NodeInfo n{NodeId("n2"), "h:1", "", 5, "inc"};
  EXPECT_EQ(EncodeNode(n).find("bytes"), std::string::npos);
  n.load = {{RangeId(1), 523}, {RangeId(4), 12}};
  n.bytes = {{RangeId(1), uint64_t{5} << 32}, {RangeId(4), 900}};
  const std::string text = EncodeNode(n);
  EXPECT_NE(text.find("\nload 1:523,4:12\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nbytes 1:21474836480,4:900\n"), std::string::npos) << text;
  auto back = DecodeNode(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, n);
  for (const std::string field : {"load", "bytes"}) {
    for (const char* bad : {"1", "1:x", "1:5,", ":5", "1:5,1:6", "1:5;2:1"}) {
      auto r = DecodeNode("rangekv-node 1\nid n2\naddress h:1\n" + field + " " + bad + "\n");
      ASSERT_FALSE(r.ok()) << field << " " << bad;
      EXPECT_NE(r.status().message().find(field), std::string::npos) << bad;
    }
  }
  // A load beyond 32 bits is refused; bytes take 64.
  EXPECT_FALSE(DecodeNode("rangekv-node 1\nid n2\naddress h:1\nload 1:4294967296\n").ok());
  EXPECT_TRUE(DecodeNode("rangekv-node 1\nid n2\naddress h:1\nbytes 1:4294967296\n").ok());
}

TEST(ClusterMapTest, ConfigWithInitialSplitsRoundTripsAndCutsThere) {
  ClusterConfig c{3, 2, 3, {"key:3", std::string("key:6\x00", 6)}};
  const std::string text = EncodeConfig(c);
  EXPECT_NE(text.find("\ninitial_splits 6b65793a33,6b65793a3600\n"), std::string::npos) << text;
  auto back = DecodeConfig(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, c);
  const std::vector<KeyRange> split = InitialSplit(c);
  ASSERT_EQ(split.size(), 3u);
  EXPECT_EQ(split[0], KeyRange("", std::string("key:3")));
  EXPECT_EQ(split[1], KeyRange("key:3", c.initial_splits[1]));
  EXPECT_EQ(split[2], KeyRange(c.initial_splits[1], std::nullopt));
  EXPECT_EQ(InitialSplit(ClusterConfig{3, 2, 4}), InitialSplit(4));

  const std::string head = "rangekv-config 1\nrf 3\nmin_insync 2\n";
  EXPECT_FALSE(DecodeConfig(head + "initial_ranges 3\ninitial_splits 62,61\n").ok());
  EXPECT_FALSE(DecodeConfig(head + "initial_ranges 3\ninitial_splits 61,,62\n").ok());
  EXPECT_FALSE(DecodeConfig(head + "initial_ranges 3\ninitial_splits 6x,62\n").ok());
  EXPECT_FALSE(DecodeConfig(head + "initial_ranges 8\ninitial_splits 61,62\n").ok());
}

TEST(ClusterMapTest, HandoffFromRoundTripsAndCountsOnlyForTheNextEpoch) {
  RangeInfo r;
  r.id = RangeId(3);
  r.bounds = KeyRange("a", std::string("m"));
  r.epoch = Epoch(5);
  r.owner = NodeId("n2");
  r.replicas = {NodeId("n1"), NodeId("n2")};
  r.isr = r.replicas;
  EXPECT_EQ(EncodeRange(r).find("handoff_from"), std::string::npos);
  r.handoff_from = Epoch(4);
  auto back = DecodeRange(EncodeRange(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  EXPECT_TRUE(back->HandedOverFrom(Epoch(4)));
  EXPECT_FALSE(back->HandedOverFrom(Epoch(3)));
  back->epoch = Epoch(6);  // a later grant: the handoff no longer counts
  EXPECT_FALSE(back->HandedOverFrom(Epoch(4)));
  EXPECT_FALSE(RangeInfo{}.HandedOverFrom(Epoch(0)));
  std::string bad = EncodeRange(r);
  bad.replace(bad.find("handoff_from 4"), 14, "handoff_from x");
  EXPECT_FALSE(DecodeRange(bad).ok());
}

TEST(ClusterMapTest, GarbageIsRejectedWithTheField) {
  EXPECT_FALSE(DecodeRange("").ok());
  EXPECT_FALSE(DecodeRange("\xff\xfe garbage").ok());
  EXPECT_FALSE(DecodeRange("rangekv-range 2\nid 1\n").ok());
  auto r = DecodeRange(
      "rangekv-range 1\nid 1\nstart zz\nend -\nepoch 0\nowner -\nreplicas -\n"
      "isr -\nstate active\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("start"), std::string::npos);
  auto e = DecodeRange(
      "rangekv-range 1\nid 1\nstart 62\nend 61\nepoch 0\nowner -\nreplicas -\n"
      "isr -\nstate active\n");
  EXPECT_FALSE(e.ok());
  EXPECT_FALSE(DecodeConfig("rangekv-config 1\nrf 3\nmin_insync 4\ninitial_ranges 8\n").ok());
  EXPECT_FALSE(DecodeNode("rangekv-node 1\nid bad/id\naddress x:1\n").ok());
}

TEST(ClusterMapTest, UnknownFieldsAreIgnored) {
  auto n = DecodeNode("rangekv-node 1\nid n1\naddress h:1\nfuture_field 42\n");
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->address, "h:1");
}

TEST(ClusterMapTest, InitialSplitCoversTheKeySpace) {
  for (int n : {1, 2, 3, 8, 255, 256}) {
    auto ranges = InitialSplit(n);
    ASSERT_EQ(static_cast<int>(ranges.size()), n);
    EXPECT_EQ(ranges.front().start(), "");
    EXPECT_TRUE(ranges.back().unbounded());
    for (size_t i = 1; i < ranges.size(); ++i) {
      ASSERT_TRUE(ranges[i - 1].end().has_value());
      EXPECT_EQ(*ranges[i - 1].end(), ranges[i].start());
    }
    ClusterMap map;
    for (size_t i = 0; i < ranges.size(); ++i) {
      RangeInfo r;
      r.id = RangeId(i + 1);
      r.bounds = ranges[i];
      map.ranges[r.id] = r;
    }
    for (int b = 0; b < 256; ++b) {
      std::string key(1, static_cast<char>(b));
      ASSERT_NE(map.Locate(key), nullptr) << n << " " << b;
    }
  }
}

RangeInfo Span(uint64_t id, std::string start, std::optional<std::string> end, uint64_t gen) {
  RangeInfo r;
  r.id = RangeId(id);
  r.bounds = KeyRange(std::move(start), std::move(end));
  r.generation = gen;
  return r;
}

ClusterMap MapOf(std::vector<RangeInfo> ranges) {
  ClusterMap m;
  for (RangeInfo& r : ranges) m.ranges[r.id] = std::move(r);
  return m;
}

// Range 1 [, m) at generation 4 splits at "g": 1 [, g) and 9 [g, m), both 5.
ClusterMap::Written SplitNews() {
  return {{RangeId(1), Span(1, "", "g", 5)}, {RangeId(9), Span(9, "g", "m", 5)}};
}

TEST(ClusterMapTest, NewsOfASplitCompletesAReadThatPredatesIt) {
  ClusterMap before = MapOf({Span(1, "", "m", 4), Span(2, "m", std::nullopt, 2)});
  EXPECT_FALSE(before.ShowsNews(SplitNews()));
  before.PatchNews(SplitNews());
  EXPECT_EQ(before.ranges.size(), 3u);
  EXPECT_EQ(before.ranges.at(RangeId(1)).bounds, KeyRange("", "g"));
  EXPECT_EQ(before.ranges.at(RangeId(9)).bounds, KeyRange("g", "m"));
  EXPECT_TRUE(before.ShowsNews(SplitNews()));
}

TEST(ClusterMapTest, NewsFillsTheHoleOfAReadThatStraddledTheSplit) {
  // The parent read after the multi, the new range's name listed before.
  ClusterMap straddled = MapOf({Span(1, "", "g", 5), Span(2, "m", std::nullopt, 2)});
  EXPECT_FALSE(straddled.ShowsNews(SplitNews()));
  straddled.PatchNews(SplitNews());
  ASSERT_EQ(straddled.ranges.count(RangeId(9)), 1u);
  EXPECT_NE(straddled.Locate("h"), nullptr);
}

TEST(ClusterMapTest, NewsLeavesANewerReadAsItIs) {
  // 9 has since merged with 2 into 12 (generation 6), and 1 changed owner.
  RangeInfo left = Span(1, "", "g", 5);
  left.epoch = Epoch(7);
  const ClusterMap after = MapOf({left, Span(12, "g", std::nullopt, 6)});
  EXPECT_TRUE(after.ShowsNews(SplitNews()));
  ClusterMap patched = after;
  patched.PatchNews(SplitNews());
  EXPECT_EQ(patched.ranges, after.ranges);
}

TEST(ClusterMapTest, NewsNeverOverlapsAReadOlderThanItsInputs) {
  // Range 1 itself came from a split of 0 the read does not show yet.
  ClusterMap old = MapOf({Span(3, "", std::nullopt, 3)});
  old.PatchNews(SplitNews());
  EXPECT_EQ(old.ranges.size(), 1u);
  EXPECT_EQ(old.ranges.count(RangeId(3)), 1u);
}

TEST(ClusterMapTest, NewsOfAMergeDeletesBothAndAddsTheMergedRange) {
  const ClusterMap::Written merge = {{RangeId(1), std::nullopt},
                                     {RangeId(2), std::nullopt},
                                     {RangeId(12), Span(12, "", std::nullopt, 5)}};
  ClusterMap before = MapOf({Span(1, "", "m", 4), Span(2, "m", std::nullopt, 2)});
  EXPECT_FALSE(before.ShowsNews(merge));
  before.PatchNews(merge);
  ASSERT_EQ(before.ranges.size(), 1u);
  EXPECT_EQ(before.ranges.count(RangeId(12)), 1u);
  // A read that saw the left deleted but listed the ranges before the
  // merged one was made: the right goes, the merged one fills the hole.
  ClusterMap straddled = MapOf({Span(2, "m", std::nullopt, 2)});
  straddled.PatchNews(merge);
  ASSERT_EQ(straddled.ranges.size(), 1u);
  EXPECT_EQ(straddled.ranges.count(RangeId(12)), 1u);
}

TEST(ClusterMapTest, PathsAndRangeNames) {
  Paths p("prod");
  EXPECT_EQ(p.range(RangeId(12)), "/rangekv/prod/ranges/0000000012");
  EXPECT_EQ(Paths::ParseRangeName("0000000012"), RangeId(12));
  EXPECT_FALSE(Paths::ParseRangeName("12").has_value());
  EXPECT_FALSE(Paths::ParseRangeName("00000000x2").has_value());
  EXPECT_EQ(p.node(NodeId("n1")), "/rangekv/prod/nodes/n1");
}

}  // namespace
}  // namespace rangekv::cluster
