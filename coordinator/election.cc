#include "coordinator/election.h"

#include <charconv>

namespace rangekv::coordinator {

std::optional<uint64_t> CandidateSequence(std::string_view name) {
  if (name.substr(0, kCandidatePrefix.size()) != kCandidatePrefix) return std::nullopt;
  std::string_view digits = name.substr(kCandidatePrefix.size());
  // ZooKeeper appends exactly 10 digits (a signed 32-bit counter).
  if (digits.size() != 10) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  return v;
}

std::optional<std::string> LowestCandidate(const std::vector<std::string>& children) {
  std::optional<std::string> best;
  std::optional<uint64_t> best_seq;
  for (const std::string& name : children) {
    std::optional<uint64_t> seq = CandidateSequence(name);
    if (!seq) continue;
    if (!best_seq || *seq < *best_seq) {
      best = name;
      best_seq = seq;
    }
  }
  return best;
}

}  // namespace rangekv::coordinator
