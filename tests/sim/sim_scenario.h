// tests/sim/sim_scenario.h — a simulated cluster with clients and checkers,
// driven step by step.
//
// RunSeed (sim_run.h) drives one with a random fault schedule; the
// scenario tests (sim_scenario_test.cc) drive one by hand to reach one
// precise interleaving: act on the very event after which a condition
// holds (RunUntil), then let the world run on and check every invariant of
// sim_check.h plus linearizability of the clients' history, including the
// final reads taken after every fault is healed.
//
// One Scenario at a time per process: it installs the simulated log prefix
// and forbids the real file system while it lives.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/lincheck/lincheck.h"
#include "tests/sim/sim_check.h"
#include "tests/sim/sim_client.h"
#include "tests/sim/sim_cluster.h"
#include "tests/sim/sim_coord.h"
#include "tests/sim/sim_node.h"
#include "tests/sim/world.h"

namespace rangekv::sim {

// Keys spread over the first byte, so that every initial range gets some.
std::vector<std::string> SpreadKeys(int n);

class Scenario {
 public:
  // verbose: the processes' logs on stderr with simulated time
  // (KVSIM_DEBUG=1 in the environment: debug lines too).
  Scenario(uint64_t seed, const ClusterParams& params, bool verbose = false,
           uint64_t max_events = 3'000'000);
  ~Scenario();
  Scenario(const Scenario&) = delete;
  Scenario& operator=(const Scenario&) = delete;

  World& world() { return world_; }
  Cluster& cluster() { return *cluster_; }
  SimNode& node(const std::string& id) { return *cluster_->Node(id); }
  const lincheck::History& history() const { return history_; }

  // Starts the coordinators, and each node after delay(i) (i from 0).
  // True once every range has a live owner (within 20 s).
  bool Boot(const std::function<Nanos(int)>& delay = {});
  // `clients` clients issue ops on `keys` until `until` (they run as the
  // world runs).
  void StartClients(int clients, Nanos until, const std::vector<std::string>& keys);
  bool ClientsIdle() const;
  // Runs the world for d, or until pred holds after an event (then true).
  void RunFor(Nanos d) { world_.RunUntil(world_.now() + d); }
  bool RunUntil(Nanos max, const std::function<bool()>& pred);

  // Ends every fault (links, ZooKeeper cuts, failing disks) and starts
  // every process that is down.
  void HealAll();
  // One linearizable read of each key, one after the other, starting after
  // `start_delay`; each retries until `settle` from now. Appends a liveness
  // problem (with the map) when one did not succeed.
  void FinalReads(const std::vector<std::string>& keys, Nanos start_delay, Nanos settle,
                  std::vector<std::string>* problems);
  // The watchdog, the logs, the commit ledger and linearizability;
  // appends every problem found.
  void Check(std::vector<std::string>* problems);

  uint64_t client_ops() const;
  size_t committed_records() const { return checker_->committed_records(); }
  // Writes (put, delete, cas that swapped) answered OK with invoke and
  // answer within [from, to].
  size_t AcknowledgedWrites(Nanos from, Nanos to) const;
  // The longest stretch within [from, to] in which no write was answered
  // OK (as AcknowledgedWrites counts them): how long clients saw writes
  // stall.
  Nanos LongestWriteGap(Nanos from, Nanos to) const;
  // The range's record as ZooKeeper holds it now.
  cluster::RangeInfo Range(RangeId id) const;
  // The store a running node has open for the range, or nullptr.
  std::shared_ptr<kvnode::RangeStore> Store(const std::string& node, RangeId id);
  // Cuts (or heals) the links a -> b and b -> a.
  void CutBoth(const std::string& a, const std::string& b, bool cut);

 private:
  World world_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Checker> checker_;
  lincheck::History history_;
  std::vector<std::unique_ptr<SimClient>> clients_;
  std::unique_ptr<SimClient> reader_;
  uint64_t max_events_;
};

}  // namespace rangekv::sim
