// Snapshots: the low-water mark, background triggering, fuzzy snapshots
// under concurrent writes, retention, and falling back from a corrupt one.
#include "kvnode/storage/snapshot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "kvnode/storage/range_store.h"
#include "kvnode/storage/wal_format.h"
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
  o.segment_bytes = 512;
  o.snapshot_after_bytes = 1u << 30;
  o.keep_records_below_snapshot = 5;
  return o;
}

// Random puts and deletes over a few keys, mirrored in the model.
void RandomWrites(RangeStore& store, Model& model, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n; ++i) {
    std::string key = "key" + std::to_string(rng() % 25);
    if (rng() % 5 == 0) {
      ASSERT_TRUE(Del(store, key).ok());
      model.erase(key);
    } else {
      std::string value(rng() % 40, static_cast<char>('a' + rng() % 26));
      auto seq = Put(store, key, value);
      ASSERT_TRUE(seq.ok());
      model[key] = {value, seq->value()};
    }
  }
}

Seq FirstSeqOf(const std::string& segment_path) {
  Seq s;
  EXPECT_TRUE(wal::ParseSegmentName(std::filesystem::path(segment_path).filename().string(), &s));
  return s;
}

TEST(Snapshot, LowWaterMarkDeletesOldSegmentsAndReopenMatches) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  Model model;
  auto store = MustOpen(o);
  RandomWrites(*store, model, 200, 1);
  const size_t before = SegmentPaths(o.dir).size();
  ASSERT_GT(before, 10u);
  ASSERT_TRUE(store->SnapshotNow().ok());
  StoreStats st = store->Stats();
  EXPECT_EQ(st.snapshot_seq, Seq(200));
  auto segs = SegmentPaths(o.dir);
  EXPECT_LT(segs.size(), before);
  EXPECT_EQ(st.segments, segs.size());
  // What is left still reaches back to the low-water mark (200 - 5) ...
  EXPECT_LE(FirstSeqOf(segs.front()).value(), 196u);
  // ... and no more than one segment below it.
  ASSERT_GE(segs.size(), 2u);
  EXPECT_GT(FirstSeqOf(segs[1]).value(), 196u);
  EXPECT_EQ(SnapshotPaths(o.dir).size(), 1u);

  RandomWrites(*store, model, 50, 2);
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(o);
  EXPECT_EQ(Dump(*store), model);
  EXPECT_EQ(store->Stats().last_seq, Seq(250));
  EXPECT_EQ(store->Stats().snapshot_seq, Seq(200));
}

TEST(Snapshot, KeepsOnlyTheTwoNewest) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  Model model;
  auto store = MustOpen(o);
  for (int round = 0; round < 4; ++round) {
    RandomWrites(*store, model, 20, 10 + round);
    ASSERT_TRUE(store->SnapshotNow().ok());
  }
  auto snaps = SnapshotPaths(o.dir);
  ASSERT_EQ(snaps.size(), 2u);
  EXPECT_NE(snaps[1].find(snapshot::SnapshotFileName(Seq(80))), std::string::npos);
  EXPECT_NE(snaps[0].find(snapshot::SnapshotFileName(Seq(60))), std::string::npos);
  // No writes since the last one: nothing new is written.
  ASSERT_TRUE(store->SnapshotNow().ok());
  EXPECT_EQ(SnapshotPaths(o.dir), snaps);
}

TEST(Snapshot, BackgroundSnapshotAfterEnoughLogBytes) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  o.snapshot_after_bytes = 4000;
  Model model;
  auto store = MustOpen(o);
  RandomWrites(*store, model, 150, 3);
  EXPECT_TRUE(rangekv::testing::WaitFor([&] { return store->Stats().snapshot_seq.value() > 0; },
                                        std::chrono::seconds(20)));
  EXPECT_FALSE(SnapshotPaths(o.dir).empty());
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(o);
  EXPECT_EQ(Dump(*store), model);
}

// Snapshots taken while writers run are fuzzy; with the log replayed from
// their replay seq they give back exactly the map.
TEST(Snapshot, SnapshotsDuringConcurrentWritesRecoverExactly) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  o.segment_bytes = 4096;
  o.keep_records_below_snapshot = 0;
  std::mutex mu;
  std::map<uint64_t, std::pair<std::string, std::optional<std::string>>> by_seq;
  {
    auto store = MustOpen(o);
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        std::mt19937_64 rng(t);
        for (int i = 0; i < 1500; ++i) {
          std::string key = "k" + std::to_string(rng() % 300);
          const bool del = rng() % 4 == 0;
          std::string value = std::to_string(t) + ":" + std::to_string(i);
          auto r = del ? Del(*store, key) : Put(*store, key, value);
          if (!r.ok()) continue;
          std::lock_guard lock(mu);
          by_seq[r->value()] = {key, del ? std::nullopt : std::optional(value)};
        }
      });
    }
    std::thread snapshots([&] {
      while (!stop) EXPECT_TRUE(store->SnapshotNow().ok());
    });
    for (auto& w : writers) w.join();
    stop = true;
    snapshots.join();
  }
  ASSERT_EQ(by_seq.size(), 6000u);
  Model model;
  for (const auto& [seq, kv] : by_seq) {
    if (kv.second)
      model[kv.first] = {*kv.second, seq};
    else
      model.erase(kv.first);
  }
  auto store = MustOpen(o);
  EXPECT_GT(store->Stats().snapshot_seq.value(), 0u);
  EXPECT_EQ(Dump(*store), model);
}

TEST(Snapshot, CorruptNewestFallsBackToOlderWhenTheLogCoversIt) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  o.keep_records_below_snapshot = 1000;
  Model model;
  {
    auto store = MustOpen(o);
    RandomWrites(*store, model, 30, 4);
    ASSERT_TRUE(store->SnapshotNow().ok());
    RandomWrites(*store, model, 30, 5);
    ASSERT_TRUE(store->SnapshotNow().ok());
    RandomWrites(*store, model, 5, 6);
  }
  auto snaps = SnapshotPaths(o.dir);
  ASSERT_EQ(snaps.size(), 2u);
  const std::string pristine = ReadBytes(snaps[1]);
  // Damage the header, an entry, the footer; or cut the file short.
  for (size_t pos : {size_t{3}, size_t{50}, pristine.size() - 20, pristine.size() + 1}) {
    SCOPED_TRACE("damage at " + std::to_string(pos));
    std::string bad = pristine;
    if (pos > pristine.size())
      bad.resize(pristine.size() / 2);
    else
      bad[pos] ^= 0x01;
    WriteBytes(snaps[1], bad);
    auto store = MustOpen(o);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(Dump(*store), model);
    EXPECT_EQ(store->Stats().snapshot_seq, Seq(30));
  }
}

TEST(Snapshot, CorruptNewestWithoutLogCoverageIsCorruption) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  o.keep_records_below_snapshot = 0;
  Model model;
  {
    auto store = MustOpen(o);
    RandomWrites(*store, model, 100, 7);
    ASSERT_TRUE(store->SnapshotNow().ok());
    RandomWrites(*store, model, 100, 8);
    ASSERT_TRUE(store->SnapshotNow().ok());
  }
  auto snaps = SnapshotPaths(o.dir);
  ASSERT_EQ(snaps.size(), 2u);
  std::string bad = ReadBytes(snaps[1]);
  bad[bad.size() / 2] ^= 0x01;
  WriteBytes(snaps[1], bad);
  auto r = RangeStore::Open(RangeId(7), KeyRange(), o);
  ASSERT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find(std::filesystem::path(snaps[1]).filename().string()),
            std::string::npos)
      << r.status().ToString();
}

TEST(Snapshot, EmptyMapAndLeftoverTempFile) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(Put(*store, "a", "1").ok());
    ASSERT_TRUE(Del(*store, "a").ok());
    ASSERT_TRUE(store->SnapshotNow().ok());
  }
  const std::string tmpfile = fs::JoinPath(o.dir, snapshot::SnapshotFileName(Seq(9)) + ".tmp");
  WriteBytes(tmpfile, "half a snapshot");
  auto store = MustOpen(o);
  EXPECT_EQ(store->Stats().keys, 0u);
  EXPECT_EQ(store->Stats().snapshot_seq, Seq(2));
  EXPECT_FALSE(std::filesystem::exists(tmpfile));
  auto seq = Put(*store, "b", "2");
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, Seq(3));
}

TEST(Snapshot, ReaderRejectsEveryFlippedByte) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(Put(*store, "a", "1").ok());
    ASSERT_TRUE(Put(*store, "b", "22").ok());
    ASSERT_TRUE(store->SnapshotNow().ok());
  }
  const std::string path = SnapshotPaths(o.dir).at(0);
  const std::string good = ReadBytes(path);
  int entries = 0;
  auto ok = snapshot::ReadSnapshot(fs::Posix(), path, RangeId(7), [&](auto, auto, auto) { ++entries; });
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(entries, 2);
  EXPECT_EQ(ok->entries, 2u);
  EXPECT_EQ(ok->replay_from, Seq(2));
  EXPECT_EQ(snapshot::ReadSnapshot(fs::Posix(), path, RangeId(8), [](auto, auto, auto) {}).status().code(),
            Code::kCorruption);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x04;
    WriteBytes(path, bad);
    auto r = snapshot::ReadSnapshot(fs::Posix(), path, RangeId(7), [](auto, auto, auto) {});
    EXPECT_EQ(r.status().code(), Code::kCorruption) << "byte " << i;
  }
}

}  // namespace
}  // namespace rangekv::kvnode
