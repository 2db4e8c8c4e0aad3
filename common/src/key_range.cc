#include "common/key_range.h"

#include <cassert>

#include "common/escape.h"

namespace rangekv {

KeyRange::KeyRange(std::string start, std::optional<std::string> end)
    : start_(std::move(start)), end_(std::move(end)) {
  assert(!end_ || start_ < *end_);
}

bool KeyRange::Contains(std::string_view key) const {
  if (key < std::string_view(start_)) return false;
  return !end_ || key < std::string_view(*end_);
}

bool KeyRange::ContainsSpan(std::string_view start,
                            const std::optional<std::string_view>& end) const {
  if (start < std::string_view(start_)) return false;
  if (!end_) return true;
  if (!end) return false;
  return *end <= std::string_view(*end_);
}

bool KeyRange::Overlaps(const KeyRange& other) const {
  // Two half-open intervals overlap when each starts before the other ends.
  bool this_starts_before_other_ends = !other.end_ || start_ < *other.end_;
  bool other_starts_before_this_ends = !end_ || other.start_ < *end_;
  return this_starts_before_other_ends && other_starts_before_this_ends;
}

std::string KeyRange::ToString() const {
  return "[" + QuoteIfNeeded(start_) + ", " + (end_ ? QuoteIfNeeded(*end_) : std::string("+inf")) +
         ")";
}

bool operator<(const KeyRange& a, const KeyRange& b) {
  if (a.start_ != b.start_) return a.start_ < b.start_;
  if (!a.end_) return false;
  if (!b.end_) return true;
  return *a.end_ < *b.end_;
}

}  // namespace rangekv
