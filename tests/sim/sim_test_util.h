// tests/sim/sim_test_util.h — what the simulation's gtest files share: a
// three-node cluster's parameters, who holds a range, and the final heal
// and check every scenario ends with.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "tests/sim/sim_scenario.h"

namespace rangekv::sim {

inline bool Verbose() { return std::getenv("KVSIM_VERBOSE") != nullptr; }

inline ClusterParams ThreeNodes() {
  ClusterParams p;
  p.nodes = 3;
  p.coordinators = 1;
  p.ranges = 1;
  p.rf = 3;
  p.min_insync = 2;
  p.fsync = kvnode::FsyncPolicy::kAlways;
  p.session_timeout = 2 * kSecond;
  p.replication.lease = std::chrono::milliseconds(800);
  p.replication.isr_lag_timeout = std::chrono::milliseconds(600);
  p.replication.fetch_wait = std::chrono::milliseconds(100);
  p.replication.snapshot_chunk_bytes = 8 << 10;
  return p;
}

inline bool Has(const std::vector<NodeId>& v, const std::string& id) {
  return std::find(v.begin(), v.end(), NodeId(id)) != v.end();
}

inline std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// Boots with the nodes started 10 ms apart, so bootstrap always sees them
// in the same order.
inline bool BootStaggered(Scenario& s) {
  return s.Boot([](int i) { return i * 10 * kMilli; });
}

// Who holds a range in a three-node cluster: its owner and the two other
// nodes, in the cluster's order.
struct Holders {
  std::string owner, first, second;
};
inline Holders HoldersOf(Scenario& s, RangeId range) {
  Holders h;
  h.owner = s.Range(range).owner->str();
  for (auto& n : s.cluster().nodes) {
    if (n->id() == h.owner) continue;
    (h.first.empty() ? h.first : h.second) = n->id();
  }
  return h;
}

// Asks for op (a split or transfer: op(done)) again while it is answered
// "not now" (NOT_OWNER, RANGE_UNAVAILABLE: a range just split off is not
// served yet), as the REPL does, at most 30 times 100 ms apart. nullopt
// when an attempt got no answer within 3 s.
template <typename Op>
std::optional<Status> AskUntilServed(Scenario& s, const Op& op) {
  std::optional<Status> answer;
  for (int attempt = 0; attempt < 30; ++attempt) {
    answer.reset();
    op([&answer](Status st) { answer = std::move(st); });
    if (!s.RunUntil(3 * kSecond, [&] { return answer.has_value(); })) return std::nullopt;
    if (answer->code() != Code::kNotOwner && answer->code() != Code::kRangeUnavailable) break;
    s.RunFor(100 * kMilli);
  }
  return answer;
}

// Heals everything, lets the clients finish, reads every key and checks.
inline std::vector<std::string> HealAndCheck(Scenario& s, const std::vector<std::string>& keys) {
  std::vector<std::string> problems;
  s.HealAll();
  s.RunUntil(30 * kSecond, [&s] { return s.ClientsIdle(); });
  s.FinalReads(keys, kSecond, 30 * kSecond, &problems);
  s.Check(&problems);
  return problems;
}

}  // namespace rangekv::sim
