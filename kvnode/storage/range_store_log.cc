// The log thread of a RangeStore: group commit (docs/design.md §6), the
// one worker that drives both halves.
//
// Each turn takes every queued write at once, has RangeLog write them (one
// writev, an fsync when the policy says so), runs the replicas' durable
// callbacks, hands the group to CommittedMap (staged), and then applies
// whatever the commit point covers, in Seq order, before running the
// writers' callbacks. A truncation, when one is asked for, takes a turn of
// its own (range_store_truncate.cc).
#include "common/log.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {

void RangeStore::Impl::Start() {
  const std::string name = "range-" + std::to_string(id.value());
  log_worker = env.StartWorker(name + "-log", [this] { return LogStep(); });
  log.Start(env, name, log_worker.get());
  snapshots.Start(env, name);
}

namespace {

// Marks the calling thread as inside the store's turn while it lives
// (RangeStore::Impl::turn_owner); made after turn_mu is taken and gone
// before it is released.
class InTurn {
 public:
  explicit InTurn(std::atomic<std::thread::id>& owner) : owner_(owner) {
    owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  ~InTurn() { owner_.store(std::thread::id(), std::memory_order_relaxed); }
  InTurn(const InTurn&) = delete;
  InTurn& operator=(const InTurn&) = delete;

 private:
  std::atomic<std::thread::id>& owner_;
};

}  // namespace

// One turn: a truncation, or a group (everything queued) written and
// applied, or the exit once closing with nothing queued.
exec::NextStep RangeStore::Impl::LogStep() {
  MutexLock turn(turn_mu);
  InTurn in_turn(turn_owner);
  std::vector<PendingWrite> group;
  bool exiting = false;
  bool truncate = false;
  {
    MutexLock log_lock(log.mu());
    if (log.IdleLocked()) {
      MutexLock map_lock(map.mu());
      if (!map.CanApplyLocked()) return exec::NextStep::Idle();
    }
    truncate = log.TakeWorkLocked(&group, &exiting);
  }
  if (truncate) {
    RunTruncation();
    return exec::NextStep::Again();
  }
  if (!group.empty()) ProcessGroup(group);
  log.Recycle(group);
  ApplyCommitted();
  if (!exiting) return exec::NextStep::Again();
  FinishLog();
  return exec::NextStep::Exit();
}

void RangeStore::Impl::TurnHere(bool write) {
  if (!log_worker || turn_owner.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    return NotifyLog();
  }
  if (!turn_mu.try_lock()) return NotifyLog();
  bool for_worker = false;
  {
    InTurn in_turn(turn_owner);
    std::vector<PendingWrite> group;
    bool worker_only = false;
    {
      MutexLock log_lock(log.mu());
      bool exiting = false;
      if (log.WorkerOnlyLocked()) {
        worker_only = for_worker = true;
      } else if (write) {
        log.TakeWorkLocked(&group, &exiting);
      } else {
        for_worker = !log.IdleLocked();
      }
    }
    // A truncation or the close takes the next turn whole, as on the log
    // thread, where they come before any apply.
    if (!worker_only) {
      if (!group.empty()) ProcessGroup(group);
      log.Recycle(group);
      ApplyCommitted();
    }
  }
  turn_mu.unlock();
  if (for_worker) NotifyLog();
}

void RangeStore::Impl::ProcessGroup(std::vector<PendingWrite>& group) {
  uint64_t bytes = 0;
  if (Status st = log.WriteGroup(group, &bytes); !st.ok()) return EnterFailed(st, group);
  for (PendingWrite& w : group) {
    if (w.durable_cb) std::exchange(w.durable_cb, nullptr)(w.seq);
  }
  map.Stage(group);
  log.NotifyListener();
  snapshots.LogWritten(bytes);
}

void RangeStore::Impl::ApplyCommitted() {
  if (map.ApplyCommitted() && opts.commit_gate) snapshots.WantCheckpoint();
}

void RangeStore::Impl::FinishLog() {
  // Close fsyncs under every policy: a clean shutdown loses nothing.
  if (Status st = log.SyncIfDirty(); !st.ok()) {
    std::vector<PendingWrite> none;
    EnterFailed(st, none);
  }
  map.FailStaged(Status(Code::kUnavailable, "range store is closed"));
  log.MarkExited();
}

void RangeStore::Impl::EnterFailed(const Status& st, std::vector<PendingWrite>& group) {
  std::vector<PendingWrite> queued;
  Status err = log.Fail(st, &queued);
  // A replicated write may have reached the replicas before the local
  // failure (records ship before the fsync), and a new owner may still
  // commit it: its outcome is unknown, which clients hear as UNAVAILABLE.
  if (opts.commit_gate) {
    err = Status(Code::kUnavailable, "outcome unknown: " + err.ToString());
  }
  auto fail = [&err](PendingWrite& w) {
    if (w.cb) w.cb(err);
    if (w.durable_cb) w.durable_cb(err);
  };
  for (PendingWrite& w : group) fail(w);
  for (PendingWrite& w : queued) fail(w);
  map.FailStaged(err);
}

}  // namespace rangekv::kvnode
