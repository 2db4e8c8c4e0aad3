// kvnode/storage/range_store_impl.h — internals of RangeStore, shared by its .cc files
// (range_store.cc: reads and the write path; range_store_log.cc: the log
// thread; range_store_recovery.cc: Open; range_store_snapshot.cc: snapshots;
// range_store_replication.cc: commit, epochs, AppendReplicated, ReadLog;
// range_store_truncate.cc: TruncateAfter; range_store_export.cc:
// ExportSnapshot and OpenFromSnapshot). Not for use outside
// kvnode/range_store*.cc.
//
// Threads:
//   callers      Write() validates, assigns a Seq and enqueues; Get/Scan read;
//                AppendReplicated checks and enqueues; Commit() raises
//                commit_seq and wakes the log thread; ReadLog reads the
//                tail cache or the segment files.
//   log thread   group commit: write, fsync (policy always), then apply what
//                is committed (everything durable while the gate is off),
//                callbacks. Durable but uncommitted records wait in
//                `staged`. It also runs truncations (TruncateAfter waits).
//   sync thread  policy batch: fsyncs the active segment batch_interval
//                after the first unsynced write while the log thread keeps
//                appending.
//   snapshot     background snapshots, log/snapshot garbage collection, and
//                snapshot exports for replicas (ExportSnapshotAsync).
// Each "thread" is a worker of the store's Env (common/exec.h): a step
// function that never waits for another worker, so the simulation can run
// all of them on one thread.
//
// Locks, in the order they may nest (never take one to the left while
// holding one to its right); none is held across I/O except snap_mu, which
// only serializes snapshot writers and exports, hist_mu, which serializes
// epoch history writers (BeginEpoch, AppendReplicated, TruncateAfter) and
// is held across the history file's fsync, and listener_mu, held by the
// log thread while it calls the log listener (so SetLogListener can
// promise the old one is done):
//
//   close_mu -> snap_mu -> hist_mu -> listener_mu -> file_mu -> mu -> map_mu
//     -> seg_mu -> tail_mu;   bg_mu alone; a worker's own lock (Notify) last
//
// No worker ever waits for another (they only notify each other), so no
// lock is held while waiting.
//
// file_mu is held across an fdatasync of the active segment (sync thread,
// snapshot worker) and by the log thread while it replaces the active
// segment (rotation, truncation), so nobody syncs a closed file. Appends do
// not take it.
//
// map_mu is a shared_mutex: Get/Scan and snapshot chunks share it, the log
// thread takes it exclusively once per group to apply. Readers never wait
// for I/O, and a reader holding it only delays the apply of the next group.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/exec.h"
#include "common/fs.h"
#include "kvnode/storage/epoch_history.h"
#include "kvnode/storage/range_store.h"
#include "kvnode/storage/snapshot.h"
#include "kvnode/storage/wal.h"

namespace rangekv::kvnode {

struct StoredValue {
  std::string value;
  uint64_t version = 0;  // Seq of the write that last changed the key
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// The committed map: ordered for scans and snapshots, plus a hash index of
// the same nodes so that point reads and overwrites of existing keys skip
// the tree walk. The index holds views of the tree's keys and iterators
// into it; both stay valid until the node is erased (also across a move of
// the whole KeyMap). Not thread-safe: guarded by map_mu.
class KeyMap {
 public:
  using Ordered = std::map<std::string, StoredValue, std::less<>>;

  KeyMap() = default;
  KeyMap(KeyMap&&) = default;
  KeyMap& operator=(KeyMap&&) = default;
  KeyMap(const KeyMap&) = delete;
  KeyMap& operator=(const KeyMap&) = delete;

  // nullptr when absent. Valid until the key is next written or deleted.
  const StoredValue* Find(std::string_view key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }
  void Put(std::string_view key, std::string value, uint64_t version) {
    if (auto it = index_.find(key); it != index_.end()) {
      StoredValue& stored = it->second->second;
      stored.value = std::move(value);
      stored.version = version;
      return;
    }
    auto [node, inserted] =
        tree_.try_emplace(std::string(key), StoredValue{std::move(value), version});
    index_.emplace(std::string_view(node->first), node);
  }
  // Put for keys arriving in ascending order (snapshot load): no tree walk.
  void PutInOrder(std::string_view key, std::string value, uint64_t version) {
    auto node = tree_.emplace_hint(tree_.end(), std::string(key), StoredValue{});
    node->second = StoredValue{std::move(value), version};
    index_.emplace(std::string_view(node->first), node);
  }
  void Delete(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    auto node = it->second;
    index_.erase(it);
    tree_.erase(node);
  }
  size_t size() const { return tree_.size(); }
  const Ordered& ordered() const { return tree_; }

 private:
  Ordered tree_;
  std::unordered_map<std::string_view, Ordered::iterator, StringHash> index_;
};

// A record between Write()/AppendReplicated() and its apply.
struct PendingWrite {
  Seq seq{0};
  Epoch epoch{0};
  std::string record;               // record header + payload; moved to the tail cache once written
  std::vector<proto::WriteOp> ops;  // cas already resolved to put
  RangeStore::WriteCallback cb;     // Write(): once applied
  RangeStore::WriteCallback durable_cb;  // AppendReplicated: once durable (last of its batch)
};

// The newest pending write to a key: what a cas must compare against.
struct PendingKey {
  Seq seq{0};
  bool exists = false;  // false: the pending write deletes the key
};

struct SegmentInfo {
  Seq first{0};
  std::string path;
  uint64_t bytes = 0;
  // Sparse record positions, ascending, at least every kIndexEvery bytes:
  // where ReadLog starts scanning for a Seq.
  std::vector<wal::RecordPosition> index;
};
inline constexpr uint64_t kIndexEvery = 256u << 10;

uint64_t NextInstance();  // range_store.cc

struct RangeStore::Impl {
  Impl(RangeId id_in, KeyRange bounds_in, StoreOptions opts_in)
      : id(id_in),
        bounds(std::move(bounds_in)),
        opts(std::move(opts_in)),
        env(opts.env != nullptr ? *opts.env : DefaultEnv()),
        fs(env.fs()),
        gate(opts.commit_gate) {}

  // ---- fixed at Open ----
  const uint64_t instance = NextInstance();
  const RangeId id;
  const KeyRange bounds;
  const StoreOptions opts;
  Env& env;
  fs::FileSystem& fs;

  // ---- the committed map (map_mu) ----
  mutable std::shared_mutex map_mu;
  KeyMap map;
  Seq applied_seq{0};

  // ---- the write queue and its state (mu) ----
  mutable std::mutex mu;
  std::vector<PendingWrite> queue;
  std::unordered_map<std::string, PendingKey, StringHash, std::equal_to<>> pending;
  struct DeferredFailure {
    Status status;
    WriteCallback cb;
  };
  std::multimap<Seq, DeferredFailure> deferred;  // by the Seq each waits for
  Seq next_seq{1};
  Seq written_seq{0};     // last Seq written to the segment file
  Seq synced_seq{0};      // last Seq fsync'ed
  MonoClock::time_point unsynced_since;  // written_seq first passed synced_seq
  bool sync_thread_stop = false;
  Status failed;  // set once, by the first I/O error; writes refused after
  bool closing = false;
  bool log_exited = false;
  // Replication. written_seq is durable() (under always it moves only after
  // the fsync); log_end is last() and moves right after the write.
  bool gate = false;
  Seq commit_seq{0};                // Commit()'s point; lowered only by a truncation
  Seq committing_seq{0};            // highest Seq the log thread took to apply (>= applied_seq)
  LogPosition log_end;              // last record written
  Epoch last_record_epoch{0};       // of the newest record written or queued; 0: none in the log
  EpochHistory history;             // written under hist_mu too
  uint64_t log_gen = 0;             // bumped whenever written records are taken back
  std::optional<Seq> truncate_req;  // for the log thread
  std::function<void(Status)> truncate_done;  // with truncate_req
  Seq consistent_from{0};  // fixed at Open
  bool cut_tail = false;   // fixed at Open: recovery cut a damaged end off the log
  // Recovery applies records only through this (commit_gate stores).
  std::optional<Seq> apply_through;

  // ---- the active segment: replaced only by the log thread, under file_mu ----
  std::mutex file_mu;
  std::unique_ptr<wal::SegmentWriter> active;

  // ---- log thread only ----
  std::vector<std::string_view> iov;
  bool dirty = false;               // written but not fsync'ed by the log thread
  std::deque<PendingWrite> staged;  // durable, waiting for Commit (read under mu too)

  // ---- Write()'s epoch, read without mu; checked again under it ----
  std::atomic<uint64_t> write_epoch{0};

  // ---- epoch history writers (hist_mu) ----
  std::mutex hist_mu;

  // ---- the log listener (listener_mu) ----
  std::mutex listener_mu;
  std::function<void(Seq, Seq)> listener;

  // ---- newest written records for ReadLog (tail_mu) ----
  mutable std::mutex tail_mu;
  std::deque<LogRecord> tail;
  size_t tail_bytes = 0;

  // ---- live segments, oldest first; back() is the active one (seg_mu) ----
  mutable std::mutex seg_mu;
  std::deque<SegmentInfo> segments;

  // ---- snapshots (snap_mu) ----
  std::mutex snap_mu;
  std::vector<Seq> snapshots;  // replay-from Seqs of known-good snapshots, ascending
  std::optional<SnapshotExport> current_export;
  std::atomic<uint64_t> snapshot_seq{0};
  std::atomic<uint64_t> bytes_since_snapshot{0};
  std::atomic<bool> stop_snapshots{false};

  // ---- background snapshot worker control (bg_mu) ----
  std::mutex bg_mu;
  bool bg_requested = false;
  bool bg_stop = false;
  MonoClock::time_point bg_retry_after;  // after a failed snapshot
  std::vector<std::function<void(Result<SnapshotExport>)>> export_waiters;
  bool checkpoint_wanted = false;           // the applied point moved (commit_gate)
  MonoClock::time_point checkpoint_at;      // last commit point saved then
  Seq checkpoint_saved{0};                  // snapshot worker (and Close) only

  std::unique_ptr<exec::Worker> log_worker;
  std::unique_ptr<exec::Worker> sync_worker;  // policy batch only
  std::unique_ptr<exec::Worker> snapshot_worker;

  std::mutex close_mu;
  bool closed = false;
  Status close_status;

  // range_store.cc
  void Write(std::vector<proto::WriteOp> ops, WriteCallback cb);
  Status CheckOps(const std::vector<proto::WriteOp>& ops) const;
  // *wait: the pending (uncommitted) write a failure was decided from, or 0.
  Status CheckConditionsLocked(const std::vector<proto::WriteOp>& ops, Seq* wait);
  Status Close();

  // range_store_log.cc
  exec::NextStep LogStep();
  void FinishLog();
  void NotifyLog() {
    if (log_worker) log_worker->Notify();
  }
  void ProcessGroup(std::vector<PendingWrite>& group);
  Status RotateIfNeeded(Seq next);
  LogPosition PublishWritten(std::vector<PendingWrite>& group, uint64_t size_before);
  void UnpublishWritten(LogPosition end_before, uint64_t size_before);
  void NotifyListener();
  Seq CommitLimitLocked() const;
  bool CanApplyLocked() const;
  void ApplyCommitted();
  void ApplyGroup(std::vector<PendingWrite>& group);
  void FinishGroupLocked(const std::vector<PendingWrite>& group);
  void ErasePendingLocked(const std::vector<PendingWrite>& applied);
  void FailStaged(const Status& st);
  // A failed cas decided from a write that is not committed yet answers
  // only once that write is applied (or with UNAVAILABLE once it is
  // dropped): a reader must never see the old version after the cas was
  // told it changed. Guarded by mu; fired on the log thread.
  void FireDeferredUpTo(Seq applied);
  void FailDeferredAbove(Seq seq, const Status& st);
  void SyncNow();
  void EnterFailed(const Status& st, std::vector<PendingWrite>& group);
  exec::NextStep SyncStep();
  bool SyncDueLocked(MonoClock::time_point now) const;
  // fdatasyncs the active segment (everything written so far is in it or
  // in an older, synced segment); fails the store on an error.
  Status SyncActive();
  void StopSyncWorker();
  // Makes the log durable through `seq` on the calling thread (the snapshot
  // worker: a snapshot must never be durable ahead of the log it needs).
  Status SyncThrough(Seq seq);

  // range_store_replication.cc
  void AppendReplicated(std::vector<LogRecord> records, WriteCallback cb);
  Status CheckAppendLocked(const std::vector<LogRecord>& records) const;
  Result<LogRead> ReadLog(Seq from, size_t max_bytes) const;
  bool ReadTail(Seq from, Seq through, size_t max_bytes, LogRead* out) const;
  Status ReadSegments(Seq from, Seq through, size_t max_bytes, LogRead* out) const;
  Seq LogStart() const;
  Status SaveHistory(const EpochHistory& h);

  // range_store_truncate.cc
  void TruncateAfter(Seq seq, std::function<void(Status)> done);
  void RunTruncation();
  Status TruncateQueuedLocked(Seq seq, std::vector<WriteCallback>* failed_cbs);
  Result<Epoch> TruncateLogFiles(Seq seq);
  void RebuildPendingLocked();

  // range_store_export.cc
  Result<SnapshotExport> ExportSnapshot();

  // range_store_recovery.cc
  Status Recover();
  Result<snapshot::SnapshotInfo> LoadUsableSnapshot(const std::vector<Seq>& snaps,
                                                    std::optional<Seq> log_start);
  // What recovery learns from the records' epochs, across segments.
  struct EpochScan {
    bool any = false;                // the log holds at least one record
    Epoch last{0};                   // the highest epoch seen
    std::vector<EpochStart> starts;  // where each higher epoch first appears
  };
  Result<wal::SegmentSummary> ReplaySegment(const std::string& path, Seq name_seq,
                                            wal::SegmentRole role, Seq replay_from,
                                            uint64_t* replayed_bytes, EpochScan* epochs,
                                            std::vector<wal::RecordPosition>* index);
  Status RecoverHistory(EpochHistory loaded, const EpochScan& scan, Seq log_first, Seq last);
  Status OpenActiveSegment(Seq last, const wal::SegmentSummary& newest);

  // range_store_snapshot.cc
  exec::NextStep SnapshotStep();
  // Saves the commit point (the applied seq) after making the log durable
  // through it; on the snapshot worker, or at Close.
  Status SaveCheckpoint();
  void WantCheckpoint();
  void RequestSnapshot();
  Status TakeSnapshot();
  Status TakeSnapshotLocked();
  Status WriteSnapshotFile(Seq replay_from, Seq* end);
  void PruneSnapshots();
  void DeleteSegmentsBelow(Seq low_water);
};

// "export-<20 digits>.snap" (range_store_export.cc).
bool IsExportFileName(std::string_view name);

// Applies one decoded or pending op to a map (recovery and the log thread).
inline void ApplyPut(KeyMap& map, std::string_view key, std::string value, Seq seq) {
  map.Put(key, std::move(value), seq.value());
}
inline void ApplyDelete(KeyMap& map, std::string_view key) { map.Delete(key); }

}  // namespace rangekv::kvnode
