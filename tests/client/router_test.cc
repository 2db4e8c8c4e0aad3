// Routing of the cluster client, without ZooKeeper: the replica choice on
// plain maps, and the Router over a fixed map against in-process fake
// nodes (which node a request reaches, and what happens when one fails).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "client/src/cluster_view.h"
#include "client/src/replica_choice.h"
#include "client/src/router.h"
#include "rangekv/client.h"
#include "tests/client/fake_node.h"
#include "tests/testutil/testutil.h"

namespace rangekv::client_internal {
namespace {

using cluster::ClusterMap;
using cluster::NodeInfo;
using cluster::RangeInfo;
using std::chrono::milliseconds;
using testing::FakeNode;

NodeId Id(const std::string& s) { return NodeId(s); }

void AddLive(ClusterMap& map, const std::string& id, const std::string& address) {
  NodeInfo n;
  n.id = Id(id);
  n.address = address;
  map.live_nodes[n.id] = n;
}

// One range over the whole key space: owner n1, replicas n1..n3 (in the
// order given), isr = replicas.
RangeInfo WholeRange(std::vector<std::string> replicas, std::optional<std::string> owner) {
  RangeInfo r;
  r.id = RangeId(1);
  r.bounds = KeyRange("", std::nullopt);
  r.epoch = Epoch(3);
  if (owner) r.owner = Id(*owner);
  for (const auto& id : replicas) r.replicas.push_back(Id(id));
  r.isr = r.replicas;
  return r;
}

std::vector<std::string> Ids(const std::vector<ReplicaTarget>& targets) {
  std::vector<std::string> out;
  for (const auto& t : targets) out.push_back(t.node_id);
  return out;
}

TEST(ReplicaChoiceTest, OwnerFirstWhenLive) {
  ClusterMap map;
  for (const char* n : {"n1", "n2", "n3"}) AddLive(map, n, std::string(n) + ":1");
  auto r = WholeRange({"n3", "n1", "n2"}, "n1");
  EXPECT_EQ(Ids(StaleReadTargets(map, r)), (std::vector<std::string>{"n1", "n3", "n2"}));
  EXPECT_EQ(StaleReadTargets(map, r)[0].address, "n1:1");
}

TEST(ReplicaChoiceTest, DownOwnerAndDownReplicasAreSkipped) {
  ClusterMap map;
  AddLive(map, "n2", "n2:1");
  AddLive(map, "n4", "n4:1");
  auto r = WholeRange({"n1", "n2", "n3", "n4"}, "n1");
  EXPECT_EQ(Ids(StaleReadTargets(map, r)), (std::vector<std::string>{"n2", "n4"}));
  // No owner at all (the range waits for a promotion): replicas still serve.
  r.owner.reset();
  r.state = cluster::RangeState::kUnavailable;
  EXPECT_EQ(Ids(StaleReadTargets(map, r)), (std::vector<std::string>{"n2", "n4"}));
}

TEST(ReplicaChoiceTest, NoLiveReplicaMeansNoTarget) {
  ClusterMap map;
  AddLive(map, "n9", "n9:1");  // live, but not a replica of the range
  EXPECT_TRUE(StaleReadTargets(map, WholeRange({"n1", "n2"}, "n1")).empty());
}

TEST(ReplicaChoiceTest, OwnerOutsideReplicasIsStillTried) {
  ClusterMap map;
  AddLive(map, "n1", "n1:1");
  AddLive(map, "n2", "n2:1");
  EXPECT_EQ(Ids(StaleReadTargets(map, WholeRange({"n2"}, "n1"))),
            (std::vector<std::string>{"n1", "n2"}));
}

TEST(ReplicaChoiceTest, NextUntriedSkipsTriedAddresses) {
  std::vector<ReplicaTarget> t{{"n1", "a:1"}, {"n2", "b:1"}, {"n3", "c:1"}};
  EXPECT_EQ(NextUntried(t, {})->node_id, "n1");
  EXPECT_EQ(NextUntried(t, {"a:1"})->node_id, "n2");
  EXPECT_EQ(NextUntried(t, {"a:1", "c:1"})->node_id, "n2");
  EXPECT_EQ(NextUntried(t, {"a:1", "b:1", "c:1"}), nullptr);
  EXPECT_EQ(NextUntried({}, {}), nullptr);
}

// A Router over a fixed map, with one I/O thread.
class RouterHarness {
 public:
  explicit RouterHarness(ClusterMap map) : work_(asio::make_work_guard(io_)) {
    auto view = ClusterView::Fixed(std::move(map));
    view_ = view.get();
    ClientOptions o;
    o.connect_timeout = milliseconds(500);
    router_ = std::make_unique<Router>(std::vector<asio::io_context*>{&io_}, std::move(view), o);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~RouterHarness() {
    router_->Shutdown();
    work_.reset();
    thread_.join();
    router_.reset();
  }

  ClusterView& view() { return *view_; }

  Result<proto::Response> Run(proto::Request req, milliseconds timeout) {
    return Start(std::move(req), timeout).get();
  }

  std::future<Result<proto::Response>> Start(proto::Request req, milliseconds timeout) {
    auto promise = std::make_shared<std::promise<Result<proto::Response>>>();
    auto future = promise->get_future();
    auto done = [promise](Result<proto::Response> r) { promise->set_value(std::move(r)); };
    if (req.kind == proto::OpKind::kScan) {
      router_->Scan(std::move(req), Clock::now() + timeout, timeout, done);
    } else {
      router_->Submit(std::move(req), Clock::now() + timeout, timeout, done);
    }
    return future;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  ClusterView* view_ = nullptr;
  std::unique_ptr<Router> router_;
  std::thread thread_;
};

proto::Request Get(std::string key, proto::Consistency c) {
  proto::Request req;
  req.kind = proto::OpKind::kGet;
  req.consistency = c;
  req.ops.push_back(proto::WriteOp::Put(std::move(key), ""));
  return req;
}

proto::Request Put(std::string key, std::string value) {
  proto::Request req;
  req.kind = proto::OpKind::kPut;
  req.ops.push_back(proto::WriteOp::Put(std::move(key), std::move(value)));
  return req;
}

proto::Request StaleScan() {
  proto::Request req;
  req.kind = proto::OpKind::kScan;
  req.consistency = proto::Consistency::kStale;
  return req;
}

// Stores key=value on node directly, so a read shows which node answered.
void Seed(FakeNode& node, const std::string& key, const std::string& value) {
  auto c = Client::ConnectNode(node.address());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE((*c)->Put(key, value).ok());
}

std::string DeadAddress() { return "127.0.0.1:" + std::to_string(testing::FreePort()); }

constexpr auto kStale = proto::Consistency::kStale;
constexpr auto kLinearizable = proto::Consistency::kLinearizable;

// Three fake nodes, each holding k = its own name.
struct ThreeNodes {
  FakeNode n1, n2, n3;
  ThreeNodes() {
    Seed(n1, "k", "from-n1");
    Seed(n2, "k", "from-n2");
    Seed(n3, "k", "from-n3");
  }
};

// Requests node received through the Router (the seeding put excluded).
int Hits(const FakeNode& node) { return node.requests() - 1; }

std::string ValueOf(const Result<proto::Response>& r) {
  if (!r.ok()) return "error: " + r.status().ToString();
  if (r->kind == proto::Response::Kind::kError) return "error: " + r->error.ToString();
  if (r->kind != proto::Response::Kind::kFound) return "not found";
  return r->found.value;
}

TEST(RouterStaleReadTest, LiveOwnerAnswersStaleAndLinearizableReads) {
  ThreeNodes nodes;
  ClusterMap map;
  AddLive(map, "n1", nodes.n1.address());
  AddLive(map, "n2", nodes.n2.address());
  AddLive(map, "n3", nodes.n3.address());
  map.ranges[RangeId(1)] = WholeRange({"n2", "n1", "n3"}, "n1");
  RouterHarness h(std::move(map));
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(2000))), "from-n1");
  EXPECT_EQ(ValueOf(h.Run(Get("k", kLinearizable), milliseconds(2000))), "from-n1");
  EXPECT_EQ(nodes.n1.stale_requests(), 1);  // the flag went on the wire
  EXPECT_EQ(Hits(nodes.n2), 0);
  EXPECT_EQ(Hits(nodes.n3), 0);
}

TEST(RouterStaleReadTest, DownOwnerStaleReadGoesToFirstLiveReplica) {
  ThreeNodes nodes;
  ClusterMap map;  // n1 owns the range but has no znode (it died)
  AddLive(map, "n2", nodes.n2.address());
  AddLive(map, "n3", nodes.n3.address());
  map.ranges[RangeId(1)] = WholeRange({"n1", "n3", "n2"}, "n1");
  RouterHarness h(std::move(map));
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(2000))), "from-n3");
  auto scan = h.Run(StaleScan(), milliseconds(2000));
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->entries.size(), 1u);
  EXPECT_EQ(scan->entries[0].value, "from-n3");
  EXPECT_EQ(Hits(nodes.n2), 0);

  // Linearizable reads and writes wait for the owner: they never reach a
  // replica and fail once the deadline passes.
  auto lin = h.Run(Get("k", kLinearizable), milliseconds(300));
  ASSERT_FALSE(lin.ok());
  EXPECT_EQ(lin.status().code(), Code::kUnavailable) << lin.status().ToString();
  EXPECT_NE(lin.status().message().find("owner n1"), std::string::npos);
  auto put = h.Run(Put("k", "v"), milliseconds(300));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(Hits(nodes.n2) + Hits(nodes.n3), 2);  // the two stale reads only
}

TEST(RouterStaleReadTest, ErrorFromOneReplicaTriesTheNext) {
  ThreeNodes nodes;
  ClusterMap map;
  // The owner's znode names a port nobody listens on (connect refused),
  // n2 refuses (NOT_OWNER), n3 serves.
  AddLive(map, "n1", DeadAddress());
  AddLive(map, "n2", nodes.n2.address());
  AddLive(map, "n3", nodes.n3.address());
  map.ranges[RangeId(1)] = WholeRange({"n1", "n2", "n3"}, "n1");
  nodes.n2.SetMode(FakeNode::Mode::kRefuse);
  RouterHarness h(std::move(map));
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(3000))), "from-n3");
  EXPECT_EQ(Hits(nodes.n2), 1);

  // A connection lost after the request was sent: the next replica.
  nodes.n2.SetMode(FakeNode::Mode::kCloseOnRequest);
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(3000))), "from-n3");
  EXPECT_EQ(Hits(nodes.n2), 2);
}

TEST(RouterStaleReadTest, EveryReplicaFailingEndsWithTheLastErrorAtTheDeadline) {
  ThreeNodes nodes;
  ClusterMap map;
  AddLive(map, "n2", nodes.n2.address());
  AddLive(map, "n3", nodes.n3.address());
  map.ranges[RangeId(1)] = WholeRange({"n1", "n2", "n3"}, "n1");
  nodes.n2.SetMode(FakeNode::Mode::kRefuse);
  nodes.n3.SetMode(FakeNode::Mode::kRefuse);
  RouterHarness h(std::move(map));
  auto r = h.Run(Get("k", kStale), milliseconds(300));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotOwner) << r.status().ToString();
  // Rounds over both replicas, with backoff between rounds (not a busy loop).
  EXPECT_GE(Hits(nodes.n2), 2);
  EXPECT_GE(Hits(nodes.n3), 2);
  EXPECT_LT(Hits(nodes.n2), 50);

  // Once one serves again (map unchanged), the next read succeeds.
  nodes.n3.SetMode(FakeNode::Mode::kServe);
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(2000))), "from-n3");
}

TEST(RouterStaleReadTest, SilentOwnerGetsOnlyItsShareOfTheDeadline) {
  ThreeNodes nodes;
  ClusterMap map;
  AddLive(map, "n1", nodes.n1.address());
  AddLive(map, "n2", nodes.n2.address());
  map.ranges[RangeId(1)] = WholeRange({"n1", "n2"}, "n1");
  // The owner accepts requests and never answers (as a paused process).
  nodes.n1.SetMode(FakeNode::Mode::kHold);
  RouterHarness h(std::move(map));
  const auto start = Clock::now();
  // timeout 4 s: the owner's attempt ends after timeout / 4 = 1 s.
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(4000))), "from-n2");
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  EXPECT_GE(took, milliseconds(1000));
  EXPECT_LT(took, milliseconds(4000));
  EXPECT_EQ(Hits(nodes.n1), 1);
  EXPECT_EQ(Hits(nodes.n2), 1);

  // A short timeout still gets max(200 ms, timeout / 4) per attempt.
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(600))), "from-n2");
  EXPECT_EQ(Hits(nodes.n1), 2);

  // Linearizable reads keep the whole deadline for the owner: TIMEOUT.
  auto lin = h.Run(Get("k", kLinearizable), milliseconds(300));
  ASSERT_FALSE(lin.ok());
  EXPECT_EQ(lin.status().code(), Code::kTimeout) << lin.status().ToString();
  EXPECT_EQ(Hits(nodes.n2), 2);
}

TEST(RouterStaleReadTest, EverySilentReplicaEndsWithTimeoutAtTheDeadline) {
  ThreeNodes nodes;
  ClusterMap map;
  AddLive(map, "n1", nodes.n1.address());
  AddLive(map, "n2", nodes.n2.address());
  map.ranges[RangeId(1)] = WholeRange({"n1", "n2"}, "n1");
  nodes.n1.SetMode(FakeNode::Mode::kHold);
  nodes.n2.SetMode(FakeNode::Mode::kHold);
  RouterHarness h(std::move(map));
  const auto start = Clock::now();
  auto r = h.Run(Get("k", kStale), milliseconds(1000));
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_GE(took, milliseconds(1000));
  // The owner's attempt (250 ms) left time to ask the replica.
  EXPECT_GE(Hits(nodes.n1), 1);
  EXPECT_GE(Hits(nodes.n2), 1);
}

TEST(RouterStaleReadTest, NoLiveReplicaWaitsForTheMap) {
  ThreeNodes nodes;
  ClusterMap map;
  map.ranges[RangeId(1)] = WholeRange({"n1", "n2"}, "n1");
  RouterHarness h(map);
  auto r = h.Run(Get("k", kStale), milliseconds(200));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("no live replica of range 1"), std::string::npos)
      << r.status().ToString();

  // A replica that comes up (a new map) serves the next read.
  ClusterMap next = map;
  AddLive(next, "n2", nodes.n2.address());
  h.view().Replace(std::move(next));
  EXPECT_EQ(ValueOf(h.Run(Get("k", kStale), milliseconds(2000))), "from-n2");
}

// ---- a NOT_OWNER answer that carries the range's layout ----

RangeInfo Span(uint64_t id, std::string start, std::optional<std::string> end, const char* owner,
               uint64_t generation, uint64_t epoch = 3) {
  RangeInfo r;
  r.id = RangeId(id);
  r.bounds = KeyRange(std::move(start), std::move(end));
  r.epoch = Epoch(epoch);
  r.owner = Id(owner);
  r.replicas = {Id("n1"), Id("n2"), Id("n3")};
  r.isr = r.replicas;
  r.generation = generation;
  return r;
}

TEST(ApplyHintTest, ARangeSplitOffAndMovedIsLearnedAndTheParentCutBack) {
  ClusterMap map;
  AddLive(map, "n1", "a:1");
  map.ranges[RangeId(1)] = Span(1, "", std::nullopt, "n1", 0);
  // Range 2 = [m, +inf) split off range 1 (generation 1), now owned by n2.
  proto::OwnerHint h{"n2", "b:2", Epoch(4), RangeId(2), KeyRange("m", std::nullopt), 1};
  ASSERT_TRUE(ApplyHint(map, h));
  ASSERT_EQ(map.ranges.size(), 2u);
  EXPECT_EQ(map.ranges.at(RangeId(1)).bounds, KeyRange("", std::string("m")));
  EXPECT_EQ(map.ranges.at(RangeId(2)).bounds, KeyRange("m", std::nullopt));
  EXPECT_EQ(map.ranges.at(RangeId(2)).owner, Id("n2"));
  EXPECT_EQ(map.Locate("z")->id, RangeId(2));
  ASSERT_NE(map.Node(Id("n2")), nullptr);
  EXPECT_EQ(map.Node(Id("n2"))->address, "b:2");
  // The same news again, or older news, changes nothing.
  EXPECT_FALSE(ApplyHint(map, h));
  proto::OwnerHint older{"n3", "c:3", Epoch(3), RangeId(2), KeyRange("m", std::nullopt), 1};
  EXPECT_FALSE(ApplyHint(map, older));
  EXPECT_EQ(map.ranges.at(RangeId(2)).owner, Id("n2"));
  // A hint without a layout (an older node) is not applied.
  EXPECT_FALSE(ApplyHint(map, proto::OwnerHint{"n3", "c:3", Epoch(9), RangeId(2)}));
}

TEST(ApplyHintTest, ARangeNarrowedInTheMiddleOfAnOlderOneLeavesAHoleNotAGuess) {
  ClusterMap map;
  map.ranges[RangeId(1)] = Span(1, "", std::nullopt, "n1", 0);
  proto::OwnerHint h{"n1", "a:1", Epoch(3), RangeId(3), KeyRange("f", std::string("p")), 2};
  ASSERT_TRUE(ApplyHint(map, h));
  ASSERT_EQ(map.ranges.size(), 1u);
  EXPECT_EQ(map.Locate("a"), nullptr);
  EXPECT_EQ(map.Locate("g")->id, RangeId(3));
}

// A client whose map predates a move: the refusal names the new owner and
// the range's bounds, so this request and the next ones go there at once.
TEST(RouterHintTest, ALayoutInTheRefusalRoutesLaterRequestsWithoutAnotherRefusal) {
  ThreeNodes nodes;
  ClusterMap map;
  AddLive(map, "n1", nodes.n1.address());
  map.ranges[RangeId(1)] = WholeRange({"n1", "n2", "n3"}, "n1");
  nodes.n1.SetMode(FakeNode::Mode::kRefuse);
  nodes.n1.SetRefusalHint(proto::OwnerHint{"n2", nodes.n2.address(), Epoch(4), RangeId(1),
                                           KeyRange("", std::nullopt), 0});
  RouterHarness h(std::move(map));
  EXPECT_EQ(ValueOf(h.Run(Get("k", kLinearizable), milliseconds(2000))), "from-n2");
  EXPECT_EQ(Hits(nodes.n1), 1);
  EXPECT_EQ(ValueOf(h.Run(Get("k", kLinearizable), milliseconds(2000))), "from-n2");
  EXPECT_EQ(Hits(nodes.n1), 1);  // the corrected map went straight to n2
  EXPECT_EQ(Hits(nodes.n2), 2);
}

// n1 owns the range and holds every request (a stopped process: its
// kernel still takes them); n2 is the other replica.
ClusterMap StoppedOwnerMap(ThreeNodes& nodes) {
  ClusterMap map;
  AddLive(map, "n1", nodes.n1.address());
  AddLive(map, "n2", nodes.n2.address());
  map.ranges[RangeId(1)] = WholeRange({"n1", "n2"}, "n1");
  nodes.n1.SetMode(FakeNode::Mode::kHold);
  return map;
}

// The same map once n2 owns the range at the next epoch, by a failover or
// by n1's handoff.
ClusterMap MovedToN2(ClusterMap map, bool handoff) {
  RangeInfo& r = map.ranges[RangeId(1)];
  r.owner = Id("n2");
  if (handoff) r.handoff_from = r.epoch;
  r.epoch = r.epoch.Next();
  return map;
}

// A read of the map shows the stopped owner's range failed over: the
// requests waiting on it end at once, a read answered by the new owner, a
// write with its outcome unknown, instead of waiting for their deadline
// (or for the stopped owner).
TEST(RouterFailoverTest, RequestsWaitingOnAFailedOverOwnerEndWhenTheMapMoves) {
  ThreeNodes nodes;
  const ClusterMap map = StoppedOwnerMap(nodes);
  RouterHarness h(map);
  const auto start = Clock::now();
  auto get = h.Start(Get("k", kLinearizable), milliseconds(5000));
  auto put = h.Start(Put("k", "v"), milliseconds(5000));
  ASSERT_TRUE(testing::WaitFor([&] { return nodes.n1.requests() >= 3; }, milliseconds(2000)));
  h.view().Replace(MovedToN2(map, /*handoff=*/false));
  EXPECT_EQ(ValueOf(get.get()), "from-n2");
  auto p = put.get();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kUnavailable) << p.status().ToString();
  EXPECT_NE(p.status().message().find("outcome is unknown"), std::string::npos)
      << p.status().ToString();
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
}

// A handoff is not a failover: the old owner answers what it holds
// itself (refusing writes it parked, which are then retried), so the map's
// change leaves its requests alone.
TEST(RouterFailoverTest, AHandoffLeavesTheOldOwnersRequestsToIt) {
  ThreeNodes nodes;
  const ClusterMap map = StoppedOwnerMap(nodes);
  RouterHarness h(map);
  auto get = h.Start(Get("k", kLinearizable), milliseconds(600));
  ASSERT_TRUE(testing::WaitFor([&] { return nodes.n1.requests() >= 2; }, milliseconds(2000)));
  h.view().Replace(MovedToN2(map, /*handoff=*/true));
  auto r = get.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTimeout) << r.status().ToString();
  EXPECT_EQ(Hits(nodes.n2), 0);
}

}  // namespace
}  // namespace rangekv::client_internal
