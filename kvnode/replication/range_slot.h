// kvnode/replication/range_slot.h — one range as this node holds it: its current store
// and the admission state that replication sets for the data plane.
//
// Why a slot and not the store itself in the routing table: a replica that
// installs a snapshot replaces its store while the table stays published,
// and the replication layer must tell the I/O threads whether the owner may
// take writes (ISR at least min-insync, previous owner's lease waited out)
// and answer linearizable reads (its lease confirmed by the ISR). All of it
// is atomics, so an I/O thread admits a request without a lock:
//
// | access           | admitted when                                          |
// |------------------|--------------------------------------------------------|
// | write (owner)    | write_state == kOpen                                   |
// | read (owner)     | reads_ready and now < read_lease_until                 |
// | stale read (any) | stale_ok (the store holds a consistent committed map)  |
//
// After a transfer this node wrote, handed_to names the new owner: a
// request refused here is answered NOT_OWNER with it (routing.h).
//
// Load: routing counts every request it admits to the owner, and keeps
// every 16th key in a small ring; once a second the owner moves them into
// the slot's load history, so it can tell a range busy past --split-qps and
// where half of its requests fall (a load split). A range split off on
// this node inherits its parent's history.
//
// A slot starts closed for everything; the replicator opens it. A
// standalone node's slot is opened for everything at once (no replication).
//
// Thread-safety: every method is safe from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/protocol.h"
#include "common/types.h"
#include "kvnode/replication/load_history.h"
#include "kvnode/storage/range_store.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

enum class Access : uint8_t { kRead, kStaleRead, kWrite };

// Why the owner refuses writes right now.
enum class WriteState : uint8_t {
  kOpen,
  kNotOwner,           // not the owner (yet): replicator has not started leading
  kLeaseWait,          // promoted; waiting out the previous owner's lease
  kNotEnoughReplicas,  // ISR below min-insync
  kDeposed,            // a replica reported a newer epoch; waiting for the map
  kHandingOff,         // transferring the range to an in-sync replica
  kSplitting,          // fenced at the split point until the map shows the split
  kMerging,            // fenced for a merge (for good once it is written)
};

class RangeSlot {
 public:
  using Clock = MonoClock;

  RangeSlot(RangeId id, std::shared_ptr<RangeStore> store) : id_(id), store_(std::move(store)) {}

  RangeId id() const { return id_; }
  std::shared_ptr<RangeStore> store() const { return store_.load(); }
  void set_store(std::shared_ptr<RangeStore> s) { store_.store(std::move(s)); }

  // OK, or the error to answer (RANGE_UNAVAILABLE / NOT_ENOUGH_REPLICAS).
  Status Admit(Access access) const;

  // A split, merge or transfer refuses writes for milliseconds: writes
  // refused so may wait on the node (kvnode/server/write_parking.h).
  static bool Fenced(WriteState s) {
    return s == WriteState::kSplitting || s == WriteState::kMerging || s == WriteState::kHandingOff;
  }
  // Called (on the replicator's thread) whenever the write state leaves a
  // fenced one. Set once, before the slot is shared.
  void set_on_unfence(std::function<void()> f) { on_unfence_ = std::move(f); }

  // ---- set by the replicator (or at once for a standalone node) ----
  void OpenAll();  // standalone: no replication, everything admitted
  void set_write_state(WriteState s) {
    const WriteState was = write_state_.exchange(s);
    if (was != s && Fenced(was) && on_unfence_) on_unfence_();
  }
  WriteState write_state() const { return write_state_.load(); }
  void set_reads_ready(bool b) { reads_ready_.store(b); }
  void set_read_lease_until(Clock::time_point t) {
    lease_ns_.store(t.time_since_epoch().count());
  }
  void set_stale_ok(bool b) { stale_ok_.store(b); }
  bool stale_ok() const { return stale_ok_.load(); }
  void set_isr_info(int isr, int min_insync) {
    isr_.store(isr);
    min_insync_.store(min_insync);
  }
  // The owner this node handed the range to (a transfer written to
  // ZooKeeper), until this node's role changes: routing answers NOT_OWNER
  // with it, so clients go there at once instead of backing off.
  void set_handed_to(std::shared_ptr<const proto::OwnerHint> hint) {
    const bool wake = hint != nullptr;
    handed_to_.store(std::move(hint));
    if (wake && on_unfence_) on_unfence_();  // parked writes learn where to go
  }
  std::shared_ptr<const proto::OwnerHint> handed_to() const { return handed_to_.load(); }

  // The newest generation of the range's bounds this node has acted on (a
  // split written by its owner, or a map applied): a map read earlier and
  // applied late must not widen the store again (Node::HoldRange).
  uint64_t generation() const { return generation_.load(); }
  void RaiseGeneration(uint64_t g) {
    uint64_t cur = generation_.load();
    while (cur < g && !generation_.compare_exchange_weak(cur, g)) {
    }
    if (cur < g) changed_ns_.store(Clock::now().time_since_epoch().count());
  }
  // When this slot was made or its bounds last changed (a split): a range
  // merges only once both parts have kept their bounds for merge_delay.
  Clock::time_point changed_at() const {
    return Clock::time_point(Clock::duration(changed_ns_.load()));
  }
  // The owner's judgement, once a second: small, cold and unchanged long
  // enough to merge with a neighbour (the node reports it for the
  // coordinator, which brings such neighbours to one owner).
  void set_mergeable(bool on) { mergeable_.store(on); }
  bool mergeable() const { return mergeable_.load(); }

  // ---- load (routing counts; the owner reads) ----
  void CountRequest(std::string_view key) {
    if (requests_.fetch_add(1, std::memory_order_relaxed) % kSampleEvery != 0) return;
    MutexLock lock(sample_mu_);
    if (samples_.size() < kSampleRing) {
      samples_.emplace_back(key);
    } else {
      samples_[next_sample_] = std::string(key);
    }
    next_sample_ = (next_sample_ + 1) % kSampleRing;
  }
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  // The keys sampled since the last call (at most kSampleRing, the newest).
  std::vector<std::string> TakeSamples() {
    MutexLock lock(sample_mu_);
    std::vector<std::string> out;
    out.swap(samples_);
    next_sample_ = 0;
    return out;
  }
  // The owner's load, second by second (load_history.h).
  void RecordLoad(LoadHistory::Second s, Clock::duration keep) {
    MutexLock lock(sample_mu_);
    load_.Add(std::move(s), keep);
  }
  // Where to split by load: the key halving the sampled load within bounds,
  // once the range was past qps within bounds for the whole window.
  std::optional<std::string> LoadSplitKey(double qps, Clock::duration window, Clock::time_point now,
                                          const KeyRange& bounds) {
    LoadHistory hot;
    {
      // Routing takes this lock for every 16th request: only the cheap
      // check under it, the sort of the samples on a copy.
      MutexLock lock(sample_mu_);
      if (!load_.HotFor(qps, window, now, bounds)) return std::nullopt;
      hot = load_;
    }
    return hot.SplitKey(window, now, bounds);
  }
  // Whether the range was under qps within bounds for the whole window.
  bool ColdFor(double qps, Clock::duration window, Clock::time_point now, const KeyRange& bounds) {
    MutexLock lock(sample_mu_);
    return load_.ColdFor(qps, window, now, bounds);
  }
  // A range split off the parent's range on this node starts with the
  // parent's load history: its own share of it is its load so far.
  void InheritLoad(RangeSlot& parent) {
    LoadHistory h;
    {
      MutexLock lock(parent.sample_mu_);
      h = parent.load_;
    }
    MutexLock lock(sample_mu_);
    load_ = std::move(h);
  }
  static constexpr uint64_t kSampleEvery = 16;
  static constexpr size_t kSampleRing = 256;

 private:
  const RangeId id_;
  std::atomic<std::shared_ptr<RangeStore>> store_;
  std::atomic<WriteState> write_state_{WriteState::kNotOwner};
  std::atomic<bool> reads_ready_{false};
  std::atomic<Clock::rep> lease_ns_{0};
  std::atomic<bool> stale_ok_{false};
  std::atomic<int> isr_{0};
  std::atomic<int> min_insync_{0};
  std::atomic<std::shared_ptr<const proto::OwnerHint>> handed_to_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<Clock::rep> changed_ns_{Clock::now().time_since_epoch().count()};
  std::atomic<bool> mergeable_{false};
  std::function<void()> on_unfence_;
  Mutex sample_mu_;
  std::vector<std::string> samples_ GUARDED_BY(sample_mu_);
  size_t next_sample_ GUARDED_BY(sample_mu_) = 0;
  LoadHistory load_ GUARDED_BY(sample_mu_);
};

}  // namespace rangekv::kvnode
