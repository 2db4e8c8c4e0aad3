// The failure detector's rules (coordinator/failure_detector.h), on a
// made-up clock: who is pinged, when a node fails, when it is live again.
#include "coordinator/failure_detector.h"

#include <gtest/gtest.h>

namespace rangekv::coordinator {
namespace {

using std::chrono::milliseconds;
using Time = FailureDetector::Time;

constexpr Time Ms(int64_t ms) { return milliseconds(ms); }

cluster::NodeInfo Node(const std::string& id, std::vector<NodeId> unreachable = {},
                       const std::string& life = "L1") {
  cluster::NodeInfo n{NodeId(id), id + ":1", "", 1, "inc"};
  n.life = life;
  n.unreachable = std::move(unreachable);
  return n;
}

std::map<NodeId, cluster::NodeInfo> Live(std::vector<cluster::NodeInfo> nodes) {
  std::map<NodeId, cluster::NodeInfo> live;
  for (auto& n : nodes) live.emplace(n.id, std::move(n));
  return live;
}

class DetectorTest : public ::testing::Test {
 protected:
  DetectorTest() : d_(DetectorOptions{milliseconds(400), milliseconds(100), milliseconds(3000)}) {}

  // Runs the detector from `from` to `to` in 10 ms steps; `answers(t)`
  // says whether n1 answers a ping sent at t (at once). Returns the
  // verdicts with their times.
  std::vector<std::pair<int64_t, FailureDetector::Verdict>> Run(
      int64_t from, int64_t to, const std::function<bool(int64_t)>& answers) {
    std::vector<std::pair<int64_t, FailureDetector::Verdict>> out;
    std::vector<std::pair<int64_t, FailureDetector::Probe>> pending;
    for (int64_t t = from; t <= to; t += 10) {
      for (auto it = pending.begin(); it != pending.end();) {
        if (answers(t)) {
          d_.OnAnswer(it->second.node, it->second.life, Ms(it->first));
          it = pending.erase(it);
        } else {
          ++it;
        }
      }
      for (auto& p : d_.DueProbes(Ms(t))) pending.emplace_back(t, p);
      for (auto& v : d_.Decide(Ms(t))) out.emplace_back(t, v);
    }
    return out;
  }

  FailureDetector d_;
};

TEST_F(DetectorTest, NobodyIsPingedOrFailedWithoutAReport) {
  d_.Observe(Live({Node("n1"), Node("n2")}));
  EXPECT_TRUE(d_.DueProbes(Ms(0)).empty());
  EXPECT_TRUE(Run(0, 2000, [](int64_t) { return false; }).empty());
  EXPECT_FALSE(d_.failed(NodeId("n1")));
}

TEST_F(DetectorTest, ReportedNodeThatNeverAnswersFailsAfterTheTimeout) {
  d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  auto probes = d_.DueProbes(Ms(0));
  ASSERT_EQ(probes.size(), 1u);
  EXPECT_EQ(probes[0].node, NodeId("n1"));
  EXPECT_EQ(probes[0].address, "n1:1");
  auto v = Run(10, 1000, [](int64_t) { return false; });
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].first, 400);
  EXPECT_TRUE(v[0].second.failed);
  EXPECT_NE(v[0].second.why.find("n2"), std::string::npos) << v[0].second.why;
  auto live = Live({Node("n1"), Node("n2", {NodeId("n1")})});
  d_.Exclude(&live);
  EXPECT_EQ(live.count(NodeId("n1")), 0u);
  EXPECT_EQ(live.count(NodeId("n2")), 1u);
}

TEST_F(DetectorTest, APauseShorterThanTheTimeoutNeverFails) {
  d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  // Stopped from 0 to 390 ms: every ping sent meanwhile is answered then.
  for (int64_t start : {0, 50, 99}) {
    FailureDetector fresh(
        DetectorOptions{milliseconds(400), milliseconds(100), milliseconds(3000)});
    d_ = fresh;
    d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
    auto v = Run(0, 3000, [start](int64_t t) { return t < start || t >= start + 390; });
    EXPECT_TRUE(v.empty()) << "stop from " << start << " ms failed it";
  }
}

TEST_F(DetectorTest, AnsweringNodeIsNotFailedHoweverLongItIsReported) {
  d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  EXPECT_TRUE(Run(0, 5000, [](int64_t) { return true; }).empty());
}

TEST_F(DetectorTest, ReportsFromAFailedNodeDoNotCount) {
  d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  ASSERT_EQ(Run(0, 500, [](int64_t) { return false; }).size(), 1u);
  // n1, failed, now blames n3: nothing comes of it.
  d_.Observe(Live({Node("n1", {NodeId("n3")}), Node("n2", {NodeId("n1")}), Node("n3")}));
  for (auto& p : d_.DueProbes(Ms(600))) EXPECT_NE(p.node, NodeId("n3"));
  EXPECT_TRUE(Run(610, 2000, [](int64_t) { return false; }).empty());
  EXPECT_FALSE(d_.failed(NodeId("n3")));
}

TEST_F(DetectorTest, FailedNodeIsLiveAgainAfterTheHoldDownOnceItAnswersUnreported) {
  d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  ASSERT_EQ(Run(0, 1000, [](int64_t) { return false; }).size(), 1u);  // failed at 400
  d_.Observe(Live({Node("n1"), Node("n2")}));  // its replicas follow someone else
  auto v = Run(1010, 6000, [](int64_t) { return true; });
  ASSERT_EQ(v.size(), 1u);
  EXPECT_FALSE(v[0].second.failed);
  EXPECT_EQ(v[0].first, 3400);  // hold_down after it failed
  EXPECT_FALSE(d_.failed(NodeId("n1")));
}

TEST_F(DetectorTest, StillReportedFailedNodeStaysFailed) {
  d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  ASSERT_EQ(Run(0, 1000, [](int64_t) { return false; }).size(), 1u);
  EXPECT_TRUE(Run(1010, 8000, [](int64_t) { return true; }).empty());
  EXPECT_TRUE(d_.failed(NodeId("n1")));
}

TEST_F(DetectorTest, ANewLifeStartsClean) {
  d_.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  ASSERT_EQ(Run(0, 1000, [](int64_t) { return false; }).size(), 1u);
  d_.Observe(Live({Node("n1", {}, "L2"), Node("n2")}));
  EXPECT_FALSE(d_.failed(NodeId("n1")));
  EXPECT_TRUE(d_.DueProbes(Ms(1100)).empty());
  // And a node whose znode went (its session expired) is forgotten.
  d_.Observe(Live({Node("n1", {}, "L2"), Node("n2", {NodeId("n1")})}));
  ASSERT_EQ(Run(1200, 2000, [](int64_t) { return false; }).size(), 1u);
  d_.Observe(Live({Node("n2")}));
  EXPECT_FALSE(d_.failed(NodeId("n1")));
}

TEST_F(DetectorTest, DisabledDetectorNeverPingsOrFails) {
  FailureDetector off(DetectorOptions{milliseconds(0), milliseconds(100), milliseconds(3000)});
  off.Observe(Live({Node("n1"), Node("n2", {NodeId("n1")})}));
  EXPECT_TRUE(off.DueProbes(Ms(0)).empty());
  EXPECT_TRUE(off.Decide(Ms(5000)).empty());
}

}  // namespace
}  // namespace rangekv::coordinator
