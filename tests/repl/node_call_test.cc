// The shell's direct node call (repl/node_call.h) against an in-process
// fake node and a port nobody listens on, and the mapping of a node's
// rangeStatus answer to the `ranges` columns (ProgressFromRangeStatus).
#include <gtest/gtest.h>

#include <chrono>

#include "repl/cluster_backend.h"
#include "repl/node_call.h"
#include "tests/client/fake_node.h"
#include "tests/testutil/testutil.h"

namespace rangekv::repl {
namespace {

using rangekv::testing::FakeNode;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

proto::Request Ping(uint64_t id) {
  proto::Request req;
  req.id = id;
  req.kind = proto::OpKind::kPing;
  return req;
}

TEST(NodeCallTest, AnswerOfALiveNode) {
  FakeNode node;
  auto r = CallNode(node.address(), Ping(42), milliseconds(2000));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, 42u);
  EXPECT_EQ(r->kind, proto::Response::Kind::kPong);

  // An error answer is a response, not a failed call.
  proto::Request status;
  status.id = 7;
  status.kind = proto::OpKind::kRangeStatus;
  auto e = CallNode(node.address(), status, milliseconds(2000));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->kind, proto::Response::Kind::kError);
  EXPECT_EQ(e->error.code(), Code::kBadRequest);
  EXPECT_EQ(node.accepted(), 2);  // a connection per call
}

TEST(NodeCallTest, SilentNodeCostsTheTimeoutAndNoMore) {
  FakeNode node;
  node.SetMode(FakeNode::Mode::kHold);
  const auto start = Clock::now();
  auto r = CallNode(node.address(), Ping(1), milliseconds(300));
  const auto took = Clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(3000));
  EXPECT_EQ(node.requests(), 1);
}

TEST(NodeCallTest, ClosedConnectionAndRefusedPortAreUnavailable) {
  FakeNode node;
  node.SetMode(FakeNode::Mode::kCloseOnRequest);
  auto closed = CallNode(node.address(), Ping(1), milliseconds(2000));
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.status().code(), Code::kUnavailable) << closed.status().ToString();

  const std::string nobody = "127.0.0.1:" + std::to_string(rangekv::testing::FreePort());
  auto refused = CallNode(nobody, Ping(1), milliseconds(2000));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnavailable) << refused.status().ToString();
}

TEST(NodeCallTest, MalformedAddressesAreRefused) {
  for (const char* a : {"", "no-port", ":7000", "host:", "host:0", "host:70000", "host:7x",
                        "::1:7000", "[::1:7000", "[]:7000"}) {
    auto r = CallNode(a, Ping(1), milliseconds(100));
    ASSERT_FALSE(r.ok()) << a;
    EXPECT_EQ(r.status().code(), Code::kBadRequest) << a << ": " << r.status().ToString();
  }
}

proto::RangeStatus Reported(uint64_t range, bool owner, uint64_t last, uint64_t hwm,
                          std::vector<std::pair<std::string, uint64_t>> acked) {
  proto::RangeStatus s;
  s.range = RangeId(range);
  s.epoch = Epoch(2);
  s.owner = owner;
  s.last_seq = Seq(last);
  s.hwm = Seq(hwm);
  for (auto& [node, seq] : acked) {
    s.replicas.push_back(proto::ReplicaProgress{node, Seq(seq), true, 5});
  }
  return s;
}

TEST(ProgressFromRangeStatusTest, OwnedRangesWithLagPerReplica) {
  auto p = ProgressFromRangeStatus({
      Reported(1, true, 10, 8, {{"n2", 10}, {"n3", 4}}),
      Reported(2, false, 7, 7, {}),          // only a replica here: left out
      Reported(3, true, 5, 5, {}),           // replication factor 1
      Reported(4, true, 3, 3, {{"n9", 6}}),  // a replica ahead: no negative lag
  });
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p.count(2), 0u);
  EXPECT_EQ(p[1].hwm, 8u);
  ASSERT_EQ(p[1].lag.size(), 2u);
  EXPECT_EQ(p[1].lag[0].node, "n2");
  EXPECT_EQ(p[1].lag[0].records, 0u);
  EXPECT_EQ(p[1].lag[1].node, "n3");
  EXPECT_EQ(p[1].lag[1].records, 6u);
  EXPECT_EQ(p[3].hwm, 5u);
  EXPECT_TRUE(p[3].lag.empty());
  ASSERT_EQ(p[4].lag.size(), 1u);
  EXPECT_EQ(p[4].lag[0].records, 0u);
}

}  // namespace
}  // namespace rangekv::repl
