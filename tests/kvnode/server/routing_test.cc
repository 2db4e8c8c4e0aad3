// Routing rules (kvnode/server/routing.h) and a cluster-mode Node following maps
// (Node::Apply / Suspend), without ZooKeeper: the maps are built here.
#include "kvnode/server/routing.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>

#include "kvnode/server/node.h"
#include "kvnode/server/request_handler.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using testing::TempDir;

const NodeId kSelf("n1");
const NodeId kPeer("n2");

KeyRange Bounds(int from, std::optional<int> to) {
  return KeyRange(
      from == 0 ? std::string() : std::string(1, static_cast<char>(from)),
      to ? std::optional<std::string>(std::string(1, static_cast<char>(*to))) : std::nullopt);
}

std::string Key(int first_byte) { return std::string(1, static_cast<char>(first_byte)) + "k"; }

class RoutingTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RangeStore::Open(RangeId(1), Bounds(0, 0x40), StoreOptions{tmp_.Sub("r1")});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto slot = std::make_shared<RangeSlot>(RangeId(1), store_);
    slot->OpenAll();
    slot_ = slot;
    std::vector<RangeRoute> ranges = {
        // Out of order on purpose: Build sorts.
        {RangeId(3), Bounds(0x80, 0xc0), Epoch(3), kSelf, "", cluster::RangeState::kActive, 0,
         nullptr, Status(Code::kCorruption, "bad record")},
        {RangeId(1), Bounds(0, 0x40), Epoch(5), kSelf, "me:1", cluster::RangeState::kActive, 7,
         slot, Status()},
        {RangeId(2), Bounds(0x40, 0x80), Epoch(2), kPeer, "peer:2", cluster::RangeState::kActive, 4,
         nullptr, Status()},
        {RangeId(4), Bounds(0xc0, 0xe0), Epoch(1), std::nullopt, "", cluster::RangeState::kActive,
         0, nullptr, Status()},
        {RangeId(5), Bounds(0xe0, std::nullopt), Epoch(1), kPeer, "",
         cluster::RangeState::kUnavailable, 0, nullptr, Status()},
        {RangeId(6), Bounds(0x30, 0x50), Epoch(1), kSelf, "", cluster::RangeState::kActive, 0,
         nullptr, Status()},  // overlaps 1 and 2
    };
    table_ = RoutingTable::Build(kSelf, std::move(ranges), &overlapping_);
  }

  TempDir tmp_;
  std::shared_ptr<RangeStore> store_;
  std::shared_ptr<RangeSlot> slot_;
  std::shared_ptr<const RoutingTable> table_;
  std::vector<RangeId> overlapping_;
};

TEST_F(RoutingTableTest, OwnRangeIsServed) {
  EXPECT_EQ(table_->served(), 1u);
  EXPECT_EQ(overlapping_, (std::vector<RangeId>{RangeId(6)}));
  EXPECT_EQ(table_->ranges().size(), 5u);
  for (auto [range, epoch] : std::vector<std::pair<uint64_t, uint64_t>>{{0, 0}, {1, 0}, {1, 5}}) {
    Route r = table_->ForKey(RangeId(range), Epoch(epoch), Key(0x10));
    ASSERT_TRUE(r.ok()) << r.error.ToString();
    EXPECT_EQ(r.store, store_);
  }
  EXPECT_TRUE(table_->ForKey(RangeId(0), Epoch(0), "").ok());  // the smallest key
}

TEST_F(RoutingTableTest, OtherOwnersGetAHint) {
  Route r = table_->ForKey(RangeId(0), Epoch(0), Key(0x50));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error.code(), Code::kNotOwner);
  ASSERT_TRUE(r.hint.has_value());
  // With the range's layout: a client corrects its map from the answer.
  EXPECT_EQ(*r.hint,
            (proto::OwnerHint{"n2", "peer:2", Epoch(2), RangeId(2), Bounds(0x40, 0x80), 4}));
  // Naming the wrong range for a key of ours: NOT_OWNER pointing at the right range.
  Route wrong = table_->ForKey(RangeId(2), Epoch(0), Key(0x10));
  EXPECT_EQ(wrong.error.code(), Code::kNotOwner);
  ASSERT_TRUE(wrong.hint.has_value());
  EXPECT_EQ(*wrong.hint,
            (proto::OwnerHint{"n1", "me:1", Epoch(5), RangeId(1), Bounds(0, 0x40), 7}));
}

TEST_F(RoutingTableTest, EpochFencing) {
  Route stale = table_->ForKey(RangeId(1), Epoch(4), Key(0x10));
  EXPECT_EQ(stale.error.code(), Code::kStaleEpoch) << stale.error.ToString();
  ASSERT_TRUE(stale.hint.has_value());
  EXPECT_EQ(*stale.hint,
            (proto::OwnerHint{"n1", "me:1", Epoch(5), RangeId(1), Bounds(0, 0x40), 7}));
  Route ahead = table_->ForKey(RangeId(1), Epoch(6), Key(0x10));
  EXPECT_EQ(ahead.error.code(), Code::kRangeUnavailable) << ahead.error.ToString();
  // The fence applies to the range the request names, whatever the key.
  EXPECT_EQ(table_->ForKey(RangeId(2), Epoch(1), Key(0x50)).error.code(), Code::kStaleEpoch);
  // An unknown range id is not fenced; routing says where the key lives.
  EXPECT_EQ(table_->ForKey(RangeId(42), Epoch(9), Key(0x10)).error.code(), Code::kNotOwner);
}

TEST_F(RoutingTableTest, UnservableRangesAreUnavailable) {
  Route broken = table_->ForKey(RangeId(0), Epoch(0), Key(0x90));
  EXPECT_EQ(broken.error.code(), Code::kRangeUnavailable);
  EXPECT_NE(broken.error.message().find("CORRUPTION bad record"), std::string::npos)
      << broken.error.ToString();
  Route ownerless = table_->ForKey(RangeId(0), Epoch(0), Key(0xd0));
  EXPECT_EQ(ownerless.error.code(), Code::kRangeUnavailable);
  EXPECT_NE(ownerless.error.message().find("no owner"), std::string::npos);
  EXPECT_FALSE(ownerless.hint.has_value());
  Route marked = table_->ForKey(RangeId(0), Epoch(0), Key(0xf0));
  EXPECT_EQ(marked.error.code(), Code::kRangeUnavailable);
}

TEST_F(RoutingTableTest, BatchesStayInOneRange) {
  Route one = table_->ForBatch(RangeId(0), Epoch(0),
                               {proto::WriteOp::Put(Key(0x10), "a"), proto::WriteOp::Delete("")});
  EXPECT_TRUE(one.ok());
  Route two = table_->ForBatch(RangeId(0), Epoch(0),
                               {proto::WriteOp::Put(Key(0x50), "a"), proto::WriteOp::Delete("")});
  EXPECT_EQ(two.error.code(), Code::kCrossRange);
  // The boundary is named: the first key's range and its bounds.
  EXPECT_NE(two.error.message().find(" is ["), std::string::npos) << two.error.message();
  EXPECT_EQ(table_->ForBatch(RangeId(0), Epoch(0), {}).error.code(), Code::kBadRequest);
}

TEST_F(RoutingTableTest, RefusalsThatEndSoonMayWait) {
  EXPECT_FALSE(table_->ForKey(RangeId(0), Epoch(0), Key(0x90)).wait);  // failed to open
  EXPECT_FALSE(table_->ForKey(RangeId(0), Epoch(0), Key(0xd0)).wait);  // no owner
  EXPECT_FALSE(table_->ForKey(RangeId(0), Epoch(0), Key(0x50)).wait);  // owned elsewhere
  int unfenced = 0;
  slot_->set_on_unfence([&unfenced] { ++unfenced; });
  for (WriteState fence : {WriteState::kSplitting, WriteState::kMerging, WriteState::kHandingOff}) {
    slot_->set_write_state(fence);
    Route w = table_->ForKey(RangeId(0), Epoch(0), Key(0x10));
    EXPECT_EQ(w.error.code(), Code::kRangeUnavailable);
    EXPECT_TRUE(w.wait);
    EXPECT_TRUE(table_->ForBatch(RangeId(0), Epoch(0), {proto::WriteOp::Put(Key(0x10), "v")}).wait);
    Route r = table_->ForKey(RangeId(0), Epoch(0), Key(0x10), Access::kRead);
    EXPECT_TRUE(r.ok());  // reads have their own admission (a handoff closes it too)
    EXPECT_FALSE(r.wait);
    slot_->set_write_state(WriteState::kOpen);
  }
  EXPECT_EQ(unfenced, 3);
  slot_->set_write_state(WriteState::kNotEnoughReplicas);
  EXPECT_FALSE(table_->ForKey(RangeId(0), Epoch(0), Key(0x10)).wait);
  EXPECT_EQ(unfenced, 3);
  slot_->set_write_state(WriteState::kHandingOff);
  slot_->set_handed_to(std::make_shared<proto::OwnerHint>(
      proto::OwnerHint{"n2", "peer:2", Epoch(6), RangeId(1), std::nullopt, 0}));
  EXPECT_EQ(unfenced, 4);  // parked writes learn where it went
  Route handed = table_->ForKey(RangeId(0), Epoch(0), Key(0x10));
  EXPECT_EQ(handed.error.code(), Code::kNotOwner);
  EXPECT_FALSE(handed.wait);
}

TEST_F(RoutingTableTest, AKeyOfASplitNotInTheTableYetWaits) {
  // The owner wrote a split at 0x20 (generation 8) the table does not show.
  slot_->RaiseGeneration(8);
  ASSERT_TRUE(store_->NarrowWrites(Bounds(0, 0x20)).ok());
  Route right = table_->ForKey(RangeId(0), Epoch(0), Key(0x30));
  EXPECT_EQ(right.error.code(), Code::kNotOwner);
  EXPECT_TRUE(right.wait);
  EXPECT_TRUE(table_->ForBatch(RangeId(0), Epoch(0), {proto::WriteOp::Put(Key(0x30), "v")}).wait);
  EXPECT_TRUE(table_->ForKey(RangeId(0), Epoch(0), Key(0x10)).ok());  // the left part goes on
}

TEST(RoutingTableHoles, NotJoinedAndHoles) {
  auto waiting = RoutingTable::Unavailable(kSelf, "not yet joined");
  Route r = waiting->ForKey(RangeId(0), Epoch(0), "k");
  EXPECT_EQ(r.error.code(), Code::kRangeUnavailable);
  EXPECT_EQ(r.error.message(), "node n1: not yet joined");
  EXPECT_FALSE(waiting->joined());
  auto holey = RoutingTable::Build(
      kSelf, {{RangeId(1), Bounds(0x10, 0x20), Epoch(1), kPeer, "", {}, 0, nullptr, Status()}});
  EXPECT_EQ(holey->ForKey(RangeId(0), Epoch(0), "a").error.code(), Code::kRangeUnavailable);
  EXPECT_TRUE(holey->ForKey(RangeId(0), Epoch(0), "a").wait);  // a map read across a split
  EXPECT_FALSE(r.wait);
  EXPECT_EQ(holey->ForKey(RangeId(0), Epoch(0), "").error.code(), Code::kRangeUnavailable);
  EXPECT_EQ(holey->ForKey(RangeId(0), Epoch(0), Key(0x10)).error.code(), Code::kNotOwner);
}

// ---- a cluster-mode Node following maps ----

cluster::RangeInfo Info(uint64_t id, KeyRange bounds, uint64_t epoch, std::optional<NodeId> owner) {
  cluster::RangeInfo r;
  r.id = RangeId(id);
  r.bounds = std::move(bounds);
  r.epoch = Epoch(epoch);
  r.owner = std::move(owner);
  return r;
}

cluster::ClusterMap Map(std::optional<NodeId> owner1, std::optional<NodeId> owner2) {
  cluster::ClusterMap m;
  m.live_nodes[kPeer] = cluster::NodeInfo{kPeer, "peer:7", "", 0, "x"};
  m.ranges[RangeId(1)] = Info(1, Bounds(0, 0x80), 1, owner1);
  m.ranges[RangeId(2)] = Info(2, Bounds(0x80, std::nullopt), 1, owner2);
  return m;
}

Result<Seq> Put(const Route& r, const std::string& key, const std::string& value) {
  std::promise<Result<Seq>> done;
  r.store->Write({proto::WriteOp::Put(key, value)}, [&](Result<Seq> s) { done.set_value(s); });
  return done.get_future().get();
}

TEST(ClusterNodeTest, FollowsTheMapItIsGiven) {
  TempDir tmp;
  EXPECT_EQ(Node::OpenCluster(NodeConfig{tmp.Sub("x"), std::nullopt}).status().code(),
            Code::kBadRequest);
  NodeConfig config{tmp.Sub("data"), kSelf};
  config.replication.lease = std::chrono::milliseconds(100);  // a takeover waits one lease
  auto opened = Node::OpenCluster(config);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Node& node = **opened;
  // The owner admits writes once its replication role has started.
  auto writable = [&node](int first_byte) {
    return testing::WaitFor([&] { return node.RouteKey(RangeId(0), Epoch(0), Key(first_byte)).ok(); },
                   std::chrono::seconds(10));
  };
  Route before = node.RouteKey(RangeId(0), Epoch(0), Key(0x10));
  EXPECT_EQ(before.error.code(), Code::kRangeUnavailable);
  EXPECT_NE(before.error.message().find("not yet joined"), std::string::npos);

  ApplyReport first = node.Apply(Map(kSelf, kPeer));
  EXPECT_EQ(first.opened, (std::vector<RangeId>{RangeId(1)}));
  EXPECT_EQ(first.served, 1u);
  ASSERT_TRUE(writable(0x10));
  Route mine = node.RouteKey(RangeId(0), Epoch(0), Key(0x10));
  ASSERT_TRUE(mine.ok()) << mine.error.ToString();
  ASSERT_TRUE(Put(mine, Key(0x10), "v1").ok());
  EXPECT_TRUE(std::filesystem::is_directory(tmp.Sub("data/ranges/1")));
  Route theirs = node.RouteKey(RangeId(0), Epoch(0), Key(0x90));
  ASSERT_TRUE(theirs.hint.has_value());
  EXPECT_EQ(theirs.hint->address, "peer:7");

  // Range 1 moves away: closed, NOT_OWNER, data kept.
  ApplyReport moved = node.Apply(Map(kPeer, kPeer));
  EXPECT_EQ(moved.closed, (std::vector<RangeId>{RangeId(1)}));
  EXPECT_EQ(node.range_count(), 0u);
  EXPECT_EQ(node.RouteKey(RangeId(0), Epoch(0), Key(0x10)).error.code(), Code::kNotOwner);
  EXPECT_EQ(Put(mine, Key(0x10), "late").status().code(), Code::kUnavailable);  // old handle

  // Both come here: range 1 reopens with its data, range 2 is new.
  ApplyReport both = node.Apply(Map(kSelf, kSelf));
  EXPECT_EQ(both.opened.size(), 2u);
  ASSERT_TRUE(writable(0x10));
  Route back = node.RouteKey(RangeId(0), Epoch(0), Key(0x10));
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back.store->Get(Key(0x10)).has_value());
  EXPECT_EQ(back.store->Get(Key(0x10))->value, "v1");

  node.Suspend("session lost");
  Route suspended = node.RouteKey(RangeId(0), Epoch(0), Key(0x10));
  EXPECT_EQ(suspended.error.code(), Code::kRangeUnavailable);
  EXPECT_EQ(suspended.error.message(), "node n1: session lost");
  ApplyReport resumed = node.Apply(Map(kSelf, kSelf));
  EXPECT_TRUE(resumed.opened.empty());  // the stores stayed open
  EXPECT_EQ(resumed.served, 2u);
  EXPECT_TRUE(node.Close().ok());
  EXPECT_EQ(node.RouteKey(RangeId(0), Epoch(0), Key(0x10)).error.code(), Code::kRangeUnavailable);
}

// The handler's answers that come later, from any thread.
class LaterAnswers : public ResponseSink {
 public:
  Reply ReplyLater() override {
    return [this](proto::Response r) {
      std::lock_guard lock(mu_);
      got_.push_back(std::move(r));
    };
  }
  std::optional<proto::Response> Next(std::chrono::milliseconds within) {
    std::optional<proto::Response> r;
    testing::WaitFor(
        [&] {
          std::lock_guard lock(mu_);
          if (got_.empty()) return false;
          r = std::move(got_.front());
          got_.erase(got_.begin());
          return true;
        },
        within);
    return r;
  }

 private:
  std::mutex mu_;
  std::vector<proto::Response> got_;
};

proto::Request PutRequest(uint64_t id, std::string key) {
  proto::Request r;
  r.id = id;
  r.kind = proto::OpKind::kPut;
  r.ops = {proto::WriteOp::Put(std::move(key), "v")};
  return r;
}

TEST(ClusterNodeTest, AWriteWaitsOnTheNodeUntilItsRouteChanges) {
  TempDir tmp;
  NodeConfig config{tmp.Sub("data"), kSelf};
  config.replication.lease = std::chrono::milliseconds(100);
  auto opened = Node::OpenCluster(config);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Node& node = **opened;
  RequestHandler handler(node);
  LaterAnswers answers;
  // A map read across a split: no range holds the right part's keys yet.
  cluster::ClusterMap holey = Map(kSelf, kPeer);
  holey.ranges.erase(RangeId(2));
  node.Apply(holey);
  EXPECT_FALSE(handler.Handle(PutRequest(1, Key(0x90)), answers).has_value());
  EXPECT_EQ(node.parking()->parked(), 1u);
  EXPECT_FALSE(answers.Next(std::chrono::milliseconds(50)).has_value());
  // The next map has the range, at the peer: the write is told at once.
  node.Apply(Map(kSelf, kPeer));
  std::optional<proto::Response> moved = answers.Next(std::chrono::milliseconds(500));
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->id, 1u);
  EXPECT_EQ(moved->error.code(), Code::kNotOwner) << moved->error.ToString();
  ASSERT_TRUE(moved->hint.has_value());
  EXPECT_EQ(moved->hint->address, "peer:7");
  // Nothing changes: the write gets its refusal once it waited its time.
  node.Apply(holey);
  const auto start = MonoClock::now();
  EXPECT_FALSE(handler.Handle(PutRequest(2, Key(0x90)), answers).has_value());
  std::optional<proto::Response> late = answers.Next(std::chrono::seconds(10));
  ASSERT_TRUE(late.has_value());
  EXPECT_GE(MonoClock::now() - start, WriteParking::kMaxWait);
  EXPECT_EQ(late->error.code(), Code::kRangeUnavailable);
  EXPECT_NE(late->error.message().find("no range"), std::string::npos) << late->error.ToString();
  // Close answers whatever still waits.
  EXPECT_FALSE(handler.Handle(PutRequest(3, Key(0x90)), answers).has_value());
  EXPECT_TRUE(node.Close().ok());
  std::optional<proto::Response> closed = answers.Next(std::chrono::seconds(1));
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->id, 3u);
}

TEST(ClusterNodeTest, AStoreThatCannotOpenIsUnavailableAndRetried) {
  TempDir tmp;
  NodeConfig config{tmp.Sub("data"), kSelf};
  config.replication.lease = std::chrono::milliseconds(100);
  auto opened = Node::OpenCluster(config);
  ASSERT_TRUE(opened.ok());
  Node& node = **opened;
  std::filesystem::create_directories(tmp.Sub("data/ranges"));
  std::ofstream(tmp.Sub("data/ranges/1")) << "a file where the range directory goes";
  ApplyReport report = node.Apply(Map(kSelf, kSelf));
  EXPECT_EQ(report.failed, (std::vector<RangeId>{RangeId(1)}));
  EXPECT_EQ(report.served, 1u);
  Route r = node.RouteKey(RangeId(0), Epoch(0), Key(0x10));
  EXPECT_EQ(r.error.code(), Code::kRangeUnavailable);
  EXPECT_NE(r.error.message().find("cannot serve"), std::string::npos) << r.error.ToString();
  auto writable = [&node](int first_byte) {
    return testing::WaitFor(
        [&] { return node.RouteKey(RangeId(0), Epoch(0), Key(first_byte)).ok(); },
        std::chrono::seconds(10));
  };
  EXPECT_TRUE(writable(0x90));

  std::filesystem::remove(tmp.Sub("data/ranges/1"));
  ApplyReport retried = node.Apply(Map(kSelf, kSelf));
  EXPECT_EQ(retried.opened, (std::vector<RangeId>{RangeId(1)}));
  EXPECT_TRUE(writable(0x10));
}

}  // namespace
}  // namespace rangekv::kvnode
