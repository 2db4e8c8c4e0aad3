// tests/sim/sim_check.h — the invariants a simulated run must hold, checked
// while it runs and at its end.
//
//   commit ledger      Every record a store applies (its commit point; what
//                      reads can see) is entered in a ledger by (range, seq):
//                      the first one defines it, and any store that later
//                      applies different bytes at that seq breaks the
//                      invariant. So two owners never commit different
//                      records at one position, and nothing applied is ever
//                      taken back, on any node, across crashes.
//   stale owner reads  No owner serves a linearizable read after a record of
//                      a newer epoch of its range was committed.
//   log matching       At the end, two nodes' logs of a range hold the same
//                      bytes wherever they hold a record of the same seq and
//                      epoch (prefix-equal within an epoch).
//   map tiling         After every change of ZooKeeper, the ranges' bounds
//                      tile the key space (no hole, no overlap; a split's
//                      one multi keeps it so), and no range's (generation,
//                      epoch) ever goes down.
//   linearizability    The clients' history, checked per key by
//                      tests/lincheck; the final reads after all faults heal
//                      are part of it, so an acknowledged write that was lost
//                      shows up as a violation too.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/types.h"
#include "kvnode/storage/range_store.h"
#include "tests/sim/sim_cluster.h"

namespace rangekv::sim {

class Checker {
 public:
  explicit Checker(Cluster& cluster) : c_(cluster) {}

  // After every event: looks at the commit point of every open store.
  void AfterEvent();
  void OnRead(const std::string& node, RangeId range, Epoch epoch);
  // After every change of ZooKeeper: the map tiling invariant.
  void OnMapChange();
  // At the end, with every node up.
  void CheckLogs();

  const std::vector<std::string>& violations() const { return violations_; }
  size_t committed_records() const;

 private:
  struct Entry {
    std::string bytes;
    Epoch epoch{0};
    Nanos at = 0;
    std::string node;
  };
  struct Watched {
    std::weak_ptr<kvnode::RangeStore> store;
    Seq seen{0};
  };
  void Scan(const std::string& node, const std::shared_ptr<kvnode::RangeStore>& store);
  void Violation(std::string what);

  Cluster& c_;
  std::map<RangeId, std::map<Seq, Entry>> ledger_;
  std::map<RangeId, std::map<Epoch, Nanos>> first_commit_;  // of a record of that epoch
  std::map<std::pair<std::string, RangeId>, Watched> watched_;
  std::vector<std::string> violations_;
  std::map<RangeId, std::pair<uint64_t, Epoch>> versions_;  // (generation, epoch) seen
};

}  // namespace rangekv::sim
