// A store's part in a split: the snapshot of the span that becomes the new
// range, and the parent's narrowing (RetainOnly), durable across a reopen.
#include <gtest/gtest.h>

#include <filesystem>

#include "kvnode/storage/range_store.h"
#include "tests/kvnode/storage/store_test_util.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using rangekv::testing::TempDir;

StoreOptions Opts(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  o.fsync = FsyncPolicy::kNever;
  return o;
}

// a..f, one record each: key k has version (k - 'a' + 1).
std::unique_ptr<RangeStore> SixKeys(const std::string& dir) {
  auto store = MustOpen(Opts(dir));
  for (char c = 'a'; c <= 'f'; ++c) EXPECT_TRUE(Put(*store, std::string(1, c), "v").ok());
  return store;
}

TEST(SplitStore, SpanSnapshotBuildsTheNewRangeAsOfTheSplitSeq) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  std::filesystem::create_directories(tmp.path() + "/snap");
  const KeyRange right("d", std::nullopt);
  auto file = parent->WriteSpanSnapshot(RangeId(9), right, Seq(6), tmp.path() + "/snap");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto child = RangeStore::OpenFromSnapshot(RangeId(9), right, Opts(tmp.path() + "/child"), *file,
                                            Epoch(0));
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  const Model want{{"d", {"v", 4}}, {"e", {"v", 5}}, {"f", {"v", 6}}};
  EXPECT_EQ(Dump(**child), want);
  EXPECT_EQ((*child)->last().seq, Seq(6));  // the log goes on above the split seq
  EXPECT_EQ((*child)->bounds(), right);
  auto next = Put(**child, "g", "w");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, Seq(7));
  auto outside = Put(**child, "a", "w");
  EXPECT_EQ(outside.status().code(), Code::kNotOwner);
}

TEST(SplitStore, SpanSnapshotRefusesAKeyWrittenAfterTheSplitSeq) {
  TempDir tmp;
  auto parent = SixKeys(tmp.path() + "/parent");
  std::filesystem::create_directories(tmp.path() + "/snap");
  // "e" has version 5: it changed after seq 4.
  auto file = parent->WriteSpanSnapshot(RangeId(9), KeyRange("d", std::nullopt), Seq(4),
                                        tmp.path() + "/snap");
  EXPECT_EQ(file.status().code(), Code::kInternal) << file.status().ToString();
  // Not applied that far yet: not now.
  auto later = parent->WriteSpanSnapshot(RangeId(9), KeyRange("d", std::nullopt), Seq(60),
                                         tmp.path() + "/snap");
  EXPECT_EQ(later.status().code(), Code::kRangeUnavailable);
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
