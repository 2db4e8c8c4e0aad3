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

}  // namespace
}  // namespace rangekv::proto
