// A store's part in a split or merge: the new range opened from a seed of
// its sources' spans (store_seed.h), and the parent's narrowing
// (RetainOnly), durable across a reopen.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kvnode/storage/range_store.h"
#include "tests/kvnode/storage/store_test_util.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using rangekv::testing::TempDir;

StoreOptions Opts(const std::string& dir) { return NoSyncOpts(dir); }

// The recipe of a split of SixKeys' store at "d" as of seq 6.
SeedRecipe SplitAtD(Seq at = Seq(6)) {
  return SeedRecipe{at, Epoch(0), {SeedSource{RangeId(7), KeyRange("d", std::nullopt), at}}};
}

// Opens range 9 in dir from `recipe`'s span of parent, as a node does.
Result<std::unique_ptr<RangeStore>> OpenSeeded(const RangeStore& parent, const SeedRecipe& recipe,
                                               const std::string& dir) {
  const RangeStore* stores[] = {&parent};
  RANGEKV_ASSIGN_OR_RETURN(StoreSeed seed, RangeStore::CopySeed(recipe, stores));
  const KeyRange span = recipe.sources.front().span;
  RANGEKV_RETURN_IF_ERROR(RangeStore::PrepareSeeded(RangeId(9), span, recipe, Opts(dir)));
  return RangeStore::Open(RangeId(9), span, Opts(dir), std::move(seed));
}

TEST(SplitStore, ASeedBuildsTheNewRangeAsOfTheSplitSeqAndItsSnapshotFollows) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const std::string dir = tmp.path() + "/child";
  auto child = OpenSeeded(*parent, SplitAtD(), dir);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const Model want{{"d", {"v", 4}}, {"e", {"v", 5}}, {"f", {"v", 6}}};
  EXPECT_EQ(Dump(**child), want);
  EXPECT_EQ((*child)->last().seq, Seq(6));  // the log goes on above the split seq
  EXPECT_EQ((*child)->bounds(), KeyRange("d", std::nullopt));
  auto next = Put(**child, "g", "w");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, Seq(7));
  EXPECT_EQ(Put(**child, "a", "w").status().code(), Code::kNotOwner);
  // The first snapshot is written in the background; the marker goes once
  // it is durable.
  ASSERT_TRUE(rangekv::testing::WaitFor([&] { return !(*child)->base_pending(); },
                                        std::chrono::seconds(10)));
  EXPECT_FALSE(std::filesystem::exists(SeedMarkerPath(dir)));
  EXPECT_FALSE(SnapshotPaths(dir).empty());
  ASSERT_TRUE((*child)->Close().ok());
  child->reset();
  // Reopened like any store, without a seed.
  auto again = RangeStore::Open(RangeId(9), KeyRange("d", std::nullopt), Opts(dir));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  Model want2 = want;
  want2["g"] = {"w", 7};
  EXPECT_EQ(Dump(**again), want2);
}

TEST(SplitStore, ASeededDirectoryWithoutItsSnapshotNeedsTheSeedAgain) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const std::string dir = tmp.path() + "/child";
  const SeedRecipe recipe = SplitAtD();
  ASSERT_TRUE(
      RangeStore::PrepareSeeded(RangeId(9), KeyRange("d", std::nullopt), recipe, Opts(dir)).ok());
  auto marker = ReadSeedMarker(fs::Posix(), dir);
  ASSERT_TRUE(marker.ok() && marker->has_value());
  EXPECT_EQ(**marker, recipe);
  // Without its seed the directory is not a copy of the range.
  auto bare = RangeStore::Open(RangeId(9), KeyRange("d", std::nullopt), Opts(dir));
  EXPECT_EQ(bare.status().code(), Code::kCorruption) << bare.status().ToString();
  EXPECT_NE(bare.status().message().find("range 7"), std::string::npos);
  {
    const RangeStore* stores[] = {parent.get()};
    auto seed = RangeStore::CopySeed(recipe, stores);
    ASSERT_TRUE(seed.ok()) << seed.status().ToString();
    auto child =
        RangeStore::Open(RangeId(9), KeyRange("d", std::nullopt), Opts(dir), std::move(*seed));
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    ASSERT_TRUE(Put(**child, "e", "x").ok());
    ASSERT_TRUE(rangekv::testing::WaitFor([&] { return !(*child)->base_pending(); },
                                          std::chrono::seconds(10)));
    ASSERT_TRUE((*child)->Close().ok());
  }
  // A crash before the first snapshot was durable: the marker is there,
  // no snapshot, epoch history or retained file is (the snapshot writes
  // them first), and the log holds the writes after the split seq.
  for (const std::string& snap : SnapshotPaths(dir)) std::filesystem::remove(snap);
  std::filesystem::remove(dir + "/epochs");
  std::filesystem::remove(dir + "/retained");
  { std::ofstream(dir + "/seeded").flush(); }
  ASSERT_TRUE(WriteSeedMarker(fs::Posix(), dir, recipe).ok());
  const RangeStore* stores[] = {parent.get()};
  auto seed = RangeStore::CopySeed(recipe, stores);
  ASSERT_TRUE(seed.ok());
  auto child =
      RangeStore::Open(RangeId(9), KeyRange("d", std::nullopt), Opts(dir), std::move(*seed));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const Model want{{"d", {"v", 4}}, {"e", {"x", 7}}, {"f", {"v", 6}}};
  EXPECT_EQ(Dump(**child), want);
  EXPECT_EQ((*child)->last().seq, Seq(7));
  EXPECT_TRUE(rangekv::testing::WaitFor([&] { return !(*child)->base_pending(); },
                                        std::chrono::seconds(10)));
  EXPECT_TRUE(std::filesystem::exists(dir + "/epochs"));
}

// No fsync before the new range serves: the directory holds nothing but
// "seeded" (its recipe stands for its epoch history and retained span)
// until the first snapshot writes them, before the marker goes.
TEST(SplitStore, APreparedDirectoryIsWrittenOutByItsFirstSnapshot) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const std::string dir = tmp.path() + "/child";
  SeedRecipe recipe = SplitAtD();
  recipe.epoch = Epoch(2);  // the base's epoch comes from the recipe alone
  const KeyRange span("d", std::nullopt);
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(9), span, recipe, Opts(dir)).ok());
  auto names = fs::Posix().ListDir(dir);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"seeded"});
  EXPECT_TRUE(std::filesystem::exists(SeedMarkerPath(dir)));
  const RangeStore* stores[] = {parent.get()};
  auto seed = RangeStore::CopySeed(recipe, stores);
  ASSERT_TRUE(seed.ok());
  auto child = RangeStore::Open(RangeId(9), span, Opts(dir), std::move(*seed));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_EQ((*child)->EpochAt(Seq(6)), recipe.epoch);
  ASSERT_TRUE(rangekv::testing::WaitFor([&] { return !(*child)->base_pending(); },
                                        std::chrono::seconds(10)));
  EXPECT_TRUE(std::filesystem::exists(dir + "/epochs"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/retained"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/seeded"));
  EXPECT_FALSE(std::filesystem::exists(SeedMarkerPath(dir)));
  ASSERT_TRUE((*child)->Close().ok());
  child->reset();
  auto again = RangeStore::Open(RangeId(9), span, Opts(dir));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_TRUE((*again)->retained().has_value());
  EXPECT_EQ(*(*again)->retained(), span);
  EXPECT_EQ((*again)->EpochAt(Seq(6)), recipe.epoch);
}

bool Lost(const std::string& dir) {
  auto names = fs::Posix().ListDir(dir);
  return names.ok() && PreparedDirLost(fs::Posix(), dir, *names);
}

// A power loss before the new log's first sync may take back the marker
// (or tear it) and keep "seeded": nothing in the directory was durable, so
// it counts as empty and is built again, and it never opens as an empty
// range. With a record in its log it is damage: CORRUPTION, copied again.
TEST(SplitStore, APreparedDirectoryWhoseMarkerIsLostIsBuiltAgain) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const std::string dir = tmp.path() + "/child";
  const KeyRange span("d", std::nullopt);
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(9), span, SplitAtD(), Opts(dir)).ok());
  EXPECT_FALSE(Lost(dir));
  std::filesystem::remove(SeedMarkerPath(dir));
  EXPECT_TRUE(Lost(dir));
  auto bare = RangeStore::Open(RangeId(9), span, Opts(dir));
  EXPECT_EQ(bare.status().code(), Code::kCorruption) << bare.status().ToString();
  { std::ofstream(SeedMarkerPath(dir)) << "RKVSEED\n"; }  // torn
  EXPECT_TRUE(Lost(dir));

  // Opened (a header-only segment) and closed before any write: still lost.
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(9), span, SplitAtD(), Opts(dir)).ok());
  const RangeStore* stores[] = {parent.get()};
  {
    auto seed = RangeStore::CopySeed(SplitAtD(), stores);
    ASSERT_TRUE(seed.ok());
    auto child = RangeStore::Open(RangeId(9), span, Opts(dir), std::move(*seed));
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    ASSERT_TRUE((*child)->Close().ok());
  }
  std::filesystem::remove(SeedMarkerPath(dir));
  EXPECT_TRUE(Lost(dir));

  // A record written: not a crash's leftover.
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(9), span, SplitAtD(), Opts(dir)).ok());
  {
    auto seed = RangeStore::CopySeed(SplitAtD(), stores);
    ASSERT_TRUE(seed.ok());
    auto child = RangeStore::Open(RangeId(9), span, Opts(dir), std::move(*seed));
    ASSERT_TRUE(child.ok()) << child.status().ToString();
    ASSERT_TRUE(Put(**child, "e", "x").ok());
    ASSERT_TRUE((*child)->Close().ok());
  }
  std::filesystem::remove(SeedMarkerPath(dir));
  EXPECT_FALSE(Lost(dir));
  bare = RangeStore::Open(RangeId(9), span, Opts(dir));
  EXPECT_EQ(bare.status().code(), Code::kCorruption) << bare.status().ToString();
}

// The preparation's sync rides on the log's first one, which finds the
// marker gone when the first snapshot came first (an idle new range).
TEST(SplitStore, TheFirstSyncAfterTheFirstSnapshotSucceeds) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const std::string dir = tmp.path() + "/child";
  const KeyRange span("d", std::nullopt);
  StoreOptions opts = Opts(dir);
  opts.fsync = FsyncPolicy::kAlways;
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(9), span, SplitAtD(), opts).ok());
  const RangeStore* stores[] = {parent.get()};
  auto seed = RangeStore::CopySeed(SplitAtD(), stores);
  ASSERT_TRUE(seed.ok());
  auto child = RangeStore::Open(RangeId(9), span, opts, std::move(*seed));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  ASSERT_TRUE(rangekv::testing::WaitFor([&] { return !(*child)->base_pending(); },
                                        std::chrono::seconds(10)));
  EXPECT_FALSE(std::filesystem::exists(SeedMarkerPath(dir)));
  auto seq = Put(**child, "e", "x");
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(*seq, Seq(7));
  ASSERT_TRUE((*child)->Close().ok());
}

TEST(SplitStore, ASeedRefusesAKeyWrittenAfterTheSplitSeq) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  const RangeStore* stores[] = {parent.get()};
  // "e" has version 5: it changed after seq 4.
  auto seed = RangeStore::CopySeed(SplitAtD(Seq(4)), stores);
  EXPECT_EQ(seed.status().code(), Code::kInternal) << seed.status().ToString();
  // Not applied that far yet: not now.
  auto later = RangeStore::CopySeed(SplitAtD(Seq(60)), stores);
  EXPECT_EQ(later.status().code(), Code::kRangeUnavailable);
  // No longer holding the span: not from this copy.
  ASSERT_TRUE(parent->RetainOnly(KeyRange("", std::string("e"))).ok());
  auto narrowed = RangeStore::CopySeed(SplitAtD(), stores);
  EXPECT_EQ(narrowed.status().code(), Code::kRangeUnavailable);
}

TEST(SplitStore, AMergeSeedTakesEachSpanAsOfItsOwnSeq) {
  TempDir tmp;
  MergeSources m = TwoToMerge(tmp.path());
  ASSERT_TRUE(m.left && m.right);
  const SeedRecipe& recipe = m.recipe;
  const RangeStore* stores[] = {m.left.get(), m.right.get()};
  auto seed = RangeStore::CopySeed(recipe, stores);
  ASSERT_TRUE(seed.ok()) << seed.status().ToString();
  EXPECT_EQ(seed->keys(), 3u);
  const std::string dir = tmp.path() + "/merged";
  ASSERT_TRUE(RangeStore::PrepareSeeded(RangeId(10), KeyRange(), recipe, Opts(dir)).ok());
  auto merged = RangeStore::Open(RangeId(10), KeyRange(), Opts(dir), std::move(*seed));
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  const Model want{{"a", {"l1", 1}}, {"b", {"l2", 2}}, {"m", {"r4", 5}}};
  EXPECT_EQ(Dump(**merged), want);
  auto next = Put(**merged, "z", "z");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, Seq(6));
}

TEST(SplitStore, ASeedMarkerThatDoesNotCheckIsRefused) {
  const SeedRecipe recipe = SplitAtD();
  std::string bytes = EncodeSeedRecipe(recipe);
  auto back = DecodeSeedRecipe(bytes, "m");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, recipe);
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string bad = bytes;
    bad[i] ^= 0x10;
    EXPECT_EQ(DecodeSeedRecipe(bad, "m").status().code(), Code::kCorruption) << "byte " << i;
  }
  EXPECT_EQ(DecodeSeedRecipe(bytes.substr(0, bytes.size() - 1), "m").status().code(),
            Code::kCorruption);
}

TEST(SplitStore, RetainOnlyDropsTheRestDurablyAndRefusesItsWrites) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/parent";
  auto parent = SixKeys(dir);
  const KeyRange left("", std::string("d"));
  EXPECT_TRUE(parent->HoldsOnly(KeyRange()));
  EXPECT_FALSE(parent->HoldsOnly(left));
  ASSERT_TRUE(parent->RetainOnly(left).ok());
  const Model want{{"a", {"v", 1}}, {"b", {"v", 2}}, {"c", {"v", 3}}};
  EXPECT_EQ(Dump(*parent), want);
  EXPECT_TRUE(parent->HoldsOnly(left));
  EXPECT_FALSE(parent->Holds(KeyRange("d", std::nullopt)));
  EXPECT_EQ(Put(*parent, "e", "x").status().code(), Code::kNotOwner);
  ASSERT_TRUE(Put(*parent, "b", "y").ok());
  // Widening is refused.
  EXPECT_EQ(parent->RetainOnly(KeyRange()).code(), Code::kBadRequest);
  ASSERT_TRUE(parent->SnapshotNow().ok());
  ASSERT_TRUE(parent->Close().ok());
  parent.reset();
  // Reopened even with the old, wider bounds: the log still names d..f,
  // but the map leaves them out, and a split can no longer build from it.
  auto again = RangeStore::Open(RangeId(7), KeyRange(), Opts(dir));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  Model want2 = want;
  want2["b"] = {"y", 7};
  EXPECT_EQ(Dump(**again), want2);
  ASSERT_TRUE((*again)->retained().has_value());
  EXPECT_EQ(*(*again)->retained(), left);
  EXPECT_FALSE((*again)->Holds(KeyRange("d", std::nullopt)));
}

TEST(SplitStore, ADamagedRetainedFileFailsTheOpen) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/parent";
  {
    auto parent = SixKeys(dir);
    ASSERT_TRUE(parent->RetainOnly(KeyRange("", std::string("d"))).ok());
  }
  std::string bytes = ReadBytes(dir + "/retained");
  ASSERT_GT(bytes.size(), 20u);
  bytes[17] ^= 0x40;
  WriteBytes(dir + "/retained", bytes);
  auto again = RangeStore::Open(RangeId(7), KeyRange(), Opts(dir));
  EXPECT_EQ(again.status().code(), Code::kCorruption) << again.status().ToString();
}

}  // namespace
}  // namespace rangekv::kvnode
