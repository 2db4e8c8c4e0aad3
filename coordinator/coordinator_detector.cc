// The failure detector's timer (coordinator/failure_detector.h): every
// kDetectorTick on the strand, the leader sends the pings due and acts on
// the verdicts. A verdict that changed is a reconcile at once: the plan
// then sees the failed node as not live (coordinator.cc).
#include "common/log.h"
#include "coordinator/coordinator.h"

namespace rangekv::coordinator {
namespace {

constexpr std::chrono::milliseconds kDetectorTick{10};

FailureDetector::Time SteadyNow() { return std::chrono::steady_clock::now().time_since_epoch(); }

}  // namespace

void Coordinator::ArmDetector() {
  detector_timer_.expires_after(kDetectorTick);
  detector_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;  // stopping: `this` may be going
    DetectorTick();
    ArmDetector();
  });
}

void Coordinator::DetectorTick() {
  if (role() != Role::kLeader) return;
  const FailureDetector::Time now = SteadyNow();
  for (const FailureDetector::Probe& p : detector_.DueProbes(now)) {
    pinger_->Ping(p.address, options_.detector.failure_timeout, [this, p, now](bool answered) {
      if (!answered) return;  // a failure or a timeout: the ping stays unanswered
      asio::post(strand_, [this, p, now] { detector_.OnAnswer(p.node, p.life, now); });
    });
  }
  const std::vector<FailureDetector::Verdict> verdicts = detector_.Decide(now);
  if (verdicts.empty()) return;
  for (const FailureDetector::Verdict& v : verdicts) {
    if (v.failed) {
      LOG_WARN("node " << v.node.str() << " failed: " << v.why);
      UpdateStats([](CoordinatorStats& s) { ++s.nodes_failed; });
    } else {
      LOG_INFO("node " << v.node.str() << " is live again: " << v.why);
    }
  }
  reconciler_->TriggerNow();
}

}  // namespace rangekv::coordinator
