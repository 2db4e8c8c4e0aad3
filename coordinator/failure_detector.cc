#include "coordinator/failure_detector.h"

#include <algorithm>

namespace rangekv::coordinator {
namespace {

// A node that never answers is pinged for as long as its znode lasts (a
// session timeout): far fewer pings than this are ever waiting.
constexpr size_t kMaxUnanswered = 1024;

std::string Ms(FailureDetector::Time d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

void FailureDetector::Observe(const std::map<NodeId, cluster::NodeInfo>& live) {
  if (!enabled()) return;
  for (auto it = peers_.begin(); it != peers_.end();) {
    auto n = live.find(it->first);
    // Gone, or a new life: what we knew is about a process that is over.
    if (n == live.end() || n->second.life != it->second.life) {
      it = peers_.erase(it);
    } else {
      it->second.reporters.clear();
      it->second.address = n->second.address;
      ++it;
    }
  }
  for (const auto& [reporter, info] : live) {
    auto self = peers_.find(reporter);
    if (self != peers_.end() && self->second.failed_at) continue;
    for (const NodeId& target : info.unreachable) {
      auto t = live.find(target);
      if (t == live.end() || target == reporter) continue;
      Peer& p = peers_[target];
      if (p.life.empty() && p.address.empty()) {
        p.life = t->second.life;
        p.address = t->second.address;
      }
      p.reporters.insert(reporter);
    }
  }
  // Peers neither reported nor failed are of no interest any more.
  for (auto it = peers_.begin(); it != peers_.end();) {
    it = Probing(it->second) ? std::next(it) : peers_.erase(it);
  }
}

std::vector<FailureDetector::Probe> FailureDetector::DueProbes(Time now) {
  std::vector<Probe> due;
  for (auto& [id, p] : peers_) {
    if (!Probing(p) || p.address.empty()) continue;
    if (p.last_probe && now - *p.last_probe < options_.probe_interval) continue;
    p.last_probe = now;
    if (p.unanswered.size() < kMaxUnanswered) p.unanswered.push_back(now);
    due.push_back(Probe{id, p.life, p.address});
  }
  return due;
}

void FailureDetector::OnAnswer(const NodeId& node, const std::string& life, Time sent) {
  auto it = peers_.find(node);
  if (it == peers_.end() || it->second.life != life) return;
  std::deque<Time>& q = it->second.unanswered;
  while (!q.empty() && q.front() <= sent) q.pop_front();
}

std::optional<FailureDetector::Verdict> FailureDetector::DecideOne(const NodeId& id, Peer& p,
                                                                   Time now) {
  const Time silent = p.unanswered.empty() ? Time{0} : now - p.unanswered.front();
  if (!p.failed_at) {
    if (p.reporters.empty() || silent < options_.failure_timeout) return std::nullopt;
    p.failed_at = now;
    std::string by;
    for (const NodeId& r : p.reporters) by += (by.empty() ? "" : ",") + r.str();
    return Verdict{id, true,
                   "unreachable from " + by + ", and no answer to our pings for " + Ms(silent)};
  }
  // Live again: nobody reports it, every ping of the last failure_timeout
  // was answered (one at least since it failed), and hold_down is over.
  const bool answering = silent < options_.probe_interval * 2 && p.last_probe &&
                         *p.last_probe > *p.failed_at + options_.failure_timeout;
  if (!p.reporters.empty() || !answering || now - *p.failed_at < options_.hold_down) {
    return std::nullopt;
  }
  p.failed_at.reset();
  return Verdict{id, false, "answers our pings again and nobody reports it"};
}

std::vector<FailureDetector::Verdict> FailureDetector::Decide(Time now) {
  std::vector<Verdict> changed;
  if (!enabled()) return changed;
  for (auto& [id, p] : peers_) {
    if (auto v = DecideOne(id, p, now)) changed.push_back(std::move(*v));
  }
  return changed;
}

void FailureDetector::Exclude(std::map<NodeId, cluster::NodeInfo>* live) const {
  for (const auto& [id, p] : peers_) {
    if (p.failed_at) live->erase(id);
  }
}

bool FailureDetector::failed(const NodeId& node) const {
  auto it = peers_.find(node);
  return it != peers_.end() && it->second.failed_at.has_value();
}

}  // namespace rangekv::coordinator
