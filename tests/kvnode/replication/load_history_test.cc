// LoadHistory: when a range (or a part of it) counts as busy for a whole
// window, and where a load split cuts it.
#include "kvnode/replication/load_history.h"

#include <gtest/gtest.h>

namespace rangekv::kvnode {
namespace {

using std::chrono::seconds;
using Clock = LoadHistory::Clock;

const KeyRange kAll("", std::nullopt);

// n seconds ending at end, each at qps with the same samples.
LoadHistory Steady(Clock::time_point end, int n, double qps, std::vector<std::string> samples) {
  LoadHistory h;
  for (int i = n - 1; i >= 0; --i) h.Add({end - seconds(i), qps, samples}, seconds(12));
  return h;
}

std::vector<std::string> Keys(char from, char to) {
  std::vector<std::string> out;
  for (char c = from; c <= to; ++c) out.emplace_back(1, c);
  return out;
}

TEST(LoadHistory, HotOnlyOnceTheWholeWindowWasPastTheThreshold) {
  const Clock::time_point now = Clock::now();
  EXPECT_FALSE(Steady(now, 5, 5000, Keys('a', 'z')).HotFor(2000, seconds(10), now, kAll));
  EXPECT_TRUE(Steady(now, 11, 5000, Keys('a', 'z')).HotFor(2000, seconds(10), now, kAll));
  EXPECT_FALSE(Steady(now, 11, 1500, Keys('a', 'z')).HotFor(2000, seconds(10), now, kAll));
  // History that stopped a while ago says nothing about now.
  EXPECT_FALSE(
      Steady(now - seconds(5), 11, 5000, Keys('a', 'z')).HotFor(2000, seconds(10), now, kAll));
}

TEST(LoadHistory, OneColdSecondOrAGapRestartsTheCount) {
  const Clock::time_point now = Clock::now();
  LoadHistory cold = Steady(now - seconds(6), 6, 5000, Keys('a', 'z'));
  cold.Add({now - seconds(5), 100, Keys('a', 'z')}, seconds(12));
  for (int i = 4; i >= 0; --i) cold.Add({now - seconds(i), 5000, Keys('a', 'z')}, seconds(12));
  EXPECT_FALSE(cold.HotFor(2000, seconds(10), now, kAll));

  LoadHistory gap = Steady(now - seconds(6), 6, 5000, Keys('a', 'z'));
  for (int i = 2; i >= 0; --i) gap.Add({now - seconds(i), 5000, Keys('a', 'z')}, seconds(12));
  EXPECT_FALSE(gap.HotFor(2000, seconds(10), now, kAll));
}

TEST(LoadHistory, APartCountsItsShareOfTheSamplesSoSplitPartsInheritTheirLoad) {
  const Clock::time_point now = Clock::now();
  // 8000 req/s spread evenly over a..p (16 keys): each half carries 4000.
  LoadHistory h = Steady(now, 11, 8000, Keys('a', 'p'));
  const KeyRange left("", std::string("i"));
  const KeyRange right("i", std::nullopt);
  EXPECT_TRUE(h.HotFor(3000, seconds(10), now, left));
  EXPECT_TRUE(h.HotFor(3000, seconds(10), now, right));
  EXPECT_FALSE(h.HotFor(5000, seconds(10), now, right));
  // A quarter (4 keys) carries 2000: not past 2000.
  EXPECT_FALSE(h.HotFor(2000, seconds(10), now, KeyRange("a", std::string("e"))));
}

TEST(LoadHistory, SplitKeyHalvesTheSampledLoadWithinTheBounds) {
  const Clock::time_point now = Clock::now();
  LoadHistory h = Steady(now, 11, 8000, Keys('a', 'p'));
  EXPECT_EQ(h.SplitKey(seconds(10), now, kAll), std::optional<std::string>("i"));
  EXPECT_EQ(h.SplitKey(seconds(10), now, KeyRange("i", std::nullopt)),
            std::optional<std::string>("m"));
  // All the load on one key: no split helps.
  LoadHistory one = Steady(now, 11, 8000, {"k", "k", "k"});
  EXPECT_EQ(one.SplitKey(seconds(10), now, kAll), std::nullopt);
  // A cut at the range's own start is no split.
  LoadHistory start = Steady(now, 11, 8000, {"i", "i", "i", "j"});
  EXPECT_EQ(start.SplitKey(seconds(10), now, KeyRange("i", std::nullopt)),
            std::optional<std::string>("j"));
}

TEST(LoadHistory, KeepsOnlyWhatTheWindowNeeds) {
  const Clock::time_point now = Clock::now();
  LoadHistory h = Steady(now, 30, 100, Keys('a', 'b'));
  EXPECT_EQ(h.size(), 13u);
}

}  // namespace
}  // namespace rangekv::kvnode
