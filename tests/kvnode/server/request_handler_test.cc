#include "kvnode/server/request_handler.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using proto::OpKind;
using proto::Request;
using proto::Response;
using proto::WriteOp;
using Kind = proto::Response::Kind;

// Collects responses delivered later, from any thread.
class CollectingSink : public ResponseSink {
 public:
  Reply ReplyLater() override {
    ++asked_;
    return [this](Response r) {
      std::lock_guard lock(mu_);
      got_.push_back(std::move(r));
      cv_.notify_all();
    };
  }
  // The next deferred response, or an INTERNAL error after the deadline.
  Response Next() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !got_.empty(); })) {
      return Response::Error(0, Status(Code::kInternal, "no deferred response"));
    }
    Response r = std::move(got_.front());
    got_.pop_front();
    return r;
  }
  int asked() const { return asked_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Response> got_;
  int asked_ = 0;
};

Request Make(uint64_t id, OpKind kind, std::vector<WriteOp> ops = {}) {
  Request r;
  r.id = id;
  r.kind = kind;
  r.ops = std::move(ops);
  return r;
}

class RequestHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = Node::OpenStandalone(NodeConfig{tmp_.Sub("data"), std::nullopt});
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(*node);
    handler_ = std::make_unique<RequestHandler>(*node_);
  }

  // Handles req and returns its response, waiting for a write's.
  Response Call(Request req) {
    uint64_t id = req.id;
    int asked = sink_.asked();
    std::optional<Response> now = handler_->Handle(std::move(req), sink_);
    Response r = now ? std::move(*now) : sink_.Next();
    EXPECT_EQ(r.id, id);
    EXPECT_EQ(sink_.asked() - asked, now ? 0 : 1) << "ReplyLater once per started write";
    return r;
  }
  Response Put(std::string k, std::string v) {
    return Call(Make(next_id_++, OpKind::kPut, {WriteOp::Put(std::move(k), std::move(v))}));
  }
  Response Get(std::string k) {
    return Call(Make(next_id_++, OpKind::kGet, {WriteOp::Delete(std::move(k))}));
  }
  Response Scan(std::string start, std::optional<std::string> end, uint32_t limit) {
    Request r = Make(next_id_++, OpKind::kScan);
    r.scan_start = std::move(start);
    r.scan_end = std::move(end);
    r.scan_limit = limit;
    return Call(std::move(r));
  }

  testing::TempDir tmp_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<RequestHandler> handler_;
  CollectingSink sink_;
  uint64_t next_id_ = 1;
};

TEST_F(RequestHandlerTest, PingIsAnsweredNow) {
  std::optional<Response> r = handler_->Handle(Make(42, OpKind::kPing), sink_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->id, 42u);
  EXPECT_EQ(r->kind, Kind::kPong);
  EXPECT_EQ(sink_.asked(), 0);
}

TEST_F(RequestHandlerTest, PutThenGetReturnsValueAndVersion) {
  EXPECT_EQ(Get("k").kind, Kind::kNotFound);
  Response w = Put("k", "v1");
  ASSERT_EQ(w.kind, Kind::kWritten) << w.error.ToString();
  EXPECT_GT(w.written_version, 0u);
  Response g = Get("k");
  ASSERT_EQ(g.kind, Kind::kFound);
  EXPECT_EQ(g.found, (proto::Entry{"k", "v1", w.written_version}));
  Response w2 = Put("k", "v2");
  ASSERT_EQ(w2.kind, Kind::kWritten);
  EXPECT_GT(w2.written_version, w.written_version);
  EXPECT_EQ(Get("k").found.value, "v2");
}

TEST_F(RequestHandlerTest, DeleteRemovesAndMissingDeleteSucceeds) {
  ASSERT_EQ(Put("k", "v").kind, Kind::kWritten);
  Response d = Call(Make(7, OpKind::kDelete, {WriteOp::Delete("k")}));
  EXPECT_EQ(d.kind, Kind::kWritten);
  EXPECT_EQ(Get("k").kind, Kind::kNotFound);
  EXPECT_EQ(Call(Make(8, OpKind::kDelete, {WriteOp::Delete("never")})).kind, Kind::kWritten);
}

TEST_F(RequestHandlerTest, CasComparesVersions) {
  Response created = Call(Make(1, OpKind::kCas, {WriteOp::Cas("c", 0, "a")}));
  ASSERT_EQ(created.kind, Kind::kWritten) << created.error.ToString();
  Response again = Call(Make(2, OpKind::kCas, {WriteOp::Cas("c", 0, "b")}));
  ASSERT_EQ(again.kind, Kind::kError);
  EXPECT_EQ(again.error.code(), Code::kCasFailed);
  Response stale =
      Call(Make(3, OpKind::kCas, {WriteOp::Cas("c", created.written_version + 5, "b")}));
  EXPECT_EQ(stale.error.code(), Code::kCasFailed);
  Response right = Call(Make(4, OpKind::kCas, {WriteOp::Cas("c", created.written_version, "b")}));
  ASSERT_EQ(right.kind, Kind::kWritten);
  EXPECT_EQ(Get("c").found.value, "b");
}

TEST_F(RequestHandlerTest, BatchIsAllOrNothing) {
  Response failed =
      Call(Make(1, OpKind::kBatch, {WriteOp::Put("a", "1"), WriteOp::Cas("b", 99, "2")}));
  ASSERT_EQ(failed.kind, Kind::kError);
  EXPECT_EQ(failed.error.code(), Code::kCasFailed);
  EXPECT_EQ(Get("a").kind, Kind::kNotFound);

  Response ok = Call(Make(2, OpKind::kBatch,
                          {WriteOp::Put("a", "1"), WriteOp::Put("b", "2"), WriteOp::Delete("x")}));
  ASSERT_EQ(ok.kind, Kind::kWritten) << ok.error.ToString();
  EXPECT_EQ(Get("a").found.version, ok.written_version);
  EXPECT_EQ(Get("b").found.version, ok.written_version);
}

TEST_F(RequestHandlerTest, ScanIsOrderedAndBounded) {
  for (std::string k : {"k3", "k1", "k5", "k2", "k4"})
    ASSERT_EQ(Put(k, "v" + k).kind, Kind::kWritten);
  Response mid = Scan("k2", "k4", 0);
  ASSERT_EQ(mid.kind, Kind::kEntries);
  ASSERT_EQ(mid.entries.size(), 2u);
  EXPECT_EQ(mid.entries[0].key, "k2");
  EXPECT_EQ(mid.entries[1].key, "k3");
  EXPECT_EQ(mid.entries[1].value, "vk3");
  EXPECT_FALSE(mid.more);

  Response limited = Scan("", std::nullopt, 2);
  ASSERT_EQ(limited.entries.size(), 2u);
  EXPECT_EQ(limited.entries[0].key, "k1");
  EXPECT_TRUE(limited.more);

  Response all = Scan("k", std::nullopt, 5);
  EXPECT_EQ(all.entries.size(), 5u);
  EXPECT_FALSE(all.more);

  Response backwards = Scan("k4", "k2", 0);
  EXPECT_EQ(backwards.kind, Kind::kEntries);
  EXPECT_TRUE(backwards.entries.empty());
  EXPECT_FALSE(backwards.more);
}

TEST_F(RequestHandlerTest, ScanLimitZeroMeansServerDefault) {
  std::vector<WriteOp> ops;
  const size_t n = proto::Limits::kDefaultScanLimit + 50;
  for (size_t i = 0; i < n; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "key%06zu", i);
    ops.push_back(WriteOp::Put(key, "v"));
  }
  ASSERT_EQ(Call(Make(1, OpKind::kBatch, std::move(ops))).kind, Kind::kWritten);
  Response r = Scan("", std::nullopt, 0);
  EXPECT_EQ(r.entries.size(), proto::Limits::kDefaultScanLimit);
  EXPECT_TRUE(r.more);
}

TEST_F(RequestHandlerTest, OversizeKeyAndValueAreTooLargeAndNotWritten) {
  Response big_key = Put(std::string(proto::Limits::kMaxKeyBytes + 1, 'k'), "v");
  ASSERT_EQ(big_key.kind, Kind::kError);
  EXPECT_EQ(big_key.error.code(), Code::kTooLarge);
  Response big_value = Put("k", std::string(proto::Limits::kMaxValueBytes + 1, 'v'));
  ASSERT_EQ(big_value.kind, Kind::kError);
  EXPECT_EQ(big_value.error.code(), Code::kTooLarge);
  EXPECT_EQ(Get("k").kind, Kind::kNotFound);
  // The limits themselves are fine.
  EXPECT_EQ(Put(std::string(proto::Limits::kMaxKeyBytes, 'k'),
                std::string(proto::Limits::kMaxValueBytes, 'v'))
                .kind,
            Kind::kWritten);
}

TEST_F(RequestHandlerTest, BadArityIsBadRequest) {
  Response no_key = Call(Make(1, OpKind::kGet));
  ASSERT_EQ(no_key.kind, Kind::kError);
  EXPECT_EQ(no_key.error.code(), Code::kBadRequest);
  Response empty_batch = Call(Make(2, OpKind::kBatch));
  EXPECT_EQ(empty_batch.error.code(), Code::kBadRequest);
  Response two_keys = Call(Make(3, OpKind::kPut, {WriteOp::Put("a", "1"), WriteOp::Put("b", "2")}));
  EXPECT_EQ(two_keys.error.code(), Code::kBadRequest);
}

TEST_F(RequestHandlerTest, WrongRangeIdIsNotOwner) {
  Request r = Make(1, OpKind::kPut, {WriteOp::Put("k", "v")});
  r.range = RangeId(99);
  Response resp = Call(std::move(r));
  ASSERT_EQ(resp.kind, Kind::kError);
  EXPECT_EQ(resp.error.code(), Code::kNotOwner);
  Request right = Make(2, OpKind::kGet, {WriteOp::Delete("k")});
  right.range = kStandaloneRange;
  EXPECT_EQ(Call(std::move(right)).kind, Kind::kNotFound);
}

TEST_F(RequestHandlerTest, WriteAfterCloseIsAnErrorReply) {
  ASSERT_TRUE(node_->Close().ok());
  Response r = Put("k", "v");
  EXPECT_EQ(r.kind, Kind::kError);
}

}  // namespace
}  // namespace rangekv::kvnode
