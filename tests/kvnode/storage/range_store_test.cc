// RangeStore semantics: put/get/delete/cas/batch/scan, concurrency against a
// model, fsync policies across reopen, and I/O failures.
#include "kvnode/storage/range_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/fs.h"
#include "tests/kvnode/storage/store_test_util.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using proto::WriteOp;
using rangekv::testing::TempDir;

StoreOptions Opts(const std::string& dir, FsyncPolicy p = FsyncPolicy::kNever) {
  StoreOptions o;
  o.dir = dir;
  o.fsync = p;
  o.snapshot_after_bytes = 1u << 30;
  return o;
}

TEST(FsyncPolicy, NamesRoundTrip) {
  for (FsyncPolicy p : {FsyncPolicy::kAlways, FsyncPolicy::kBatch, FsyncPolicy::kNever}) {
    EXPECT_EQ(ParseFsyncPolicy(FsyncPolicyName(p)), p);
  }
  EXPECT_FALSE(ParseFsyncPolicy("sometimes").has_value());
}

TEST(RangeStore, PutGetDelete) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  EXPECT_FALSE(store->Get("a").has_value());
  auto s1 = Put(*store, "a", "1");
  ASSERT_TRUE(s1.ok()) << s1.status().ToString();
  EXPECT_EQ(*s1, Seq(1));
  EXPECT_EQ(store->Get("a"), (proto::Entry{"a", "1", 1}));
  auto s2 = Put(*store, "a", "2");
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(*s2, Seq(2));
  EXPECT_EQ(store->Get("a")->version, 2u);
  EXPECT_EQ(store->Get("a")->value, "2");
  ASSERT_TRUE(Del(*store, "a").ok());
  EXPECT_FALSE(store->Get("a").has_value());
  auto s4 = Del(*store, "never-there");  // deleting a missing key succeeds
  ASSERT_TRUE(s4.ok());
  EXPECT_EQ(*s4, Seq(4));
  EXPECT_EQ(store->Stats().last_seq, Seq(4));
  EXPECT_EQ(store->Stats().keys, 0u);
}

TEST(RangeStore, BinaryKeysAndValues) {
  TempDir tmp;
  const std::string k("\0\xff\n", 3), v("\0\0\x80", 3);
  {
    auto store = MustOpen(Opts(tmp.path()));
    ASSERT_TRUE(Put(*store, k, v).ok());
    ASSERT_TRUE(Put(*store, "", "empty key").ok());
  }
  auto store = MustOpen(Opts(tmp.path()));
  EXPECT_EQ(store->Get(k)->value, v);
  EXPECT_EQ(store->Get("")->value, "empty key");
}

TEST(RangeStore, VersionsIncreaseAndEqualTheReturnedSeq) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  uint64_t prev = 0;
  for (int i = 0; i < 50; ++i) {
    const std::string key = "k" + std::to_string(i % 7);
    auto seq = Put(*store, key, std::to_string(i));
    ASSERT_TRUE(seq.ok());
    EXPECT_GT(seq->value(), prev);
    prev = seq->value();
    EXPECT_EQ(store->Get(key)->version, seq->value());
  }
}

TEST(RangeStore, CasSemantics) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  auto created = Cas(*store, "k", 0, "v1");  // 0: must not exist
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(Cas(*store, "k", 0, "again").status().code(), Code::kCasFailed);
  EXPECT_EQ(Cas(*store, "k", created->value() + 5, "x").status().code(), Code::kCasFailed);
  auto updated = Cas(*store, "k", created->value(), "v2");
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(store->Get("k"), (proto::Entry{"k", "v2", updated->value()}));
  // Failed cas consumed no Seq.
  EXPECT_EQ(*updated, created->Next());
  ASSERT_TRUE(Del(*store, "k").ok());
  EXPECT_EQ(Cas(*store, "k", updated->value(), "x").status().code(), Code::kCasFailed);
  EXPECT_TRUE(Cas(*store, "k", 0, "v3").ok());
}

TEST(RangeStore, CasFailureIsReportedInline) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  ASSERT_TRUE(Put(*store, "k", "v").ok());
  bool called = false;
  Status got;
  store->Write({WriteOp::Cas("k", 0, "x")}, [&](Result<Seq> r) {
    called = true;
    got = r.status();
  });
  EXPECT_TRUE(called);  // before Write returned
  EXPECT_EQ(got.code(), Code::kCasFailed);
  EXPECT_NE(got.message().find("version 1"), std::string::npos) << got.ToString();
  EXPECT_EQ(store->Stats().last_seq, Seq(1));
}

// A cas is checked against writes still in flight, not only committed ones.
TEST(RangeStore, CasSeesPendingWrites) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path(), FsyncPolicy::kAlways));
  for (int round = 0; round < 20; ++round) {
    const std::string key = "k" + std::to_string(round);
    std::promise<Result<Seq>> put_done;
    store->Write({WriteOp::Put(key, "v")}, [&](Result<Seq> r) { put_done.set_value(r); });
    // Whether or not the put has committed yet, the key now exists.
    EXPECT_EQ(Cas(*store, key, 0, "x").status().code(), Code::kCasFailed);
    ASSERT_TRUE(put_done.get_future().get().ok());
    std::promise<Result<Seq>> del_done;
    store->Write({WriteOp::Delete(key)}, [&](Result<Seq> r) { del_done.set_value(r); });
    EXPECT_TRUE(Cas(*store, key, 0, "again").ok());  // ... and now it does not
    ASSERT_TRUE(del_done.get_future().get().ok());
    EXPECT_EQ(store->Get(key)->value, "again");
  }
}

TEST(RangeStore, BatchIsAtomic) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  ASSERT_TRUE(Put(*store, "c", "old").ok());
  auto failed =
      WriteSync(*store, {WriteOp::Put("a", "1"), WriteOp::Delete("c"), WriteOp::Cas("b", 5, "2")});
  EXPECT_EQ(failed.status().code(), Code::kCasFailed);
  EXPECT_FALSE(store->Get("a").has_value());
  EXPECT_EQ(store->Get("c")->value, "old");
  EXPECT_EQ(store->Stats().last_seq, Seq(1));

  auto ok = WriteSync(*store, {WriteOp::Put("a", "1"), WriteOp::Delete("c"),
                               WriteOp::Cas("b", 0, "2"), WriteOp::Cas("c", 1, "ignored")});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  // Conditions compare against the state before the batch; ops apply in order.
  EXPECT_EQ(store->Get("a")->version, ok->value());
  EXPECT_EQ(store->Get("b")->version, ok->value());
  EXPECT_EQ(store->Get("c")->value, "ignored");
  EXPECT_EQ(store->Get("c")->version, ok->value());
}

TEST(RangeStore, ScanOrderLimitsAndBounds) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  for (char c = 'j'; c >= 'a'; --c) ASSERT_TRUE(Put(*store, std::string(1, c), "v").ok());
  auto keys = [](const std::vector<proto::Entry>& es) {
    std::string s;
    for (const auto& e : es) s += e.key;
    return s;
  };
  bool more = true;
  EXPECT_EQ(keys(store->Scan("c", std::string("g"), 10, &more)), "cdef");
  EXPECT_FALSE(more);
  EXPECT_EQ(keys(store->Scan("c", std::string("g"), 2, &more)), "cd");
  EXPECT_TRUE(more);
  EXPECT_EQ(keys(store->Scan("c", std::string("e"), 2, &more)), "cd");
  EXPECT_FALSE(more);  // exactly the limit left: nothing more
  EXPECT_EQ(keys(store->Scan("", std::nullopt, 100, &more)), "abcdefghij");
  EXPECT_FALSE(more);
  EXPECT_EQ(keys(store->Scan("cc", std::nullopt, 3, &more)), "def");
  EXPECT_TRUE(more);
  EXPECT_EQ(keys(store->Scan("z", std::nullopt, 3, &more)), "");
  EXPECT_FALSE(more);
  EXPECT_EQ(keys(store->Scan("a", std::string("a"), 3, &more)), "");
  EXPECT_EQ(keys(store->Scan("a", std::nullopt, 0, &more)), "");
  EXPECT_TRUE(more);
  EXPECT_EQ(store->Scan("b", std::nullopt, 1, nullptr).size(), 1u);  // more may be null
  auto e = store->Scan("b", std::nullopt, 1, &more);
  EXPECT_EQ(e[0], (proto::Entry{"b", "v", 9}));
}

TEST(RangeStore, RejectsOversizeEmptyAndOutOfRange) {
  TempDir tmp;
  auto r = RangeStore::Open(RangeId(3), KeyRange("b", std::string("m")), Opts(tmp.path()));
  ASSERT_TRUE(r.ok());
  auto& store = **r;
  EXPECT_EQ(Put(store, "b" + std::string(proto::Limits::kMaxKeyBytes, 'k'), "v").status().code(),
            Code::kTooLarge);
  EXPECT_EQ(Put(store, "c", std::string(proto::Limits::kMaxValueBytes + 1, 'v')).status().code(),
            Code::kTooLarge);
  EXPECT_EQ(WriteSync(store, {}).status().code(), Code::kBadRequest);
  // Outside the store's bounds: NOT_OWNER (after a split the key is
  // another range's, which the client finds in the map).
  auto out = Put(store, "z", "v");
  EXPECT_EQ(out.status().code(), Code::kNotOwner);
  EXPECT_EQ(Put(store, "a", "v").status().code(), Code::kNotOwner);
  EXPECT_TRUE(Put(store, "c", std::string(proto::Limits::kMaxValueBytes, 'v')).ok());
  EXPECT_EQ(store.Stats().last_seq, Seq(1));
}

// Several threads write overlapping keys; afterwards every key holds the
// write with the highest Seq among those to it, at that version.
TEST(RangeStore, ConcurrentWritersMatchModel) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path(), FsyncPolicy::kBatch));
  constexpr int kThreads = 8, kPerThread = 300, kKeys = 40;
  struct Done {
    std::string key, value;
    bool del;
    uint64_t seq;
  };
  std::vector<std::vector<Done>> logs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "key" + std::to_string((t * 7 + i * 13) % kKeys);
        std::string value = std::to_string(t) + "/" + std::to_string(i);
        bool del = i % 9 == 4;
        auto r = del ? Del(*store, key) : Put(*store, key, value);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        logs[t].push_back({key, value, del, r->value()});
      }
    });
  }
  for (auto& th : threads) th.join();
  std::map<uint64_t, Done> by_seq;
  for (const auto& log : logs) {
    for (const auto& d : log) EXPECT_TRUE(by_seq.emplace(d.seq, d).second) << "seq reused";
  }
  ASSERT_EQ(by_seq.size(), size_t(kThreads * kPerThread));
  EXPECT_EQ(by_seq.rbegin()->first, uint64_t(kThreads * kPerThread));  // no gaps
  Model model;
  for (const auto& [seq, d] : by_seq) {
    if (d.del)
      model.erase(d.key);
    else
      model[d.key] = {d.value, seq};
  }
  EXPECT_EQ(Dump(*store), model);
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(Opts(tmp.path()));
  EXPECT_EQ(Dump(*store), model);
}

// Increments through cas retry loops from several threads lose nothing.
TEST(RangeStore, ConcurrentCasIncrements) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  constexpr int kThreads = 4, kIncrements = 100;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kIncrements;) {
        auto cur = store->Get("counter");
        uint64_t ver = cur ? cur->version : 0;
        int n = cur ? std::stoi(cur->value) : 0;
        auto r = Cas(*store, "counter", ver, std::to_string(n + 1));
        if (r.ok()) {
          ++done;
        } else {
          ASSERT_EQ(r.status().code(), Code::kCasFailed);
          ++conflicts;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(store->Get("counter")->value, std::to_string(kThreads * kIncrements));
  EXPECT_EQ(store->Stats().last_seq, Seq(kThreads * kIncrements));
}

// Readers running beside writers see each key's version only grow, and
// never a value that does not belong to its version.
TEST(RangeStore, ReadersSeeMonotonicCommittedState) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      std::string key = "k" + std::to_string(i % 10);
      if (!Put(*store, key, "for-" + key).ok()) ++failures;
    }
    stop = true;
  });
  std::vector<uint64_t> seen(10, 0);
  int reads = 0;
  while (!stop || reads < 100) {
    for (int k = 0; k < 10; ++k) {
      auto e = store->Get("k" + std::to_string(k));
      if (!e) continue;
      EXPECT_GE(e->version, seen[k]);
      EXPECT_EQ(e->value, "for-k" + std::to_string(k));
      seen[k] = e->version;
    }
    bool more;
    auto page = store->Scan("", std::nullopt, 100, &more);
    for (size_t i = 1; i < page.size(); ++i) EXPECT_LT(page[i - 1].key, page[i].key);
    ++reads;
  }
  writer.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->Stats().last_seq, Seq(2000));
}

class PolicyTest : public ::testing::TestWithParam<FsyncPolicy> {};

TEST_P(PolicyTest, WritesSurviveReopen) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path(), GetParam());
  o.batch_interval = std::chrono::milliseconds(2);
  o.segment_bytes = 4096;
  Model model;
  std::mutex mu;
  {
    auto store = MustOpen(o);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
          auto seq = Put(*store, key, std::string(30, 'x'));
          ASSERT_TRUE(seq.ok());
          std::lock_guard lock(mu);
          model[key] = {std::string(30, 'x'), seq->value()};
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_GT(store->Stats().segments, 1u);
  }
  auto store = MustOpen(o);
  EXPECT_EQ(Dump(*store), model);
  EXPECT_EQ(store->Stats().last_seq, Seq(200));
}

INSTANTIATE_TEST_SUITE_P(AllPolicies, PolicyTest,
                         ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                                           FsyncPolicy::kNever),
                         [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

TEST(RangeStore, CloseIsIdempotentAndRefusesLaterWrites) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path()));
  ASSERT_TRUE(Put(*store, "a", "1").ok());
  EXPECT_TRUE(store->Close().ok());
  EXPECT_TRUE(store->Close().ok());
  bool called = false;
  store->Write({WriteOp::Put("b", "2")}, [&](Result<Seq> r) {
    called = true;
    EXPECT_EQ(r.status().code(), Code::kUnavailable);
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(store->Get("a")->value, "1");  // reads still work
}

// Writes issued while the log thread is busy are committed together: one
// writev for the whole group.
TEST(RangeStore, GroupCommitSharesOneWrite) {
  TempDir tmp;
  auto store = MustOpen(Opts(tmp.path(), FsyncPolicy::kAlways));
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  int writes = 0;
  fs::SetFaultHookForTesting([&](fs::FaultPoint p, const std::string&) {
    if (p != fs::FaultPoint::kWrite) return 0;
    std::unique_lock lock(mu);
    if (++writes == 1) {
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    }
    return 0;
  });
  std::atomic<int> acked{0};
  store->Write({WriteOp::Put("first", "v")}, [&](Result<Seq> r) { acked += r.ok(); });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  for (int i = 0; i < 49; ++i) {
    store->Write({WriteOp::Put("k" + std::to_string(i), "v")},
                 [&](Result<Seq> r) { acked += r.ok(); });
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_TRUE(
      rangekv::testing::WaitFor([&] { return acked.load() == 50; }, std::chrono::seconds(20)));
  fs::SetFaultHookForTesting(nullptr);
  EXPECT_EQ(writes, 2);
  EXPECT_EQ(store->Stats().keys, 50u);
}

class IoFailure : public ::testing::TestWithParam<std::tuple<FsyncPolicy, fs::FaultPoint>> {
 protected:
  void TearDown() override { fs::SetFaultHookForTesting(nullptr); }
};

// A failed write or fsync fails the write with IO_ERROR, applies nothing,
// and the store refuses every later write; a reopen has the earlier data.
TEST_P(IoFailure, FailsWritesAndStopsTheStore) {
  const auto [policy, point] = GetParam();
  TempDir tmp;
  StoreOptions o = Opts(tmp.path(), policy);
  auto store = MustOpen(o);
  ASSERT_TRUE(Put(*store, "before", "1").ok());
  fs::SetFaultHookForTesting(
      [point = point](fs::FaultPoint p, const std::string&) { return p == point ? EIO : 0; });
  auto r = Put(*store, "during", "2");
  ASSERT_EQ(r.status().code(), Code::kIoError) << r.status().ToString();
  EXPECT_NE(r.status().message().find("Input/output error"), std::string::npos);
  EXPECT_FALSE(store->Get("during").has_value());
  fs::SetFaultHookForTesting(nullptr);
  EXPECT_EQ(Put(*store, "after", "3").status().code(), Code::kIoError);
  EXPECT_EQ(store->Close().code(), Code::kIoError);
  store = MustOpen(o);
  EXPECT_EQ(store->Get("before")->value, "1");
  EXPECT_FALSE(store->Get("after").has_value());
  EXPECT_TRUE(Put(*store, "later", "4").ok());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, IoFailure,
    ::testing::Values(std::make_tuple(FsyncPolicy::kNever, fs::FaultPoint::kWrite),
                      std::make_tuple(FsyncPolicy::kAlways, fs::FaultPoint::kWrite),
                      std::make_tuple(FsyncPolicy::kAlways, fs::FaultPoint::kSync)));

TEST(RangeStore, FailureToStartANewSegmentFailsTheWrite) {
  TempDir tmp;
  StoreOptions o = Opts(tmp.path());
  o.segment_bytes = 100;
  auto store = MustOpen(o);
  ASSERT_TRUE(Put(*store, "a", std::string(100, 'x')).ok());
  fs::SetFaultHookForTesting([](fs::FaultPoint p, const std::string&) {
    return p == fs::FaultPoint::kCreate ? ENOSPC : 0;
  });
  auto r = Put(*store, "b", "y");
  fs::SetFaultHookForTesting(nullptr);
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_NE(r.status().message().find("No space"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(store->Get("b").has_value());
}

}  // namespace
}  // namespace rangekv::kvnode
