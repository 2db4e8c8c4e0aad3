// RangeStore replication, the replica's repair paths: TruncateAfter (with
// recovery after it), ReadLog below the log start, ExportSnapshot and
// OpenFromSnapshot.
#include <gtest/gtest.h>

#include <filesystem>

#include "kvnode/storage/range_store.h"
#include "kvnode/storage/snapshot.h"
#include "kvnode/storage/wal_format.h"
#include "tests/kvnode/storage/replication_test_util.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using proto::WriteOp;
using rangekv::testing::TempDir;
using rangekv::testing::WaitFor;
namespace stdfs = std::filesystem;

StoreOptions Tiny(const std::string& dir) {
  StoreOptions o = ReplOpts(dir);
  o.segment_bytes = 300;
  o.keep_records_below_snapshot = 5;
  return o;
}

std::unique_ptr<RangeStore> Reopen(std::unique_ptr<RangeStore>& s, const StoreOptions& o) {
  EXPECT_TRUE(s->Close().ok());
  s.reset();
  return MustOpen(o);
}

TEST(TruncateAfter, DropsTheUncommittedTailAndFailsItsWrites) {
  TempDir tmp;
  Outcomes out;
  auto store = MustOpen(ReplOpts(tmp.path()));
  store->SetCommitGate(true);
  PutAsync(*store, out, "w1", "a", "1");
  PutAsync(*store, out, "w2", "b", "2");
  PutAsync(*store, out, "w3", "a", "3");
  PutAsync(*store, out, "w4", "c", "4");
  ASSERT_TRUE(WaitFor([&] { return store->durable() == Seq(4); }, kWait));
  store->Commit(Seq(1));
  ASSERT_TRUE(out.WaitDone("w1"));
  EXPECT_EQ(store->TruncateAfter(Seq(0)).code(), Code::kBadRequest);  // 1 is applied
  ASSERT_TRUE(store->TruncateAfter(Seq(2)).ok());
  ASSERT_TRUE(out.Done("w3") && out.Done("w4"));
  EXPECT_EQ(out.Get("w3").status().code(), Code::kUnavailable);
  EXPECT_EQ(out.Get("w4").status().code(), Code::kUnavailable);
  EXPECT_FALSE(out.Done("w2"));
  EXPECT_EQ(store->last(), (LogPosition{Seq(2), Epoch(0)}));
  EXPECT_EQ(store->durable(), Seq(2));
  EXPECT_EQ(AllFrom(*store, Seq(1)).size(), 2u);
  // cas sees the log as truncated: a's newest version is 1 again.
  WriteAsync(*store, out, "cas-stale", {WriteOp::Cas("a", 3, "x")});
  EXPECT_EQ(out.Get("cas-stale").status().code(), Code::kCasFailed);
  WriteAsync(*store, out, "cas", {WriteOp::Cas("a", 1, "5")});
  store->Commit(Seq(3));
  ASSERT_TRUE(out.WaitDone("cas"));
  EXPECT_EQ(*out.Get("cas"), Seq(3));
  EXPECT_EQ(*out.Get("w2"), Seq(2));
  const Model before = Dump(*store);
  EXPECT_EQ(before.at("a"), std::make_pair(std::string("5"), uint64_t{3}));
  EXPECT_EQ(before.count("c"), 0u);
  store = Reopen(store, ReplOpts(tmp.path()));
  EXPECT_EQ(Dump(*store), before);
  EXPECT_EQ(store->last(), (LogPosition{Seq(3), Epoch(0)}));
  EXPECT_EQ(store->TruncateAfter(Seq(9)).code(), Code::kOk);  // beyond the end: no-op
  EXPECT_EQ(store->last().seq, Seq(3));
}

// A replica with a tail from a deposed owner truncates to the new owner's
// EpochEnd and continues with the new owner's records.
TEST(TruncateAfter, ThenContinueWithANewEpoch) {
  TempDir tmp;
  auto old_owner = MustOpen(ReplOpts(tmp.Sub("old")));
  auto replica = MustOpen(ReplOpts(tmp.Sub("replica")));
  auto new_owner = MustOpen(ReplOpts(tmp.Sub("new")));
  replica->SetCommitGate(true);
  new_owner->SetCommitGate(true);
  ASSERT_TRUE(old_owner->BeginEpoch(Epoch(1)).ok());
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Put(*old_owner, "k" + std::to_string(i), "old").ok());
  ASSERT_TRUE(Ship(*old_owner, *replica, Seq(3)).ok());
  // The new owner had only records 1..4 when it took over at epoch 2.
  ASSERT_TRUE(AppendSync(*new_owner, AllFrom(*old_owner, Seq(1))).ok());
  ASSERT_TRUE(new_owner->TruncateAfter(Seq(4)).ok());
  new_owner->SetCommitGate(false);
  ASSERT_TRUE(WaitCommitted(*new_owner, Seq(4)));
  ASSERT_TRUE(new_owner->BeginEpoch(Epoch(2)).ok());
  for (int i = 4; i < 7; ++i) ASSERT_TRUE(Put(*new_owner, "k" + std::to_string(i), "new").ok());

  const LogPosition last = replica->last();
  EXPECT_EQ(last, (LogPosition{Seq(6), Epoch(1)}));
  const Seq to = std::min(last.seq, new_owner->EpochEnd(last.epoch));
  EXPECT_EQ(to, Seq(4));
  ASSERT_TRUE(replica->TruncateAfter(to).ok());
  EXPECT_EQ(replica->last(), (LogPosition{Seq(4), Epoch(1)}));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(4));
  ASSERT_TRUE(Ship(*new_owner, *replica, new_owner->committed()).ok());
  EXPECT_EQ(Dump(*replica), Dump(*new_owner));
  EXPECT_EQ(replica->Get("k5")->value, "new");
  EXPECT_EQ(replica->epoch(), Epoch(2));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(4));
  EXPECT_EQ(replica->last(), (LogPosition{Seq(7), Epoch(2)}));

  replica = Reopen(replica, ReplOpts(tmp.Sub("replica")));
  EXPECT_EQ(Dump(*replica), Dump(*new_owner));
  EXPECT_EQ(replica->epoch(), Epoch(2));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(4));
  EXPECT_EQ(replica->last(), (LogPosition{Seq(7), Epoch(2)}));
}

// A crash after the history was truncated but before the log was: the
// records above the cut are still there and recovery re-derives their
// epochs' entries, so the store is consistent (just longer than asked).
TEST(TruncateAfter, CrashBetweenHistoryAndLogIsRecovered) {
  TempDir tmp;
  auto owner = MustOpen(ReplOpts(tmp.Sub("owner")));
  auto replica = MustOpen(ReplOpts(tmp.Sub("replica")));
  replica->SetCommitGate(true);
  ASSERT_TRUE(owner->BeginEpoch(Epoch(1)).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Put(*owner, "a", std::to_string(i)).ok());
  ASSERT_TRUE(owner->BeginEpoch(Epoch(2)).ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Put(*owner, "b", std::to_string(i)).ok());
  ASSERT_TRUE(Ship(*owner, *replica, Seq(2)).ok());
  CopyDir(tmp.Sub("replica"), tmp.Sub("crashed"));  // the files as they are now
  ASSERT_TRUE(replica->TruncateAfter(Seq(3)).ok());
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(3));
  // The crashed copy: new history, old log.
  WriteBytes(tmp.Sub("crashed") + "/epochs", ReadBytes(tmp.Sub("replica") + "/epochs"));
  auto crashed = MustOpen(ReplOpts(tmp.Sub("crashed")));
  EXPECT_EQ(crashed->last(), (LogPosition{Seq(8), Epoch(2)}));
  EXPECT_EQ(crashed->epoch(), Epoch(2));
  EXPECT_EQ(crashed->EpochEnd(Epoch(1)), Seq(4));
  EXPECT_EQ(Dump(*crashed), Dump(*owner));
}

TEST(TruncateAfter, AcrossSegmentsAndAtASegmentBoundary) {
  TempDir tmp;
  auto owner = MustOpen(Tiny(tmp.Sub("owner")));
  auto replica = MustOpen(Tiny(tmp.Sub("replica")));
  replica->SetCommitGate(true);
  ASSERT_TRUE(owner->BeginEpoch(Epoch(1)).ok());
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(Put(*owner, "k" + std::to_string(i % 9), "v").ok());
  ASSERT_TRUE(owner->BeginEpoch(Epoch(2)).ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put(*owner, "k" + std::to_string(i % 9), "w").ok());
  // One record per append: a replica rotates segments between groups.
  ASSERT_TRUE(Ship(*owner, *replica, Seq(10), 100).ok());
  const size_t segs = SegmentPaths(tmp.Sub("replica")).size();
  ASSERT_GT(segs, 6u);

  ASSERT_TRUE(replica->TruncateAfter(Seq(25)).ok());
  EXPECT_LT(SegmentPaths(tmp.Sub("replica")).size(), segs);
  EXPECT_EQ(replica->last(), (LogPosition{Seq(25), Epoch(1)}));
  EXPECT_EQ(replica->epoch(), Epoch(1));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(25));
  auto kept = AllFrom(*replica, Seq(1));
  auto theirs = AllFrom(*owner, Seq(1));
  ASSERT_EQ(kept.size(), 25u);
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_EQ(kept[i].bytes, theirs[i].bytes);
  replica->Commit(Seq(25));
  ASSERT_TRUE(WaitCommitted(*replica, Seq(25)));
  const Model at25 = Dump(*replica);
  replica = Reopen(replica, Tiny(tmp.Sub("replica")));
  EXPECT_EQ(Dump(*replica), at25);
  EXPECT_EQ(replica->last(), (LogPosition{Seq(25), Epoch(1)}));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), Seq(25));

  replica->SetCommitGate(true);
  ASSERT_TRUE(Ship(*owner, *replica, Seq(30), 100).ok());
  EXPECT_EQ(replica->last(), owner->last());
  EXPECT_EQ(replica->epoch(), Epoch(2));
  // Cut exactly before a segment's first record: it stays, empty.
  auto paths = SegmentPaths(tmp.Sub("replica"));
  Seq boundary;
  ASSERT_TRUE(
      wal::ParseSegmentName(stdfs::path(paths[paths.size() - 2]).filename().string(), &boundary));
  ASSERT_GT(boundary, Seq(31));
  ASSERT_TRUE(replica->TruncateAfter(Seq(boundary.value() - 1)).ok());
  EXPECT_EQ(replica->last().seq, Seq(boundary.value() - 1));
  replica = Reopen(replica, Tiny(tmp.Sub("replica")));
  EXPECT_EQ(replica->last().seq, Seq(boundary.value() - 1));
  replica->SetCommitGate(true);
  ASSERT_TRUE(Ship(*owner, *replica, owner->committed()).ok());
  EXPECT_EQ(Dump(*replica), Dump(*owner));
  EXPECT_EQ(replica->EpochEnd(Epoch(1)), owner->EpochEnd(Epoch(1)));
}

TEST(ReadLog, BelowLogStartAfterSnapshotsDeleteSegments) {
  TempDir tmp;
  auto store = MustOpen(Tiny(tmp.path()));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put(*store, "k" + std::to_string(i), "v").ok());
  ASSERT_TRUE(store->SnapshotNow().ok());
  const Seq start = store->log_start();
  EXPECT_GT(start, Seq(1));
  EXPECT_LE(start, Seq(46));  // at least keep_records_below_snapshot stay
  for (int round = 0; round < 2; ++round) {
    auto below = store->ReadLog(Seq(1), 1 << 20);
    ASSERT_TRUE(below.ok());
    EXPECT_TRUE(below->below_log_start);
    EXPECT_TRUE(below->records.empty());
    auto at = store->ReadLog(start, 1 << 20);
    ASSERT_TRUE(at.ok());
    EXPECT_FALSE(at->below_log_start);
    ASSERT_EQ(at->records.size(), 51 - start.value());
    EXPECT_EQ(at->records.front().seq, start);
    store = Reopen(store, Tiny(tmp.path()));
    EXPECT_EQ(store->log_start(), start);
  }
}

TEST(SnapshotShipping, ExportInstallAndContinueReplication) {
  TempDir tmp;
  auto owner = MustOpen(Tiny(tmp.Sub("owner")));
  ASSERT_TRUE(owner->BeginEpoch(Epoch(4)).ok());
  for (int i = 0; i < 80; ++i)
    ASSERT_TRUE(Put(*owner, "k" + std::to_string(i % 23), std::to_string(i)).ok());
  ASSERT_TRUE(owner->SnapshotNow().ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Put(*owner, "late" + std::to_string(i), "x").ok());

  auto ex = owner->ExportSnapshot();
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  EXPECT_EQ(ex->replay_from, Seq(80));
  EXPECT_GE(ex->end, ex->replay_from);
  EXPECT_EQ(ex->bytes, stdfs::file_size(ex->path));
  auto again = owner->ExportSnapshot();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->path, ex->path);  // still covered by the log: the same file

  // A replica with an unrelated old store gets the snapshot.
  const std::string dir = tmp.Sub("replica");
  {
    auto junk = MustOpen(ReplOpts(dir));
    ASSERT_TRUE(Put(*junk, "junk", "1").ok());
  }
  const std::string incoming = tmp.Sub("incoming.snap");
  stdfs::copy_file(ex->path, incoming);
  EXPECT_EQ(RangeStore::OpenFromSnapshot(RangeId(7), KeyRange(), ReplOpts(dir),
                                         dir + "/inside.snap", Epoch(4))
                .status()
                .code(),
            Code::kBadRequest);
  auto opened =
      RangeStore::OpenFromSnapshot(RangeId(7), KeyRange(), ReplOpts(dir), incoming, owner->epoch());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto replica = std::move(*opened);
  EXPECT_FALSE(replica->Get("junk").has_value());
  EXPECT_EQ(replica->last(), (LogPosition{Seq(80), Epoch(4)}));
  EXPECT_EQ(replica->log_start(), Seq(81));
  EXPECT_EQ(replica->consistent_from(), ex->end);
  EXPECT_EQ(replica->committed(), Seq(80));
  EXPECT_EQ(replica->epoch(), Epoch(4));
  EXPECT_EQ(replica->EpochEnd(Epoch(3)), Seq(0));  // unknown below the snapshot
  EXPECT_TRUE(replica->ReadLog(Seq(80), 100)->below_log_start);

  // A restart before catching up reopens the same way.
  replica = Reopen(replica, ReplOpts(dir));
  EXPECT_EQ(replica->last(), (LogPosition{Seq(80), Epoch(4)}));
  EXPECT_EQ(replica->consistent_from(), ex->end);
  replica->SetCommitGate(true);
  ASSERT_TRUE(Ship(*owner, *replica, owner->committed()).ok());
  EXPECT_GE(replica->committed(), replica->consistent_from());
  EXPECT_EQ(Dump(*replica), Dump(*owner));

  ASSERT_TRUE(owner->BeginEpoch(Epoch(5)).ok());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(Put(*owner, "k" + std::to_string(i % 5), "e5").ok());
  ASSERT_TRUE(Ship(*owner, *replica, owner->committed()).ok());
  EXPECT_EQ(Dump(*replica), Dump(*owner));
  EXPECT_EQ(replica->EpochEnd(Epoch(4)), owner->EpochEnd(Epoch(4)));
  replica = Reopen(replica, ReplOpts(dir));
  EXPECT_EQ(Dump(*replica), Dump(*owner));
  EXPECT_EQ(replica->last(), owner->last());
  EXPECT_EQ(replica->EpochEnd(Epoch(4)), owner->EpochEnd(Epoch(4)));

  // Once the owner's log has moved past the export, the next one is newer
  // and replaces the old file.
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(Put(*owner, "m" + std::to_string(i), "y").ok());
  ASSERT_TRUE(owner->SnapshotNow().ok());
  ASSERT_GT(owner->log_start(), Seq(81));
  auto newer = owner->ExportSnapshot();
  ASSERT_TRUE(newer.ok()) << newer.status().ToString();
  EXPECT_GT(newer->replay_from, ex->replay_from);
  EXPECT_FALSE(stdfs::exists(ex->path));
}

// A new copy is not sent an old snapshot with much log to replay after
// it: once the log written since outweighs the snapshot (and 1 MiB), the
// export is a snapshot taken now.
TEST(SnapshotShipping, AnExportFarBehindTheLogIsTakenAnew) {
  TempDir tmp;
  auto owner = MustOpen(ReplOpts(tmp.Sub("owner")));  // no snapshot by size
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(Put(*owner, "k" + std::to_string(i), "v").ok());
  auto first = owner->ExportSnapshot();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->replay_from, Seq(10));
  // A little more log: the same export still serves.
  const std::string value(4096, 'x');
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put(*owner, "k" + std::to_string(i % 10), value).ok());
  auto same = owner->ExportSnapshot();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->replay_from, first->replay_from);
  // Over 1 MiB of overwrites of the same ten keys: a new, small snapshot.
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(Put(*owner, "k" + std::to_string(i % 10), value).ok());
  auto fresh = owner->ExportSnapshot();
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(fresh->replay_from, owner->last().seq);
  EXPECT_LT(fresh->bytes, 1u << 20);
  EXPECT_FALSE(stdfs::exists(first->path));
  // A snapshot the store took since (the log still continues the export
  // in hand): the newer one is shipped, less log to replay.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Put(*owner, "n" + std::to_string(i), "z").ok());
  ASSERT_TRUE(owner->SnapshotNow().ok());
  auto newer = owner->ExportSnapshot();
  ASSERT_TRUE(newer.ok()) << newer.status().ToString();
  EXPECT_EQ(newer->replay_from, owner->last().seq);
  EXPECT_GT(newer->replay_from, fresh->replay_from);
}

// A range split off this one took most of its keys, but its newest
// snapshot still holds them: a new copy would be shipped every one of them
// to drop most. An export holding more than twice the keys the range
// holds now (and 1024 more) is a snapshot taken now.
TEST(SnapshotShipping, AnExportOfKeysTheRangeNoLongerHoldsIsTakenAnew) {
  TempDir tmp;
  auto owner = MustOpen(ReplOpts(tmp.Sub("owner")));  // no snapshot by size
  for (int i = 0; i < 4000; ++i) {
    ASSERT_TRUE(Put(*owner, (i < 1000 ? "a" : "b") + std::to_string(i), "v").ok());
  }
  auto first = owner->ExportSnapshot();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A split keeps [a, b) here, and writes go on.
  ASSERT_TRUE(owner->RetainOnly(KeyRange("a", std::string("b"))).ok());
  ASSERT_TRUE(Put(*owner, "a-after", "v").ok());
  auto fresh = owner->ExportSnapshot();
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_NE(fresh->path, first->path);
  auto info = snapshot::ReadSnapshotInfo(fs::Posix(), fresh->path, RangeId(7));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->entries, 1001u);
  EXPECT_LT(fresh->bytes, first->bytes / 3);
  // Not wider than the range: the same export serves again.
  auto same = owner->ExportSnapshot();
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->path, fresh->path);
}

TEST(SnapshotShipping, RefusesACorruptSnapshotAndKeepsTheOldStore) {
  TempDir tmp;
  auto owner = MustOpen(Tiny(tmp.Sub("owner")));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(Put(*owner, "k" + std::to_string(i), "v").ok());
  auto ex = owner->ExportSnapshot();  // takes a snapshot: there was none
  ASSERT_TRUE(ex.ok()) << ex.status().ToString();
  EXPECT_EQ(ex->replay_from, Seq(20));
  std::string bytes = ReadBytes(ex->path);
  bytes[bytes.size() / 2] ^= 1;
  const std::string incoming = tmp.Sub("incoming.snap");
  WriteBytes(incoming, bytes);
  const std::string dir = tmp.Sub("replica");
  {
    auto keep = MustOpen(ReplOpts(dir));
    ASSERT_TRUE(Put(*keep, "mine", "1").ok());
  }
  auto r = RangeStore::OpenFromSnapshot(RangeId(7), KeyRange(), ReplOpts(dir), incoming, Epoch(1));
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  auto keep = MustOpen(ReplOpts(dir));
  EXPECT_EQ(keep->Get("mine")->value, "1");
}

}  // namespace
}  // namespace rangekv::kvnode
