// RangeStore's replication API: the commit gate, Commit ordering, epochs,
// AppendReplicated checks, ReadLog, and an owner -> replica round trip.
#include <gtest/gtest.h>

#include <atomic>

#include "kvnode/storage/range_store.h"
#include "kvnode/storage/wal_format.h"
#include "tests/kvnode/storage/replication_test_util.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using proto::WriteOp;
using rangekv::testing::TempDir;
using rangekv::testing::WaitFor;

class Policy : public ::testing::TestWithParam<FsyncPolicy> {};
INSTANTIATE_TEST_SUITE_P(All, Policy,
                         ::testing::Values(FsyncPolicy::kAlways, FsyncPolicy::kBatch,
                                           FsyncPolicy::kNever),
                         [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

TEST(CommitGate, OffByDefaultAppliesOnceDurable) {
  TempDir tmp;
  auto store = MustOpen(ReplOpts(tmp.path()));
  EXPECT_EQ(store->last(), (LogPosition{Seq(0), Epoch(0)}));
  EXPECT_EQ(store->log_start(), Seq(1));
  ASSERT_TRUE(Put(*store, "a", "1").ok());
  ASSERT_TRUE(Put(*store, "b", "2").ok());
  EXPECT_EQ(store->committed(), Seq(2));
  EXPECT_EQ(store->durable(), Seq(2));
  EXPECT_EQ(store->last(), (LogPosition{Seq(2), Epoch(0)}));
  EXPECT_EQ(store->consistent_from(), Seq(0));
  EXPECT_EQ(store->epoch(), Epoch(0));
}

TEST_P(Policy, GateHoldsWritesUntilCommit) {
  TempDir tmp;
  Outcomes out;
  auto store = MustOpen(ReplOpts(tmp.path(), GetParam()));
  store->SetCommitGate(true);
  PutAsync(*store, out, "w1", "a", "1");
  PutAsync(*store, out, "w2", "b", "2");
  PutAsync(*store, out, "w3", "a", "3");
  ASSERT_TRUE(WaitFor([&] { return store->durable() == Seq(3); }, kWait));
  EXPECT_EQ(store->last().seq, Seq(3));
  EXPECT_EQ(store->committed(), Seq(0));
  EXPECT_FALSE(out.Done("w1"));
  EXPECT_FALSE(store->Get("a").has_value());  // durable is not visible

  store->Commit(Seq(2));
  ASSERT_TRUE(out.WaitDone("w2"));
  EXPECT_EQ(*out.Get("w1"), Seq(1));
  EXPECT_EQ(*out.Get("w2"), Seq(2));
  EXPECT_EQ(store->committed(), Seq(2));
  EXPECT_EQ(store->Get("a")->value, "1");
  EXPECT_EQ(store->Get("b")->version, 2u);
  store->Commit(Seq(1));  // never lowers
  EXPECT_FALSE(out.Done("w3"));
  EXPECT_EQ(out.order(), (std::vector<std::string>{"w1", "w2"}));

  // A commit point past durable takes effect as records become durable.
  store->Commit(Seq(10));
  ASSERT_TRUE(out.WaitDone("w3"));
  PutAsync(*store, out, "w4", "c", "4");
  ASSERT_TRUE(out.WaitDone("w4"));
  EXPECT_EQ(*out.Get("w4"), Seq(4));
  PutAsync(*store, out, "w5", "c", "5");
  EXPECT_TRUE(out.WaitDone("w5"));  // still under the commit point
  EXPECT_EQ(out.order(), (std::vector<std::string>{"w1", "w2", "w3", "w4", "w5"}));
  EXPECT_EQ(store->Get("a")->value, "3");
}

TEST(CommitGate, TurningItOffCommitsEverythingDurable) {
  TempDir tmp;
  Outcomes out;
  auto store = MustOpen(ReplOpts(tmp.path()));
  store->SetCommitGate(true);
  for (int i = 0; i < 5; ++i)
    PutAsync(*store, out, "w" + std::to_string(i), "k", std::to_string(i));
  ASSERT_TRUE(WaitFor([&] { return store->durable() == Seq(5); }, kWait));
  EXPECT_EQ(store->committed(), Seq(0));
  store->SetCommitGate(false);
  ASSERT_TRUE(WaitCommitted(*store, Seq(5)));
  EXPECT_TRUE(out.WaitDone("w4"));
  EXPECT_EQ(store->Get("k")->value, "4");
  // Off again: writes complete without Commit.
  EXPECT_EQ(*Put(*store, "k", "x"), Seq(6));
}

// cas and conditions see durable-but-uncommitted and queued writes.
TEST(CommitGate, CasSeesUncommittedWrites) {
  TempDir tmp;
  Outcomes out;
  auto store = MustOpen(ReplOpts(tmp.path()));
  store->SetCommitGate(true);
  PutAsync(*store, out, "put", "k", "v1");
  ASSERT_TRUE(WaitFor([&] { return store->durable() == Seq(1); }, kWait));
  WriteAsync(*store, out, "cas-absent", {WriteOp::Cas("k", 0, "x")});
  // Refused, but answered only once the write it saw is committed: a reader
  // must not find the old state after being told it changed.
  EXPECT_FALSE(out.Done("cas-absent"));
  WriteAsync(*store, out, "cas-ok", {WriteOp::Cas("k", 1, "v2")});
  WriteAsync(*store, out, "del", {WriteOp::Delete("k")});
  WriteAsync(*store, out, "cas-after-del", {WriteOp::Cas("k", 0, "v3")});
  EXPECT_FALSE(out.Done("cas-ok"));
  EXPECT_FALSE(out.Done("cas-after-del"));
  store->Commit(Seq(4));
  ASSERT_TRUE(out.WaitDone("cas-absent"));
  EXPECT_EQ(out.Get("cas-absent").status().code(), Code::kCasFailed);
  ASSERT_TRUE(out.WaitDone("cas-after-del"));
  EXPECT_EQ(*out.Get("cas-after-del"), Seq(4));
  EXPECT_EQ(store->Get("k"), (proto::Entry{"k", "v3", 4}));
}

// A cas refused because of a write that is then truncated away answers
// UNAVAILABLE (its premise is gone), never a stale CAS_FAILED.
TEST(CommitGate, RefusedCasOnATruncatedWriteIsUnavailable) {
  TempDir tmp;
  Outcomes out;
  auto store = MustOpen(ReplOpts(tmp.path()));
  store->SetCommitGate(true);
  PutAsync(*store, out, "put", "k", "v1");
  ASSERT_TRUE(WaitFor([&] { return store->durable() == Seq(1); }, kWait));
  WriteAsync(*store, out, "cas", {WriteOp::Cas("k", 0, "x")});
  EXPECT_FALSE(out.Done("cas"));
  ASSERT_TRUE(store->TruncateAfter(Seq(0)).ok());
  ASSERT_TRUE(out.WaitDone("cas"));
  EXPECT_EQ(out.Get("cas").status().code(), Code::kUnavailable);
}

TEST(CommitGate, CloseFailsUncommittedWrites) {
  TempDir tmp;
  Outcomes out;
  {
    auto store = MustOpen(ReplOpts(tmp.path()));
    store->SetCommitGate(true);
    PutAsync(*store, out, "committed", "a", "1");
    PutAsync(*store, out, "open", "b", "2");
    ASSERT_TRUE(WaitFor([&] { return store->durable() == Seq(2); }, kWait));
    store->Commit(Seq(1));
    ASSERT_TRUE(out.WaitDone("committed"));
    ASSERT_TRUE(store->Close().ok());
    ASSERT_TRUE(out.Done("open"));  // never hangs
    EXPECT_EQ(out.Get("open").status(), Status(Code::kUnavailable, "range store is closed"));
    EXPECT_EQ(store->Get("b"), std::nullopt);
  }
  // The record is in the log: recovery applies the whole log (documented).
  auto store = MustOpen(ReplOpts(tmp.path()));
  EXPECT_EQ(store->committed(), Seq(2));
  EXPECT_EQ(store->Get("b")->value, "2");
}

TEST(Epochs, WritesCarryTheEpochAndEpochEndSpansEpochs) {
  TempDir tmp;
  {
    auto store = MustOpen(ReplOpts(tmp.path()));
    ASSERT_TRUE(Put(*store, "old", "0").ok());  // epoch 0
    ASSERT_TRUE(store->BeginEpoch(Epoch(1)).ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Put(*store, "a", std::to_string(i)).ok());  // 2..4
    ASSERT_TRUE(store->BeginEpoch(Epoch(3)).ok());
    ASSERT_TRUE(store->BeginEpoch(Epoch(3)).ok());  // equal: no-op
    EXPECT_EQ(store->BeginEpoch(Epoch(2)).code(), Code::kBadRequest);
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(Put(*store, "b", std::to_string(i)).ok());  // 5..6
    ASSERT_TRUE(store->BeginEpoch(Epoch(4)).ok());  // begun, nothing written yet
    EXPECT_EQ(store->last(), (LogPosition{Seq(6), Epoch(3)}));
    auto recs = AllFrom(*store, Seq(1));
    ASSERT_EQ(recs.size(), 6u);
    EXPECT_EQ(recs[0].epoch, Epoch(0));
    EXPECT_EQ(recs[1].epoch, Epoch(1));
    EXPECT_EQ(recs[5].epoch, Epoch(3));
    auto batch =
        wal::DecodeBatchPayload(std::string_view(recs[4].bytes).substr(wal::kRecordHeaderSize));
    ASSERT_TRUE(batch.ok());
    EXPECT_EQ(batch->epoch, Epoch(3));
  }
  for (int round = 0; round < 2; ++round) {  // the same after each reopen
    auto store = MustOpen(ReplOpts(tmp.path()));
    EXPECT_EQ(store->epoch(), Epoch(4));
    EXPECT_EQ(store->last(), (LogPosition{Seq(6), Epoch(3)}));
    EXPECT_EQ(store->EpochEnd(Epoch(0)), Seq(1));
    EXPECT_EQ(store->EpochEnd(Epoch(1)), Seq(4));
    EXPECT_EQ(store->EpochEnd(Epoch(2)), Seq(4));
    EXPECT_EQ(store->EpochEnd(Epoch(3)), Seq(6));
    EXPECT_EQ(store->EpochEnd(Epoch(4)), Seq(6));
    EXPECT_EQ(store->EpochEnd(Epoch(9)), Seq(6));
    if (round == 1) {
      ASSERT_TRUE(Put(*store, "c", "x").ok());
      EXPECT_EQ(store->last(), (LogPosition{Seq(7), Epoch(4)}));
      EXPECT_EQ(store->EpochEnd(Epoch(3)), Seq(6));
      EXPECT_EQ(store->EpochEnd(Epoch(4)), Seq(7));
    }
  }
}

// A replica that began an epoch as owner but wrote nothing in it, then
// follows an owner whose records at those seqs are of an older epoch: the
// begun epoch has no records and must leave its history, or the replica,
// once owner again, would send its own replicas after a divergence that is
// not there (found by simulation seed 106280: replicas copied snapshots
// forever).
TEST(Epochs, ReplicatedRecordsReplaceAnEpochBegunWithoutRecords) {
  TempDir owner_dir, replica_dir;
  auto owner = MustOpen(ReplOpts(owner_dir.path()));
  auto replica = MustOpen(ReplOpts(replica_dir.path()));
  ASSERT_TRUE(owner->BeginEpoch(Epoch(1)).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Put(*owner, "k", std::to_string(i)).ok());  // 1..3
  std::vector<LogRecord> recs = AllFrom(*owner, Seq(1));
  ASSERT_EQ(recs.size(), 3u);
  ASSERT_TRUE(AppendSync(*replica, {recs[0], recs[1]}).ok());
  ASSERT_TRUE(replica->BeginEpoch(Epoch(2)).ok());  // promoted, wrote nothing
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(2));
  ASSERT_TRUE(AppendSync(*replica, {recs[2]}).ok());  // follows epoch 1's record 3
  EXPECT_EQ(replica->last(), (LogPosition{Seq(3), Epoch(1)}));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(3));
  EXPECT_EQ(replica->epoch(), Epoch(1));
  ASSERT_TRUE(replica->Close().ok());
  auto reopened = MustOpen(ReplOpts(replica_dir.path()));
  EXPECT_EQ(reopened->EpochEnd(Epoch(1)), Seq(3));
  EXPECT_EQ(reopened->EpochAt(Seq(3)), Epoch(1));
}

// The history file is advisory: without it, recovery re-derives every
// entry from the records' epochs.
TEST(Epochs, HistoryIsRebuiltFromTheLog) {
  TempDir tmp;
  {
    auto store = MustOpen(ReplOpts(tmp.path()));
    ASSERT_TRUE(store->BeginEpoch(Epoch(2)).ok());
    ASSERT_TRUE(Put(*store, "a", "1").ok());
    ASSERT_TRUE(store->BeginEpoch(Epoch(5)).ok());
    ASSERT_TRUE(Put(*store, "a", "2").ok());
  }
  ASSERT_EQ(std::remove((tmp.path() + "/epochs").c_str()), 0);
  auto store = MustOpen(ReplOpts(tmp.path()));
  EXPECT_EQ(store->epoch(), Epoch(5));
  EXPECT_EQ(store->EpochEnd(Epoch(2)), Seq(1));
  EXPECT_EQ(store->EpochEnd(Epoch(4)), Seq(1));
  EXPECT_EQ(store->EpochEnd(Epoch(5)), Seq(2));
}

TEST_P(Policy, OwnerToReplicaRoundTrip) {
  TempDir tmp;
  auto owner = MustOpen(ReplOpts(tmp.Sub("owner"), GetParam()));
  auto replica = MustOpen(ReplOpts(tmp.Sub("replica"), GetParam()));
  replica->SetCommitGate(true);
  ASSERT_TRUE(owner->BeginEpoch(Epoch(1)).ok());
  for (int i = 0; i < 200; ++i) {
    const std::string k = "k" + std::to_string(i % 17);
    if (i % 5 == 4) {
      ASSERT_TRUE(Del(*owner, k).ok());
    } else if (i % 7 == 3) {
      ASSERT_TRUE(WriteSync(*owner, {WriteOp::Put(k, "b" + std::to_string(i)),
                                     WriteOp::Put(k + "x", std::string(i * 10, 'v'))})
                      .ok());
    } else {
      ASSERT_TRUE(Put(*owner, k, std::to_string(i)).ok());
    }
    if (i == 100) {
      ASSERT_TRUE(owner->BeginEpoch(Epoch(2)).ok());
    }
    if (i % 50 == 0) {
      // Commit only part of what was shipped: the rest stays invisible.
      ASSERT_TRUE(Ship(*owner, *replica, Seq(i / 2)).ok());
      EXPECT_EQ(replica->committed(), Seq(i / 2));
      EXPECT_EQ(replica->last(), owner->last());
    }
  }
  auto last = Ship(*owner, *replica, owner->committed(), 512);  // small reads
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  EXPECT_EQ(*last, Seq(200));
  EXPECT_EQ(Dump(*replica), Dump(*owner));
  EXPECT_EQ(replica->epoch(), Epoch(2));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), owner->EpochEnd(Epoch(1)));
  EXPECT_EQ(replica->last(), owner->last());
  // The replica's own log reads back byte for byte.
  auto a = AllFrom(*owner, Seq(1));
  auto b = AllFrom(*replica, Seq(1));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].bytes, b[i].bytes) << i;
  // And after a restart.
  ASSERT_TRUE(replica->Close().ok());
  replica.reset();
  replica = MustOpen(ReplOpts(tmp.Sub("replica"), GetParam()));
  EXPECT_EQ(Dump(*replica), Dump(*owner));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), owner->EpochEnd(Epoch(1)));
  EXPECT_EQ(replica->last(), owner->last());
}

TEST(AppendReplicated, RefusesBadRecordsAndAppendsNothing) {
  TempDir tmp;
  auto owner = MustOpen(ReplOpts(tmp.Sub("owner")));
  auto replica = MustOpen(ReplOpts(tmp.Sub("replica")));
  replica->SetCommitGate(true);
  ASSERT_TRUE(owner->BeginEpoch(Epoch(3)).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Put(*owner, "k", std::to_string(i)).ok());
  auto recs = AllFrom(*owner, Seq(1));
  ASSERT_EQ(recs.size(), 4u);
  auto expect_refused = [&](std::vector<LogRecord> batch, Code code) {
    const LogPosition before = replica->last();
    auto r = AppendSync(*replica, std::move(batch));
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_EQ(replica->last(), before);
  };
  expect_refused({recs[1], recs[2]}, Code::kBadRequest);  // does not start at 1
  expect_refused({recs[0], recs[2]}, Code::kBadRequest);  // gap
  auto flipped = recs[1];
  flipped.bytes.back() ^= 0x40;
  expect_refused({recs[0], flipped}, Code::kCorruption);  // payload crc
  auto header = recs[0];
  header.bytes[9] ^= 1;
  expect_refused({header}, Code::kCorruption);  // header crc
  auto short_rec = recs[0];
  short_rec.bytes.resize(10);
  expect_refused({short_rec}, Code::kCorruption);
  auto lying = recs[0];
  lying.epoch = Epoch(4);
  expect_refused({lying}, Code::kCorruption);  // epoch field disagrees

  auto durable = AppendSync(*replica, {recs[0], recs[1]});
  ASSERT_TRUE(durable.ok()) << durable.status().ToString();
  EXPECT_EQ(*durable, Seq(2));
  EXPECT_EQ(replica->last(), (LogPosition{Seq(2), Epoch(3)}));
  EXPECT_EQ(replica->epoch(), Epoch(3));
  EXPECT_EQ(replica->committed(), Seq(0));  // gate on: not applied
  EXPECT_FALSE(replica->Get("k").has_value());
  expect_refused({recs[0]}, Code::kBadRequest);  // already have it

  // Epochs must not go down: a record of epoch 2 after one of epoch 3.
  TempDir other;
  auto old_owner = MustOpen(ReplOpts(other.path()));
  ASSERT_TRUE(old_owner->BeginEpoch(Epoch(2)).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Put(*old_owner, "k", "old").ok());
  auto old3 = AllFrom(*old_owner, Seq(3));
  auto r = AppendSync(*replica, old3);
  EXPECT_EQ(r.status().code(), Code::kBadRequest) << r.status().ToString();
  EXPECT_EQ(replica->last().seq, Seq(2));

  replica->Commit(Seq(2));
  ASSERT_TRUE(WaitCommitted(*replica, Seq(2)));
  EXPECT_EQ(replica->Get("k"), (proto::Entry{"k", "1", 2}));
}

TEST(ReadLog, FromTheCacheAndFromSegmentsAfterARestart) {
  TempDir tmp;
  StoreOptions o = ReplOpts(tmp.path());
  o.segment_bytes = 400;  // a few records per segment
  std::vector<LogRecord> before;
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store->BeginEpoch(Epoch(7)).ok());
    for (int i = 0; i < 60; ++i) ASSERT_TRUE(Put(*store, "k" + std::to_string(i), "value").ok());
    EXPECT_GT(store->Stats().segments, 5u);
    before = AllFrom(*store, Seq(1));
    ASSERT_EQ(before.size(), 60u);
    EXPECT_TRUE(store->ReadLog(Seq(61), 1000)->records.empty());
    EXPECT_FALSE(store->ReadLog(Seq(61), 1000)->below_log_start);
  }
  StoreOptions small_cache = o;
  small_cache.log_cache_bytes = 1;  // keeps only the newest record
  auto store = MustOpen(small_cache);
  for (Seq from : {Seq(1), Seq(2), Seq(17), Seq(59), Seq(60)}) {
    auto all = AllFrom(*store, from);
    ASSERT_EQ(all.size(), 61 - from.value()) << from;
    for (const LogRecord& r : all) {
      EXPECT_EQ(r.bytes, before[r.seq.value() - 1].bytes) << r.seq;
      EXPECT_EQ(r.epoch, Epoch(7));
    }
  }
  // max_bytes bounds a read but always returns one record.
  auto one = store->ReadLog(Seq(5), 1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->records.size(), 1u);
  EXPECT_EQ(one->records[0].seq, Seq(5));
  const size_t rec = before[0].bytes.size();
  auto three = store->ReadLog(Seq(5), rec * 3 + rec / 2);
  ASSERT_EQ(three->records.size(), 3u);
  EXPECT_EQ(three->records[2].seq, Seq(7));
  // Seqs run on across the restart, and new records come from the cache.
  ASSERT_TRUE(Put(*store, "new", "v").ok());
  EXPECT_EQ(AllFrom(*store, Seq(61)).size(), 1u);
  EXPECT_EQ(AllFrom(*store, Seq(1)).size(), 61u);
}

TEST(LogListener, SeesEveryGroupWrittenAndDurable) {
  TempDir tmp;
  for (FsyncPolicy p : {FsyncPolicy::kAlways, FsyncPolicy::kNever}) {
    auto store = MustOpen(ReplOpts(tmp.Sub(FsyncPolicyName(p)), p));
    std::atomic<uint64_t> written{0}, durable{0}, calls{0};
    store->SetLogListener([&](Seq w, Seq d) {
      EXPECT_GE(w, d);
      written = w.value();
      durable = d.value();
      ++calls;
    });
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(*store, "k", "v").ok());
    EXPECT_TRUE(WaitFor([&] { return durable.load() == 5; }, kWait));
    EXPECT_EQ(written.load(), 5u);
    EXPECT_GE(calls.load(), 5u);
    store->SetLogListener(nullptr);
    const uint64_t calls_before = calls.load();
    ASSERT_TRUE(Put(*store, "k", "v").ok());
    EXPECT_EQ(calls.load(), calls_before);
  }
}

}  // namespace
}  // namespace rangekv::kvnode
