// Byte-level tests of the WAL format and of every branch of ReadSegment.
#include "kvnode/storage/wal_format.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "kvnode/storage/wal.h"

namespace rangekv::kvnode::wal {
namespace {

std::string Record(Seq seq, std::string_view key, std::string_view value,
                   OpCode op = OpCode::kPut) {
  std::string rec(kRecordHeaderSize, '\0');
  AppendBatchPayloadHeader(Epoch(0), 1, &rec);
  AppendBatchOp(op, key, value, &rec);
  std::string_view payload = std::string_view(rec).substr(kRecordHeaderSize);
  RecordHeader h;
  h.length = static_cast<uint32_t>(payload.size());
  h.type = RecordType::kBatch;
  h.seq = seq;
  h.payload_crc = PayloadCrc(h.type, payload);
  EncodeRecordHeader(h, rec.data());
  return rec;
}

std::string Header(Seq first) {
  SegmentHeader h;
  h.range = RangeId(3);
  h.first_seq = first;
  return EncodeSegmentHeader(h);
}

// A segment with records seq first..first+n-1.
std::string Segment(Seq first, int n) {
  std::string s = Header(first);
  for (int i = 0; i < n; ++i) {
    s += Record(Seq(first.value() + i), "key" + std::to_string(i), "value" + std::to_string(i));
  }
  return s;
}

struct Read {
  Result<SegmentSummary> summary = Status(Code::kInternal, "unset");
  std::vector<Seq> seqs;
};
Read ReadAll(std::string_view data, SegmentRole role) {
  Read r;
  r.summary = ReadSegment(data, role, [&](const RecordView& v) {
    r.seqs.push_back(v.seq);
    return DecodeBatchPayload(v.payload).status();
  });
  return r;
}

TEST(WalFormat, SegmentHeaderRoundTrip) {
  std::string h = Header(Seq(42));
  ASSERT_EQ(h.size(), kSegmentHeaderSize);
  EXPECT_EQ(h.substr(0, 8), std::string("RKVWAL\r\n"));
  auto d = DecodeSegmentHeader(h);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->first_seq, Seq(42));
  EXPECT_EQ(d->range, RangeId(3));
  EXPECT_EQ(d->version, kFormatVersion);
}

TEST(WalFormat, SegmentHeaderRejectsEveryFlippedByte) {
  const std::string good = Header(Seq(42));
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x20;
    EXPECT_EQ(DecodeSegmentHeader(bad).status().code(), Code::kCorruption) << "byte " << i;
  }
  EXPECT_EQ(DecodeSegmentHeader(good.substr(0, 39)).status().code(), Code::kCorruption);
}

TEST(WalFormat, SegmentHeaderRejectsUnknownVersionAndFeatures) {
  SegmentHeader h;
  h.first_seq = Seq(1);
  h.version = 2;
  EXPECT_EQ(DecodeSegmentHeader(EncodeSegmentHeader(h)).status().code(), Code::kCorruption);
  h.version = kFormatVersion;
  h.features = 1;
  auto r = DecodeSegmentHeader(EncodeSegmentHeader(h));
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("feature"), std::string::npos);
}

TEST(WalFormat, SegmentNames) {
  EXPECT_EQ(SegmentFileName(Seq(1)), "wal-00000000000000000001.log");
  Seq s;
  ASSERT_TRUE(ParseSegmentName("wal-00000000000000052344.log", &s));
  EXPECT_EQ(s, Seq(52344));
  EXPECT_TRUE(ParseSegmentName(SegmentFileName(Seq(UINT64_MAX)), &s));
  EXPECT_EQ(s, Seq(UINT64_MAX));
  EXPECT_FALSE(ParseSegmentName("wal-1.log", &s));
  EXPECT_FALSE(ParseSegmentName("wal-0000000000000000000x.log", &s));
  EXPECT_FALSE(ParseSegmentName("wal-99999999999999999999.log", &s));  // overflows
  EXPECT_FALSE(ParseSegmentName("snap-00000000000000000001.log", &s));
}

TEST(WalFormat, RecordHeaderChecks) {
  std::string rec = Record(Seq(9), "k", "v");
  RecordHeader h;
  ASSERT_EQ(CheckRecordHeader(rec.data(), &h), HeaderCheck::kValid);
  EXPECT_EQ(h.seq, Seq(9));
  EXPECT_EQ(h.length, rec.size() - kRecordHeaderSize);
  for (size_t i = 0; i < kRecordHeaderSize; ++i) {
    std::string bad = rec;
    bad[i] ^= 1;
    EXPECT_EQ(CheckRecordHeader(bad.data(), &h), HeaderCheck::kBadCrc) << "byte " << i;
  }
  std::string zeros(kRecordHeaderSize, '\0');
  EXPECT_EQ(CheckRecordHeader(zeros.data(), &h), HeaderCheck::kAllZeros);
}

TEST(WalFormat, RecordHeaderWithValidCrcButUnknownTypeIsBadField) {
  std::string rec = Record(Seq(9), "k", "v");
  rec[4] = 7;  // unknown type, crc recomputed so only the field is wrong
  FinishRecordHeader(Seq(9), rec.data());
  RecordHeader h;
  EXPECT_EQ(CheckRecordHeader(rec.data(), &h), HeaderCheck::kBadField);
}

TEST(WalFormat, BatchPayloadRoundTrip) {
  std::string p;
  AppendBatchPayloadHeader(Epoch(5), 3, &p);
  AppendBatchOp(OpCode::kPut, "a", "xy", &p);
  AppendBatchOp(OpCode::kDelete, "b", "", &p);
  AppendBatchOp(OpCode::kPut, std::string("\0k", 2), "", &p);
  EXPECT_EQ(p.size(), kBatchPayloadFixed + BatchOpSize(OpCode::kPut, 1, 2) +
                          BatchOpSize(OpCode::kDelete, 1, 0) + BatchOpSize(OpCode::kPut, 2, 0));
  auto d = DecodeBatchPayload(p);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->epoch, Epoch(5));
  ASSERT_EQ(d->ops.size(), 3u);
  EXPECT_EQ(d->ops[0].key, "a");
  EXPECT_EQ(d->ops[0].value, "xy");
  EXPECT_EQ(d->ops[1].op, OpCode::kDelete);
  EXPECT_EQ(d->ops[2].key, std::string("\0k", 2));
}

TEST(WalFormat, BatchPayloadRejectsMalformed) {
  std::string p;
  AppendBatchPayloadHeader(Epoch(0), 1, &p);
  AppendBatchOp(OpCode::kPut, "abc", "defg", &p);
  // Every strict prefix is malformed.
  for (size_t n = 0; n < p.size(); ++n) {
    EXPECT_EQ(DecodeBatchPayload(p.substr(0, n)).status().code(), Code::kCorruption) << n;
  }
  EXPECT_EQ(DecodeBatchPayload(p + "x").status().code(), Code::kCorruption);  // leftover
  std::string zero_ops;
  AppendBatchPayloadHeader(Epoch(0), 0, &zero_ops);
  EXPECT_EQ(DecodeBatchPayload(zero_ops).status().code(), Code::kCorruption);
  std::string huge_count = p;
  PutFixed32(huge_count.data() + 8, 0xffffffffu);
  EXPECT_EQ(DecodeBatchPayload(huge_count).status().code(), Code::kCorruption);
  std::string bad_kind = p;
  bad_kind[kBatchPayloadFixed] = 9;
  EXPECT_EQ(DecodeBatchPayload(bad_kind).status().code(), Code::kCorruption);
  std::string long_key = p;
  PutFixed32(long_key.data() + kBatchPayloadFixed + 1, 1000);
  EXPECT_EQ(DecodeBatchPayload(long_key).status().code(), Code::kCorruption);
}

// ---- ReadSegment, one test per branch ----

TEST(WalReader, CleanSegment) {
  std::string seg = Segment(Seq(10), 3);
  Read r = ReadAll(seg, SegmentRole::kOlder);
  ASSERT_TRUE(r.summary.ok()) << r.summary.status().ToString();
  EXPECT_EQ(r.summary->end, SegmentEnd::kClean);
  EXPECT_EQ(r.summary->records, 3u);
  EXPECT_EQ(r.summary->last_seq, Seq(12));
  EXPECT_EQ(r.summary->valid_bytes, seg.size());
  EXPECT_EQ(r.seqs, (std::vector<Seq>{Seq(10), Seq(11), Seq(12)}));
}

TEST(WalReader, EmptySegmentHasLastSeqBeforeFirst) {
  Read r = ReadAll(Header(Seq(10)), SegmentRole::kOlder);
  ASSERT_TRUE(r.summary.ok());
  EXPECT_EQ(r.summary->records, 0u);
  EXPECT_EQ(r.summary->last_seq, Seq(9));
}

TEST(WalReader, ZeroTailInNewestIsUnusedSpace) {
  std::string seg = Segment(Seq(1), 2);
  const size_t good = seg.size();
  seg += std::string(4096, '\0');
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_TRUE(r.summary.ok()) << r.summary.status().ToString();
  EXPECT_EQ(r.summary->end, SegmentEnd::kZeroTail);
  EXPECT_EQ(r.summary->valid_bytes, good);
  EXPECT_EQ(r.summary->records, 2u);
}

TEST(WalReader, ShortZeroTailInNewest) {
  std::string seg = Segment(Seq(1), 2) + std::string(5, '\0');
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_TRUE(r.summary.ok());
  EXPECT_EQ(r.summary->end, SegmentEnd::kZeroTail);
}

TEST(WalReader, ZeroTailInOlderIsCorruption) {
  std::string seg = Segment(Seq(1), 2) + std::string(100, '\0');
  Read r = ReadAll(seg, SegmentRole::kOlder);
  EXPECT_EQ(r.summary.status().code(), Code::kCorruption);
  EXPECT_NE(r.summary.status().message().find("offset "), std::string::npos);
}

TEST(WalReader, PartialHeaderInNewestIsTorn) {
  std::string seg = Segment(Seq(1), 2);
  const size_t good = seg.size();
  seg += Record(Seq(3), "k", "v").substr(0, 10);
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_TRUE(r.summary.ok());
  EXPECT_EQ(r.summary->end, SegmentEnd::kTornTail);
  EXPECT_EQ(r.summary->valid_bytes, good);
  EXPECT_EQ(r.summary->records, 2u);
}

TEST(WalReader, PayloadCutShortInNewestIsTorn) {
  std::string seg = Segment(Seq(1), 2);
  const size_t good = seg.size();
  std::string rec = Record(Seq(3), "key", std::string(100, 'v'));
  seg += rec.substr(0, rec.size() - 1);
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_TRUE(r.summary.ok());
  EXPECT_EQ(r.summary->end, SegmentEnd::kTornTail);
  EXPECT_EQ(r.summary->valid_bytes, good);
}

TEST(WalReader, PayloadCutShortInOlderIsCorruption) {
  std::string seg = Segment(Seq(1), 2);
  std::string rec = Record(Seq(3), "key", "value");
  seg += rec.substr(0, rec.size() - 1);
  EXPECT_EQ(ReadAll(seg, SegmentRole::kOlder).summary.status().code(), Code::kCorruption);
}

TEST(WalReader, BadPayloadCrcOnLastRecordOfNewestIsTorn) {
  std::string seg = Segment(Seq(1), 3);
  seg[seg.size() - 2] ^= 1;
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_TRUE(r.summary.ok());
  EXPECT_EQ(r.summary->end, SegmentEnd::kTornTail);
  EXPECT_EQ(r.summary->records, 2u);
}

TEST(WalReader, BadPayloadCrcFollowedByValidRecordIsCorruption) {
  std::string seg = Header(Seq(1)) + Record(Seq(1), "a", "1");
  const size_t bad_at = seg.size();
  seg += Record(Seq(2), "b", "2") + Record(Seq(3), "c", "3");
  seg[bad_at + kRecordHeaderSize + 3] ^= 1;
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_EQ(r.summary.status().code(), Code::kCorruption);
  EXPECT_NE(r.summary.status().message().find("offset " + std::to_string(bad_at)),
            std::string::npos)
      << r.summary.status().message();
}

TEST(WalReader, BadHeaderCrcFollowedByValidRecordIsCorruption) {
  std::string seg = Header(Seq(1)) + Record(Seq(1), "a", "1");
  const size_t bad_at = seg.size();
  seg += Record(Seq(2), "b", "2") + Record(Seq(3), "c", "3");
  seg[bad_at] ^= 0x40;  // the length: must not be believed
  Read r = ReadAll(seg, SegmentRole::kNewest);
  EXPECT_EQ(r.summary.status().code(), Code::kCorruption);
}

TEST(WalReader, BadHeaderCrcOnLastRecordOfNewestIsTorn) {
  std::string seg = Segment(Seq(1), 2);
  const size_t bad_at = seg.size();
  seg += Record(Seq(3), "c", "3");
  seg[bad_at + 9] ^= 1;  // the seq
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_TRUE(r.summary.ok());
  EXPECT_EQ(r.summary->end, SegmentEnd::kTornTail);
  EXPECT_EQ(r.summary->valid_bytes, bad_at);
}

TEST(WalReader, WrongSeqIsCorruptionEvenInNewest) {
  std::string seg = Header(Seq(1)) + Record(Seq(1), "a", "1") + Record(Seq(3), "b", "2");
  Read r = ReadAll(seg, SegmentRole::kNewest);
  ASSERT_EQ(r.summary.status().code(), Code::kCorruption);
  EXPECT_NE(r.summary.status().message().find("expected 2"), std::string::npos);
}

TEST(WalReader, ValidCrcWithUnknownTypeIsCorruptionEvenAtTheEnd) {
  std::string rec = Record(Seq(2), "k", "v");
  rec[4] = 9;
  FinishRecordHeader(Seq(2), rec.data());
  std::string seg = Segment(Seq(1), 1) + rec;
  EXPECT_EQ(ReadAll(seg, SegmentRole::kNewest).summary.status().code(), Code::kCorruption);
}

TEST(WalReader, TornSegmentHeaderOfNewestHoldsNothing) {
  for (size_t n : {0, 1, 20, 39}) {
    Read r = ReadAll(Header(Seq(5)).substr(0, n), SegmentRole::kNewest);
    ASSERT_TRUE(r.summary.ok()) << n << ": " << r.summary.status().ToString();
    EXPECT_EQ(r.summary->end, SegmentEnd::kTornHeader);
    EXPECT_EQ(r.summary->valid_bytes, 0u);
  }
  EXPECT_EQ(ReadAll(Header(Seq(5)).substr(0, 20), SegmentRole::kOlder).summary.status().code(),
            Code::kCorruption);
}

TEST(WalReader, DamagedSegmentHeaderWithRecordsIsCorruption) {
  std::string seg = Segment(Seq(1), 2);
  seg[3] ^= 1;
  EXPECT_EQ(ReadAll(seg, SegmentRole::kNewest).summary.status().code(), Code::kCorruption);
}

TEST(WalReader, VisitorErrorStopsWithOffset) {
  std::string seg = Segment(Seq(1), 3);
  int calls = 0;
  auto r = ReadSegment(seg, SegmentRole::kOlder, [&](const RecordView& v) {
    ++calls;
    return v.seq == Seq(2) ? Status(Code::kCorruption, "nope") : Status::Ok();
  });
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(r.status().code(), Code::kCorruption);
  EXPECT_NE(r.status().message().find("nope"), std::string::npos);
}

// Random bytes, and random damage to a valid segment: the reader returns OK
// or CORRUPTION, never crashes, reads out of bounds (ASan) or hangs.
TEST(WalReader, RandomInputNeverCrashes) {
  std::mt19937_64 rng(12345);
  const std::string valid = Segment(Seq(1), 20);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int runs = 0, ok = 0;
  while (std::chrono::steady_clock::now() < deadline && runs < 20000) {
    std::string data;
    switch (runs % 3) {
      case 0:  // pure noise
        data.resize(rng() % 600);
        for (char& c : data) c = static_cast<char>(rng());
        break;
      case 1:  // valid header, noise after
        data = Header(Seq(1));
        data.resize(data.size() + rng() % 600);
        for (size_t i = kSegmentHeaderSize; i < data.size(); ++i) data[i] = char(rng());
        break;
      default:  // valid segment with a few random byte changes and a random cut
        data = valid;
        for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k) data[rng() % data.size()] = char(rng());
        data.resize(rng() % (data.size() + 1));
    }
    for (SegmentRole role : {SegmentRole::kOlder, SegmentRole::kNewest}) {
      Read r = ReadAll(data, role);
      if (r.summary.ok()) {
        ++ok;
        EXPECT_LE(r.summary->valid_bytes, data.size());
      } else {
        EXPECT_EQ(r.summary.status().code(), Code::kCorruption) << r.summary.status().ToString();
      }
    }
    ++runs;
  }
  EXPECT_GT(runs, 100);
  EXPECT_GT(ok, 0);
}

}  // namespace
}  // namespace rangekv::kvnode::wal
