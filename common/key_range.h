// common/key_range.h — half-open ranges [start, end) over byte strings.
//
// Keys are arbitrary bytes compared lexicographically as unsigned bytes
// (std::string's compare does exactly this). The empty string is the smallest
// key. A range with no end is unbounded above; the range with an empty start
// and no end is the whole key space.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rangekv {

class KeyRange {
 public:
  // The whole key space.
  KeyRange() = default;
  // [start, end); end == nullopt means unbounded. Requires start < *end.
  KeyRange(std::string start, std::optional<std::string> end);

  const std::string& start() const { return start_; }
  const std::optional<std::string>& end() const { return end_; }
  bool unbounded() const { return !end_.has_value(); }

  bool Contains(std::string_view key) const;
  // True when every key of [start, end) lies in this range; end == nullopt
  // means unbounded.
  bool ContainsSpan(std::string_view start, const std::optional<std::string_view>& end) const;
  bool Overlaps(const KeyRange& other) const;

  // "[start, end)" with escaped bytes, for logs and the REPL.
  std::string ToString() const;

  friend bool operator==(const KeyRange&, const KeyRange&) = default;
  // Orders by start, then by end (unbounded last).
  friend bool operator<(const KeyRange& a, const KeyRange& b);

 private:
  std::string start_;
  std::optional<std::string> end_;
};

}  // namespace rangekv
