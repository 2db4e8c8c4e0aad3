// Integration tests of Client::Connect (the ZooKeeper-routed client) against
// a real ZooKeeper and real kvnode processes (tests/client/smart_cluster.h).
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "rangekv/client.h"
#include "rangekv/cluster_info.h"
#include "tests/client/smart_cluster.h"

namespace rangekv {
namespace {

using std::chrono::milliseconds;
using testing::WaitFor;

class SmartClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start()) << cluster_.error();
    ASSERT_TRUE(cluster_.StartNode("n1")) << cluster_.error();
    ASSERT_TRUE(cluster_.StartNode("n2")) << cluster_.error();
    ASSERT_TRUE(cluster_.WriteTwoRanges("n1", "n2")) << cluster_.error();
    client_ = Connect();
    ASSERT_TRUE(client_);
    // The first map may predate the test's last writes; wait for both owners.
    ASSERT_TRUE(WaitFor([&] { return UpNodes(*client_) == 2 && client_->Ranges().size() == 2; },
                        milliseconds(10000)));
  }

  std::unique_ptr<Client> Connect(ClientOptions o = {}) {
    auto c = Client::Connect(cluster_.zk_connect(), cluster_.name(), o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  static size_t UpNodes(const Client& c) {
    size_t n = 0;
    for (const auto& s : c.Nodes()) n += s.up ? 1 : 0;
    return n;
  }

  // Reads key directly from one node (bypassing routing).
  std::optional<std::string> ReadDirect(const std::string& address, const std::string& key) {
    auto c = Client::ConnectNode(address);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (!c.ok()) return std::nullopt;
    auto r = (*c)->Get(key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->has_value()) return std::nullopt;
    return (*r)->value;
  }

  testing::SmartCluster cluster_;
  std::unique_ptr<Client> client_;
};

std::vector<std::string> SpreadKeys() {
  std::vector<std::string> keys;
  for (char c = 'a'; c <= 'z'; ++c) keys.push_back(std::string(1, c) + "-key");
  keys.push_back("");  // the empty key is in the first range
  keys.push_back(std::string("\xff\x00", 2));
  return keys;
}

TEST_F(SmartClientTest, WritesGoToTheOwnerAndReadBackThroughAnotherClient) {
  auto reader = Connect();
  ASSERT_TRUE(reader);
  for (const auto& k : SpreadKeys()) {
    auto put = client_->Put(k, "v:" + k);
    ASSERT_TRUE(put.ok()) << put.status().ToString();
  }
  for (const auto& k : SpreadKeys()) {
    auto got = reader->Get(k);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value()) << k;
    EXPECT_EQ((*got)->value, "v:" + k);
    // The data lives exactly where Locate says, and only there.
    auto where = reader->Locate(k);
    ASSERT_TRUE(where.ok()) << where.status().ToString();
    ASSERT_TRUE(where->owner.has_value());
    const std::string other = *where->owner == "n1" ? "n2" : "n1";
    EXPECT_EQ(where->owner_address, cluster_.address(*where->owner));
    EXPECT_EQ(ReadDirect(where->owner_address, k), "v:" + k);
    EXPECT_EQ(ReadDirect(cluster_.address(other), k), std::nullopt) << k;
    EXPECT_EQ(*where->owner, k < "m" ? "n1" : "n2") << k;
  }
}

TEST_F(SmartClientTest, IntrospectionReflectsTheMap) {
  auto ranges = client_->Ranges();
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].id, 1u);
  EXPECT_EQ(ranges[0].start, "");
  EXPECT_EQ(ranges[0].end, std::optional<std::string>("m"));
  EXPECT_EQ(ranges[1].end, std::nullopt);
  EXPECT_EQ(ranges[1].owner, std::optional<std::string>("n2"));
  EXPECT_EQ(ranges[1].state, RangeHealth::kActive);
  ASSERT_TRUE(cluster_.UnpublishNode("n2")) << cluster_.error();
  ASSERT_TRUE(WaitFor([&] { return UpNodes(*client_) == 1; }, milliseconds(10000)));
  auto nodes = client_->Nodes();
  ASSERT_EQ(nodes.size(), 2u);  // n2 still named by range 2: down
  EXPECT_EQ(nodes[1].id, "n2");
  EXPECT_FALSE(nodes[1].up);
  // Its range cannot be served: a bounded wait, then the reason.
  CallOptions quick;
  quick.timeout = milliseconds(300);
  auto put = client_->Put("x", "1", quick);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kUnavailable) << put.status().ToString();
  EXPECT_NE(put.status().message().find("n2"), std::string::npos) << put.status().ToString();
  EXPECT_TRUE(client_->Put("a", "1").ok());
}

TEST_F(SmartClientTest, BatchesMustStayInOneRange) {
  auto cross = client_->Batch({BatchOp::Put("a", "1"), BatchOp::Put("z", "2")});
  ASSERT_FALSE(cross.ok());
  EXPECT_EQ(cross.status().code(), Code::kCrossRange);
  EXPECT_FALSE(client_->Get("a")->has_value());
  auto one = client_->Batch({BatchOp::Put("x", "1"), BatchOp::Put("z", "2")});
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(ReadDirect(cluster_.address("n2"), "z"), "2");
}

TEST_F(SmartClientTest, FinalErrorsAreNotRetried) {
  ASSERT_TRUE(client_->Put("k", "1").ok());
  auto start = std::chrono::steady_clock::now();
  auto cas = client_->Cas("k", 999999, "2");
  ASSERT_FALSE(cas.ok());
  EXPECT_EQ(cas.status().code(), Code::kCasFailed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
}

TEST_F(SmartClientTest, ScanWalksRangesInKeyOrder) {
  std::vector<std::string> keys = {"b", "d", "k", "n", "q", "y"};
  for (const auto& k : keys) ASSERT_TRUE(client_->Put(k, k + k).ok());
  auto all = client_->Scan("", std::nullopt, 0);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->entries.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(all->entries[i].key, keys[i]);
  EXPECT_FALSE(all->more);
  auto some = client_->Scan("c", "r", 3);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->entries.size(), 3u);
  EXPECT_EQ(some->entries[0].key, "d");
  EXPECT_EQ(some->entries[2].key, "n");
  EXPECT_TRUE(some->more);
  auto tail = client_->Scan("l", "r", 10);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->entries.size(), 2u);
  EXPECT_EQ(tail->entries[1].key, "q");
  EXPECT_FALSE(tail->more);
}

TEST_F(SmartClientTest, FollowsANodeThatRestartsAtANewAddress) {
  ASSERT_TRUE(client_->Put("c", "before").ok());
  const std::string old_address = cluster_.address("n1");
  cluster_.StopNode("n1");
  ASSERT_TRUE(cluster_.UnpublishNode("n1"));
  // Meanwhile: bounded failures, no hang.
  CallOptions quick;
  quick.timeout = milliseconds(300);
  auto during = client_->Get("c", quick);
  ASSERT_FALSE(during.ok());
  ASSERT_TRUE(cluster_.StartNode("n1")) << cluster_.error();  // same data, new port
  ASSERT_NE(cluster_.address("n1"), old_address);
  auto start = std::chrono::steady_clock::now();
  auto got = client_->Get("c");  // retried within its deadline until the map follows
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "before");
  std::cerr << "first read after the move took "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start)
                   .count()
            << " ms\n";
  ASSERT_TRUE(client_->Put("c", "after").ok());
  EXPECT_EQ(ReadDirect(cluster_.address("n1"), "c"), "after");
  EXPECT_EQ(client_->Locate("c")->owner_address, cluster_.address("n1"));
}

TEST_F(SmartClientTest, ServesFromTheCachedMapWhileZooKeeperIsDown) {
  cluster_.StopZooKeeper();
  ASSERT_TRUE(client_->Put("a", "1").ok());
  ASSERT_TRUE(client_->Put("z", "2").ok());
  EXPECT_EQ(client_->Get("z")->value().value, "2");
  EXPECT_EQ(client_->Ranges().size(), 2u);
  ASSERT_TRUE(cluster_.StartZooKeeper());
  ASSERT_TRUE(cluster_.session().WaitConnected(milliseconds(15000)).ok());
  // The watch comes back: a map change made afterwards is followed.
  ASSERT_TRUE(cluster_.WriteTwoRanges("n2", "n2")) << cluster_.error();
  ASSERT_TRUE(WaitFor([&] { return client_->Locate("a")->owner == "n2"; }, milliseconds(15000)));
  ASSERT_TRUE(client_->Put("a", "on-n2").ok());
  EXPECT_EQ(ReadDirect(cluster_.address("n2"), "a"), "on-n2");
}

TEST_F(SmartClientTest, RoutesByTheMapWhenOwnershipMoves) {
  ASSERT_TRUE(client_->Put("a", "on-n1").ok());
  // Hand range 1 to n2 (a new epoch); the client must follow the map.
  ASSERT_TRUE(cluster_.WriteTwoRanges("n2", "n2")) << cluster_.error();
  ASSERT_TRUE(WaitFor([&] { return client_->Locate("a")->owner == "n2"; }, milliseconds(10000)));
  ASSERT_TRUE(client_->Put("a", "on-n2").ok());
  EXPECT_EQ(ReadDirect(cluster_.address("n2"), "a"), "on-n2");
  EXPECT_EQ(ReadDirect(cluster_.address("n1"), "a"), "on-n1");
}

// A cluster name that ZooKeeper does not hold fails at connect, within the
// connect timeout, and the error names the clusters that are there.
TEST_F(SmartClientTest, AClusterThatDoesNotExistIsRefusedNamingTheOthers) {
  ClientOptions o;
  o.connect_timeout = milliseconds(600);
  auto start = std::chrono::steady_clock::now();
  auto c = Client::Connect(cluster_.zk_connect(), "no-such-cluster", o);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kBadRequest);
  EXPECT_EQ(c.status().message(), "no cluster 'no-such-cluster' in ZooKeeper at " +
                                      cluster_.zk_connect() + " (clusters there: " +
                                      cluster_.name() + ")");
  EXPECT_GE(took, milliseconds(500));  // it waited for the cluster to appear
  EXPECT_LT(took, milliseconds(3000));
}

TEST(SmartClientConnectTest, UnreachableZooKeeperFailsWithinTheConnectTimeout) {
  ClientOptions o;
  o.connect_timeout = milliseconds(500);
  auto start = std::chrono::steady_clock::now();
  auto c = Client::Connect("127.0.0.1:" + std::to_string(testing::FreePort()), "x", o);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable);
  EXPECT_NE(c.status().message().find("ZooKeeper"), std::string::npos) << c.status().ToString();
  EXPECT_LT(took, milliseconds(3000));
}

TEST(SmartClientConnectTest, BadArgumentsAreRefused) {
  EXPECT_EQ(Client::Connect("", "x").status().code(), Code::kBadRequest);
  EXPECT_EQ(Client::Connect("127.0.0.1:1", "bad/name").status().code(), Code::kBadRequest);
  auto node = Client::ConnectNode("127.0.0.1:1");
  ASSERT_FALSE(node.ok());  // nothing listens there
}

}  // namespace
}  // namespace rangekv

namespace rangekv {
namespace {

// The same client against kvnodes in cluster mode: they register
// themselves and serve only the ranges the map gives them.
class SmartClientClusterNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start()) << cluster_.error();
    ASSERT_TRUE(cluster_.WriteTwoRanges("n1", "n2")) << cluster_.error();
    ASSERT_TRUE(cluster_.StartClusterNode("n1")) << cluster_.error();
    ASSERT_TRUE(cluster_.StartClusterNode("n2")) << cluster_.error();
    auto c = Client::Connect(cluster_.zk_connect(), cluster_.name());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }

  // A write through the cluster client, retried while the nodes are still
  // opening their ranges (RANGE_UNAVAILABLE is retried inside the call).
  testing::SmartCluster cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(SmartClientClusterNodesTest, RoutesToOwnersAndFollowsARestartedNode) {
  CallOptions patient;
  patient.timeout = milliseconds(15000);
  for (const auto& k : SpreadKeys()) {
    auto put = client_->Put(k, "v:" + k, patient);
    ASSERT_TRUE(put.ok()) << k << ": " << put.status().ToString() << "\n"
                          << cluster_.log("n1") << cluster_.log("n2");
  }
  auto reader = Client::Connect(cluster_.zk_connect(), cluster_.name());
  ASSERT_TRUE(reader.ok());
  for (const auto& k : SpreadKeys()) {
    auto got = (*reader)->Get(k);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->value, "v:" + k);
    auto where = (*reader)->Locate(k);
    ASSERT_TRUE(where.ok());
    // The owner has it; the other node refuses the key (NOT_OWNER + hint).
    auto owner = Client::ConnectNode(where->owner_address);
    ASSERT_TRUE(owner.ok());
    auto direct = (*owner)->Get(k);
    ASSERT_TRUE(direct.ok()) << direct.status().ToString();
    EXPECT_EQ((*direct)->value, "v:" + k);
    auto other = Client::ConnectNode(cluster_.address(*where->owner == "n1" ? "n2" : "n1"));
    ASSERT_TRUE(other.ok());
    auto refused = (*other)->Get(k);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), Code::kNotOwner);
  }
  // Kill n1 and bring it back with the same id and data on another port.
  const std::string old_address = cluster_.address("n1");
  cluster_.KillNode("n1");
  ASSERT_TRUE(cluster_.StartClusterNode("n1")) << cluster_.error();
  ASSERT_NE(cluster_.address("n1"), old_address);
  auto start = std::chrono::steady_clock::now();
  auto got = client_->Get("c-key", patient);
  ASSERT_TRUE(got.ok()) << got.status().ToString() << "\n" << cluster_.log("n1");
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "v:c-key");
  std::cerr << "first read after the restart took "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start)
                   .count()
            << " ms\n";
  ASSERT_TRUE(client_->Put("c-key", "after", patient).ok());
  EXPECT_EQ(client_->Locate("c-key")->owner_address, cluster_.address("n1"));
}

}  // namespace
}  // namespace rangekv

namespace rangekv {
namespace {

// Not a benchmark (shared machine): prints the per-request cost of routing
// next to a direct node client, and the time to Connect, for the notes.
TEST_F(SmartClientTest, ReportsRoutingCost) {
  auto t0 = std::chrono::steady_clock::now();
  auto smart = Connect();
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(smart);
  auto direct = Client::ConnectNode(cluster_.address("n1"));
  ASSERT_TRUE(direct.ok());
  constexpr int kOps = 2000;
  auto time_gets = [&](Client& c) {
    auto s = std::chrono::steady_clock::now();
    for (int i = 0; i < kOps; ++i) EXPECT_TRUE(c.Get("a" + std::to_string(i)).ok());
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s)
               .count() / kOps;
  };
  const double node_us = time_gets(**direct);
  const double smart_us = time_gets(*smart);
  std::cerr << "Connect(zk) took "
            << std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count()
            << " us; sequential get: ConnectNode " << node_us << " us, Connect " << smart_us
            << " us\n";
  EXPECT_GT(smart_us, 0);
}

}  // namespace
}  // namespace rangekv
