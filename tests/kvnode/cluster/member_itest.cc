// kvnode in cluster mode, as real processes against a real ZooKeeper: the
// test plays the coordinator (writes config and range znodes by hand) and
// checks registration, serving exactly the assigned ranges, NOT_OWNER hints,
// ownership moves, restarts, duplicate ids, garbage znodes, session expiry
// and the metrics endpoint.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <iostream>

#include "tests/kvnode/cluster/cluster_harness.h"
#include "tests/testutil/zk_server.h"

namespace rangekv::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Kind = proto::Response::Kind;
using std::chrono::milliseconds;

constexpr milliseconds kConverge{15000};

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A get of key answered from a store (found or not) rather than an error.
bool Serves(KvnodeProc& p, const std::string& key) {
  auto r = p.Call(GetRequest(1, key));
  return r.ok() && (r->kind == Kind::kFound || r->kind == Kind::kNotFound);
}

Result<proto::Response> GetWithEpoch(KvnodeProc& p, const std::string& key, RangeId range,
                                     Epoch epoch) {
  proto::Request req = GetRequest(7, key);
  req.range = range;
  req.epoch = epoch;
  return p.Call(req);
}

class MemberTest : public rangekv::testing::ZkSuite<MemberTest> {
 protected:
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    cluster_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    admin_ = std::make_unique<ClusterAdmin>(server_->connect_string(), cluster_);
    ASSERT_TRUE(admin_->connected());
  }

  // Nodes still running stop cleanly: SIGTERM, exit 0 (under the sanitizers
  // this also reports leaks and errors found at shutdown).
  void TearDown() override {
    for (KvnodeProc* p : {&n1_, &n2_}) {
      if (p->process().running()) {
        EXPECT_EQ(p->process().Stop(std::chrono::seconds(15)), 0) << p->log();
      }
    }
  }

  KvnodeProc::Options Opts(const std::string& id) {
    KvnodeProc::Options o;
    o.id = id;
    o.data_dir = tmp_.Sub("data-" + id);
    o.zk = server_->connect_string();
    o.cluster = cluster_;
    return o;
  }

  // Starts a node and waits until its znode carries its address.
  void StartNode(KvnodeProc& p, const KvnodeProc::Options& o) {
    std::string why;
    ASSERT_TRUE(p.Start(o, tmp_.Sub(o.id + ".log"), &why)) << why;
    ASSERT_TRUE(WaitFor(
        [&] {
          auto n = admin_->GetNode(NodeId(o.id));
          return n.ok() && *n && (*n)->info.address == p.address();
        },
        kConverge))
        << p.log();
  }

  // Bootstraps ranges 1..4 owned by n1, n2, n1, n2 and starts both nodes.
  void StartTwoNodes() {
    ASSERT_TRUE(
        admin_->Bootstrap(cluster::ClusterConfig{1, 1, 4}, FourRanges({NodeId("n1"), NodeId("n2")}))
            .ok());
    ASSERT_NO_FATAL_FAILURE(StartNode(n1_, Opts("n1")));
    ASSERT_NO_FATAL_FAILURE(StartNode(n2_, Opts("n2")));
    for (int r = 1; r <= 4; ++r) {
      KvnodeProc& owner = r % 2 ? n1_ : n2_;
      ASSERT_TRUE(WaitFor([&] { return Serves(owner, KeyIn(r)); }, kConverge)) << owner.log();
    }
  }

  // Bootstraps ranges 1..4 owned by n1 and starts n1 with its ZooKeeper
  // connections through `proxy` and a 2 s session.
  void StartBehindProxy(const TcpProxy& proxy) {
    ASSERT_TRUE(
        admin_->Bootstrap(cluster::ClusterConfig{1, 1, 4}, FourRanges({NodeId("n1")})).ok());
    KvnodeProc::Options o = Opts("n1");
    o.zk = "127.0.0.1:" + std::to_string(proxy.port());
    o.session_timeout_ms = 2000;
    ASSERT_NO_FATAL_FAILURE(StartNode(n1_, o));
    ASSERT_TRUE(WaitFor([&] { return Serves(n1_, KeyIn(1)); }, kConverge)) << n1_.log();
  }

  // Waits until n1 answers a read with RANGE_UNAVAILABLE.
  bool WaitStopsServing() {
    return WaitFor(
        [&] {
          auto r = n1_.Call(GetRequest(1, KeyIn(1)));
          return r.ok() && r->error.code() == Code::kRangeUnavailable;
        },
        kConverge, milliseconds(20));
  }

  // The hint a node gives for key, once it names `owner` at its address.
  // (A node that read the map while the owner's restarted process was
  // replacing its node znode hints the owner with no address until its
  // next read: the client then looks the owner up in the map itself.)
  void ExpectHint(KvnodeProc& p, int range, KvnodeProc& owner, const std::string& owner_id,
                  Epoch epoch) {
    proto::Response last;
    bool ok = WaitFor(
        [&] {
          auto r = p.Call(GetRequest(1, KeyIn(range)));
          if (!r.ok()) return false;
          last = *r;
          return r->kind == Kind::kError && r->error.code() == Code::kNotOwner && r->hint &&
                 r->hint->node_id == owner_id && r->hint->address == owner.address();
        },
        kConverge);
    ASSERT_TRUE(ok) << "range " << range << ": " << last.error.ToString()
                    << (last.hint
                            ? " (hint: " + last.hint->node_id + " at '" + last.hint->address + "')"
                            : "");
    const proto::OwnerHint& h = *last.hint;
    EXPECT_EQ(h.node_id, owner_id);
    EXPECT_EQ(h.address, owner.address());
    EXPECT_EQ(h.epoch, epoch);
    EXPECT_EQ(h.range, RangeId(range));
    // With the range's layout: its bounds hold the key asked for.
    ASSERT_TRUE(h.bounds.has_value());
    EXPECT_TRUE(h.bounds->Contains(KeyIn(range)));
  }

  TempDir tmp_;
  std::string cluster_;
  std::unique_ptr<ClusterAdmin> admin_;
  KvnodeProc n1_, n2_;
};

TEST_F(MemberTest, EachNodeServesExactlyItsRangesAndHintsTheOthers) {
  ASSERT_NO_FATAL_FAILURE(StartTwoNodes());
  for (int r = 1; r <= 4; ++r) {
    KvnodeProc& owner = r % 2 ? n1_ : n2_;
    KvnodeProc& other = r % 2 ? n2_ : n1_;
    auto put = owner.Call(PutRequest(1, KeyIn(r), "v" + std::to_string(r)));
    ASSERT_TRUE(put.ok());
    EXPECT_EQ(put->kind, Kind::kWritten) << put->error.ToString();
    ASSERT_NO_FATAL_FAILURE(ExpectHint(other, r, owner, r % 2 ? "n1" : "n2", Epoch(5)));
    auto wrong_put = other.Call(PutRequest(2, KeyIn(r), "x"));
    ASSERT_TRUE(wrong_put.ok());
    EXPECT_EQ(wrong_put->error.code(), Code::kNotOwner);
  }
  // Epoch fencing on range 1 (epoch 5 in the map).
  auto stale = GetWithEpoch(n1_, KeyIn(1), RangeId(1), Epoch(4));
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->error.code(), Code::kStaleEpoch) << stale->error.ToString();
  auto current = GetWithEpoch(n1_, KeyIn(1), RangeId(1), Epoch(5));
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->kind, Kind::kFound);
  auto ahead = GetWithEpoch(n1_, KeyIn(1), RangeId(1), Epoch(6));
  ASSERT_TRUE(ahead.ok());
  EXPECT_EQ(ahead->error.code(), Code::kRangeUnavailable);
  // A batch over two ranges is CROSS_RANGE even at a node owning one of them.
  auto cross = n1_.Call(
      BatchRequest(3, {proto::WriteOp::Put(KeyIn(1), "a"), proto::WriteOp::Put(KeyIn(3), "b")}));
  ASSERT_TRUE(cross.ok());
  EXPECT_EQ(cross->error.code(), Code::kCrossRange);
}

TEST_F(MemberTest, MovingARangeByCasMovesServing) {
  ASSERT_NO_FATAL_FAILURE(StartTwoNodes());
  auto put = n1_.Call(PutRequest(1, KeyIn(3), "before"));
  ASSERT_TRUE(put.ok() && put->kind == Kind::kWritten);

  Clock::time_point t0 = Clock::now();
  auto moved = admin_->MoveRange(RangeId(3), NodeId("n2"));
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return Serves(n2_, KeyIn(3)); }, kConverge, milliseconds(1)))
      << n2_.log();
  double new_owner_ms = MsSince(t0);
  ASSERT_NO_FATAL_FAILURE(ExpectHint(n1_, 3, n2_, "n2", Epoch(6)));
  double old_owner_ms = MsSince(t0);
  std::cout << "[ measured ] range owner CAS -> new owner serving: " << new_owner_ms
            << " ms; old owner answering NOT_OWNER by " << old_owner_ms << " ms\n";
  auto write = n2_.Call(PutRequest(2, KeyIn(3), "after"));
  ASSERT_TRUE(write.ok());
  EXPECT_EQ(write->kind, Kind::kWritten);
  // A client still on epoch 5 is fenced, and told where the range went.
  auto stale = GetWithEpoch(n1_, KeyIn(3), RangeId(3), Epoch(5));
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->error.code(), Code::kStaleEpoch) << stale->error.ToString();
  ASSERT_TRUE(stale->hint.has_value());
  EXPECT_EQ(stale->hint->node_id, "n2");
  EXPECT_EQ(stale->hint->epoch, Epoch(6));

  // n1 is out of the range's replicas: its copy counts for nothing any
  // more, and its directory goes.
  ASSERT_TRUE(WaitFor([&] { return n1_.LogHas("range 3: no longer held here"); }, kConverge))
      << n1_.log();
  EXPECT_TRUE(n1_.LogHas("range 3: closed")) << n1_.log();
  EXPECT_FALSE(std::filesystem::exists(Opts("n1").data_dir + "/ranges/3"));
  EXPECT_TRUE(std::filesystem::exists(Opts("n2").data_dir + "/ranges/3"));
}

TEST_F(MemberTest, KilledNodeRestartsAtANewPortWithItsData) {
  ASSERT_NO_FATAL_FAILURE(StartTwoNodes());
  for (int i = 0; i < 20; ++i) {
    auto put = n1_.Call(PutRequest(i + 1, KeyIn(1, std::to_string(i)), "v" + std::to_string(i)));
    ASSERT_TRUE(put.ok() && put->kind == Kind::kWritten);
  }
  int old_port = n1_.port();
  n1_.process().Kill();

  KvnodeProc::Options o = Opts("n1");
  o.port = FreePort();
  ASSERT_NE(o.port, old_port);
  Clock::time_point t0 = Clock::now();
  ASSERT_NO_FATAL_FAILURE(StartNode(n1_, o));  // within the old session's timeout
  ASSERT_TRUE(WaitFor([&] { return Serves(n1_, KeyIn(1)); }, kConverge)) << n1_.log();
  std::cout << "[ measured ] kill -9 + restart -> serving again: " << MsSince(t0) << " ms\n";
  EXPECT_TRUE(n1_.LogHas("previous process")) << n1_.log();
  for (int i = 0; i < 20; ++i) {
    auto get = n1_.Call(GetRequest(i + 1, KeyIn(1, std::to_string(i))));
    ASSERT_TRUE(get.ok());
    ASSERT_EQ(get->kind, Kind::kFound) << i;
    EXPECT_EQ(get->found.value, "v" + std::to_string(i));
  }
  // The other node learns the new address for its hints.
  ASSERT_NO_FATAL_FAILURE(ExpectHint(n2_, 1, n1_, "n1", Epoch(5)));
}

TEST_F(MemberTest, SecondProcessWithALiveNodesIdExitsWith2) {
  ASSERT_NO_FATAL_FAILURE(StartTwoNodes());
  KvnodeProc::Options o = Opts("n1");
  o.data_dir = tmp_.Sub("impostor");
  o.session_timeout_ms = 2000;  // it gives up after twice its own timeout
  KvnodeProc impostor;
  impostor.Launch(o, tmp_.Sub("impostor.log"));
  EXPECT_EQ(impostor.process().Wait(kConverge), 2) << impostor.log();
  EXPECT_TRUE(impostor.LogHas("for that session to expire")) << impostor.log();
  EXPECT_TRUE(
      impostor.LogHas("node id n1 is already registered by a live node at " + n1_.address()))
      << impostor.log();
  // The real n1 is untouched.
  auto n = admin_->GetNode(NodeId("n1"));
  ASSERT_TRUE(n.ok() && *n);
  EXPECT_EQ((*n)->info.address, n1_.address());
  EXPECT_TRUE(Serves(n1_, KeyIn(1)));
}

// A node whose disk was replaced (new data directory, new incarnation) and
// that restarts before its previous process's session expired waits for
// that session instead of taking the old znode for a live duplicate.
TEST_F(MemberTest, WipedNodeRestartedWithinTheOldSessionJoinsOnceItExpires) {
  ASSERT_TRUE(
      admin_->Bootstrap(cluster::ClusterConfig{1, 1, 4}, FourRanges({NodeId("n1"), NodeId("n2")}))
          .ok());
  KvnodeProc::Options o = Opts("n1");
  o.session_timeout_ms = 2000;
  ASSERT_NO_FATAL_FAILURE(StartNode(n1_, o));
  ASSERT_NO_FATAL_FAILURE(StartNode(n2_, Opts("n2")));
  auto before = admin_->GetNode(NodeId("n1"));
  ASSERT_TRUE(before.ok() && *before);
  n1_.process().Kill();

  o.data_dir = tmp_.Sub("data-n1-replaced");
  o.port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNode(n1_, o));  // waits for the new address in ZooKeeper
  auto after = admin_->GetNode(NodeId("n1"));
  ASSERT_TRUE(after.ok() && *after);
  EXPECT_NE((*after)->info.incarnation, (*before)->info.incarnation);
  EXPECT_TRUE(n1_.LogHas("for that session to expire")) << n1_.log();
  EXPECT_TRUE(n1_.process().running());
}

TEST_F(MemberTest, GarbageRangeZnodeIsLoggedOnceAndTheRestIsServed) {
  ASSERT_NO_FATAL_FAILURE(StartTwoNodes());
  std::string bad_path = admin_->paths().range(RangeId(2));
  ASSERT_TRUE(admin_->SetRaw(bad_path, "this is not a range").ok());
  ASSERT_TRUE(admin_->session().Create(admin_->paths().range(RangeId(9)), "junk").ok());
  std::string logged = "ignoring " + bad_path;
  ASSERT_TRUE(WaitFor([&] { return n2_.LogHas(logged); }, kConverge)) << n2_.log();
  EXPECT_TRUE(n2_.LogHas("keeping its last valid version (epoch 5)")) << n2_.log();
  // The new znode may come in a later read than the changed one (two
  // watch events).
  EXPECT_TRUE(WaitFor([&] { return n2_.LogHas("ignoring " + admin_->paths().range(RangeId(9))); },
                      kConverge))
      << n2_.log();

  // A later change forces more re-reads; the garbage is not logged again.
  auto r4 = admin_->GetRange(RangeId(4));
  ASSERT_TRUE(r4.ok());
  cluster::RangeInfo bumped = r4->first;
  bumped.epoch = Epoch(7);
  ASSERT_TRUE(admin_->UpdateRange(bumped).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = GetWithEpoch(n2_, KeyIn(4), RangeId(4), Epoch(7));
        return r.ok() && r->kind == Kind::kNotFound;
      },
      kConverge))
      << n2_.log();
  EXPECT_EQ(n2_.LogCount(logged), 1u) << n2_.log();
  EXPECT_TRUE(Serves(n2_, KeyIn(2)));  // kept at its last valid version
  EXPECT_TRUE(Serves(n1_, KeyIn(1)));
  EXPECT_TRUE(Serves(n1_, KeyIn(3)));
}

TEST_F(MemberTest, SessionExpiryAfterSigstopReRegistersAndServesAgain) {
  ASSERT_TRUE(admin_->Bootstrap(cluster::ClusterConfig{1, 1, 4}, FourRanges({NodeId("n1")})).ok());
  KvnodeProc::Options o = Opts("n1");
  o.session_timeout_ms = 2000;
  ASSERT_NO_FATAL_FAILURE(StartNode(n1_, o));
  ASSERT_TRUE(WaitFor([&] { return Serves(n1_, KeyIn(1)); }, kConverge)) << n1_.log();
  auto before = admin_->GetNode(NodeId("n1"));
  ASSERT_TRUE(before.ok() && *before);

  n1_.process().Signal(SIGSTOP);
  bool expired = WaitFor(
      [&] {
        auto n = admin_->GetNode(NodeId("n1"));
        return n.ok() && !*n;
      },
      kConverge, milliseconds(20));
  n1_.process().Signal(SIGCONT);
  ASSERT_TRUE(expired) << "the server never expired the paused node's session";
  Clock::time_point resumed = Clock::now();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto n = admin_->GetNode(NodeId("n1"));
        return n.ok() && *n && (*n)->ephemeral_owner != (*before)->ephemeral_owner;
      },
      kConverge))
      << n1_.log();
  ASSERT_TRUE(WaitFor([&] { return Serves(n1_, KeyIn(1)); }, kConverge)) << n1_.log();
  std::cout << "[ measured ] SIGCONT after expiry -> registered and serving: " << MsSince(resumed)
            << " ms\n";
  EXPECT_TRUE(n1_.LogHas("expired")) << n1_.log();
}

// Cut off from ZooKeeper, a node must stop serving before the server can
// expire its session (after which its ranges may go elsewhere); it rejoins
// once ZooKeeper is back.
TEST_F(MemberTest, NodeCutOffFromZooKeeperStopsServingAndRejoins) {
  TcpProxy proxy(server_->port());
  ASSERT_NO_FATAL_FAILURE(StartBehindProxy(proxy));

  Clock::time_point cut = Clock::now();
  proxy.Disable();
  bool stopped = WaitStopsServing();
  double stopped_ms = MsSince(cut);
  proxy.Enable();
  ASSERT_TRUE(stopped) << n1_.log();
  EXPECT_LT(stopped_ms, 2000);  // before the session could expire
  Clock::time_point healed = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return Serves(n1_, KeyIn(1)); }, kConverge)) << n1_.log();
  std::cout << "[ measured ] cut off from ZooKeeper -> stopped serving: " << stopped_ms
            << " ms (session timeout 2000 ms); healed -> serving again: " << MsSince(healed)
            << " ms\n";
}

// The same with a link that goes silent instead of closing, while the
// node's ZooKeeper thread is busy: a map change heard right after the
// stall sends it into calls that nobody answers, each bounded by a
// timeout longer than the session. The disconnect itself must stop the
// node serving, not the thread once it gets round to it. (Found by
// fault_partition_itest under load: a node cut from ZooKeeper served a
// read 1.7 s after noticing, after its session expired and its range had
// moved.)
TEST_F(MemberTest, NodeSilentlyCutFromZooKeeperWhileBusyStopsServingInTime) {
  TcpProxy proxy(server_->port());
  ASSERT_NO_FATAL_FAILURE(StartBehindProxy(proxy));
  auto r4 = admin_->GetRange(RangeId(4));
  ASSERT_TRUE(r4.ok());

  Clock::time_point cut = Clock::now();
  proxy.Stall();
  cluster::RangeInfo bumped = r4->first;
  bumped.epoch = Epoch(bumped.epoch.value() + 1);
  ASSERT_TRUE(admin_->UpdateRange(bumped).ok());  // heard, then read in vain
  bool stopped = WaitStopsServing();
  double stopped_ms = MsSince(cut);
  ASSERT_TRUE(stopped) << n1_.log();
  EXPECT_LT(stopped_ms, 2000) << n1_.log();  // before the session could expire
  std::cout << "[ measured ] silently cut from ZooKeeper while busy -> stopped serving: "
            << stopped_ms << " ms (session timeout 2000 ms)\n";
}

TEST_F(MemberTest, MetricsEndpointCountsRequests) {
  ASSERT_TRUE(
      admin_->Bootstrap(cluster::ClusterConfig{1, 1, 4}, FourRanges({NodeId("n1"), NodeId("n2")}))
          .ok());
  KvnodeProc::Options o = Opts("n1");
  o.admin_port = FreePort();
  ASSERT_NO_FATAL_FAILURE(StartNode(n1_, o));
  ASSERT_TRUE(WaitFor([&] { return Serves(n1_, KeyIn(1)); }, kConverge)) << n1_.log();
  auto node = admin_->GetNode(NodeId("n1"));
  ASSERT_TRUE(node.ok() && *node);
  EXPECT_EQ((*node)->info.admin_address, "127.0.0.1:" + std::to_string(o.admin_port));

  const std::string puts = "rangekv_kvnode_requests_total{op=\"put\",result=\"OK\"}";
  const std::string not_owner = "rangekv_kvnode_requests_total{op=\"get\",result=\"NOT_OWNER\"}";
  auto first = HttpGet(o.admin_port, "/metrics");
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->status, 200);
  double puts_before = MetricValue(first->body, puts).value_or(-1);
  EXPECT_GE(puts_before, 0) << first->body;
  EXPECT_EQ(MetricValue(first->body, "rangekv_kvnode_ranges_served"), 2.0) << first->body;
  EXPECT_EQ(MetricValue(first->body, "rangekv_kvnode_zk_session_state{state=\"connected\"}"), 1.0);
  EXPECT_GE(MetricValue(first->body, "rangekv_kvnode_reconciles_total{result=\"ok\"}").value_or(0),
            1.0);

  for (int i = 0; i < 5; ++i) {
    auto r = n1_.Call(PutRequest(i + 1, KeyIn(1, std::to_string(i)), "v"));
    ASSERT_TRUE(r.ok() && r->kind == Kind::kWritten);
  }
  auto wrong = n1_.Call(GetRequest(9, KeyIn(2)));
  ASSERT_TRUE(wrong.ok());
  ASSERT_EQ(wrong->error.code(), Code::kNotOwner);

  auto second = HttpGet(o.admin_port, "/metrics");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(MetricValue(second->body, puts), puts_before + 5) << second->body;
  EXPECT_GE(MetricValue(second->body, not_owner).value_or(0), 1.0) << second->body;
  EXPECT_GE(MetricValue(second->body, "rangekv_kvnode_request_duration_seconds_count{op=\"put\"}")
                .value_or(0),
            5.0)
      << second->body;
  // Per range, for the ranges it owns only (looked at once a second).
  const std::string keys1 = "rangekv_kvnode_range_keys{range=\"1\"}";
  std::string body;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto m = HttpGet(o.admin_port, "/metrics");
        if (!m.has_value()) return false;
        body = m->body;
        return MetricValue(body, keys1) == 5.0;
      },
      kConverge, milliseconds(200)))
      << body;
  EXPECT_GT(MetricValue(body, "rangekv_kvnode_range_bytes{range=\"1\"}").value_or(0), 0.0);
  EXPECT_FALSE(MetricValue(body, "rangekv_kvnode_range_keys{range=\"2\"}").has_value()) << body;
  EXPECT_EQ(MetricValue(body, "rangekv_kvnode_splits_total"), 0.0) << body;
  EXPECT_EQ(MetricValue(body, "rangekv_kvnode_transfers_total"), 0.0) << body;
  EXPECT_EQ(MetricValue(body, "rangekv_kvnode_parked_writes_total"), 0.0) << body;
  // No other replica to be behind, no copy made.
  EXPECT_EQ(MetricValue(body, "rangekv_kvnode_range_replica_lag_records{range=\"1\"}"), 0.0)
      << body;
  EXPECT_EQ(MetricValue(body, "rangekv_kvnode_copied_bytes_total"), 0.0) << body;
  auto missing = HttpGet(o.admin_port, "/nothing-here");
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);
}

// --advertise and --advertise-admin are what the node znode tells clients
// and other nodes (a node behind NAT, or listening on a wildcard); the
// node still serves on what it bound. (Reaching a node through its
// advertised address is the multi-host harness's to show.)
TEST_F(MemberTest, NodeZnodeCarriesTheAdvertisedAddresses) {
  ASSERT_TRUE(
      admin_->Bootstrap(cluster::ClusterConfig{1, 1, 4}, FourRanges({NodeId("n1"), NodeId("n2")}))
          .ok());
  KvnodeProc::Options o = Opts("n1");
  o.admin_port = FreePort();
  o.extra_args = {"--advertise", "kv1.rangekv.test:17001", "--advertise-admin",
                  "[2001:db8::7]:19001"};
  std::string why;
  ASSERT_TRUE(n1_.Start(o, tmp_.Sub("n1.log"), &why)) << why;
  std::optional<ClusterAdmin::NodeZnode> node;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto got = admin_->GetNode(NodeId("n1"));
        if (got.ok()) node = *got;
        return node.has_value();
      },
      kConverge))
      << n1_.log();
  ASSERT_TRUE(WaitFor([&] { return Serves(n1_, KeyIn(1)); }, kConverge)) << n1_.log();
  EXPECT_EQ(node->info.address, "kv1.rangekv.test:17001");
  EXPECT_EQ(node->info.admin_address, "[2001:db8::7]:19001");
  EXPECT_NE(n1_.log().find("advertised as kv1.rangekv.test:17001"), std::string::npos) << n1_.log();
  auto metrics = HttpGet(o.admin_port, "/metrics");  // bound where --admin said
  ASSERT_TRUE(metrics.has_value());
  EXPECT_EQ(metrics->status, 200);
}

// Without a reachable ZooKeeper the node stays up, says so, serves nothing
// but pings, and still stops cleanly.
TEST(MemberNoZkTest, UnreachableZooKeeperRetriesAndStopsCleanly) {
  TempDir tmp;
  KvnodeProc p;
  KvnodeProc::Options o;
  o.id = "lonely";
  o.data_dir = tmp.Sub("data");
  o.zk = "127.0.0.1:" + std::to_string(FreePort());  // nothing listens there
  std::string why;
  ASSERT_TRUE(p.Start(o, tmp.Sub("lonely.log"), &why)) << why;
  ASSERT_TRUE(
      WaitFor([&] { return p.LogHas("ZooKeeper not reachable yet at " + o.zk); }, kConverge))
      << p.log();
  auto ping = p.Call(PingRequest(1));
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->kind, Kind::kPong);
  auto get = p.Call(GetRequest(2, "k"));
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->error.code(), Code::kRangeUnavailable);
  EXPECT_NE(get->error.message().find("not yet joined"), std::string::npos)
      << get->error.ToString();
  EXPECT_TRUE(p.process().running());
  EXPECT_EQ(p.process().Stop(std::chrono::seconds(15)), 0) << p.log();
}

TEST(MemberNoZkTest, StandaloneServesMetricsToo) {
  TempDir tmp;
  KvnodeProc p;
  KvnodeProc::Options o;
  o.standalone = true;
  o.data_dir = tmp.Sub("data");
  o.admin_port = FreePort();
  std::string why;
  ASSERT_TRUE(p.Start(o, tmp.Sub("standalone.log"), &why)) << why;
  auto r = p.Call(PutRequest(1, "k", "v"));
  ASSERT_TRUE(r.ok() && r->kind == Kind::kWritten);
  auto metrics = HttpGet(o.admin_port, "/metrics");
  ASSERT_TRUE(metrics.has_value());
  EXPECT_EQ(MetricValue(metrics->body, "rangekv_kvnode_requests_total{op=\"put\",result=\"OK\"}"),
            1.0)
      << metrics->body;
  EXPECT_EQ(MetricValue(metrics->body, "rangekv_kvnode_ranges_served"), 1.0);
  EXPECT_EQ(p.process().Stop(), 0) << p.log();
}

}  // namespace
}  // namespace rangekv::testing
