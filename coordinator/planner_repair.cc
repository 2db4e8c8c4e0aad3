// Key-space arithmetic for repairing garbage range znodes (planner.h).
#include <algorithm>

#include "coordinator/planner.h"

namespace rangekv::coordinator {
namespace {

// The initial-split span of `id`, when it is one of the initial ranges.
std::optional<KeyRange> InitialSpan(RangeId id, const std::vector<KeyRange>& split) {
  if (id.value() < 1 || id.value() > split.size()) return std::nullopt;
  return split[id.value() - 1];
}

bool Inside(const KeyRange& inner, const KeyRange& outer) {
  if (inner.end()) return outer.ContainsSpan(inner.start(), std::string_view(*inner.end()));
  return outer.ContainsSpan(inner.start(), std::nullopt);
}

// Cuts `hole` among ranges whose initial spans lie inside it, in key order:
// each piece runs from its initial start to the next one's, the first from
// the hole's start and the last to the hole's end, so the pieces tile it.
void CutHole(const KeyRange& hole, std::vector<std::pair<KeyRange, RangeId>> members,
             std::map<RangeId, KeyRange>& out) {
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 0; i < members.size(); ++i) {
    std::string start = i == 0 ? hole.start() : members[i].first.start();
    std::optional<std::string> end = i + 1 == members.size()
                                         ? hole.end()
                                         : std::optional<std::string>(members[i + 1].first.start());
    out.emplace(members[i].second, KeyRange(std::move(start), std::move(end)));
  }
}

}  // namespace

std::vector<KeyRange> UncoveredSpans(std::vector<KeyRange> ranges) {
  std::sort(ranges.begin(), ranges.end());
  std::vector<KeyRange> gaps;
  std::string covered_to;  // every key below it is covered ("" = nothing yet)
  for (const KeyRange& r : ranges) {
    if (r.start() > covered_to) gaps.emplace_back(covered_to, r.start());
    if (!r.end()) return gaps;  // covered to the top of the key space
    covered_to = std::max(covered_to, *r.end());
  }
  gaps.emplace_back(covered_to, std::nullopt);
  return gaps;
}

std::map<RangeId, KeyRange> PlanRepairBounds(const std::vector<KeyRange>& valid,
                                             const std::vector<RangeId>& garbage,
                                             const std::vector<KeyRange>& split,
                                             std::vector<std::string>* notes) {
  std::map<RangeId, KeyRange> out;
  const std::vector<KeyRange> holes = UncoveredSpans(valid);
  // members[h]: the garbage ranges that take a part of hole h.
  std::vector<std::vector<std::pair<KeyRange, RangeId>>> members(holes.size());
  std::vector<RangeId> unplaced;
  for (RangeId id : garbage) {
    std::optional<KeyRange> initial = InitialSpan(id, split);
    size_t h = 0;
    while (initial && h < holes.size() && !Inside(*initial, holes[h])) ++h;
    if (initial && h < holes.size()) {
      members[h].emplace_back(*initial, id);
    } else {
      unplaced.push_back(id);
    }
  }
  // Ids that are not from the initial split (or whose initial span is
  // covered now) take whole holes that nobody claimed, in order.
  size_t next_free = 0;
  for (RangeId id : unplaced) {
    while (next_free < holes.size() && !members[next_free].empty()) ++next_free;
    if (next_free == holes.size()) {
      if (notes) {
        notes->push_back("range " + std::to_string(id.value()) +
                         ": data is not a valid range record and no uncovered key span is "
                         "left for it; left as is");
      }
      continue;
    }
    members[next_free].emplace_back(holes[next_free], id);
  }
  for (size_t h = 0; h < holes.size(); ++h) {
    if (!members[h].empty()) {
      CutHole(holes[h], members[h], out);
    } else if (notes) {
      notes->push_back("key span " + holes[h].ToString() + " is covered by no range");
    }
  }
  return out;
}

}  // namespace rangekv::coordinator
