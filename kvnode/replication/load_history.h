// kvnode/replication/load_history.h — a range's recent load, second by
// second, as its owner measured it: what a load split decides on.
//
// Each entry covers about one second: the requests/s the owner admitted
// and the keys routing sampled in it (every 16th, at most 256). The load of
// any part of the range is estimated from the same entries: a second's
// requests/s scaled by the share of its samples that fall in the part.
//
// Why the history is kept by second and by key, not as one "hot since"
// time: the two parts of a load split inherit it. Each part's load over
// the window is known the moment it exists, so a range four times past
// --split-qps becomes four ranges within seconds instead of one more whole
// window per generation of splits.
//
// Invariants: entries are in time order; none older than `keep` before the
// newest is kept; a gap of more than three seconds between entries (the
// node was not owner, a split fenced the range, the new part's owner
// started) restarts the count. A split does not clear it: the estimate
// within the narrowed bounds is the part's own load.
//
// Thread-safety: none; RangeSlot guards it.
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/key_range.h"

namespace rangekv::kvnode {

class LoadHistory {
 public:
  using Clock = MonoClock;
  struct Second {
    Clock::time_point at;  // the end of the second it covers
    double qps = 0;
    std::vector<std::string> samples;
  };

  // Appends one second and forgets what lies beyond keep before it.
  void Add(Second s, Clock::duration keep);

  // True when every second of the last window before now carried more than
  // qps requests/s within bounds, and the entries cover the whole window
  // without a gap.
  bool HotFor(double qps, Clock::duration window, Clock::time_point now,
              const KeyRange& bounds) const;

  // True when the entries cover the whole last window before now without
  // a gap and no second of it carried more than qps requests/s within
  // bounds: a range that may merge (docs/elastic.md §4).
  bool ColdFor(double qps, Clock::duration window, Clock::time_point now,
               const KeyRange& bounds) const;

  // The key that halves the sampled load within bounds over the last
  // window: the smallest key with half of the samples below it. None when
  // the samples hold one key only, or the cut would be the range's start.
  std::optional<std::string> SplitKey(Clock::duration window, Clock::time_point now,
                                      const KeyRange& bounds) const;

  bool empty() const { return seconds_.empty(); }
  size_t size() const { return seconds_.size(); }

 private:
  // Estimated requests/s of s within bounds.
  static double Within(const Second& s, const KeyRange& bounds);

  std::deque<Second> seconds_;
};

}  // namespace rangekv::kvnode
