// kvnode/server/write_parking.h — writes that wait on the node for a routing
// change that lasts milliseconds, instead of going back to the client.
//
// Why: a split, a merge or a transfer fences a range's writes for one
// commit round trip and a ZooKeeper multi (tens of milliseconds), and a
// range just split off or merged is built here a moment after its map
// change. Refused, a client backs off 2, 4, 8 ... ms and arrives late by
// up to its last backoff; parked here, a write goes on the moment the node
// routes it differently. What may park is decided by routing (Route::wait,
// routing.h): only refusals that end by themselves soon.
//
// Contract:
//   - A parked write resumes (Resume(false): route it again; it may park
//     again, keeping its first deadline) after every Wake() that follows
//     its Park, and at the latest at its deadline (Resume(true): answer the
//     refusal it parked on). A Wake between the caller's wakes() read and
//     its Park resumes it at once, so a change is never missed.
//   - At most kMaxWrites writes and kMaxBytes bytes wait at once; Park
//     refuses beyond that (the caller answers the refusal now).
//   - Close() resumes every parked write expired and refuses later Parks.
//   - Resume runs on the parking's worker, never under its lock.
//
// Wakes come from the Node (a new routing table) and from a range slot
// leaving a fenced write state (RangeSlot::set_on_unfence).
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/clock.h"
#include "common/exec.h"
#include "common/mutex.h"

namespace rangekv::kvnode {

class WriteParking {
 public:
  using Clock = MonoClock;
  // expired: the deadline passed or the node closes.
  using Resume = std::function<void(bool expired)>;

  // Longer than a split's or merge's fence may last (a third of the
  // lease: 200 ms by default), well inside a client's request timeout (5 s by default).
  // The node does not know the client's timeout: a client whose timeout is
  // shorter may see TIMEOUT (outcome unknown) where it would have seen the
  // refusal, so the wait stays short.
  static constexpr std::chrono::milliseconds kMaxWait{500};
  static constexpr size_t kMaxWrites = 65536;
  static constexpr size_t kMaxBytes = size_t{64} << 20;

  explicit WriteParking(Env& env);
  ~WriteParking();  // Close()
  WriteParking(const WriteParking&) = delete;
  WriteParking& operator=(const WriteParking&) = delete;

  // Read before routing a write that may park; passed to Park.
  uint64_t wakes() const { return wakes_.load(); }
  // False, with resume dropped, when closed or full.
  bool Park(uint64_t seen_wakes, Clock::time_point deadline, size_t bytes, Resume resume)
      EXCLUDES(mu_);
  void Wake() EXCLUDES(mu_);
  void Close() EXCLUDES(mu_);

  size_t parked() const EXCLUDES(mu_);
  // Writes parked so far (a resumed write parking again counts once more).
  uint64_t parked_total() const { return parked_total_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    Clock::time_point deadline;
    size_t bytes = 0;
    Resume resume;
  };
  exec::NextStep Step() EXCLUDES(mu_);

  mutable Mutex mu_;
  std::vector<Entry> parked_ GUARDED_BY(mu_);
  size_t bytes_ GUARDED_BY(mu_) = 0;
  bool woken_ GUARDED_BY(mu_) = false;
  bool closing_ GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> wakes_{0};
  std::atomic<uint64_t> parked_total_{0};
  std::unique_ptr<exec::Worker> worker_;  // last: started once the rest exists
};

}  // namespace rangekv::kvnode
