// Recovery of a RangeStore from damaged logs: segment rotation, torn tails
// at every byte offset, and the corruption matrix (a damaged byte in each region of each kind of file).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "kvnode/storage/range_store.h"
#include "kvnode/storage/wal_format.h"
#include "tests/kvnode/storage/store_test_util.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using rangekv::testing::TempDir;

std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "k%02d", i);
  return buf;
}
std::string Value(int i, size_t len = 20) {
  return std::string(len, static_cast<char>('a' + i % 26));
}

constexpr size_t kRecordBytes =
    wal::kRecordHeaderSize + wal::kBatchPayloadFixed + 1 + 4 + 3 + 4 + 20;

StoreOptions SmallSegments(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  o.fsync = FsyncPolicy::kNever;
  o.segment_bytes = wal::kSegmentHeaderSize + 3 * kRecordBytes;  // three records each
  o.snapshot_after_bytes = 1u << 30;
  return o;
}

// Writes puts 1..n (one record each) and returns the model.
Model WriteRecords(const StoreOptions& opts, int n) {
  auto store = MustOpen(opts);
  Model m;
  for (int i = 1; i <= n; ++i) {
    auto seq = Put(*store, Key(i), Value(i));
    EXPECT_TRUE(seq.ok()) << seq.status().ToString();
    if (seq.ok()) m[Key(i)] = {Value(i), seq->value()};
  }
  EXPECT_TRUE(store->Close().ok());
  return m;
}

TEST(WalRecovery, AppendAndReadBackAcrossSegmentRotation) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  Model model = WriteRecords(opts, 12);
  auto segs = SegmentPaths(opts.dir);
  ASSERT_EQ(segs.size(), 4u);
  for (size_t i = 0; i < segs.size(); ++i) {
    auto spans = RecordSpans(segs[i]);
    ASSERT_EQ(spans.size(), 3u) << segs[i];
    EXPECT_EQ(spans[0].seq, Seq(3 * i + 1));
    EXPECT_EQ(spans[0].size, kRecordBytes);
    EXPECT_NE(segs[i].find(wal::SegmentFileName(Seq(3 * i + 1))), std::string::npos);
  }
  auto store = MustOpen(opts);
  EXPECT_EQ(Dump(*store), model);
  StoreStats st = store->Stats();
  EXPECT_EQ(st.last_seq, Seq(12));
  EXPECT_EQ(st.segments, 4u);
  EXPECT_EQ(st.keys, 12u);
  // Appends continue the sequence and keep rotating.
  for (int i = 13; i <= 20; ++i) {
    auto seq = Put(*store, Key(i), Value(i));
    ASSERT_TRUE(seq.ok());
    EXPECT_EQ(*seq, Seq(i));
    model[Key(i)] = {Value(i), uint64_t(i)};
  }
  ASSERT_TRUE(store->Close().ok());
  EXPECT_EQ(SegmentPaths(opts.dir).size(), 7u);
  store = MustOpen(opts);
  EXPECT_EQ(Dump(*store), model);
}

// Cutting the newest segment anywhere inside its last record loses exactly
// that record; the store then appends after the survivors.
TEST(WalRecovery, TornTailAtEveryOffsetOfTheLastRecord) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("pristine"));
  opts.segment_bytes = 1u << 20;
  {
    auto store = MustOpen(opts);
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(Put(*store, Key(i), Value(i)).ok());
    ASSERT_TRUE(Put(*store, "last", std::string(150, 'z')).ok());
  }
  const std::string seg_name = wal::SegmentFileName(Seq(1));
  auto spans = RecordSpans(fs::JoinPath(opts.dir, seg_name));
  ASSERT_EQ(spans.size(), 4u);
  const RecordSpan last = spans.back();
  StoreOptions work = opts;
  work.dir = tmp.Sub("work");
  for (size_t cut = last.offset; cut < last.offset + last.size; ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    CopyDir(opts.dir, work.dir);
    const std::string path = fs::JoinPath(work.dir, seg_name);
    std::filesystem::resize_file(path, cut);
    {
      auto store = MustOpen(work);
      ASSERT_NE(store, nullptr);
      EXPECT_EQ(store->Stats().last_seq, Seq(3));
      EXPECT_FALSE(store->Get("last").has_value());
      EXPECT_EQ(store->Get(Key(3))->version, 3u);
      auto seq = Put(*store, "after", "x");
      ASSERT_TRUE(seq.ok());
      EXPECT_EQ(*seq, Seq(4));
    }
    // The new record ("after" = "x") starts where the torn one did.
    EXPECT_EQ(std::filesystem::file_size(path), last.offset + wal::kRecordHeaderSize +
                                                    wal::kBatchPayloadFixed +
                                                    wal::BatchOpSize(wal::OpCode::kPut, 5, 1));
    auto store = MustOpen(work);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->Get("after")->version, 4u);
    EXPECT_EQ(store->Stats().keys, 4u);
  }
}

TEST(WalRecovery, ZeroFilledTailIsUnusedSpace) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  Model model = WriteRecords(opts, 12);
  const std::string newest = SegmentPaths(opts.dir).back();
  const auto good_size = std::filesystem::file_size(newest);
  WriteBytes(newest, ReadBytes(newest) + std::string(8192, '\0'));
  auto store = MustOpen(opts);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Dump(*store), model);
  EXPECT_EQ(std::filesystem::file_size(newest), good_size);  // the zeros were cut
}

// ---- the corruption matrix ----

enum class Where {
  kOlderSegmentHeader,
  kOlderRecordHeader,
  kOlderPayload,
  kNewestSegmentHeader,
  kNewestMiddleRecordHeader,
  kNewestMiddlePayload,
  kNewestLastRecordHeader,
  kNewestLastPayload,
};
enum class Damage { kFlipByte, kZeroFill, kCutShort };

const char* Name(Where w) {
  switch (w) {
    case Where::kOlderSegmentHeader:
      return "OlderSegmentHeader";
    case Where::kOlderRecordHeader:
      return "OlderRecordHeader";
    case Where::kOlderPayload:
      return "OlderPayload";
    case Where::kNewestSegmentHeader:
      return "NewestSegmentHeader";
    case Where::kNewestMiddleRecordHeader:
      return "NewestMiddleRecordHeader";
    case Where::kNewestMiddlePayload:
      return "NewestMiddlePayload";
    case Where::kNewestLastRecordHeader:
      return "NewestLastRecordHeader";
    case Where::kNewestLastPayload:
      return "NewestLastPayload";
  }
  return "?";
}
const char* Name(Damage d) {
  switch (d) {
    case Damage::kFlipByte:
      return "Flip";
    case Damage::kZeroFill:
      return "Zero";
    case Damage::kCutShort:
      return "Cut";
  }
  return "?";
}

class CorruptionMatrix : public ::testing::TestWithParam<std::tuple<Where, Damage>> {};

// The log: 12 records, three per segment: [1-3] [4-6] [7-9] [10-12]. The
// "older" segment is [4-6] (its middle record is seq 5); the newest is
// [10-12] with seq 11 in the middle and seq 12 last.
TEST_P(CorruptionMatrix, ReportsOrTruncates) {
  const auto [where, damage] = GetParam();
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  Model model = WriteRecords(opts, 12);
  auto segs = SegmentPaths(opts.dir);
  ASSERT_EQ(segs.size(), 4u);

  const bool older = where <= Where::kOlderPayload;
  const std::string path = older ? segs[1] : segs[3];
  auto spans = RecordSpans(path);
  ASSERT_EQ(spans.size(), 3u);
  size_t start = 0, len = wal::kSegmentHeaderSize;
  const bool last = where == Where::kNewestLastRecordHeader || where == Where::kNewestLastPayload;
  const RecordSpan rec = last ? spans[2] : spans[1];
  switch (where) {
    case Where::kOlderSegmentHeader:
    case Where::kNewestSegmentHeader:
      break;
    case Where::kOlderRecordHeader:
    case Where::kNewestMiddleRecordHeader:
    case Where::kNewestLastRecordHeader:
      start = rec.offset;
      len = wal::kRecordHeaderSize;
      break;
    default:
      start = rec.offset + wal::kRecordHeaderSize;
      len = rec.size - wal::kRecordHeaderSize;
  }
  std::string bytes = ReadBytes(path);
  switch (damage) {
    case Damage::kFlipByte:  // a header's length field / the middle of a payload
      bytes[start + (len == rec.size - wal::kRecordHeaderSize ? len / 2 : 1)] ^= 0x10;
      break;
    case Damage::kZeroFill:
      std::fill(bytes.begin() + start, bytes.begin() + start + len, '\0');
      break;
    case Damage::kCutShort:  // the second half of the piece is missing
      bytes.erase(start + len / 2, len - len / 2);
      break;
  }
  WriteBytes(path, bytes);

  auto r = RangeStore::Open(RangeId(7), KeyRange(), opts);
  if (!last) {
    ASSERT_FALSE(r.ok()) << "damage went unnoticed";
    EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().ToString();
    const std::string file = std::filesystem::path(path).filename().string();
    EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find("offset"), std::string::npos) << r.status().ToString();
    return;
  }
  // The last record of the newest segment: a torn tail, cut; 11 survive.
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto store = std::move(r).value();
  model.erase(Key(12));
  EXPECT_EQ(Dump(*store), model);
  EXPECT_EQ(store->Stats().last_seq, Seq(11));
  auto seq = Put(*store, "again", "v");
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, Seq(12));
  model["again"] = {"v", 12};
  ASSERT_TRUE(store->Close().ok());
  store = MustOpen(opts);
  EXPECT_EQ(Dump(*store), model);
}

INSTANTIATE_TEST_SUITE_P(
    AllCases, CorruptionMatrix,
    ::testing::Combine(::testing::Values(Where::kOlderSegmentHeader, Where::kOlderRecordHeader,
                                         Where::kOlderPayload, Where::kNewestSegmentHeader,
                                         Where::kNewestMiddleRecordHeader,
                                         Where::kNewestMiddlePayload,
                                         Where::kNewestLastRecordHeader, Where::kNewestLastPayload),
                       ::testing::Values(Damage::kFlipByte, Damage::kZeroFill, Damage::kCutShort)),
    [](const auto& info) {
      return std::string(Name(std::get<0>(info.param))) + Name(std::get<1>(info.param));
    });

// A whole file cut short: in an older segment that is a hole in the log; in
// the newest it cannot be told from a crash, so the cut records are lost.
TEST(WalRecovery, OlderSegmentFileTruncatedIsCorruption) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  WriteRecords(opts, 12);
  auto segs = SegmentPaths(opts.dir);
  const auto spans = RecordSpans(segs[1]);
  // Mid-record, then exactly at a record boundary (a missing whole record).
  for (size_t cut : {spans[2].offset + 5, spans[2].offset}) {
    StoreOptions work = opts;
    work.dir = tmp.Sub("w" + std::to_string(cut));
    CopyDir(opts.dir, work.dir);
    std::filesystem::resize_file(SegmentPaths(work.dir)[1], cut);
    auto r = RangeStore::Open(RangeId(7), KeyRange(), work);
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().message().find(wal::SegmentFileName(Seq(4))), std::string::npos)
        << r.status().ToString();
  }
}

TEST(WalRecovery, NewestSegmentFileTruncatedLosesOnlyTheCutRecords) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  Model model = WriteRecords(opts, 12);
  const std::string newest = SegmentPaths(opts.dir).back();
  std::filesystem::resize_file(newest, RecordSpans(newest)[1].offset + 7);
  auto store = MustOpen(opts);
  ASSERT_NE(store, nullptr);
  model.erase(Key(11));
  model.erase(Key(12));
  EXPECT_EQ(Dump(*store), model);
}

TEST(WalRecovery, MissingMiddleSegmentIsCorruption) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  WriteRecords(opts, 12);
  std::filesystem::remove(SegmentPaths(opts.dir)[2]);
  auto r = RangeStore::Open(RangeId(7), KeyRange(), opts);
  ASSERT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("does not follow"), std::string::npos);
}

TEST(WalRecovery, SegmentOfAnotherRangeIsCorruption) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  WriteRecords(opts, 3);
  auto r = RangeStore::Open(RangeId(8), KeyRange(), opts);
  ASSERT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("range 7"), std::string::npos) << r.status().ToString();
}

TEST(WalRecovery, EmptyNewestSegmentFileIsRecreated) {
  TempDir tmp;
  StoreOptions opts = SmallSegments(tmp.Sub("r"));
  Model model = WriteRecords(opts, 3);
  // A crash right after creating the next segment, before its header.
  WriteBytes(fs::JoinPath(opts.dir, wal::SegmentFileName(Seq(4))), "");
  auto store = MustOpen(opts);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Dump(*store), model);
  auto seq = Put(*store, "x", "y");
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, Seq(4));
}

// Random bytes where a segment should be: Open returns OK or CORRUPTION.
TEST(WalRecovery, RandomSegmentBytesNeverCrashOpen) {
  TempDir tmp;
  std::mt19937_64 rng(777);
  StoreOptions seed_opts = SmallSegments(tmp.Sub("seed"));
  WriteRecords(seed_opts, 5);
  const std::string valid = ReadBytes(SegmentPaths(seed_opts.dir)[0]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  int runs = 0;
  while (std::chrono::steady_clock::now() < deadline && runs < 300) {
    StoreOptions o = SmallSegments(tmp.Sub("run" + std::to_string(runs)));
    std::filesystem::create_directories(o.dir);
    std::string data = valid;
    if (runs % 2 == 0) {
      data.resize(rng() % 400);
      for (char& c : data) c = static_cast<char>(rng());
    } else {
      for (int k = 0; k < 3; ++k) data[rng() % data.size()] = static_cast<char>(rng());
    }
    WriteBytes(fs::JoinPath(o.dir, wal::SegmentFileName(Seq(1))), data);
    auto r = RangeStore::Open(RangeId(7), KeyRange(), o);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kCorruption) << r.status().ToString();
    }
    std::filesystem::remove_all(o.dir);
    ++runs;
  }
  EXPECT_GT(runs, 10);
}

}  // namespace
}  // namespace rangekv::kvnode
