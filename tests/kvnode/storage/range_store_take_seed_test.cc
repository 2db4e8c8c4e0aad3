// A range built from its sources by moving their map nodes rather than
// copying them (RangeStore::TakeSeed, CommittedMap::GiveSpan): what the
// source serves, holds and snapshots afterwards, and that its files keep
// every key until RetainOnly.
#include <gtest/gtest.h>

#include "kvnode/storage/committed_map.h"
#include "kvnode/storage/epoch_history.h"
#include "kvnode/storage/range_store.h"
#include "tests/kvnode/storage/store_test_util.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using rangekv::testing::TempDir;

StoreOptions Opts(const std::string& dir) { return NoSyncOpts(dir); }

SeedRecipe SplitOff(KeyRange span) {
  return SeedRecipe{Seq(6), Epoch(0), {SeedSource{RangeId(7), std::move(span), Seq(6)}}};
}

Result<StoreSeed> Take(RangeStore& source, const SeedRecipe& recipe, bool gone) {
  RangeStore* stores[] = {&source};
  const bool flags[] = {gone};
  return RangeStore::TakeSeed(recipe, stores, flags);
}

std::optional<Code> ReadCode(const RangeStore& store, std::string_view key) {
  auto r = store.GetInBounds(key);
  if (r.ok()) return std::nullopt;
  return r.status().code();
}

KeyMap Letters(char from, char to) {
  KeyMap m;
  for (char c = from; c <= to; ++c) m.Put(std::string(1, c), std::string(3, c), c);
  return m;
}

std::string Keys(const KeyMap& m) {
  std::string out;
  for (const KeyMap::Entry& e : m.ordered()) out += e.key();
  return out;
}

TEST(KeyMapMove, TakeFromMovesTheTailWhicheverSideIsSmaller) {
  for (char cut : {'b', 'h', 'a', 'z'}) {
    SCOPED_TRACE(std::string("cut at ") + cut);
    KeyMap m = Letters('a', 'j');
    const uint64_t bytes = m.bytes();
    KeyMap tail = m.TakeFrom(std::string(1, cut));
    std::string want_head, want_tail;
    for (char c = 'a'; c <= 'j'; ++c) (c < cut ? want_head : want_tail) += c;
    EXPECT_EQ(Keys(m), want_head);
    EXPECT_EQ(Keys(tail), want_tail);
    EXPECT_EQ(m.bytes() + tail.bytes(), bytes);
    EXPECT_EQ(m.bytes(), want_head.size() * 4);
    // Each side's index finds its own keys, and only those.
    for (char c = 'a'; c <= 'j'; ++c) {
      const std::string k(1, c);
      EXPECT_EQ(m.Find(k) != nullptr, c < cut) << k;
      EXPECT_EQ(tail.Find(k) != nullptr, c >= cut) << k;
    }
    tail.Put("e", "new", 99);  // an overwrite through the moved index
    if (cut <= 'e') {
      EXPECT_EQ(tail.Find("e")->value(), "new");
    }
  }
}

TEST(KeyMapMove, AppendKeepsOrderAndIndexBothWays) {
  for (auto [a_to, b_from] : {std::pair{'b', 'c'}, std::pair{'h', 'i'}}) {
    KeyMap left = Letters('a', a_to);
    left.Append(Letters(b_from, 'j'));
    EXPECT_EQ(Keys(left), "abcdefghij");
    EXPECT_EQ(left.size(), 10u);
    EXPECT_EQ(left.bytes(), 40u);
    for (char c = 'a'; c <= 'j'; ++c) EXPECT_NE(left.Find(std::string(1, c)), nullptr);
  }
}

TEST(TakeSeed, ASplitsSpanLeavesTheParentsMapButNotItsFiles) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/parent";
  auto parent = SixKeys(dir);
  const KeyRange right("d", std::nullopt);
  auto seed = Take(*parent, SplitOff(right), /*gone=*/false);
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  EXPECT_EQ(seed->keys(), 3u);
  // The parent serves the rest and refuses the span (its keys are gone
  // from its map, never read as absent).
  EXPECT_EQ(ReadCode(*parent, "e"), Code::kNotOwner);
  EXPECT_EQ(ReadCode(*parent, "a"), std::nullopt);
  EXPECT_EQ(Dump(*parent), (Model{{"a", {"v", 1}}, {"b", {"v", 2}}, {"c", {"v", 3}}}));
  EXPECT_FALSE(parent->Holds(right));
  EXPECT_TRUE(parent->gave_away());
  // Its files still hold the span: no snapshot (it would lack it) until
  // RetainOnly says so durably, and HoldsOnly asks for that narrowing.
  EXPECT_EQ(parent->SnapshotNow().code(), Code::kRangeUnavailable);
  EXPECT_FALSE(parent->HoldsOnly(KeyRange("", std::string("d"))));
  // Taken once: a second seed cannot come from this map.
  EXPECT_EQ(Take(*parent, SplitOff(right), false).status().code(), Code::kRangeUnavailable);
  // Written on after the split (left keys only), then reopened from its
  // files: every key is still there (a crash before the new range's first
  // snapshot rebuilds it from them).
  ASSERT_TRUE(Put(*parent, "b", "w").ok());
  ASSERT_TRUE(parent->Close().ok());
  parent.reset();
  auto reopened = RangeStore::Open(RangeId(7), KeyRange(), Opts(dir));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ(Dump(**reopened).size(), 6u);
  EXPECT_EQ(Dump(**reopened).at("b"), (std::pair<std::string, uint64_t>{"w", 7}));
}

TEST(TakeSeed, RetainOnlyLetsTheParentSnapshotAgain) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  ASSERT_TRUE(Take(*parent, SplitOff(KeyRange("d", std::nullopt)), false).ok());
  const KeyRange left("", std::string("d"));
  ASSERT_TRUE(parent->RetainOnly(left).ok());
  EXPECT_FALSE(parent->gave_away());
  EXPECT_TRUE(parent->HoldsOnly(left));
  EXPECT_TRUE(parent->SnapshotNow().ok());
}

TEST(TakeSeed, ASpanInTheMiddleIsCopied) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const KeyRange middle("b", std::string("d"));
  auto seed = Take(*parent, SplitOff(middle), false);
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  EXPECT_EQ(seed->keys(), 2u);
  EXPECT_FALSE(parent->gave_away());
  EXPECT_EQ(Dump(*parent).size(), 6u);
  EXPECT_EQ(ReadCode(*parent, "c"), std::nullopt);
}

TEST(TakeSeed, AFenceFailureMovesNothing) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  // "e" has version 5: it changed after seq 4.
  const SeedRecipe early{
      Seq(4), Epoch(0), {SeedSource{RangeId(7), KeyRange("d", std::nullopt), Seq(4)}}};
  EXPECT_EQ(Take(*parent, early, false).status().code(), Code::kInternal);
  EXPECT_FALSE(parent->gave_away());
  EXPECT_EQ(Dump(*parent).size(), 6u);
}

TEST(TakeSeed, AMergedSourceGivesEveryKeyAndAdmitsNoneAfter) {
  TempDir tmp;
  MergeSources m = TwoToMerge(tmp.path());
  ASSERT_TRUE(m.left && m.right);
  const SeedRecipe& recipe = m.recipe;
  RangeStore* stores[] = {m.left.get(), m.right.get()};
  const bool gone[] = {true, true};
  auto seed = RangeStore::TakeSeed(recipe, stores, gone);
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  EXPECT_EQ(seed->keys(), 3u);
  EXPECT_EQ(ReadCode(*m.left, "a"), Code::kNotOwner);
  EXPECT_EQ(ReadCode(*m.right, "m"), Code::kNotOwner);
  EXPECT_EQ(Put(*m.left, "c", "x").status().code(), Code::kNotOwner);
  EXPECT_EQ(m.left->SnapshotNow().code(), Code::kRangeUnavailable);
  const std::string dir = tmp.path() + "/merged";
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(10), KeyRange(), recipe, Opts(dir)).ok());
  auto merged = RangeStore::Open(RangeId(10), KeyRange(), Opts(dir), std::move(*seed));
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(Dump(**merged), (Model{{"a", {"l1", 1}}, {"b", {"l2", 2}}, {"m", {"r4", 5}}}));
}

TEST(TakeSeed, AMergedSourceWithKeysOutsideItsSpanIsCopied) {
  TempDir tmp;
  auto left = SixKeys(tmp.path() + "/left");  // holds a..f, its span ends at d
  const SeedRecipe recipe{
      Seq(6), Epoch(0), {SeedSource{RangeId(7), KeyRange("", std::string("d")), Seq(6)}}};
  RangeStore* stores[] = {left.get()};
  const bool gone[] = {true};
  auto seed = RangeStore::TakeSeed(recipe, stores, gone);
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  EXPECT_EQ(seed->keys(), 3u);
  EXPECT_FALSE(left->gave_away());
  EXPECT_EQ(Dump(*left).size(), 6u);
}

TEST(TakeSeed, AnOpenThatFailsHandsTheSeedBack) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const SeedRecipe recipe = SplitOff(KeyRange("d", std::nullopt));
  auto seed = Take(*parent, recipe, false);
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  const std::string dir = tmp.path() + "/child";
  const KeyRange span("d", std::nullopt);
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(9), span, recipe, Opts(dir)).ok());
  // An epoch history that does not match the seed: Open fails after it
  // loaded the keys, and before any record was applied onto them.
  EpochHistory wrong;
  wrong.SetBase(Seq(3), Epoch(0), Seq(3));
  ASSERT_TRUE(wrong.Save(fs::Posix(), dir).ok());
  auto failed = RangeStore::Open(RangeId(9), span, Opts(dir), &*seed);
  ASSERT_FALSE(failed.ok());
  ASSERT_TRUE(seed->usable());
  EXPECT_EQ(seed->keys(), 3u);
  // The next try, with the directory whole again, opens from the same keys
  // (the parent no longer holds them in memory).
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(9), span, recipe, Opts(dir)).ok());
  auto child = RangeStore::Open(RangeId(9), span, Opts(dir), &*seed);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_FALSE(seed->usable());
  EXPECT_EQ(Dump(**child), (Model{{"d", {"v", 4}}, {"e", {"v", 5}}, {"f", {"v", 6}}}));
}

}  // namespace
}  // namespace rangekv::kvnode
