// tests/fault/fault_workload.h — the client workload of the fault tests and
// the bookkeeping around its history.
//
// Workload: `threads` client threads, each with a smart client of its own
// (ReplCluster::NewClient), run random single-key ops until Stop():
//   get     linearizable read; remembers the version it saw
//   put     a value unique in the whole run: "c<client>.<counter>"
//   cas     expected version = the version this thread last saw of the key
//           (0 when it never saw the key: "must be absent"), unique value
//   delete  occasionally
// Every op is recorded in a lincheck::HistoryRecorder: Invoke right before
// the call, Complete right after it returned, with the outcome mapped by
// OutcomeOfWriteError (below). Client ids are 1..threads.
//
// Keys. key_slots slots spread over the whole key space (SpreadKey, so
// every range of an InitialSplit gets some). A slot serves ops_per_key ops
// on one key and then moves on to a fresh key (the same first byte, so the
// same range, with a generation suffix): the checker's cost grows with a
// key's history, so no key sees more than ops_per_key ops however fast the
// cluster is. Keys() lists every key used.
//
// Error mapping for writes (the outcome the checker gets):
//   CAS_FAILED                                   -> CasFailed
//   NOT_OWNER, STALE_EPOCH, RANGE_UNAVAILABLE,
//   NOT_ENOUGH_REPLICAS, BAD_REQUEST, TOO_LARGE,
//   CROSS_RANGE                                  -> Failed (refused before
//                                                   the write reached a store)
//   anything else (TIMEOUT, UNAVAILABLE, IO_ERROR,
//   INTERNAL, CORRUPTION)                        -> Indeterminate
// A get that fails is recorded as Failed (the checker drops it).
//
// Thread-safety: Start/Stop/Keys from one thread (the test's); the recorder
// is shared with the threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/cluster_map.h"
#include "rangekv/client.h"
#include "rangekv/status.h"
#include "tests/lincheck/lincheck.h"
#include "tests/kvnode/replication/repl_cluster.h"

namespace rangekv::testing {

struct WorkloadOptions {
  int threads = 6;
  int key_slots = 60;
  int ops_per_key = 200;
  std::chrono::milliseconds request_timeout{2500};
  uint64_t seed = 1;
  // Op mix in percent; the rest are deletes.
  int get_pct = 40;
  int put_pct = 30;
  int cas_pct = 25;
};

// The checker's outcome for a write that returned status st (not OK).
lincheck::Outcome OutcomeOfWriteError(const Status& st);

class Workload {
 public:
  Workload(ReplCluster& cluster, lincheck::HistoryRecorder& recorder, WorkloadOptions options);
  ~Workload();  // Stop()
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Connects one client per thread, then starts the threads.
  Status Start();
  // Asks the threads to stop and joins them (each finishes its op in flight).
  void Stop();

  // Every key an op was invoked on, sorted.
  std::vector<std::string> Keys() const;
  // The key of slot i at generation g (for tests of the layout).
  static std::string SlotKey(int slot, int generation);

 private:
  void Run(int index);
  std::string PickKey(uint64_t r);

  ReplCluster& cluster_;
  lincheck::HistoryRecorder& recorder_;
  WorkloadOptions options_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::thread> threads_;
  std::unique_ptr<std::atomic<uint64_t>[]> slot_ops_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::set<std::string> keys_;
};

// ---- reading a finished history ----

// Ops of one kind and outcome, e.g. counts["put"]["ok"].
using OutcomeCounts = std::map<std::string, std::map<std::string, uint64_t>>;
OutcomeCounts CountOutcomes(const lincheck::History& h);
std::string FormatCounts(const OutcomeCounts& counts);

// Longest per-key history (ops the checker sees: failed ops and failed or
// indeterminate gets excluded).
size_t LongestKeyHistory(const lincheck::History& h);

// Direct durability check. For every key with an acknowledged write, let W
// be the one with the highest version; the last successful get of the key in
// h (the final read) must return W's effect, or the effect of a write with
// a higher version or of an indeterminate write, and a version >= W's.
// Returns one line per key that breaks this (empty: all durable).
std::vector<std::string> CheckDurable(const lincheck::History& h);

// The longest time, as clients saw it, during which no write (put,
// delete, swapped cas) on a key for which in_range(key) holds completed
// successfully: the gaps between successive successful completions, each
// counted from the first write tried after the earlier one (a range the
// workload did not write to meanwhile was idle, not stalled), starting at
// from_ns, up to the first completion at or after until_ns
// (0: every completion). A stopping owner that still answers right after
// the fault does not hide the handoff that follows. Nothing at or after
// stop_ns (0: none) counts: when writes had not come back by then, the
// stall reaches stop_ns and `cut` says so (the next fault began while the
// range was still stalled, so the rest is not this fault's alone).
// nullopt when no write completed after from_ns at all.
struct WriteStall {
  int64_t ns = 0;
  bool cut = false;
};
std::optional<WriteStall> LongestWriteStall(const lincheck::History& h, int64_t from_ns,
                                            int64_t until_ns, int64_t stop_ns,
                                            const std::function<bool(const std::string&)>& in_range);

}  // namespace rangekv::testing
