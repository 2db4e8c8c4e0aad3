#include "kvnode/replication/load_history.h"

#include <algorithm>

namespace rangekv::kvnode {
namespace {

constexpr auto kMaxGap = std::chrono::seconds(3);
constexpr auto kSecond = std::chrono::seconds(1);

}  // namespace

void LoadHistory::Add(Second s, Clock::duration keep) {
  const Clock::time_point at = s.at;
  seconds_.push_back(std::move(s));
  while (!seconds_.empty() && seconds_.front().at + keep < at) seconds_.pop_front();
}

double LoadHistory::Within(const Second& s, const KeyRange& bounds) {
  if (s.samples.empty()) return 0;
  const auto in = std::count_if(s.samples.begin(), s.samples.end(),
                                [&](const std::string& k) { return bounds.Contains(k); });
  return s.qps * static_cast<double>(in) / static_cast<double>(s.samples.size());
}

bool LoadHistory::HotFor(double qps, Clock::duration window, Clock::time_point now,
                         const KeyRange& bounds) const {
  const Clock::time_point since = now - window;
  Clock::time_point later = now;
  for (auto it = seconds_.rbegin(); it != seconds_.rend(); ++it) {
    if (later - it->at > kMaxGap || Within(*it, bounds) <= qps) return false;
    if (it->at - kSecond <= since) return true;
    later = it->at;
  }
  return false;
}

bool LoadHistory::ColdFor(double qps, Clock::duration window, Clock::time_point now,
                          const KeyRange& bounds) const {
  const Clock::time_point since = now - window;
  Clock::time_point later = now;
  for (auto it = seconds_.rbegin(); it != seconds_.rend(); ++it) {
    if (later - it->at > kMaxGap || Within(*it, bounds) > qps) return false;
    if (it->at - kSecond <= since) return true;
    later = it->at;
  }
  return false;
}

std::optional<std::string> LoadHistory::SplitKey(Clock::duration window, Clock::time_point now,
                                                 const KeyRange& bounds) const {
  std::vector<std::string_view> s;
  for (const Second& sec : seconds_) {
    if (sec.at <= now - window) continue;
    for (const std::string& k : sec.samples) {
      if (bounds.Contains(k)) s.push_back(k);
    }
  }
  if (s.size() < 2) return std::nullopt;
  std::sort(s.begin(), s.end());
  if (s.front() == s.back()) return std::nullopt;
  std::string_view mid = s[s.size() / 2];
  // Cut before the run of the median key, so that key's requests stay
  // together and the left part gets every smaller key.
  if (mid == s.front()) mid = *std::upper_bound(s.begin(), s.end(), s.front());
  if (mid == bounds.start()) return std::nullopt;
  return std::string(mid);
}

}  // namespace rangekv::kvnode
