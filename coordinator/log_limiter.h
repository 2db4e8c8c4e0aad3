// coordinator/log_limiter.h — "log this at most once per period".
//
// Conditions that last (ZooKeeper unreachable, a range that cannot be
// repaired, a node znode with bad data) are re-detected on every reconcile.
// Logging each detection would flood the log; logging only the first would
// hide that the condition persists. A LogLimiter lets a line with a given
// key through when the key was not let through within the period, and
// counts what it held back so the next line can say so.
//
// Thread-safety: none; use from one strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace rangekv::coordinator {

class LogLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogLimiter(std::chrono::milliseconds period) : period_(period) {}

  // True when a line with `key` may be logged now. On true, *suppressed
  // (if given) receives how many were held back since the last one.
  bool Allow(const std::string& key, uint64_t* suppressed = nullptr) {
    return AllowAt(key, Clock::now(), suppressed);
  }

  bool AllowAt(const std::string& key, Clock::time_point now, uint64_t* suppressed = nullptr) {
    auto [it, fresh] = entries_.try_emplace(key);
    Entry& e = it->second;
    if (!fresh && now - e.last < period_) {
      ++e.suppressed;
      return false;
    }
    if (suppressed) *suppressed = e.suppressed;
    e.last = now;
    e.suppressed = 0;
    return true;
  }

  // Forgets `key`: its next line passes at once (the condition ended).
  void Reset(const std::string& key) { entries_.erase(key); }
  void ResetAll() { entries_.clear(); }

 private:
  struct Entry {
    Clock::time_point last;
    uint64_t suppressed = 0;
  };
  std::chrono::milliseconds period_;
  std::map<std::string, Entry> entries_;
};

}  // namespace rangekv::coordinator
