// coordinator/election.h — leader election among coordinators, the naming
// rules (the ZooKeeper side runs in coordinator.cc).
//
// Every coordinator creates an ephemeral sequential znode
//   R/coordinator/leader-<10-digit sequence>   data: the coordinator's id (text)
// and the one whose znode has the lowest sequence leads; the others stand
// by. A standby does not watch its predecessor one-shot: the coordinator's
// persistent recursive watch on R reports the leader znode's NodeDeleted,
// and the level-triggered reconcile re-runs the election from a fresh
// read, so a missed notification only delays a takeover until the next
// periodic reconcile. The leader znode dies with its session: at once on a
// clean shutdown (closeSession), within the session timeout on a crash.
//
// A candidate znode is recognised as "ours" by its ephemeral owner (the
// session id), not by remembering its name: a create whose reply was lost
// (connection loss) may still have made one.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rangekv::coordinator {

inline constexpr std::string_view kCandidatePrefix = "leader-";

// The sequence of a candidate name "leader-0000000042" (42); nullopt for
// any other name.
std::optional<uint64_t> CandidateSequence(std::string_view name);

// The candidate with the lowest sequence among `children` (names, not
// paths); nullopt when there is none.
std::optional<std::string> LowestCandidate(const std::vector<std::string>& children);

}  // namespace rangekv::coordinator
