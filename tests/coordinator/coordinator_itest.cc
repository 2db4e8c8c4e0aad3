// Integration tests of kvcoord: real kvcoord processes against a real
// standalone ZooKeeper. The "nodes" are ephemeral znodes with NodeInfo data
// that the test registers through sessions of its own, so a node's death is
// a closed (or, through a TCP proxy, an abandoned) session.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/cluster_map.h"
#include "common/zk/errors.h"
#include "common/zk/session.h"
#include "tests/kvnode/cluster/cluster_harness.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_server.h"
#include "tests/common/zk/zk_test_util.h"

namespace rangekv::coordinator {
namespace {

using cluster::RangeInfo;
using cluster::RangeState;
using rangekv::testing::BuildPath;
using rangekv::testing::IoThread;
using rangekv::testing::Process;
using rangekv::testing::ReadFile;
using rangekv::testing::TcpProxy;
using rangekv::testing::TempDir;
using rangekv::testing::WaitFor;
using rangekv::testing::ZkServer;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kCoordSessionTimeout{2000};
constexpr milliseconds kMargin{3000};
constexpr milliseconds kLong{20000};

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// One kvcoord process and its log file.
struct Coord {
  std::string id;
  std::string log_path;
  Process process;
  std::string Log() const { return ReadFile(log_path); }
  bool Has(const std::string& text) const { return Log().find(text) != std::string::npos; }
};

class CoordinatorITest : public rangekv::testing::ZkSuite<CoordinatorITest> {
 protected:
  CoordinatorITest()
      : cluster_(::testing::UnitTest::GetInstance()->current_test_info()->name()),
        paths_(cluster_) {}

  void SetUp() override {
    admin_ = Connect(server_->connect_string());
    ASSERT_TRUE(admin_);
  }

  // The coordinators' logs are printed on failure, or always with
  // RANGEKV_PRINT_LOGS=1 in the environment.
  void TearDown() override {
    // A clean stop must exit 0 (under the sanitizers, a leak or an error
    // found at exit makes it non-zero).
    for (auto& [id, c] : coords_) {
      if (c.process.running()) {
        EXPECT_EQ(c.process.Stop(milliseconds(10000)), 0) << id;
      }
    }
    const char* print = std::getenv("RANGEKV_PRINT_LOGS");
    for (auto& [id, c] : coords_) {
      if (HasFailure() || (print && *print == '1'))
        std::cerr << "---- " << id << " log ----\n" << c.Log();
    }
  }

  std::unique_ptr<zk::Session> Connect(const std::string& connect_string,
                                       milliseconds timeout = milliseconds(6000)) {
    zk::SessionOptions o;
    o.connect_string = connect_string;
    o.session_timeout = timeout;
    auto s = zk::Session::Open(o, io_.executor());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    Status st = (*s)->WaitConnected(milliseconds(10000));
    EXPECT_TRUE(st.ok()) << st.ToString();
    return std::move(s).value();
  }

  Coord& StartCoord(const std::string& id, std::vector<std::string> extra = {},
                    const std::string& zk = "") {
    std::vector<std::string> argv = {BuildPath("coordinator/kvcoord"),
                                     "--zk",
                                     zk.empty() ? server_->connect_string() : zk,
                                     "--cluster",
                                     cluster_,
                                     "--id",
                                     id,
                                     "--session-timeout-ms",
                                     std::to_string(kCoordSessionTimeout.count())};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Coord& c = coords_[id];
    c.id = id;
    c.log_path = dir_.Sub(id + ".log");
    c.process = Process::Start(argv, c.log_path);
    return c;
  }

  void CreateParents(zk::Session& s, const std::string& path) {
    for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
      auto r = s.Create(path.substr(0, at), "");
      ASSERT_TRUE(r.ok() || zk::ZkErrorOf(r.status()) == zk::ZkError::kNodeExists)
          << r.status().ToString();
    }
  }

  // Registers a node through its own session (via `connect_string`).
  void Register(const std::string& id, const std::string& connect_string = "",
                milliseconds timeout = milliseconds(6000), const std::string& replaces = "") {
    auto s = Connect(connect_string.empty() ? server_->connect_string() : connect_string, timeout);
    ASSERT_TRUE(s);
    cluster::NodeInfo info;
    info.id = NodeId(id);
    if (!replaces.empty()) info.replaces = NodeId(replaces);
    info.address = "127.0.0.1:" + std::to_string(7000 + nodes_.size());
    info.incarnation = "inc-" + id;
    std::string path = paths_.node(info.id);
    CreateParents(*s, path);
    auto r = s->Create(path, cluster::EncodeNode(info), zk::CreateMode::kEphemeral);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    nodes_[id] = std::move(s);
  }

  // Closes the node's session: its znode goes at once.
  void Unregister(const std::string& id) { nodes_.erase(id); }

  // Every range znode that decodes.
  std::map<RangeId, RangeInfo> Ranges() {
    std::map<RangeId, RangeInfo> out;
    auto names = admin_->Children(paths_.ranges());
    if (!names.ok()) return out;
    for (const std::string& name : *names) {
      auto id = cluster::Paths::ParseRangeName(name);
      if (!id) continue;
      auto got = admin_->Get(paths_.range(*id));
      if (!got.ok() || !got->has_value()) continue;
      auto info = cluster::DecodeRange((*got)->data);
      if (info.ok()) out.emplace(*id, *info);
    }
    return out;
  }

  size_t RangeZnodes() {
    auto names = admin_->Children(paths_.ranges());
    return names.ok() ? names->size() : 0;
  }

  // Waits for the bootstrap of `count` valid ranges.
  std::map<RangeId, RangeInfo> WaitForRanges(size_t count) {
    std::map<RangeId, RangeInfo> ranges;
    EXPECT_TRUE(WaitFor(
        [&] {
          ranges = Ranges();
          return ranges.size() == count;
        },
        kLong));
    return ranges;
  }

  std::set<RangeId> OwnedBy(const std::map<RangeId, RangeInfo>& ranges, const std::string& id) {
    std::set<RangeId> out;
    for (const auto& [rid, r] : ranges) {
      if (r.owner && r.owner->str() == id) out.insert(rid);
    }
    return out;
  }

  // True when every range in `ids` is in `state` (and the others in `others`).
  bool States(const std::set<RangeId>& ids, RangeState state, RangeState others) {
    for (const auto& [id, r] : Ranges()) {
      if (r.state != (ids.count(id) ? state : others)) return false;
    }
    return true;
  }

  static ::testing::AssertionResult TilesKeySpace(const std::map<RangeId, RangeInfo>& ranges) {
    std::vector<KeyRange> b;
    for (const auto& [id, r] : ranges) b.push_back(r.bounds);
    std::sort(b.begin(), b.end());
    std::string at;
    for (size_t i = 0; i < b.size(); ++i) {
      if (b[i].start() != at) return ::testing::AssertionFailure() << "hole/overlap at " << i;
      if (!b[i].end()) {
        return i + 1 == b.size() ? ::testing::AssertionSuccess()
                                 : ::testing::AssertionFailure() << "ranges after +inf";
      }
      at = *b[i].end();
    }
    return ::testing::AssertionFailure() << "top of the key space not covered";
  }

  IoThread io_;
  TempDir dir_;
  const std::string cluster_;
  const cluster::Paths paths_;
  std::unique_ptr<zk::Session> admin_;
  std::map<std::string, std::unique_ptr<zk::Session>> nodes_;
  std::map<std::string, Coord> coords_;
};

TEST_F(CoordinatorITest, BootstrapWaitsForRfNodesThenCoversTheKeySpace) {
  Coord& c = StartCoord("c1", {"--rf", "3", "--ranges", "8"});
  ASSERT_TRUE(WaitFor([&] { return c.Has("became leader"); }, kLong));
  Register("n1");
  Register("n2");
  ASSERT_TRUE(WaitFor([&] { return c.Has("waiting for nodes: 2 of 3 live"); }, kLong));
  EXPECT_EQ(RangeZnodes(), 0u);

  Register("n3");
  auto ranges = WaitForRanges(8);
  ASSERT_EQ(ranges.size(), 8u);
  EXPECT_TRUE(TilesKeySpace(ranges));
  std::map<std::string, int> owned;
  for (const auto& [id, r] : ranges) {
    ASSERT_TRUE(r.owner.has_value());
    ++owned[r.owner->str()];
    EXPECT_EQ(r.epoch, Epoch(1));
    EXPECT_EQ(r.state, RangeState::kActive);
    EXPECT_EQ(r.replicas.size(), 3u);
    EXPECT_EQ(std::set<NodeId>(r.replicas.begin(), r.replicas.end()).size(), 3u);
    EXPECT_EQ(r.isr, r.replicas);
  }
  std::vector<int> counts;
  for (const auto& [id, n] : owned) counts.push_back(n);
  std::sort(counts.begin(), counts.end());
  EXPECT_EQ(counts, (std::vector<int>{2, 3, 3}));

  auto config = admin_->Get(paths_.config());
  ASSERT_TRUE(config.ok() && config->has_value());
  auto decoded = cluster::DecodeConfig((*config)->data);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->rf, 3);
  EXPECT_EQ(decoded->min_insync, 2);
  EXPECT_EQ(decoded->initial_ranges, 8);
  EXPECT_EQ(Count(c.Log(), "bootstrapped"), 1u);
}

TEST_F(CoordinatorITest, ExistingConfigWinsOverFlags) {
  CreateParents(*admin_, paths_.config());
  cluster::ClusterConfig stored{1, 1, 2};
  ASSERT_TRUE(admin_->Create(paths_.config(), cluster::EncodeConfig(stored)).ok());
  Coord& c = StartCoord("c1", {"--rf", "3", "--ranges", "8"});
  Register("n1");
  auto ranges = WaitForRanges(2);
  EXPECT_EQ(ranges.size(), 2u);
  EXPECT_TRUE(TilesKeySpace(ranges));
  EXPECT_TRUE(c.Has("differs from the flags"));
}

// rf 1: no range has an ISR member to promote, so a lost owner makes its
// ranges unavailable (FailoverPromotesALiveIsrMember... covers rf 3).
TEST_F(CoordinatorITest, NodeLossWithoutIsrPeersMarksItsRangesUnavailableAndReturnActive) {
  TcpProxy proxy(server_->port());
  const milliseconds node_timeout(2000);
  // All three before the coordinator: rf 1 would bootstrap on the first.
  Register("n1");
  Register("n2", "127.0.0.1:" + std::to_string(proxy.port()), node_timeout);
  Register("n3");
  StartCoord("c1", {"--rf", "1", "--ranges", "8"});
  auto ranges = WaitForRanges(8);
  const std::set<RangeId> of_n1 = OwnedBy(ranges, "n1");
  const std::set<RangeId> of_n2 = OwnedBy(ranges, "n2");
  ASSERT_FALSE(of_n1.empty());
  ASSERT_FALSE(of_n2.empty());

  // A clean stop: the node's session closes and its znode goes at once.
  auto t0 = Clock::now();
  Unregister("n1");
  ASSERT_TRUE(WaitFor([&] { return States(of_n1, RangeState::kUnavailable, RangeState::kActive); },
                      kLong, milliseconds(5)));
  std::cout << "[measure] node session closed -> its " << of_n1.size()
            << " ranges unavailable: " << MsSince(t0) << " ms\n";

  // A crash: the node's connection is cut, its session expires on the
  // server after the timeout, then its znode goes.
  std::set<RangeId> down = of_n1;
  down.insert(of_n2.begin(), of_n2.end());
  t0 = Clock::now();
  proxy.Disable();
  ASSERT_TRUE(WaitFor([&] { return States(down, RangeState::kUnavailable, RangeState::kActive); },
                      kLong, milliseconds(5)));
  double crash_ms = MsSince(t0);
  std::cout << "[measure] node connection cut -> its ranges unavailable: " << crash_ms
            << " ms (node session timeout " << node_timeout.count() << " ms)\n";
  EXPECT_LE(crash_ms, (node_timeout + kMargin).count());
  nodes_.erase("n2");

  t0 = Clock::now();
  Register("n1");
  Register("n2");
  ASSERT_TRUE(WaitFor([&] { return States({}, RangeState::kActive, RangeState::kActive); }, kLong,
                      milliseconds(5)));
  std::cout << "[measure] nodes re-registered -> all ranges active: " << MsSince(t0) << " ms\n";
  // Nobody to fail over to: owners stay, epochs do not move.
  for (const auto& [id, r] : Ranges()) {
    EXPECT_EQ(r.owner, ranges.at(id).owner);
    EXPECT_EQ(r.epoch, Epoch(1));
  }
}

TEST_F(CoordinatorITest, TwoCoordinatorsOneLeaderAndTheStandbyTakesOverAfterKill9) {
  Coord& c1 = StartCoord("c1", {"--rf", "3", "--ranges", "8"});
  ASSERT_TRUE(WaitFor([&] { return c1.Has("became leader"); }, kLong));
  Coord& c2 = StartCoord("c2", {"--rf", "3", "--ranges", "8"});
  ASSERT_TRUE(WaitFor([&] { return c2.Has("standing by (leader: c1"); }, kLong));
  auto candidates = admin_->Children(paths_.coordinator());
  ASSERT_TRUE(candidates.ok());
  EXPECT_EQ(candidates->size(), 2u);

  Register("n1");
  Register("n2");
  Register("n3");
  auto ranges = WaitForRanges(8);
  ASSERT_EQ(ranges.size(), 8u);
  EXPECT_EQ(Count(c1.Log(), "became leader"), 1u);
  EXPECT_EQ(Count(c2.Log(), "became leader"), 0u);
  EXPECT_EQ(Count(c1.Log(), "bootstrapped"), 1u);
  EXPECT_EQ(Count(c2.Log(), "bootstrapped"), 0u);

  auto t0 = Clock::now();
  c1.process.Kill();
  ASSERT_TRUE(WaitFor([&] { return c2.Has("became leader"); }, kLong, milliseconds(5)));
  double takeover_ms = MsSince(t0);
  std::cout << "[measure] leader kill -9 -> standby became leader: " << takeover_ms
            << " ms (session timeout " << kCoordSessionTimeout.count() << " ms)\n";
  EXPECT_LE(takeover_ms, (kCoordSessionTimeout + kMargin).count());

  // The new leader handles node changes: n3's ranges fail over.
  const std::set<RangeId> of_n3 = OwnedBy(ranges, "n3");
  ASSERT_FALSE(of_n3.empty());
  t0 = Clock::now();
  Unregister("n3");
  ASSERT_TRUE(WaitFor([&] { return OwnedBy(Ranges(), "n3").empty(); }, kLong, milliseconds(5)));
  std::cout << "[measure] after takeover: node loss -> ranges promoted: " << MsSince(t0) << " ms\n";
  for (const auto& [id, r] : Ranges()) {
    EXPECT_EQ(r.state, RangeState::kActive);
    EXPECT_EQ(r.epoch, of_n3.count(id) ? Epoch(2) : Epoch(1));
  }
  EXPECT_TRUE(c2.Has("failover: owner n3 -> "));
}

// The owner's session is killed: each of its ranges gets a live ISR member
// as owner with epoch + 1 (the failover of docs/replication.md §7), quickly.
TEST_F(CoordinatorITest, FailoverPromotesALiveIsrMemberWithEpochPlusOne) {
  const int admin = rangekv::testing::FreePort();
  Coord& c = StartCoord(
      "c1", {"--rf", "3", "--ranges", "8", "--admin", "127.0.0.1:" + std::to_string(admin)});
  Register("n1");
  Register("n2");
  Register("n3");
  const auto ranges = WaitForRanges(8);
  ASSERT_EQ(ranges.size(), 8u);
  const std::set<RangeId> of_n1 = OwnedBy(ranges, "n1");
  ASSERT_FALSE(of_n1.empty());

  auto t0 = Clock::now();
  Unregister("n1");
  std::map<RangeId, RangeInfo> now;
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        for (RangeId id : of_n1) {
          if (!now.count(id) || now.at(id).epoch != Epoch(2)) return false;
        }
        return true;
      },
      kLong, milliseconds(5)));
  double failover_ms = MsSince(t0);
  std::cout << "[measure] owner session closed -> its " << of_n1.size()
            << " ranges promoted: " << failover_ms << " ms\n";
  EXPECT_LE(failover_ms, kMargin.count());
  // The ISR shrink of the other ranges may land a moment later.
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        for (const auto& [id, r] : now) {
          if (std::find(r.isr.begin(), r.isr.end(), NodeId("n1")) != r.isr.end()) return false;
        }
        return true;
      },
      kLong));
  for (const auto& [id, r] : now) {
    const RangeInfo& old = ranges.at(id);
    ASSERT_TRUE(r.owner.has_value());
    EXPECT_EQ(r.state, RangeState::kActive);
    EXPECT_EQ(r.replicas, old.replicas) << "n1 stays a replica until --replace-after";
    EXPECT_NE(std::find(r.isr.begin(), r.isr.end(), *r.owner), r.isr.end());
    if (of_n1.count(id)) {
      EXPECT_NE(*r.owner, NodeId("n1"));
      EXPECT_NE(std::find(old.isr.begin(), old.isr.end(), *r.owner), old.isr.end());
      EXPECT_EQ(r.epoch, Epoch(2));
    } else {
      EXPECT_EQ(r.owner, old.owner);
      EXPECT_EQ(r.epoch, Epoch(1));
    }
  }
  EXPECT_EQ(Count(c.Log(), "failover: owner n1 -> "), of_n1.size());
  EXPECT_TRUE(c.Has("ms since the old owner's node znode was first seen missing"));
  std::string last;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto reply = rangekv::testing::HttpGet(admin, "/metrics");
        if (!reply || reply->status != 200) return false;
        last = reply->body;
        return rangekv::testing::MetricValue(last, "rangekv_kvcoord_promotions_total") ==
                   static_cast<double>(of_n1.size()) &&
               rangekv::testing::MetricValue(last,
                                             "rangekv_kvcoord_failover_window_seconds_count") ==
                   static_cast<double>(of_n1.size());
      },
      kLong))
      << last;
  auto window = rangekv::testing::MetricValue(last, "rangekv_kvcoord_last_failover_window_seconds");
  ASSERT_TRUE(window.has_value()) << last;
  EXPECT_LE(*window, kMargin.count() / 1000.0);
}

// Dead replicas are replaced: by a node started to replace it (NodeInfo
// replaces), else after --replace-after by the least replicated live node.
// Balance off: the balancer would also move replicas to the new node now
// and then, and a move done in the same pass as a replacement leaves a
// range two replicas (until rule 9 adds one), not the three checked.
TEST_F(CoordinatorITest, DeadReplicaIsReplacedByANamedNodeOrAfterReplaceAfter) {
  StartCoord("c1", {"--rf", "3", "--ranges", "4", "--replace-after", "1500ms", "--balance", "off"});
  Register("n1");
  Register("n2");
  Register("n3");
  ASSERT_EQ(WaitForRanges(4).size(), 4u);
  auto has = [](const std::vector<NodeId>& v, const char* id) {
    return std::find(v.begin(), v.end(), NodeId(id)) != v.end();
  };
  // Named: n4 takes n1's place at once, in every range, outside the ISR.
  Unregister("n1");
  Register("n4", "", milliseconds(6000), "n1");
  std::map<RangeId, RangeInfo> now;
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        for (const auto& [id, r] : now) {
          if (has(r.replicas, "n1") || !has(r.replicas, "n4")) return false;
        }
        return true;
      },
      kLong));
  for (const auto& [id, r] : now) {
    EXPECT_FALSE(has(r.isr, "n4"));
    EXPECT_FALSE(has(r.isr, "n1"));
    EXPECT_EQ(r.replicas.size(), 3u);
  }

  // Unnamed: n2 dies, n5 comes; after --replace-after n5 joins every range
  // n2 held. n2 is one of only min-insync (2) ISR members everywhere, the
  // last copy besides n3 of every committed write: it stays in the ISR
  // until n5 is in sync.
  auto t0 = Clock::now();
  Unregister("n2");
  Register("n5");
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        for (const auto& [id, r] : now) {
          if (!has(r.replicas, "n5")) return false;
        }
        return true;
      },
      kLong));
  double replaced_ms = MsSince(t0);
  std::cout << "[measure] replica node gone -> replacement added (--replace-after 1500ms): "
            << replaced_ms << " ms\n";
  EXPECT_GE(replaced_ms, 1500);
  for (const auto& [id, r] : now) {
    ASSERT_TRUE(r.owner.has_value());
    EXPECT_EQ(*r.owner, NodeId("n3")) << "the only live ISR member";
    EXPECT_EQ(std::set<NodeId>(r.isr.begin(), r.isr.end()),
              (std::set<NodeId>{NodeId("n3"), NodeId("n2")}));
    EXPECT_TRUE(has(r.replicas, "n2"));
    EXPECT_EQ(r.replicas.size(), 4u);
  }
  // The owner takes n5 into the ISR once it has caught up (played here):
  // then n2 leaves the ISR and the replicas.
  for (auto& [id, r] : now) {
    r.AddToIsr(NodeId("n5"), "inc-n5");
    auto got = admin_->Get(paths_.range(id));
    ASSERT_TRUE(got.ok() && got->has_value());
    ASSERT_TRUE(admin_->Set(paths_.range(id), cluster::EncodeRange(r), (*got)->stat.version).ok());
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        for (const auto& [id, r] : now) {
          if (has(r.replicas, "n2") || has(r.isr, "n2")) return false;
        }
        return true;
      },
      kLong));
  for (const auto& [id, r] : now) {
    EXPECT_EQ(std::set<NodeId>(r.isr.begin(), r.isr.end()),
              (std::set<NodeId>{NodeId("n3"), NodeId("n5")}));
    EXPECT_EQ(r.replicas.size(), 3u);
  }
}

TEST_F(CoordinatorITest, SigtermHandsLeadershipOverWithoutWaitingForTheSessionTimeout) {
  const std::vector<std::string> flags = {"--session-timeout-ms", "10000"};
  Coord& c1 = StartCoord("c1", flags);
  ASSERT_TRUE(WaitFor([&] { return c1.Has("became leader"); }, kLong));
  Coord& c2 = StartCoord("c2", flags);
  ASSERT_TRUE(WaitFor([&] { return c2.Has("standing by"); }, kLong));
  auto t0 = Clock::now();
  EXPECT_EQ(c1.process.Stop(milliseconds(10000)), 0);
  ASSERT_TRUE(WaitFor([&] { return c2.Has("became leader"); }, kLong, milliseconds(5)));
  double handover_ms = MsSince(t0);
  std::cout << "[measure] leader SIGTERM -> standby became leader: " << handover_ms
            << " ms (session timeout 10000 ms)\n";
  EXPECT_LT(handover_ms, 5000);
  EXPECT_TRUE(c1.Has("stopped"));
}

TEST_F(CoordinatorITest, GarbageInARangeZnodeIsRepairedKeepingCoverage) {
  Coord& c = StartCoord("c1", {"--rf", "3", "--ranges", "8"});
  Register("n1");
  Register("n2");
  Register("n3");
  auto ranges = WaitForRanges(8);
  ASSERT_EQ(ranges.size(), 8u);
  const RangeId victim(4);
  ASSERT_TRUE(admin_->Set(paths_.range(victim), std::string("\x00garbage\xff", 9)).ok());
  std::map<RangeId, RangeInfo> now;
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        return now.size() == 8 && now.at(victim).epoch == Epoch(2);
      },
      kLong));
  const RangeInfo& r = now.at(victim);
  EXPECT_EQ(r.bounds, ranges.at(victim).bounds);
  EXPECT_EQ(r.state, RangeState::kActive);
  ASSERT_TRUE(r.owner.has_value());
  EXPECT_TRUE(nodes_.count(r.owner->str()));
  EXPECT_EQ(r.replicas.size(), 3u);
  EXPECT_TRUE(TilesKeySpace(now));
  EXPECT_TRUE(c.Has("is not a valid range record"));

  // A record that names another range is garbage for this znode too.
  ASSERT_TRUE(admin_->Set(paths_.range(victim), cluster::EncodeRange(now.at(RangeId(5)))).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        return now.size() == 8 && now.at(victim).id == victim && now.at(victim).epoch == Epoch(3);
      },
      kLong));
  EXPECT_TRUE(TilesKeySpace(now));
}

TEST_F(CoordinatorITest, OwnerlessRangeGoesToItsInSyncReplicaNeverToAnyNode) {
  // Balance off: with it, n2 (holding nothing at rf 1) is given copies
  // right after the bootstrap, and a range read here may already be on
  // its way there (replicas n1,n2), which this test is not about.
  Coord& c1 = StartCoord("c1", {"--rf", "1", "--ranges", "4", "--balance", "off"});
  Register("n1");
  Register("n2");
  auto ranges = WaitForRanges(4);
  ASSERT_EQ(ranges.size(), 4u);
  // Range 2 loses its owner but keeps its ISR: the ISR member gets it back
  // at a higher epoch.
  RangeInfo orphan = ranges.at(RangeId(2));
  const NodeId holder = orphan.isr.at(0);
  orphan.owner.reset();
  ASSERT_TRUE(admin_->Set(paths_.range(orphan.id), cluster::EncodeRange(orphan)).ok());
  // Range 3 loses its ISR too: nobody is known to hold its data, so no
  // node gets it and the coordinator says why.
  RangeInfo lost = ranges.at(RangeId(3));
  lost.owner.reset();
  lost.replicas.clear();
  lost.SetIsr({}, {});
  ASSERT_TRUE(admin_->Set(paths_.range(lost.id), cluster::EncodeRange(lost)).ok());
  std::map<RangeId, RangeInfo> now;
  ASSERT_TRUE(WaitFor(
      [&] {
        now = Ranges();
        return now.count(orphan.id) && now.at(orphan.id).owner.has_value() &&
               now.count(lost.id) && now.at(lost.id).state == RangeState::kUnavailable;
      },
      kLong))
      << c1.Log();
  const RangeInfo& r = now.at(orphan.id);
  EXPECT_EQ(*r.owner, holder);
  EXPECT_EQ(r.epoch, Epoch(2));
  EXPECT_EQ(r.replicas, std::vector<NodeId>{holder});
  EXPECT_EQ(r.state, RangeState::kActive);
  EXPECT_FALSE(now.at(lost.id).owner.has_value());
  EXPECT_TRUE(c1.Has("no owner and no in-sync replica to take it")) << c1.Log();
}

TEST_F(CoordinatorITest, PausedLeaderLosesItsSessionAndRejoinsAsStandby) {
  Coord& c1 = StartCoord("c1", {"--ranges", "8"});
  ASSERT_TRUE(WaitFor([&] { return c1.Has("became leader"); }, kLong));
  Coord& c2 = StartCoord("c2", {"--ranges", "8"});
  ASSERT_TRUE(WaitFor([&] { return c2.Has("standing by"); }, kLong));
  auto t0 = Clock::now();
  c1.process.Signal(SIGSTOP);  // frozen: no pings, its session expires
  ASSERT_TRUE(WaitFor([&] { return c2.Has("became leader"); }, kLong, milliseconds(5)));
  std::cout << "[measure] leader SIGSTOP -> standby became leader: " << MsSince(t0) << " ms\n";
  c1.process.Signal(SIGCONT);
  ASSERT_TRUE(WaitFor([&] { return c1.Has("standing by (leader: c2"); }, kLong)) << c1.Log();
  EXPECT_TRUE(c1.Has("lost leadership"));
  EXPECT_EQ(Count(c2.Log(), "lost leadership"), 0u);
  auto candidates = admin_->Children(paths_.coordinator());
  ASSERT_TRUE(candidates.ok());
  EXPECT_EQ(candidates->size(), 2u);
  // Still one working leader: a node registering now gets ranges from c2.
  Register("n1");
  Register("n2");
  Register("n3");
  EXPECT_EQ(WaitForRanges(8).size(), 8u);
  EXPECT_EQ(Count(c2.Log(), "bootstrapped"), 1u);
  EXPECT_EQ(Count(c1.Log(), "bootstrapped"), 0u);
}

TEST_F(CoordinatorITest, UnreachableZooKeeperIsRetriedWithRareLogLinesThenJoined) {
  ZkServer late;
  ASSERT_TRUE(late.Start()) << late.log();
  late.Stop();  // the port is closed now
  auto t0 = Clock::now();
  Coord& c = StartCoord("c1", {}, late.connect_string());
  ASSERT_TRUE(WaitFor([&] { return c.Has("ZooKeeper unreachable"); }, kLong));
  ASSERT_TRUE(WaitFor([&] { return c.Has("ZooKeeper still unreachable"); }, kLong));
  EXPECT_TRUE(c.process.running());
  double waited_s = MsSince(t0) / 1000;
  size_t lines = Count(c.Log(), "\n");
  std::cout << "[measure] " << lines << " log lines in " << waited_s
            << " s while ZooKeeper was unreachable\n";
  EXPECT_LE(lines, 3 + static_cast<size_t>(waited_s));  // a line every few seconds at most

  ASSERT_TRUE(late.Restart()) << late.log();
  t0 = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return c.Has("became leader"); }, kLong));
  std::cout << "[measure] ZooKeeper back -> kvcoord leader: " << MsSince(t0) << " ms\n";
  EXPECT_TRUE(c.Has("ZooKeeper reachable at"));
  EXPECT_EQ(c.process.Stop(milliseconds(10000)), 0);
}

TEST_F(CoordinatorITest, MetricsEndpointCountsLeadershipAndBootstrap) {
  const int admin = rangekv::testing::FreePort();
  Coord& c = StartCoord(
      "c1", {"--rf", "1", "--ranges", "4", "--admin", "127.0.0.1:" + std::to_string(admin)});
  ASSERT_TRUE(WaitFor([&] { return c.Has("became leader"); }, kLong));
  Register("n1");
  ASSERT_EQ(WaitForRanges(4).size(), 4u);
  // The exporter publishes once a second: poll until the numbers show up.
  std::string last;
  bool seen = WaitFor(
      [&] {
        auto reply = rangekv::testing::HttpGet(admin, "/metrics");
        if (!reply || reply->status != 200) return false;
        last = reply->body;
        auto leader = rangekv::testing::MetricValue(last, "rangekv_kvcoord_leader");
        auto created = rangekv::testing::MetricValue(last, "rangekv_kvcoord_ranges_created_total");
        auto ranges = rangekv::testing::MetricValue(last, "rangekv_kvcoord_ranges");
        return leader == 1.0 && created == 4.0 && ranges == 4.0;
      },
      kLong);
  EXPECT_TRUE(seen) << last;
  // The map's health: rf 1, so one in-sync replica each is enough.
  using rangekv::testing::MetricValue;
  EXPECT_EQ(MetricValue(last, "rangekv_kvcoord_ranges_under_replicated"), 0.0) << last;
  EXPECT_EQ(MetricValue(last, "rangekv_kvcoord_ranges_under_min_insync"), 0.0) << last;
  EXPECT_EQ(MetricValue(last, "rangekv_kvcoord_replica_moves_in_flight"), 0.0) << last;
  EXPECT_EQ(MetricValue(last, "rangekv_kvcoord_range_isr_size{range=\"1\"}"), 1.0) << last;
  auto missing = rangekv::testing::HttpGet(admin, "/nope");
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(CoordinatorITest, HelpAndBadFlags) {
  auto help = rangekv::testing::Run({BuildPath("coordinator/kvcoord"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--zk"), std::string::npos);
  auto bad =
      rangekv::testing::Run({BuildPath("coordinator/kvcoord"), "--zk", "h:1", "--nope", "1"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(Count(bad.err, "\n"), 1u) << bad.err;
  EXPECT_NE(bad.err.find("unknown flag --nope"), std::string::npos) << bad.err;
  auto missing = rangekv::testing::Run({BuildPath("coordinator/kvcoord")});
  EXPECT_EQ(missing.exit_code, 2);
}

}  // namespace
}  // namespace rangekv::coordinator
