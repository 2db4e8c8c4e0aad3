// Fast failover in the deterministic simulation: the coordinator's failure
// detector (coordinator/failure_detector.h) on the product's timings (6 s
// sessions, 600 ms leases, 250 ms long polls, 400 ms failure timeout). An
// owner that dies or stops for longer than the failure timeout loses its
// range well before its session expires, and one that stops for less
// keeps it; either way nothing acknowledged is lost and the history stays
// linearizable.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/sim/sim_scenario.h"
#include "tests/sim/sim_test_util.h"

namespace rangekv::sim {
namespace {

ClusterParams ProductTimings() {
  ClusterParams p = ThreeNodes();
  p.session_timeout = 6 * kSecond;
  p.replication.lease = std::chrono::milliseconds(600);
  p.replication.fetch_wait = std::chrono::milliseconds(250);
  p.replication.isr_lag_timeout = std::chrono::milliseconds(2000);
  return p;
}

const RangeId kRange(1);

// Boots, starts 4 clients on `keys` for `load`, lets them run 2 s, and
// returns the range's owner then.
std::string BootUnderLoad(Scenario& s, const std::vector<std::string>& keys, Nanos load) {
  EXPECT_TRUE(BootStaggered(s));
  s.StartClients(4, s.world().now() + load, keys);
  s.RunFor(2 * kSecond);
  return s.Range(kRange).owner->str();
}

TEST(SimFailover, KilledOwnerIsReplacedWithinASecondNotASession) {
  for (uint64_t seed : {21, 22, 23, 24, 25}) {
    Scenario s(seed, ProductTimings(), Verbose());
    const std::vector<std::string> keys = SpreadKeys(4);
    const std::string owner = BootUnderLoad(s, keys, 8 * kSecond);
    const Nanos killed = s.world().now();
    s.node(owner).Kill();
    ASSERT_TRUE(s.RunUntil(2 * kSecond, [&] { return s.Range(kRange).owner->str() != owner; }))
        << "seed " << seed << ": no new owner 2 s after the kill (session: 6 s)";
    s.RunFor(3 * kSecond);
    const Nanos gap = s.LongestWriteGap(killed - 100 * kMilli, killed + 3 * kSecond);
    EXPECT_LT(gap, kSecond) << "seed " << seed << ": writes stalled " << gap / kMilli << " ms";
    EXPECT_GT(s.AcknowledgedWrites(killed + kSecond, killed + 3 * kSecond), 0u);
    std::vector<std::string> problems = HealAndCheck(s, keys);
    EXPECT_TRUE(problems.empty()) << "seed " << seed << ":\n" << Join(problems);
  }
}

TEST(SimFailover, OwnerStoppedForLessThanTheFailureTimeoutKeepsItsRange) {
  Scenario s(31, ProductTimings(), Verbose());
  ASSERT_TRUE(BootStaggered(s));
  const RangeId range(1);
  const cluster::RangeInfo before = s.Range(range);
  const std::vector<std::string> keys = SpreadKeys(4);
  s.StartClients(4, s.world().now() + 14 * kSecond, keys);
  s.RunFor(kSecond);
  // Ten stops of 300 ms, at every phase of the pings and the long polls.
  for (int i = 0; i < 10; ++i) {
    s.node(before.owner->str()).Pause(300 * kMilli);
    s.RunFor(kSecond + i * 37 * kMilli);
  }
  EXPECT_EQ(s.Range(range).epoch, before.epoch) << "a 300 ms stop moved the range";
  EXPECT_EQ(s.Range(range).owner, before.owner);
  std::vector<std::string> problems = HealAndCheck(s, keys);
  EXPECT_TRUE(problems.empty()) << Join(problems);
}

TEST(SimFailover, OwnerStoppedPastTheFailureTimeoutIsDeposedAndLosesNothing) {
  for (uint64_t seed : {41, 42, 43}) {
    Scenario s(seed, ProductTimings(), Verbose());
    const std::vector<std::string> keys = SpreadKeys(4);
    const std::string owner = BootUnderLoad(s, keys, 14 * kSecond);
    // Stopped for 2 s: its session outlives the stop, so it resumes as a
    // live member that still believes it owns the range.
    const Nanos stopped = s.world().now();
    s.node(owner).Pause(2 * kSecond);
    ASSERT_TRUE(s.RunUntil(1500 * kMilli, [&] { return s.Range(kRange).owner->str() != owner; }))
        << "seed " << seed << ": the stopped owner kept its range";
    // Writes resume at the new owner while the old one is still stopped:
    // nobody waits for a fetch stuck in the stopped owner's socket.
    s.RunFor(3 * kSecond);
    const Nanos gap = s.LongestWriteGap(stopped, stopped + 3 * kSecond);
    EXPECT_LT(gap, 1500 * kMilli) << "seed " << seed << ": writes stalled " << gap / kMilli
                                  << " ms for a 2 s stop";
    // Back, it follows the new owner and rejoins the ISR.
    ASSERT_TRUE(s.RunUntil(10 * kSecond, [&] { return Has(s.Range(kRange).isr, owner); }))
        << "seed " << seed << ": the old owner never rejoined the ISR";
    std::vector<std::string> problems = HealAndCheck(s, keys);
    EXPECT_TRUE(problems.empty()) << "seed " << seed << ":\n" << Join(problems);
  }
}

// A replica killed while its range is idle has acknowledged the whole
// log, and the detector takes it out of the ISR sooner than the owner's
// "fetched recently" bound runs out: the owner must not add it back (its
// znode is still there) without a fetch since it left.
TEST(SimFailover, DeadReplicaOfAnIdleRangeIsNotAddedBackToTheIsr) {
  ClusterParams p = ProductTimings();
  p.ranges = 3;  // every node owns one: the one killed is reported
  // The owner's "fetched recently" bound is a quarter of it: 1 s, well
  // past the detector's verdict.
  p.replication.isr_lag_timeout = std::chrono::milliseconds(4000);
  Scenario s(61, p, Verbose());
  ASSERT_TRUE(BootStaggered(s));
  const RangeId range(1);
  const Holders h = HoldersOf(s, range);
  s.RunFor(kSecond);
  s.node(h.first).Kill();
  ASSERT_TRUE(s.RunUntil(2 * kSecond, [&] { return !Has(s.Range(range).isr, h.first); }));
  bool back = s.RunUntil(3 * kSecond, [&] { return Has(s.Range(range).isr, h.first); });
  EXPECT_FALSE(back) << h.first << " is dead but back in the ISR";
}

TEST(SimFailover, WithTheDetectorOffOnlyTheSessionMovesTheRange) {
  ClusterParams p = ProductTimings();
  p.detector.failure_timeout = std::chrono::milliseconds(0);
  Scenario s(51, p, Verbose());
  ASSERT_TRUE(BootStaggered(s));
  const RangeId range(1);
  const std::string owner = s.Range(range).owner->str();
  const std::vector<std::string> keys = SpreadKeys(4);
  s.StartClients(2, s.world().now() + 12 * kSecond, keys);
  s.RunFor(kSecond);
  s.node(owner).Kill();
  s.RunFor(3 * kSecond);
  EXPECT_EQ(s.Range(range).owner->str(), owner) << "moved before the session expired";
  ASSERT_TRUE(s.RunUntil(6 * kSecond, [&] { return s.Range(range).owner->str() != owner; }));
  std::vector<std::string> problems = HealAndCheck(s, keys);
  EXPECT_TRUE(problems.empty()) << Join(problems);
}

}  // namespace
}  // namespace rangekv::sim
