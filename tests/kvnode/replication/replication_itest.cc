// Integration tests of replication (issue 4) on a real cluster: ZooKeeper,
// kvcoord and kvnode processes on 127.0.0.1 (tests/kvnode/replication/repl_cluster.h).
//
//   BasicReplication     every replica holds every acknowledged write, and
//                        replicas answer stale reads while the owner is dead
//                        and not yet replaced
//   FailoverUnderWrites  kill -9 of an owner under a writer: a former ISR
//                        member takes over at a higher epoch within the
//                        session timeout + 5 s, no acknowledged write is lost
//                        and sequence numbers keep rising
//   CatchUpAfterRestart  a replica down during 2000 writes comes back into
//                        the ISR with the whole log; then the owner dies and
//                        everything is read from the new owner
//   SnapshotCatchUp      the owner's log no longer reaches back to what the
//                        returning replica needs: it installs a snapshot
//   ReplaceDeadNode      --replace: a new node takes a dead node's place in
//                        every range, then survives another node's death
//   NodeAddedLaterGetsReplicas
//                        a node started on a running cluster under writes is
//                        given its share of the replicas (moved one at a
//                        time, planner.h rule 11), holds every acknowledged
//                        write of them, and survives an old node's death
//   MoveByHand           REPL `move`: a replica moves to a node that held
//                        none, which then answers stale reads of it; moves
//                        that cannot be are refused with nothing changed;
//                        then `decommission` moves every copy off a node
//                        (never below rf), `recommission` takes it back
//
// Timings are printed as "[measure] ..." lines.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <vector>

#include "tests/kvnode/replication/repl_checks.h"
#include "tests/kvnode/replication/repl_cluster.h"
#include "tests/testutil/testutil.h"

namespace rangekv::testing {
namespace {

using cluster::RangeInfo;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kSettle{60000};
constexpr milliseconds kCatchUp{30000};

#define ASSERT_OK(expr)                                    \
  do {                                                     \
    const ::rangekv::Status _st = (expr);                  \
    ASSERT_TRUE(_st.ok()) << #expr ": " << _st.ToString(); \
  } while (0)

ReplClusterOptions Options(int nodes = 3, int rf = 3, int ranges = 4) {
  ReplClusterOptions o;
  o.nodes = nodes;
  o.rf = rf;
  o.ranges = ranges;
  o.node_session_timeout = milliseconds(2500);
  return o;
}

// Watches the map for `window`: a node that is down must not be put back
// into any ISR (an owner may only add a replica that is fetching).
::testing::AssertionResult StaysOutOfIsr(ReplCluster& c, const std::string& node,
                                         milliseconds window) {
  std::string seen;
  bool back = WaitFor(
      [&] {
        auto map = c.ReadMap();
        if (!map.ok()) return false;
        for (const auto& [rid, r] : map->ranges) {
          if (Contains(r.isr, node)) {
            seen = Describe(r);
            return true;
          }
        }
        return false;
      },
      window, milliseconds(50));
  if (!back) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << node << " is down but back in the ISR: " << seen;
}

// A non-owner replica of r that is also in its ISR.
std::string SomeFollower(const RangeInfo& r) {
  for (const NodeId& n : r.isr) {
    if (n != *r.owner) return n.str();
  }
  return "";
}

TEST(ReplicationITest, BasicReplication) {
  ReplCluster c("basic");
  ASSERT_OK(c.Start(Options()));
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "ranges never settled";

  Dataset data;
  auto t0 = ReplClock::now();
  ASSERT_OK(WriteSpread(c.client(), 0, 500, "basic", 32, &data));
  std::cout << "[measure] 500 puts (rf 3): " << MsSince(t0) << " ms\n";

  ASSERT_TRUE(c.ReadMap().ok());
  map = *c.ReadMap();
  for (const auto& [rid, r] : map.ranges) {
    Dataset mine = InRange(data, r);
    ASSERT_GT(mine.size(), 50u) << "keys do not spread over " << Describe(r);
    ASSERT_TRUE(CheckCaughtUp(c, rid, kCatchUp, MaxVersion(mine)));
    for (const NodeId& n : r.replicas) {
      EXPECT_TRUE(CheckStaleReads(c, n.str(), mine, r)) << Describe(r);
    }
  }

  // Kill the owner of range 1; until its session expires the map still names
  // it, and the replicas must answer stale reads from what they committed.
  const RangeInfo r1 = map.ranges.at(RangeId(1));
  const std::string dead = r1.owner->str();
  const Dataset mine = InRange(data, r1);
  auto t_kill = ReplClock::now();
  c.KillNode(dead);
  for (const NodeId& n : r1.replicas) {
    if (n.str() == dead) continue;
    EXPECT_TRUE(CheckStaleReads(c, n.str(), mine, r1)) << "direct stale reads, owner dead";
  }
  EXPECT_TRUE(CheckClientReads(c.client(), mine, ReadConsistency::kStale))
      << "client stale reads, owner dead";
  int64_t stale_ms = MsSince(t_kill);
  auto still = c.ReadRange(RangeId(1));
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->owner, r1.owner)
      << "the stale reads took " << stale_ms
      << " ms and were not all inside the failover window: " << Describe(*still);
  std::cout << "[measure] " << r1.replicas.size() * mine.size()
            << " stale reads with the owner dead: " << stale_ms << " ms\n";

  RangeInfo after = c.WaitOwnerChange(RangeId(1), dead, seconds(30));
  ASSERT_NE(after.owner->str(), dead) << Describe(after);
  std::cout << "[measure] range 1 promoted after " << MsSince(t_kill) << " ms\n";
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));
}

// One put of the writer thread.
struct PutRecord {
  std::string key;
  std::string value;
  ReplClock::time_point start;
  ReplClock::time_point end;
  Status status;
  uint64_t version = 0;
};

TEST(ReplicationITest, FailoverUnderWrites) {
  ReplCluster c("failover");
  ReplClusterOptions o = Options();
  ASSERT_OK(c.Start(o));
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "ranges never settled";
  const RangeId target(2);
  const RangeInfo before = map.ranges.at(target);
  const std::string old_owner = before.owner->str();

  auto wc = c.NewClient(milliseconds(1500));
  ASSERT_TRUE(wc.ok()) << wc.status().ToString();
  std::mutex mu;
  std::vector<PutRecord> log;
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      PutRecord p;
      p.key = KeyInRange(before, "w-" + std::to_string(i % 40));
      p.value = "val-" + std::to_string(i);
      p.start = ReplClock::now();
      Result<uint64_t> r = (*wc)->Put(p.key, p.value);
      p.end = ReplClock::now();
      p.status = r.status();
      if (r.ok()) {
        p.version = *r;
        acked.fetch_add(1);
      }
      std::lock_guard<std::mutex> l(mu);
      log.push_back(std::move(p));
    }
  });
  auto stop_writer = [&] {
    stop.store(true);
    if (writer.joinable()) writer.join();
  };
  // A failed assertion returns early: the writer must still be joined.
  struct Joiner {
    std::function<void()> f;
    ~Joiner() { f(); }
  } joiner{stop_writer};

  bool warm = WaitFor([&] { return acked.load() >= 200; }, seconds(30));
  if (!warm) stop_writer();
  ASSERT_TRUE(warm) << "the writer got no 200 acks before the kill";

  const auto t_kill = ReplClock::now();
  c.KillNode(old_owner);
  RangeInfo after = c.WaitOwnerChange(target, old_owner, seconds(30));
  const int64_t promoted_ms = MsSince(t_kill);

  // The window ends when a put started after the kill is acknowledged.
  std::optional<int64_t> window_ms;
  WaitFor(
      [&] {
        std::lock_guard<std::mutex> l(mu);
        for (const PutRecord& p : log) {
          if (p.start >= t_kill && p.status.ok()) {
            window_ms = std::chrono::duration_cast<milliseconds>(p.end - t_kill).count();
            return true;
          }
        }
        return false;
      },
      seconds(30));
  const int acked_at_recovery = acked.load();
  WaitFor([&] { return acked.load() >= acked_at_recovery + 200; }, seconds(30));
  stop_writer();

  std::cout << "[measure] promotion in the map: " << promoted_ms << " ms after kill -9\n";
  ASSERT_TRUE(window_ms.has_value()) << "no write succeeded after the kill; " << Describe(after);
  std::cout << "[measure] failover window: " << *window_ms << " ms\n";
  EXPECT_LT(*window_ms, o.node_session_timeout.count() + 5000);
  // The coordinator's failure detector (400 ms, corroborated by the
  // replicas' reports) promotes before the dead owner's session expires.
  EXPECT_LT(promoted_ms, o.node_session_timeout.count())
      << "the promotion waited for the session to expire";

  ASSERT_TRUE(after.owner.has_value());
  EXPECT_NE(after.owner->str(), old_owner) << Describe(after);
  EXPECT_TRUE(Contains(before.isr, after.owner->str()))
      << "new owner " << after.owner->str() << " was not in the ISR " << Join(before.isr);
  EXPECT_GT(after.epoch, before.epoch) << Describe(before) << " -> " << Describe(after);
  EXPECT_FALSE(Contains(after.isr, old_owner)) << Describe(after);

  // Per key, in the writer's order: the final value must be the last
  // acknowledged one or one written after it (whose outcome was unknown).
  std::map<std::string, std::vector<const PutRecord*>> by_key;
  uint64_t last_version = 0;
  int before_kill = 0, after_kill = 0, failed = 0, not_rising = 0;
  for (const PutRecord& p : log) {
    by_key[p.key].push_back(&p);
    if (!p.status.ok()) {
      ++failed;
      continue;
    }
    (p.end < t_kill ? before_kill : after_kill)++;
    // One writer, one range: every acknowledged put gets a higher sequence
    // than the one before, across the change of owner too.
    if (p.version <= last_version && not_rising++ == 0) {
      ADD_FAILURE() << "version " << p.version << " of " << p.value << " after " << last_version;
    }
    last_version = p.version;
  }
  EXPECT_EQ(not_rising, 0);
  std::cout << "[measure] writer: " << before_kill << " acked before the kill, " << after_kill
            << " after, " << failed << " failed or unknown\n";
  EXPECT_GE(after_kill, 200);

  Client& reader = c.client();
  Dataset final_values;
  int lost = 0;
  for (const auto& [key, puts] : by_key) {
    size_t last_ok = puts.size();
    for (size_t i = 0; i < puts.size(); ++i) {
      if (puts[i]->status.ok()) last_ok = i;
    }
    std::set<std::string> allowed;
    for (size_t i = last_ok == puts.size() ? 0 : last_ok; i < puts.size(); ++i) {
      allowed.insert(puts[i]->value);
    }
    auto got = reader.Get(key);
    ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
    if (!got->has_value()) {
      EXPECT_EQ(last_ok, puts.size()) << key << ": acknowledged write lost (key missing)";
      continue;
    }
    if (!allowed.count((*got)->value)) {
      ++lost;
      ADD_FAILURE() << key << ": read " << (*got)->value << ", but the last acknowledged value is "
                    << (last_ok < puts.size() ? puts[last_ok]->value : "(none)");
    }
    final_values[key] = AckedWrite{(*got)->value, (*got)->version};
  }
  EXPECT_EQ(lost, 0);

  // The old owner returns: its tail beyond what the new owner has must go,
  // and it must end up holding exactly the new owner's data.
  ASSERT_OK(c.RestartNode(old_owner));
  auto rejoined = c.WaitIsr(
      target, [&](const std::vector<NodeId>& isr) { return Contains(isr, old_owner); },
      seconds(60));
  ASSERT_TRUE(rejoined.has_value()) << old_owner << " never rejoined the ISR";
  EXPECT_TRUE(CheckCaughtUp(c, target, kCatchUp));
  EXPECT_TRUE(CheckStaleReads(c, old_owner, final_values, before));
}

TEST(ReplicationITest, CatchUpAfterRestart) {
  ReplCluster c("catchup");
  ASSERT_OK(c.Start(Options()));
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "ranges never settled";
  Dataset data;
  ASSERT_OK(WriteSpread(c.client(), 0, 200, "pre", 32, &data));

  const RangeInfo r1 = map.ranges.at(RangeId(1));
  const std::string down = SomeFollower(r1);
  ASSERT_FALSE(down.empty()) << Describe(r1);
  c.KillNode(down);
  auto t_kill = ReplClock::now();
  for (const auto& [rid, r] : map.ranges) {
    auto shrunk = c.WaitRange(
        rid,
        [&](const RangeInfo& x) {
          return !Contains(x.isr, down) && x.owner && x.owner->str() != down &&
                 x.state == cluster::RangeState::kActive;
        },
        seconds(30));
    ASSERT_TRUE(shrunk.has_value()) << down << " stayed in range " << rid.value();
  }
  std::cout << "[measure] " << down << " out of every ISR " << MsSince(t_kill) << " ms after kill\n";
  // No writes yet: the down replica's last ack still equals every log end.
  EXPECT_TRUE(StaysOutOfIsr(c, down, milliseconds(4000)));

  auto t0 = ReplClock::now();
  ASSERT_OK(WriteSpread(c.client(), 1000, 2000, "while-down", 64, &data));
  std::cout << "[measure] 2000 puts with one replica down: " << MsSince(t0) << " ms\n";

  auto t_restart = ReplClock::now();
  ASSERT_OK(c.RestartNode(down));
  ASSERT_TRUE(c.ReadMap().ok());
  map = *c.ReadMap();
  for (const auto& [rid, r] : map.ranges) {
    auto back = c.WaitIsr(
        rid, [&](const std::vector<NodeId>& isr) { return Contains(isr, down); }, seconds(60));
    ASSERT_TRUE(back.has_value()) << down << " never rejoined the ISR of range " << rid.value();
    EXPECT_TRUE(CheckCaughtUp(c, rid, kCatchUp, MaxVersion(InRange(data, r))));
  }
  std::cout << "[measure] " << down << " back in every ISR " << MsSince(t_restart)
            << " ms after restart\n";
  // A replica applies up to the commit point its latest fetch answer
  // carried: poll until it has applied everything.
  (void)WaitFor([&] { return bool(CheckStaleReads(c, down, data, std::nullopt)); }, seconds(10));
  EXPECT_TRUE(CheckStaleReads(c, down, data, std::nullopt)) << "the restarted replica";

  // Now the owner of range 1 dies: all data must come from the new owner,
  // which may well be the restarted node.
  auto now1 = c.ReadRange(RangeId(1));
  ASSERT_TRUE(now1.ok());
  const std::string owner = now1->owner->str();
  c.KillNode(owner);
  RangeInfo after = c.WaitOwnerChange(RangeId(1), owner, seconds(30));
  ASSERT_NE(after.owner->str(), owner) << Describe(after);
  EXPECT_TRUE(Contains(now1->isr, after.owner->str())) << Describe(*now1) << " -> " << Describe(after);
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));
  EXPECT_TRUE(CheckStaleReads(c, after.owner->str(), InRange(data, after), after));
}

// Storage thresholds small enough that the owner snapshots and drops old
// log segments while a replica is down.
const std::vector<std::string> kSnapshotFlags = {
    "--segment-bytes", "65536", "--snapshot-after-bytes", "262144", "--keep-log-records", "100"};

bool KvnodeHasFlags(const std::vector<std::string>& flags, std::string* missing) {
  RunResult help = Run({BuildPath("kvnode/kvnode"), "--help"});
  for (size_t i = 0; i < flags.size(); i += 2) {
    if (help.out.find(flags[i]) == std::string::npos &&
        help.err.find(flags[i]) == std::string::npos) {
      *missing += flags[i] + " ";
    }
  }
  return missing->empty();
}

TEST(ReplicationITest, SnapshotCatchUp) {
  std::string missing;
  if (!KvnodeHasFlags(kSnapshotFlags, &missing)) {
    GTEST_SKIP() << "kvnode lacks the storage threshold flags " << missing;
  }
  ReplCluster c("snapcatch");
  ReplClusterOptions o = Options(3, 3, 2);
  o.node_flags = kSnapshotFlags;
  ASSERT_OK(c.Start(o));
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "ranges never settled";
  const RangeInfo r1 = map.ranges.at(RangeId(1));
  Dataset data;
  ASSERT_OK(WriteInRange(c.client(), r1, 0, 100, "pre", 512, &data));

  const std::string down = SomeFollower(r1);
  ASSERT_FALSE(down.empty()) << Describe(r1);
  c.KillNode(down);
  auto shrunk = c.WaitRange(
      RangeId(1),
      [&](const RangeInfo& x) {
        return !Contains(x.isr, down) && x.owner && x.owner->str() != down &&
               x.state == cluster::RangeState::kActive;
      },
      seconds(30));
  ASSERT_TRUE(shrunk.has_value()) << down << " stayed in the ISR of range 1";
  const std::string owner = shrunk->owner->str();

  // ~3 MB into range 1: a dozen snapshots past the 256 KiB threshold, and
  // the log keeps only 100 records below the newest.
  auto t0 = ReplClock::now();
  ASSERT_OK(WriteInRange(c.client(), r1, 1000, 3000, "bulk", 1024, &data));
  std::cout << "[measure] 3000 puts of 1 KiB with one replica down: " << MsSince(t0) << " ms\n";

  auto t_restart = ReplClock::now();
  ASSERT_OK(c.RestartNode(down));
  auto back = c.WaitIsr(
      RangeId(1), [&](const std::vector<NodeId>& isr) { return Contains(isr, down); },
      seconds(90));
  ASSERT_TRUE(back.has_value()) << down << " never rejoined the ISR of range 1";
  std::cout << "[measure] snapshot catch-up: " << down << " back in the ISR "
            << MsSince(t_restart) << " ms after restart\n";
  EXPECT_TRUE(c.NodeLogHas(down, "installed the owner's snapshot"))
      << down << " caught up without a snapshot: the owner's log was not truncated";
  EXPECT_TRUE(c.NodeLogHas(owner, "shipping snapshot")) << owner << " never shipped a snapshot";
  EXPECT_TRUE(CheckCaughtUp(c, RangeId(1), kCatchUp, MaxVersion(data)));
  // A replica applies up to the commit point its latest fetch answer
  // carried: poll until it has applied everything.
  (void)WaitFor([&] { return bool(CheckStaleReads(c, down, data, r1)); }, seconds(10));
  EXPECT_TRUE(CheckStaleReads(c, down, data, r1)) << "the replica that installed the snapshot";

  // The snapshot-installed replica must serve as owner too.
  c.KillNode(owner);
  RangeInfo after = c.WaitOwnerChange(RangeId(1), owner, seconds(30));
  ASSERT_NE(after.owner->str(), owner) << Describe(after);
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));
}

TEST(ReplicationITest, ReplaceDeadNode) {
  ReplCluster c("replace");
  ReplClusterOptions o = Options();
  // Rule 8 (automatic replacement) off: only --replace may move n3 out.
  o.coord_flags = {"--replace-after", "0"};
  ASSERT_OK(c.Start(o));
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "ranges never settled";
  Dataset data;
  ASSERT_OK(WriteSpread(c.client(), 0, 300, "pre", 32, &data));

  std::set<RangeId> had_n3;
  for (const auto& [rid, r] : map.ranges) {
    if (Contains(r.replicas, "n3")) had_n3.insert(rid);
  }
  ASSERT_EQ(had_n3.size(), map.ranges.size()) << "rf 3 over 3 nodes: n3 holds every range";

  c.KillNode("n3");
  c.WipeNode("n3");
  for (RangeId rid : had_n3) {
    auto gone = c.WaitRange(
        rid,
        [](const RangeInfo& x) {
          return !Contains(x.isr, "n3") && x.owner && x.owner->str() != "n3" &&
                 x.state == cluster::RangeState::kActive;
        },
        seconds(30));
    ASSERT_TRUE(gone.has_value()) << "n3 stayed in the ISR of range " << rid.value();
    EXPECT_TRUE(Contains(gone->replicas, "n3"))
        << "n3 left the replicas before any replacement: " << Describe(*gone);
  }
  EXPECT_TRUE(StaysOutOfIsr(c, "n3", milliseconds(4000)));
  ASSERT_OK(WriteSpread(c.client(), 1000, 300, "n3-dead", 32, &data));

  auto t_start = ReplClock::now();
  ASSERT_OK(c.StartNewNode("n4", "n3"));
  for (RangeId rid : had_n3) {
    RangeInfo last;
    auto done = c.WaitRange(
        rid,
        [](const RangeInfo& x) {
          return Contains(x.replicas, "n4") && Contains(x.isr, "n4") &&
                 !Contains(x.replicas, "n3") && !Contains(x.isr, "n3");
        },
        seconds(90), &last);
    ASSERT_TRUE(done.has_value()) << "n4 did not replace n3: " << Describe(last);
    EXPECT_EQ(done->replicas.size(), 3u) << Describe(*done);
  }
  std::cout << "[measure] --replace: n4 in every ISR " << MsSince(t_start) << " ms after start\n";
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map));
  for (const auto& [rid, r] : map.ranges) {
    EXPECT_TRUE(CheckCaughtUp(c, rid, kCatchUp, MaxVersion(InRange(data, r))));
  }
  EXPECT_TRUE(CheckStaleReads(c, "n4", data, std::nullopt)) << "the replacement node";

  // Another node dies: with n4 in every ISR the data survives on n2 + n4.
  std::set<RangeId> owned_by_n1;
  for (const auto& [rid, r] : map.ranges) {
    if (r.owner->str() == "n1") owned_by_n1.insert(rid);
  }
  c.KillNode("n1");
  for (RangeId rid : owned_by_n1) {
    RangeInfo after = c.WaitOwnerChange(rid, "n1", seconds(30));
    ASSERT_NE(after.owner->str(), "n1") << Describe(after);
  }
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));
  ASSERT_OK(WriteSpread(c.client(), 2000, 100, "n1-dead", 32, &data));
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));
}

TEST(ReplicationITest, NodeAddedLaterGetsReplicas) {
  ReplCluster c("grow");
  ASSERT_OK(c.Start(Options(3, 3, 4)));
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "ranges never settled";
  Dataset data;
  ASSERT_OK(WriteSpread(c.client(), 0, 400, "before", 32, &data));

  auto t_start = ReplClock::now();
  ASSERT_OK(c.StartNewNode("n4"));
  // 12 copies over 4 nodes: 3 each once the moves are done, every range
  // back at rf with no move under way. Writes go on meanwhile.
  std::string last;
  int batch = 0;
  const bool spread = WaitFor(
      [&] {
        if (batch < 20 &&
            WriteSpread(c.client(), 1000 + 50 * batch, 50, "moving", 32, &data).ok()) {
          ++batch;
        }
        auto m = c.ReadMap();
        if (!m.ok()) return false;
        std::map<std::string, int> held;
        bool settled = true;
        for (const auto& [rid, r] : m->ranges) {
          settled = settled && !r.move_replica && r.replicas.size() == 3 && r.isr.size() == 3;
          for (const NodeId& n : r.replicas) ++held[n.str()];
        }
        last = "";
        for (const auto& [n, k] : held) last += n + ":" + std::to_string(k) + " ";
        return settled && held["n4"] == 3 && held["n1"] == 3 && held["n2"] == 3 && held["n3"] == 3;
      },
      seconds(90), milliseconds(100));
  ASSERT_TRUE(spread) << "replicas per node: " << last;
  std::cout << "[measure] n4 added: replicas 3/3/3/3 " << MsSince(t_start) << " ms after start, "
            << batch * 50 << " writes meanwhile\n";
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map));
  for (const auto& [rid, r] : map.ranges) {
    EXPECT_TRUE(CheckCaughtUp(c, rid, kCatchUp, MaxVersion(InRange(data, r))));
  }
  for (const auto& [rid, r] : map.ranges) {
    if (Contains(r.replicas, "n4")) {
      EXPECT_TRUE(CheckStaleReads(c, "n4", data, r)) << "the added node, range " << rid.value();
    }
  }
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));

  // An old node dies: its ranges fail over and nothing is lost.
  c.KillNode("n1");
  for (const auto& [rid, r] : map.ranges) {
    if (r.owner && r.owner->str() == "n1") {
      RangeInfo after = c.WaitOwnerChange(rid, "n1", seconds(30));
      ASSERT_NE(after.owner->str(), "n1") << Describe(after);
    }
  }
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));
}

TEST(ReplicationITest, MoveByHand) {
  ReplCluster c("move");
  ReplClusterOptions o = Options(4, 3, 4);
  o.coord_flags = {"--balance", "off"};  // only the operator moves anything
  ASSERT_OK(c.Start(o));
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "ranges never settled";
  Dataset data;
  ASSERT_OK(WriteSpread(c.client(), 0, 400, "before", 32, &data));
  // A range and a node that holds none of it (4 nodes, rf 3), and one of
  // its replicas that does not own it.
  const RangeInfo r = map.ranges.begin()->second;
  std::string to, from;
  for (const char* n : {"n1", "n2", "n3", "n4"}) {
    if (!Contains(r.replicas, n)) to = n;
    if (Contains(r.replicas, n) && r.owner->str() != n) from = n;
  }
  ASSERT_FALSE(to.empty()) << Describe(r);
  auto kvrepl = [&](const std::string& command) {
    return rangekv::testing::Run({BuildPath("repl/kvrepl"), "--zk", c.zk_connect(), "--cluster",
                                  c.cluster_name(), "-c", command},
                                 "", seconds(90));
  };
  const std::string id = std::to_string(r.id.value());
  auto held = kvrepl("move " + id + " " + from + " " + r.owner->str());
  EXPECT_NE(held.exit_code, 0);
  EXPECT_NE(held.out.find("(error) BAD_REQUEST range " + id + ": " + r.owner->str() +
                          " holds a replica already"),
            std::string::npos)
      << held.out << held.err;
  auto none = kvrepl("move 99 " + from + " " + to);
  EXPECT_NE(none.out.find("(error) BAD_REQUEST no range 99"), std::string::npos) << none.out;
  auto now = c.ReadMap();
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->ranges.at(r.id).replicas, r.replicas) << "a refused move changed nothing";

  auto t_start = ReplClock::now();
  auto moved = kvrepl("move " + id + " " + from + " " + to);
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  EXPECT_EQ(moved.out, "OK\n");
  std::cout << "[measure] move by hand: " << MsSince(t_start) << " ms\n";
  now = c.ReadMap();
  ASSERT_TRUE(now.ok());
  const RangeInfo& after = now->ranges.at(r.id);
  EXPECT_TRUE(Contains(after.isr, to)) << Describe(after);
  EXPECT_FALSE(Contains(after.replicas, from)) << Describe(after);
  EXPECT_FALSE(after.move_replica.has_value()) << Describe(after);
  EXPECT_EQ(after.replicas.size(), 3u) << Describe(after);
  EXPECT_TRUE(CheckStaleReads(c, to, data, after)) << "the node the replica moved to";
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));

  // Decommission: every copy leaves the node (its owned ranges handed
  // over first), each range stays at rf, and nothing is lost.
  t_start = ReplClock::now();
  auto drained = kvrepl("decommission " + to);
  ASSERT_EQ(drained.exit_code, 0) << drained.out << drained.err;
  EXPECT_EQ(drained.out, "OK\n");
  std::cout << "[measure] decommission: " << MsSince(t_start) << " ms\n";
  now = c.ReadMap();
  ASSERT_TRUE(now.ok());
  for (const auto& [rid, x] : now->ranges) {
    EXPECT_FALSE(Contains(x.replicas, to)) << Describe(x);
    EXPECT_EQ(x.replicas.size(), 3u) << Describe(x);
  }
  const std::string nodes = kvrepl("nodes").out;
  EXPECT_TRUE(std::regex_search(
      nodes, std::regex("^" + to + " 127\\.0\\.0\\.1:\\d+ draining owned 0 held 0 bytes ",
                        std::regex::multiline)))
      << nodes;
  ASSERT_OK(WriteSpread(c.client(), 2000, 200, "drained", 32, &data));
  EXPECT_TRUE(CheckClientReads(c.client(), data, ReadConsistency::kLinearizable));
  // Three nodes left for rf 3: a second one may not go.
  std::string other = to == "n1" ? "n2" : "n1";
  auto refused = kvrepl("decommission " + other);
  EXPECT_NE(refused.out.find("(error) BAD_REQUEST decommissioning " + other +
                             " would leave 2 live nodes to hold rf 3 copies"),
            std::string::npos)
      << refused.out << refused.err;
  // A draining node is no target for a move.
  auto into_drain =
      kvrepl("move " + id + " " + now->ranges.at(r.id).replicas.front().str() + " " + to);
  EXPECT_NE(into_drain.out.find("(error) BAD_REQUEST range " + id + ": " + to +
                                " is being decommissioned"),
            std::string::npos)
      << into_drain.out << into_drain.err;
  auto back = kvrepl("recommission " + to);
  EXPECT_EQ(back.out, "OK\n") << back.err;
  auto again = kvrepl("recommission " + to);
  EXPECT_NE(again.out.find("(error) BAD_REQUEST " + to + " is not being decommissioned"),
            std::string::npos)
      << again.out;
}

}  // namespace
}  // namespace rangekv::testing
