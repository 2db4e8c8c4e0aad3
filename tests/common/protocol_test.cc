#include "common/protocol.h"

#include <gtest/gtest.h>

#include "common/frame.h"

namespace rangekv::proto {
namespace {

std::string_view Payload(const std::string& frame) {
  EXPECT_GE(frame.size(), kFrameHeaderBytes);
  EXPECT_EQ(GetFrameLength(frame.data()), frame.size() - kFrameHeaderBytes);
  return std::string_view(frame).substr(kFrameHeaderBytes);
}

Request RoundTrip(const Request& req) {
  std::string f;
  EncodeRequest(req, f);
  auto back = DecodeRequest(Payload(f));
  EXPECT_TRUE(back.ok()) << back.status().ToString();
  return back.ok() ? *back : Request{};
}

TEST(ProtocolTest, RequestsRoundTrip) {
  std::string bin("\x00\x01\xff k", 5);
  std::vector<Request> reqs;
  Request r;
  r.id = 7;
  r.range = RangeId(3);
  r.epoch = Epoch(9);
  r.kind = OpKind::kPut;
  r.ops = {WriteOp::Put(bin, std::string(1000, 'v'))};
  reqs.push_back(r);
  r.kind = OpKind::kCas;
  r.ops = {WriteOp::Cas("k", 42, "v2")};
  reqs.push_back(r);
  r.kind = OpKind::kDelete;
  r.ops = {WriteOp::Delete("k")};
  reqs.push_back(r);
  r.kind = OpKind::kBatch;
  r.ops = {WriteOp::Put("a", "1"), WriteOp::Delete("b"), WriteOp::Cas("c", 0, "")};
  reqs.push_back(r);
  r.kind = OpKind::kScan;
  r.ops.clear();
  r.scan_start = "a";
  r.scan_end = "z";
  r.scan_limit = 10;
  reqs.push_back(r);
  r.scan_end.reset();
  r.consistency = Consistency::kStale;
  reqs.push_back(r);
  Request ping;
  ping.id = 1;
  reqs.push_back(ping);
  for (const auto& q : reqs) EXPECT_EQ(RoundTrip(q), q);
}

TEST(ProtocolTest, GetCarriesKey) {
  Request r;
  r.kind = OpKind::kGet;
  r.ops = {WriteOp::Delete("key")};
  Request back = RoundTrip(r);
  EXPECT_EQ(back.kind, OpKind::kGet);
  ASSERT_EQ(back.ops.size(), 1u);
  EXPECT_EQ(back.ops[0].key, "key");
}

TEST(ProtocolTest, ResponsesRoundTrip) {
  std::vector<Response> rs;
  rs.push_back(Response::Error(5, Status(Code::kCasFailed, "expected 3, found 4")));
  Response nh = Response::Error(6, Status(Code::kNotOwner, "owned elsewhere"));
  nh.hint = OwnerHint{"n2", "127.0.0.1:7001", Epoch(4), RangeId(2)};
  rs.push_back(nh);
  // With the range's layout, bounded and to the end of the key space.
  nh.hint->bounds = KeyRange(std::string("a\0b", 3), std::string("m"));
  nh.hint->generation = 3;
  rs.push_back(nh);
  nh.hint->bounds = KeyRange("m", std::nullopt);
  rs.push_back(nh);
  Response f;
  f.id = 8;
  f.kind = Response::Kind::kFound;
  f.found = {"k", std::string("\0v", 2), 12};
  rs.push_back(f);
  Response nf;
  nf.kind = Response::Kind::kNotFound;
  rs.push_back(nf);
  Response w;
  w.kind = Response::Kind::kWritten;
  w.written_version = 99;
  rs.push_back(w);
  Response e;
  e.kind = Response::Kind::kEntries;
  e.entries = {{"a", "1", 1}, {"b", "2", 2}};
  e.more = true;
  rs.push_back(e);
  for (const auto& r : rs) {
    std::string frame;
    EncodeResponse(r, frame);
    auto back = DecodeResponse(Payload(frame));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, r);
  }
}

TEST(ProtocolTest, UnknownErrorCodeDecodesAsInternal) {
  Response r = Response::Error(1, Status(static_cast<Code>(500), "from the future"));
  std::string frame;
  EncodeResponse(r, frame);
  auto back = DecodeResponse(Payload(frame));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->error.code(), Code::kInternal);
}

TEST(ProtocolTest, ValidateLimits) {
  Request r;
  r.kind = OpKind::kPut;
  r.ops = {WriteOp::Put(std::string(Limits::kMaxKeyBytes, 'k'), "v")};
  EXPECT_TRUE(Validate(r).ok());
  r.ops[0].key.push_back('k');
  EXPECT_EQ(Validate(r).code(), Code::kTooLarge);
  r.ops = {WriteOp::Put("k", std::string(Limits::kMaxValueBytes + 1, 'v'))};
  EXPECT_EQ(Validate(r).code(), Code::kTooLarge);
  r.ops.clear();
  EXPECT_EQ(Validate(r).code(), Code::kBadRequest);
  r.kind = OpKind::kBatch;
  EXPECT_EQ(Validate(r).code(), Code::kBadRequest);
  r.kind = OpKind::kScan;
  r.scan_limit = Limits::kMaxScanLimit + 1;
  EXPECT_EQ(Validate(r).code(), Code::kTooLarge);
}


TEST(ProtocolTest, ReplicationRequestsRoundTrip) {
  Request f;
  f.id = 11;
  f.range = RangeId(4);
  f.epoch = Epoch(6);
  f.kind = OpKind::kFetch;
  f.fetch = FetchArgs{"n2", Seq(1001), Epoch(5), 1u << 20, 250};
  ASSERT_TRUE(Validate(f).ok());
  EXPECT_EQ(RoundTrip(f), f);

  Request s = f;
  s.kind = OpKind::kSnapshot;
  s.fetch = FetchArgs{};
  s.snapshot = SnapshotArgs{"n3", Seq(77), 1u << 30, 65536};
  EXPECT_EQ(RoundTrip(s), s);

  Request st;
  st.id = 12;
  st.kind = OpKind::kRangeStatus;
  EXPECT_EQ(RoundTrip(st), st);

  Request t = MakeTransfer(RangeId(4), Epoch(6), "n3");
  EXPECT_EQ(t.kind, OpKind::kTransfer);
  ASSERT_TRUE(Validate(t).ok());
  EXPECT_EQ(RoundTrip(t), t);
  t.transfer_to.clear();
  EXPECT_EQ(Validate(t).code(), Code::kBadRequest);

  Response pong;
  pong.kind = Response::Kind::kPong;
  EXPECT_TRUE(TransferOutcome(pong).ok());
  EXPECT_EQ(TransferOutcome(Response::Error(1, Status(Code::kBadRequest, "x"))).code(),
            Code::kBadRequest);
  Response other;
  other.kind = Response::Kind::kWritten;
  EXPECT_EQ(TransferOutcome(other).code(), Code::kInternal);
  EXPECT_EQ(TransferOutcome(Status(Code::kTimeout, "t")).code(), Code::kTimeout);
}

TEST(ProtocolTest, FetchLimitsAreChecked) {
  Request f;
  f.kind = OpKind::kFetch;
  f.fetch = FetchArgs{"n2", Seq(1), Epoch(0), Limits::kMaxFetchBytes + 1, 0};
  EXPECT_EQ(Validate(f).code(), Code::kBadRequest);
  f.fetch.max_bytes = 1024;
  f.fetch.wait_ms = Limits::kMaxFetchWaitMs + 1;
  EXPECT_EQ(Validate(f).code(), Code::kBadRequest);
  f.fetch.wait_ms = 10;
  f.fetch.from = Seq(0);
  EXPECT_EQ(Validate(f).code(), Code::kBadRequest);
}

TEST(ProtocolTest, ReplicationResponsesRoundTrip) {
  auto round = [](const Response& r) {
    std::string frame;
    EncodeResponse(r, frame);
    auto back = DecodeResponse(Payload(frame));
    EXPECT_TRUE(back.ok()) << back.status().ToString();
    return back.ok() ? *back : Response{};
  };
  Response f;
  f.id = 5;
  f.kind = Response::Kind::kFetched;
  f.fetched = Fetched{std::string("\x01\x00records", 9), Seq(40), true, Seq(38), false};
  EXPECT_EQ(round(f), f);
  f.fetched.news = {RangeNews{RangeId(3), "id 3\nbounds 00 67\n"}, RangeNews{RangeId(4), ""}};
  EXPECT_EQ(round(f), f);

  Response c;
  c.id = 6;
  c.kind = Response::Kind::kSnapshotChunk;
  c.chunk = SnapshotChunk{Seq(10), Seq(20), Epoch(3), 1000, 500, std::string(500, 'x')};
  EXPECT_EQ(round(c), c);

  Response st;
  st.id = 7;
  st.kind = Response::Kind::kRangeStatus;
  st.status.push_back(RangeStatus{RangeId(1), Epoch(2), true, Seq(9), Seq(8),
                                  {ReplicaProgress{"n2", Seq(8), true, 12},
                                   ReplicaProgress{"n3", Seq(0), false, UINT64_MAX}}});
  st.status.push_back(RangeStatus{RangeId(2), Epoch(1), false, Seq(3), Seq(3), {}});
  EXPECT_EQ(round(st), st);
}

}  // namespace
}  // namespace rangekv::proto
