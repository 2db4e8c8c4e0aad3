// kvnode/storage/range_store_impl.h — internals of RangeStore. Not for use
// outside kvnode/storage.
//
// A store is three parts, each the only owner of its state, wired together
// here:
//
//   RangeLog        (range_log.h)       the write queue and Seqs, segment
//                                       files, tail cache, epoch history,
//                                       listener, sync worker, failure.
//   CommittedMap    (committed_map.h)   the key map and applied seq, the
//                                       commit gate and point, staged
//                                       records, pending keys for cas.
//   RangeSnapshots  (range_snapshots.h) snapshot files, exports, the saved
//                                       commit point, the snapshot worker.
//
// Impl itself owns only what is fixed at Open, the log worker (it drives
// both halves: write a group, hand it to the map, apply what is committed)
// and Close's state. Its methods are the steps that span the halves: Write
// and AppendReplicated (a Seq from the log, pending keys in the map),
// TruncateAfter (records dropped from both), Open and Close. Files:
// range_store.cc (public surface, Write, Close), range_store_log.cc (the
// log worker), range_store_recovery.cc (Open), range_store_replication.cc
// (replication surface, AppendReplicated), range_store_truncate.cc
// (TruncateAfter), range_store_export.cc (exports, OpenFromSnapshot),
// range_store_split.cc (a split's narrowing), range_store_seed.cc (ranges
// built from ranges on this node, store_seed.h).
//
// Threads:
//   callers      Write() validates, takes a Seq and enqueues; Get/Scan read
//                the map; AppendReplicated checks and enqueues; Commit()
//                raises the commit point and wakes the log thread; ReadLog
//                reads the tail cache or the segment files.
//   a turn       (the log thread's, or a caller's: range_store.h "Turns")
//                group commit: write, fsync (policy always), hand the
//                durable group to the map (staged), apply what is
//                committed (everything durable while the gate is off),
//                callbacks. It also runs truncations (TruncateAfter waits).
//   sync thread  policy batch: fsyncs the active segment batch_interval
//                after the first unsynced write while the log thread keeps
//                appending (RangeLog's).
//   snapshot     background snapshots, log/snapshot garbage collection,
//                exports for replicas, the commit point (RangeSnapshots').
// Each "thread" is a worker of the store's Env (common/exec.h): a step
// function that never waits for another worker, so the simulation can run
// all of them on one thread. (The log thread's step may wait for turn_mu,
// but only while a caller's turn runs, which never spans a step: in the
// simulation it is always free.)
//
// Locks, in the order they may nest (never take one to the left while
// holding one to its right):
//
//   turn_mu -> close_mu -> snap_mu -> hist_mu -> listener_mu -> file_mu
//     -> log mu -> commit mu -> map_mu;   seg_mu -> tail_mu after log mu;
//   bg_mu alone; write_turns_mu under turn_mu at most (a callback's
//   Write), no other of the store's under it (the owner's `ask` posts
//   there); a worker's own lock (Notify) last
//
// close_mu is Impl's; snap_mu and bg_mu are RangeSnapshots'; hist_mu,
// listener_mu, file_mu, the log mu, seg_mu and tail_mu are RangeLog's; the
// commit mu and map_mu are CommittedMap's. Where one step must be atomic
// across both halves (a Seq taken and its keys noted pending; queued and
// staged records dropped by a truncation), Impl holds the log mu and then
// the commit mu, exactly where the store once held its single mutex.
// None is held across I/O except snap_mu (serializes snapshot writers and
// exports), hist_mu (serializes epoch history writers and is held across
// the history file's fsync), listener_mu (held by the log thread while it
// calls the listener, so SetLogListener can promise the old one is done)
// and file_mu (held across an fdatasync of the active segment, and while
// the log thread replaces it, so nobody syncs a closed file).
// No worker ever waits for another (they only notify each other), so no
// lock is held while waiting.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/exec.h"
#include "common/fs.h"
#include "common/mutex.h"
#include "kvnode/storage/committed_map.h"
#include "kvnode/storage/pending_write.h"
#include "kvnode/storage/range_log.h"
#include "kvnode/storage/range_snapshots.h"
#include "kvnode/storage/range_store.h"

namespace rangekv::kvnode {

uint64_t NextInstance();  // range_store.cc

// The span a split left the store (range_store_split.cc).
inline constexpr char kRetainedFileName[] = "retained";
inline constexpr char kRetainedTempName[] = "retained.tmp";
Status SaveRetainedFile(fs::FileSystem& fs, const std::string& dir, const KeyRange& keep);

// Whether a directory holding `names` no longer needs its seed marker: it
// is empty (made again since: set aside as damaged, or lost its files in a
// crash before its first log sync) or holds a snapshot (the first one is
// durable) (range_store_recovery.cc).
bool SeedMarkerStale(const std::vector<std::string>& names);

// The keys a recipe's range holds: its sources' adjacent spans, joined.
KeyRange RecipeSpan(const SeedRecipe& recipe);

// A new range's keys as of its recipe's seq (store_seed.h).
struct StoreSeed::Data {
  KeyMap map;
  Seq at{0};
};

struct RangeStore::Impl {
  Impl(RangeId id_in, KeyRange bounds_in, StoreOptions opts_in)
      : id(id_in),
        bounds_(std::move(bounds_in)),
        opts(std::move(opts_in)),
        env(opts.env != nullptr ? *opts.env : DefaultEnv()),
        fs(env.fs()),
        log(id, opts, fs),
        map(opts.commit_gate),
        snapshots(id, opts, fs, log, map) {}

  // ---- fixed at Open ----
  const uint64_t instance = NextInstance();
  const RangeId id;
  mutable Mutex bounds_mu_;
  KeyRange bounds_ GUARDED_BY(bounds_mu_);  // see bounds()
  const StoreOptions opts;
  Env& env;
  fs::FileSystem& fs;

  RangeLog log;
  CommittedMap map;
  RangeSnapshots snapshots;

  std::unique_ptr<exec::Worker> log_worker;
  // Turns (range_store.h): the log worker's steps and the turns callers
  // take (TurnHere) run one at a time under turn_mu, taken before every
  // other lock of the store. turn_owner: the thread inside a turn, so a
  // callback that writes to its own store leaves that write to the log
  // thread instead of taking the turn again.
  Mutex turn_mu;
  std::atomic<std::thread::id> turn_owner{};
  // SetWriteTurns. write_turn_asked: `ask` was called and the turn it
  // asked for has not begun; Write asks again only once it has (cleared
  // before the turn takes the queue, so no write is left behind).
  Mutex write_turns_mu;
  std::function<void()> write_turns GUARDED_BY(write_turns_mu);
  std::atomic<bool> write_turn_asked{false};

  // The keys Write admits: the range's bounds at Open, narrowed by a split
  // (RetainOnly).
  KeyRange bounds() const EXCLUDES(bounds_mu_) {
    MutexLock lock(bounds_mu_);
    return bounds_;
  }
  void set_bounds(KeyRange b) EXCLUDES(bounds_mu_) {
    MutexLock lock(bounds_mu_);
    bounds_ = std::move(b);
  }
  // Whether the key is inside the bounds (no copy of them: the read path
  // asks this for every request).
  bool InBounds(std::string_view key) const EXCLUDES(bounds_mu_) {
    MutexLock lock(bounds_mu_);
    return !admits_none_ && bounds_.Contains(key);
  }
  // A merged range's source that gave every key away (TakeSeed): every
  // key is outside from then on.
  void AdmitNone() EXCLUDES(bounds_mu_) {
    MutexLock lock(bounds_mu_);
    admits_none_ = true;
  }
  bool admits_none_ GUARDED_BY(bounds_mu_) = false;
  // Serializes writers of the retained file (RetainOnly, and a seeded
  // store's first snapshot: SaveBaseFiles); held while the map's retained
  // span changes, so a save never writes a span the map has left.
  Mutex retained_mu;
  // NOT_OWNER for a key outside the bounds: after a split it belongs to
  // another range, which the client finds in the map.
  Status Outside(std::string_view key) const;
  Mutex close_mu;
  bool closed GUARDED_BY(close_mu) = false;
  Status close_status GUARDED_BY(close_mu);

  // range_store.cc
  void Write(std::vector<proto::WriteOp> ops, WriteCallback cb);
  Status CheckOps(const std::vector<proto::WriteOp>& ops) const EXCLUDES(bounds_mu_);
  Status Close() EXCLUDES(close_mu);

  // range_store_log.cc
  void Start();
  exec::NextStep LogStep();
  void NotifyLog() {
    if (log_worker) log_worker->Notify();
  }
  // After Write queued: ask SetWriteTurns's turn, or wake the log thread.
  void AskWriteTurn() EXCLUDES(write_turns_mu);
  // A turn on the calling thread when none runs: writes what is queued
  // when `write` (the policy is not `always`) and applies what is
  // committed. Else, or when the queue holds work for the log thread
  // alone, wakes the log thread.
  void TurnHere(bool write);
  bool CallerWrites() const { return opts.fsync != FsyncPolicy::kAlways; }
  void ProcessGroup(std::vector<PendingWrite>& group);
  void ApplyCommitted();
  void FinishLog();
  // An I/O error: the log refuses writes from now on; the group, whatever
  // is queued and whatever is staged fail. Nothing of theirs was applied
  // or acknowledged.
  void EnterFailed(const Status& st, std::vector<PendingWrite>& group);

  // range_store_replication.cc
  void AppendReplicated(std::vector<LogRecord> records, WriteCallback cb);

  // range_store_truncate.cc
  void TruncateAfter(Seq seq, std::function<void(Status)> done);
  void RunTruncation();

  // range_store_recovery.cc. seed: the map of a store PrepareSeeded made
  // (store_seed.h), or nullptr.
  // seed: its map is loaded (moved); on failure it is moved back unless
  // records were applied onto it (then seed_consumed).
  Status Recover(StoreSeed::Data* seed = nullptr);
  Status RecoverFrom(StoreSeed::Data* seed, bool* seed_loaded);
  bool seed_consumed = false;

  // range_store_split.cc
  // A seeded store's epoch history and retained span, which only its
  // recipe gave until now: written before the first snapshot makes the
  // recipe stale (store_seed.h).
  Status SaveBaseFiles() EXCLUDES(retained_mu);
  // `absent`: the span kept when no file says (a seeded store's recipe).
  Status LoadRetained(const std::optional<KeyRange>& absent);
};

}  // namespace rangekv::kvnode
