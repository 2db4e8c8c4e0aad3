// RangeStore background fsync (policies batch and never) and the committed
// map's point-lookup index: appends never wait for a running fsync, a failed
// background fsync fails the store, segments rotate safely while the sync
// thread runs, and Get/Scan agree with a model across overwrites, deletes,
// snapshots and reopens.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "kvnode/storage/range_store.h"
#include "tests/kvnode/storage/store_test_util.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using namespace std::chrono_literals;
using rangekv::testing::TempDir;
using rangekv::testing::WaitFor;

StoreOptions Opts(const std::string& dir, FsyncPolicy p) {
  StoreOptions o;
  o.dir = dir;
  o.fsync = p;
  o.batch_interval = std::chrono::milliseconds(5);
  o.snapshot_after_bytes = 1u << 30;
  return o;
}

bool IsSegment(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".log") == 0;
}

class SyncThread : public ::testing::Test {
 protected:
  void TearDown() override { fs::SetFaultHookForTesting(nullptr); }
};

// Under batch the log fsyncs in the background, within the interval.
TEST_F(SyncThread, BatchSyncsTheSegmentInTheBackground) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path(), FsyncPolicy::kBatch));
  std::atomic<int> syncs{0};
  fs::SetFaultHookForTesting([&](fs::FaultPoint p, const std::string& path) {
    if (p == fs::FaultPoint::kSync && IsSegment(path)) syncs.fetch_add(1);
    return 0;
  });
  ASSERT_TRUE(Put(*store, "a", "1").ok());
  EXPECT_TRUE(WaitFor([&] { return syncs.load() > 0; }, 10s));
  fs::SetFaultHookForTesting(nullptr);
  EXPECT_TRUE(store->Close().ok());
}

// Under never nothing is fsync'ed until close.
TEST_F(SyncThread, NeverDoesNotSyncBeforeClose) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path(), FsyncPolicy::kNever));
  std::atomic<int> syncs{0};
  fs::SetFaultHookForTesting([&](fs::FaultPoint p, const std::string& path) {
    if (p == fs::FaultPoint::kSync && IsSegment(path)) syncs.fetch_add(1);
    return 0;
  });
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put(*store, "k" + std::to_string(i), "v").ok());
  EXPECT_EQ(syncs.load(), 0);
  EXPECT_TRUE(store->Close().ok());
  EXPECT_GE(syncs.load(), 1);  // close makes the log durable
}

// A background fsync that hangs does not hold up batch acknowledgements.
TEST_F(SyncThread, BatchAppendsDoNotWaitForARunningSync) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path(), FsyncPolicy::kBatch));
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> entered{false};
  fs::SetFaultHookForTesting([&, released](fs::FaultPoint p, const std::string& path) {
    if (p == fs::FaultPoint::kSync && IsSegment(path)) {
      entered.store(true);
      released.wait();
    }
    return 0;
  });
  ASSERT_TRUE(Put(*store, "first", "1").ok());
  ASSERT_TRUE(WaitFor([&] { return entered.load(); }, 10s));
  // The sync thread is now stuck inside fdatasync; writes still complete.
  for (int i = 0; i < 200; ++i) {
    auto r = Put(*store, "k" + std::to_string(i), std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_EQ(store->Get("k199")->value, "199");
  release.set_value();
  fs::SetFaultHookForTesting(nullptr);
  EXPECT_TRUE(store->Close().ok());
  store = MustOpen(Opts(tmp.path(), FsyncPolicy::kBatch));
  EXPECT_EQ(store->Stats().keys, 201u);
}

// A failed background fsync fails the store: later writes get IO_ERROR,
// Close reports it, and a reopen still has what was written before.
TEST_F(SyncThread, FailedBackgroundSyncStopsTheStore) {
  TempDir tmp;
  const StoreOptions o = Opts(tmp.path(), FsyncPolicy::kBatch);
  auto store = MustOpen(o);
  ASSERT_TRUE(Put(*store, "before", "1").ok());
  fs::SetFaultHookForTesting([](fs::FaultPoint p, const std::string& path) {
    return p == fs::FaultPoint::kSync && IsSegment(path) ? EIO : 0;
  });
  ASSERT_TRUE(Put(*store, "during", "2").ok());  // acknowledged before its fsync
  EXPECT_TRUE(WaitFor([&] { return Put(*store, "x", "y").status().code() == Code::kIoError; },
                      10s));
  fs::SetFaultHookForTesting(nullptr);
  auto after = Put(*store, "after", "3");
  EXPECT_EQ(after.status().code(), Code::kIoError);
  EXPECT_NE(after.status().message().find("Input/output error"), std::string::npos);
  EXPECT_EQ(store->Close().code(), Code::kIoError);
  store = MustOpen(o);
  EXPECT_EQ(store->Get("before")->value, "1");
  EXPECT_FALSE(store->Get("after").has_value());
  EXPECT_TRUE(Put(*store, "later", "4").ok());
}

// Many writers across many small segments: rotation and the sync thread
// interleave, and every acknowledged write survives a reopen.
TEST_F(SyncThread, RotationWhileSyncingKeepsEveryWrite) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path(), FsyncPolicy::kBatch);
  o.batch_interval = std::chrono::milliseconds(0);  // sync as often as possible
  o.segment_bytes = 4096;
  auto store = MustOpen(o);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string k = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!Put(*store, k, std::string(64, 'a' + t)).ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(store->Stats().segments, 5u);
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(o);
  ASSERT_EQ(store->Stats().keys, static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(store->Get("t3-299")->value, std::string(64, 'd'));
}

// Get, Scan and cas agree with a model through inserts, overwrites and
// deletes, and again after a snapshot plus reopen rebuilds the map.
TEST(KeyIndex, PointReadsAndScansMatchAModel) {
  TempDir tmp;
  const StoreOptions o = Opts(tmp.path(), FsyncPolicy::kNever);
  auto store = MustOpen(o);
  Model model;
  std::mt19937 rng(42);
  for (int i = 0; i < 3000; ++i) {
    const std::string k = "key" + std::to_string(rng() % 200);
    const int what = static_cast<int>(rng() % 10);
    if (what < 2) {
      ASSERT_TRUE(Del(*store, k).ok());
      model.erase(k);
    } else if (what < 4) {
      const uint64_t ver = model.count(k) ? model[k].second : 0;
      auto r = Cas(*store, k, ver, "c" + std::to_string(i));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      model[k] = {"c" + std::to_string(i), r->value()};
    } else {
      auto r = Put(*store, k, "p" + std::to_string(i));
      ASSERT_TRUE(r.ok());
      model[k] = {"p" + std::to_string(i), r->value()};
    }
  }
  auto check = [&](const RangeStore& s) {
    EXPECT_EQ(Dump(s), model);
    for (int j = 0; j < 200; ++j) {
      const std::string k = "key" + std::to_string(j);
      auto e = s.Get(k);
      auto m = model.find(k);
      ASSERT_EQ(e.has_value(), m != model.end()) << k;
      if (e) {
        EXPECT_EQ(e->key, k);
        EXPECT_EQ(e->value, m->second.first);
        EXPECT_EQ(e->version, m->second.second);
      }
    }
    EXPECT_EQ(s.Stats().keys, model.size());
  };
  check(*store);
  ASSERT_TRUE(store->SnapshotNow().ok());
  ASSERT_TRUE(Put(*store, "key7", "after-snapshot").ok());
  model["key7"] = {"after-snapshot", store->Get("key7")->version};
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(o);
  check(*store);
}

}  // namespace
}  // namespace rangekv::kvnode
