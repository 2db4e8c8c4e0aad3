// tests/sim/sim_run.h — one seeded run of the simulation: a cluster with
// parameters drawn from the seed, clients under a fault schedule drawn from
// the seed, then every fault healed, final reads, and the checks of
// tests/sim/sim_check.h. The same seed gives the same run, event for event.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tests/sim/world.h"

namespace rangekv::sim {

struct RunOptions {
  uint64_t seed = 1;
  Nanos duration = 8 * kSecond;  // clients run and faults strike
  Nanos settle = 30 * kSecond;   // after healing: the final reads must be done by then
  bool faults = true;
  // Transfers of ownership mixed in, on a schedule of their own (seeds
  // found before they existed replay their old runs without them).
  bool transfers = true;
  // Splits at the checked keys, likewise (seeds found before they existed
  // replay with neither).
  bool splits = true;
  // Merges of neighbours (at the checked keys' boundaries), likewise, in
  // runs that split (seeds found before merges existed replay without).
  bool merges = true;
  // The coordinator's failure detector, at a timeout drawn from a stream
  // of its own (off in a fifth of the runs); seeds found before it existed
  // replay without it.
  bool detector = true;
  // Overrides the drawn failure timeout (0: off).
  std::optional<std::chrono::milliseconds> failure_timeout;
  bool verbose = false;          // the processes' logs, with simulated time
  // The watchdog: a run that needs more events than this is reported (a
  // livelock, e.g. two nodes copying a snapshot back and forth forever).
  // Typical runs need 5k-100k.
  uint64_t max_events = 3'000'000;
};

struct RunResult {
  uint64_t seed = 0;
  std::string setup;                  // the parameters the seed chose, one line
  std::vector<std::string> faults;    // the schedule, one line per fault
  std::vector<std::string> problems;  // invariant violations (empty: the run held)
  uint64_t events = 0;
  uint64_t ops = 0;
  uint64_t committed = 0;  // records in the commit ledger
  bool ok() const { return problems.empty(); }
};

RunResult RunSeed(const RunOptions& options);

}  // namespace rangekv::sim
