// kvnode/storage/range_store.h — the storage of one range on one node.
//
// A RangeStore owns one range's durable state: its write-ahead log (one log
// and one sequence per range, kvnode/storage/wal_format.h), its snapshots, and the
// ordered in-memory map key -> (value, version) rebuilt from them at Open.
//
// Write path (group commit):
//
//   Write(ops, cb) --validate cas against latest state (committed + pending)
//        |          assign Seq, encode one WAL record, enqueue  [caller thread]
//        v
//   a turn: take everything queued, one writev(), one fsync under
//        |      `always`, then apply to the map in Seq order
//        |      (under `batch`/`never` a separate sync thread fdatasyncs
//        |      the active segment while appends go on)
//        v
//   cb(Seq) in the turn  -> the caller posts back to its own executor
//
// Turns: one at a time. Write queues and wakes the log thread, whose
// wake-up gathers concurrent writes into one group, or, when an owner set
// SetWriteTurns, asks its thread for one turn that takes every write
// queued until it runs. AppendReplicated, WriteTurn (both under `batch`
// and `never`; under `always` the fsync must not hold the caller) and
// CommitHere take the turn on the calling thread when none is running, so
// a replica's append, an owner's group and a commit point wake no log
// thread; when one is running, the log thread is woken instead.
// Truncations and the close are the log thread's.
//
// Visibility: Get/Scan see only writes whose callback has fired or is about
// to fire (durable per the policy and applied). A write is never visible
// before it is durable, so a crash can never take back a value a reader saw
// (under fsync=never/batch "durable" means "in the kernel's page cache": it
// survives a process crash but not a power loss).
//
// Ordering: writes take Seqs in the order Write() is called; cas and batch
// conditions are checked at that moment against the latest state including
// writes still pending, so a later write always sees an earlier one.
//
// Replication (kvnode/replication/, docs/replication.md). The same
// store serves an owner and a replica:
//
//   owner    Write() -> record carries epoch() -> written -> ReadLog ships
//            it -> Commit(hwm) once the ISR has it -> applied, cb fires.
//   replica  AppendReplicated(owner's exact record bytes) -> durable ->
//            cb(durable seq) = the ack -> Commit(owner's hwm) -> applied.
//
// With the commit gate on, a record is applied (visible to Get/Scan, its
// Write callback run) only once it is durable locally AND Commit() has
// reached its Seq; with the gate off (the default, standalone nodes) Commit
// is implied and the store behaves exactly as without replication. A
// record's Seq is its position in the log on every node; its epoch (the
// payload's epoch field) is the ownership epoch it was written under, and
// the epoch history (kvnode/storage/epoch_history.h) maps epochs to Seqs.
//
// Recovery (Open) of a replicated store (StoreOptions::commit_gate) applies
// the log only through the commit point it kept on disk (or its snapshot's
// end): records a replica had appended but nobody committed stay staged, so
// they are never readable and a divergent tail can still be truncated. A
// store without the gate applies the whole log. A truncation below
// committed() is refused, and the caller then resyncs from the owner's
// snapshot (OpenFromSnapshot).
//
// Threads: the log, sync and snapshot "threads" below are workers of the
// store's Env (common/exec.h): threads in production, simulated in sim/.
//
// Thread-safety: all methods are safe from any thread. Store callbacks
// (Write, AppendReplicated, TruncateAfterAsync, ExportSnapshotAsync) and the
// log listener run in a turn (on the log thread or inside the caller's
// AppendReplicated, CommitHere or WriteTurn) or on the snapshot worker: they
// must not call TruncateAfter, BeginEpoch, AppendReplicated, ExportSnapshot,
// SetLogListener or Close (post to another thread instead), and a caller
// must hold no lock its callbacks take. The log side
// (queue, Seqs, files) and the commit side (commit point, pending keys) each
// have a mutex, and a reader/writer mutex guards the map (readers share it;
// the log thread takes it exclusively to apply a group); none of them is
// held across I/O (the parts, lock order and details:
// kvnode/storage/range_store_impl.h). Do not destroy a store from inside one
// of its own write callbacks.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/exec.h"
#include "common/key_range.h"
#include "common/protocol.h"
#include "common/types.h"
#include "kvnode/storage/store_seed.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {
enum class FsyncPolicy : uint8_t {
  kAlways,  // fsync before acknowledging (group commit shares one fsync)
  kBatch,   // acknowledge after write(); fsync at most batch_interval later
  kNever,   // acknowledge after write(); leave flushing to the kernel
};
const char* FsyncPolicyName(FsyncPolicy p);
std::optional<FsyncPolicy> ParseFsyncPolicy(std::string_view s);

struct StoreOptions {
  std::string dir;  // the range's directory; created if missing
  // Where the store's workers (log, sync, snapshot) and files come from;
  // nullptr: DefaultEnv() (threads, the real disk).
  Env* env = nullptr;
  // A replicated store: the commit gate is on from Open (SetCommitGate),
  // the commit point is kept on disk (kvnode/storage/commit_point.h), and
  // Open applies the log only through it; records after it stay staged
  // until Commit() reaches them or TruncateAfter drops them.
  bool commit_gate = false;
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  std::chrono::milliseconds batch_interval{10};
  size_t segment_bytes = 64u << 20;          // rotate the WAL segment past this size
  size_t snapshot_after_bytes = 256u << 20;  // log bytes since the last snapshot
  // Log records kept below the snapshot for replica catch-up.
  uint64_t keep_records_below_snapshot = 100000;
  // Newest written records kept in memory for ReadLog (older ones are read
  // back from the segment files, most often from the page cache). Per
  // range: 4 MiB covers a replica seconds behind a range written at full
  // speed, and a node with a thousand ranges does not hold 16 GiB of them.
  size_t log_cache_bytes = 4u << 20;
};

// A whole WAL record as shipped between nodes: the exact bytes (record
// header + payload, kvnode/storage/wal_format.h), so a replica appends it without
// re-encoding. seq and epoch repeat what the bytes say.
struct LogRecord {
  Seq seq{0};
  Epoch epoch{0};
  std::string bytes;
};

// A record's Seq and epoch. {0, 0}: empty log. After OpenFromSnapshot, the
// snapshot's replay seq and the epoch given to it.
struct LogPosition {
  Seq seq{0};
  Epoch epoch{0};
  friend bool operator==(const LogPosition&, const LogPosition&) = default;
};

struct LogRead {
  std::vector<LogRecord> records;  // consecutive, starting at the asked Seq
  bool below_log_start = false;    // the asked Seq is only in snapshots
};

// A snapshot file handed out for shipping to a replica (ExportSnapshot).
struct SnapshotExport {
  std::string path;    // immutable while it is the store's current export
  Seq replay_from{0};  // R: the replica continues the log at R + 1
  Seq end{0};          // E: its map is consistent once E is applied
  uint64_t bytes = 0;  // file size
};

struct StoreStats {
  Seq last_seq{0};  // highest Seq durable and applied
  size_t keys = 0;
  uint64_t bytes = 0;      // key and value bytes of the committed map
  uint64_t wal_bytes = 0;  // bytes in live segments
  size_t segments = 0;
  Seq snapshot_seq{0};  // Seq covered by the newest snapshot (0: none)
};

class RangeStore {
 public:
  using WriteCallback = std::function<void(Result<Seq>)>;

  // Opens (or creates) the store in opts.dir: loads the newest valid
  // snapshot, replays the log after it, truncates a torn tail of the newest
  // segment. Corruption anywhere else returns CORRUPTION naming the file and
  // offset; the range must then not be served.
  static Result<std::unique_ptr<RangeStore>> Open(RangeId id, KeyRange bounds, StoreOptions opts);
  // The same for a directory PrepareSeeded made whose first snapshot is
  // not written yet (PendingSeed): its map at the recipe's seq is `seed`,
  // its log continues after it. The snapshot is written in the background
  // shortly after (base_pending() until it is durable).
  static Result<std::unique_ptr<RangeStore>> Open(RangeId id, KeyRange bounds, StoreOptions opts,
                                                  StoreSeed seed);
  // The same; on failure *seed keeps its keys (usable()) unless the log
  // had applied records onto them, so a later try needs no new seed.
  static Result<std::unique_ptr<RangeStore>> Open(RangeId id, KeyRange bounds, StoreOptions opts,
                                                  StoreSeed* seed);

  ~RangeStore();  // Close() if not yet closed
  RangeStore(const RangeStore&) = delete;
  RangeStore& operator=(const RangeStore&) = delete;

  RangeId id() const;
  // The keys Write admits (the bounds given at Open, narrowed by
  // RetainOnly).
  KeyRange bounds() const;
  // Whether Write admits key (bounds().Contains(key), without the copy).
  bool Admits(std::string_view key) const;
  // Distinct for every store this process opens, and growing: names this
  // copy of the range (a replica's acknowledgements speak for one copy).
  uint64_t instance() const;

  // Reads of committed state. Keys outside bounds() are a caller bug.
  std::optional<proto::Entry> Get(std::string_view key) const;
  // Up to limit entries with start <= key < end (end nullopt: unbounded),
  // in key order; *more is set when entries remain past the limit.
  std::vector<proto::Entry> Scan(std::string_view start, const std::optional<std::string>& end,
                                 uint32_t limit, bool* more) const;
  // The reads a server answers with: NOT_OWNER for a key (a scan's start)
  // outside bounds(), so a read that reached the store through a table
  // from before a split is refused, never answered "not found" after the
  // keys split off were dropped. The scan stops at the bounds' end (*more
  // is then set: the rest is in the next range).
  Result<std::optional<proto::Entry>> GetInBounds(std::string_view key) const;
  Result<std::vector<proto::Entry>> ScanInBounds(std::string_view start,
                                                 const std::optional<std::string>& end,
                                                 uint32_t limit, bool* more) const;

  // Appends ops as one atomic record. cb runs exactly once, in a turn (on
  // the log thread, or inside the CommitHere that commits it or the
  // WriteTurn that writes it; inline for
  // an immediate error such as CAS_FAILED): with the
  // record's Seq (the new version of every key it touched) once durable and
  // applied (and committed, gate on), or with an error, in which case
  // nothing was applied. One exception, gate on only: a record durable but
  // not committed when the store closes gets UNAVAILABLE "range store is
  // closed" although it stays in the log, so a reopen applies it (its
  // outcome is unknown, as after a timeout).
  // put/delete/cas semantics: delete of a missing key succeeds; cas with
  // expected_version 0 requires the key to be absent.
  void Write(std::vector<proto::WriteOp> ops, WriteCallback cb);

  StoreStats Stats() const;
  // OK, or the I/O error that stopped the store from taking writes (it
  // refuses every write from then on; what its log holds is unknown).
  Status health() const;
  // Open found the log's end damaged and cut it off. Usually a write torn by
  // a crash, but it may have been a record that was acknowledged and then
  // damaged on disk: this copy may lack acknowledged records.
  bool cut_tail_at_open() const;

  // Writes a snapshot now (normally done in the background) and deletes
  // segments below the low-water mark. For tests and shutdown.
  Status SnapshotNow();

  // Stops accepting writes, completes queued ones, fsyncs, stops threads.
  // Records durable but not committed (commit gate on) are not applied:
  // their Write callbacks get UNAVAILABLE "range store is closed".
  Status Close();

  // ---- replication: commit ----

  // Commit gate. Off (default): a write is applied and its callback fires
  // once it is durable locally. On: a record (written or replicated) is
  // applied and its callback fires only once it is durable locally AND
  // Commit() has reached its Seq. Turning the gate off commits everything
  // durable.
  void SetCommitGate(bool on);
  // Raises the commit point (never lowers it; only TruncateAfter does).
  // Newly committed durable records are applied in Seq order, and their
  // callbacks run, on the log thread (woken here). A commit point beyond
  // durable() takes effect as records become durable. Any thread.
  void Commit(Seq through);
  // Commit, applying on the calling thread when no turn of the log is
  // running (a turn: see Write), so the log thread is not woken for every
  // commit point (the replication thread). The callbacks of the records
  // applied run here: the caller must hold no lock a callback may take.
  void CommitHere(Seq through);
  // Where the owner's writes take their turn under `batch` and `never`
  // (the replication thread, which the log's news wakes anyway): Write
  // calls `ask`, at most once until the turn asked for runs, and `ask`
  // must have WriteTurn() called soon on a thread of its own; Write never
  // waits for it. nullptr (the default, and always under `always`, whose
  // fsync must hold no caller): the log thread's wake-up. Replacing it
  // hands whatever is queued to the log thread, so a turn asked of the
  // previous one and never run loses nothing.
  void SetWriteTurns(std::function<void()> ask);
  // The turn SetWriteTurns's `ask` asked for: writes what is queued, on
  // the calling thread when no turn is running (else the log thread does).
  // Callbacks run here, as in CommitHere.
  void WriteTurn();
  // Highest Seq applied (the commit point as applied).
  Seq committed() const;
  // Highest Seq durable per the fsync policy (always: fsync'ed; batch and
  // never: written).
  Seq durable() const;
  // The last record written to the log file (maybe not durable yet).
  LogPosition last() const;
  // The last Seq a Write took, written or still queued (>= last().seq).
  Seq assigned() const;
  // The first Seq the log still holds; records below are only in snapshots.
  // last().seq + 1 when the log holds none.
  Seq log_start() const;
  // 0, or for a store made by OpenFromSnapshot, the installed snapshot's
  // end seq E: its map is consistent only once committed() >= E, so stale
  // reads must be refused before.
  Seq consistent_from() const;

  // ---- replication: epochs ----

  // Records written by Write() from now on carry epoch e. Persists
  // (e, next seq) in the epoch history before returning. e must be >=
  // epoch() (else BAD_REQUEST); equal is a no-op.
  Status BeginEpoch(Epoch e);
  // The newest epoch of the history (0 when none).
  Epoch epoch() const;
  // The last Seq written under an epoch <= e: the Seq before the first
  // record of the first epoch > e, or last().seq when no later epoch
  // started. A replica whose last record has epoch e truncates to
  // min(its last seq, owner.EpochEnd(e)). 0 when e is older than what a
  // store opened from a snapshot knows (the replica must then resync).
  Seq EpochEnd(Epoch e) const;
  // The epoch of the record at seq per the epoch history.
  Epoch EpochAt(Seq seq) const;

  // ---- replication: the owner's side ----

  // Up to max_bytes (at least one record if any) of records with Seq >=
  // from, through last().seq, in Seq order: from the in-memory tail cache,
  // else from the segment files (works after a restart and across
  // segments). below_log_start (and no records) when from < log_start():
  // the caller must ship a snapshot. Empty when from > last().seq.
  Result<LogRead> ReadLog(Seq from, size_t max_bytes) const;
  // fn(written, durable) runs on the log thread after every group is
  // written (and, under fsync always, again once it is fsync'ed), with
  // last().seq and durable(). It must be quick and must not call back into
  // the store's blocking methods (Write callbacks, TruncateAfter,
  // SetLogListener); reading last()/durable()/committed() is fine. Once
  // SetLogListener returns, the previous fn is no longer running or called.
  void SetLogListener(std::function<void(Seq written, Seq durable)> fn);

  // Owner side: a snapshot file to ship. Reuses the current export while
  // the log still holds its replay seq + 1 (so every replica catching up at
  // the same time gets the same file); otherwise exports the newest
  // snapshot the log covers, taking one now when there is none. The file is
  // a hard link to the store's snapshot, kept (readable at `path`) until
  // the next export replaces it; a leftover is removed at the next Open.
  // Blocks for the length of a snapshot when it takes one: call it off any
  // latency-sensitive thread.
  Result<SnapshotExport> ExportSnapshot();
  // The same on the store's snapshot worker; done runs there, exactly once
  // (UNAVAILABLE when the store closes first).
  void ExportSnapshotAsync(std::function<void(Result<SnapshotExport>)> done);

  // ---- replication: the replica's side ----

  // Appends records received from the owner. They must be consecutive and
  // start right after the last record written or queued (last().seq + 1
  // when nothing is in flight), else BAD_REQUEST; header and payload crcs
  // and payload decoding are checked (CORRUPTION); epochs must not go down,
  // within the batch or against the last record in the log (BAD_REQUEST).
  // On any error nothing is appended and cb runs inline. Records keep their
  // owner-assigned Seqs and epochs; a record whose epoch is newer than the
  // history's last adds (epoch, seq) to it. cb(Seq of the last record) runs
  // on the log thread once all of them are durable per the fsync policy
  // (or with an error, e.g. when TruncateAfter or Close dropped them). They
  // are applied only when Commit() covers them (gate on).
  void AppendReplicated(std::vector<LogRecord> records, WriteCallback cb);
  // Drops every record above seq: from the epoch history first, then from
  // the log (later segments deleted, the one holding seq + 1 cut back, all
  // fsync'ed), so a crash in between leaves a log that Open accepts.
  // Writes and appends queued or staged above seq fail (their callbacks
  // get UNAVAILABLE before this returns), the commit point is lowered to
  // seq if above, and the next record must be seq + 1. BAD_REQUEST when seq < committed() (applied
  // state cannot be taken back; the caller resyncs from a snapshot). Runs
  // its work on the log thread and waits for it: never call it from a
  // store callback or the log listener. seq >= last().seq is a no-op for
  // the log. Blocking; not for simulated stores (TruncateAfterAsync).
  Status TruncateAfter(Seq seq);
  // The same without waiting: the checks, the commit point and the history
  // happen here, the log work on the log worker, and done (on the log
  // worker, or here for an immediate error) gets its outcome. One
  // truncation at a time (a second gets UNAVAILABLE until the first is done).
  void TruncateAfterAsync(Seq seq, std::function<void(Status)> done);

  // Replica side: wipes opts.dir, installs `snapshot_file` (snapshot
  // format, kvnode/storage/snapshot.h, received from the owner; verified whole
  // first, fsync'ed, then moved into opts.dir, so it must not be inside
  // it), and opens a store whose log is empty and continues at R + 1 (R =
  // the snapshot's replay seq): last() == {R, epoch}, log_start() == R + 1,
  // epoch history based at (R, epoch) with no entry yet (the records that
  // follow add theirs), consistent_from() == E. epoch must be the epoch of
  // the owner's record R (not the owner's current epoch): the base is then
  // the truth, so EpochEnd answers as any other copy's would. A restart
  // before E is reached reopens the same way. The commit gate is
  // opts.commit_gate, as for Open.
  // The installed store holds only `bounds` (see RetainOnly): the owner's
  // snapshot may come from after a split that dropped the rest.
  static Result<std::unique_ptr<RangeStore>> OpenFromSnapshot(RangeId id, KeyRange bounds,
                                                              StoreOptions opts,
                                                              const std::string& snapshot_file,
                                                              Epoch epoch);

  // ---- splits (docs/elastic.md §3; range_store_split.cc) ----

  // The parent's side: from now on the store admits and holds only keys of
  // `keep` (inside bounds(), else BAD_REQUEST). Durably first (the file
  // "retained" in its directory), then the other keys leave the map, and
  // records applied later (a replica catching up on records from before
  // the split, a replay at Open) leave them out.
  Status RetainOnly(const KeyRange& keep);
  // Only the admission part of RetainOnly, at once and in memory: Write
  // refuses keys outside `keep` (NOT_OWNER) from now on, and the map keeps
  // every key (a range split off is still to be built from it).
  Status NarrowWrites(const KeyRange& keep);
  // The span the map holds every key of; nullopt: every key its log and
  // snapshots name (never narrowed).
  std::optional<KeyRange> retained() const;
  // The key that halves the bytes of the committed map within bounds()
  // (a size split cuts there); nullopt with fewer than two keys.
  std::optional<std::string> MiddleKey() const;
  // Whether the map holds every key of span (a split may build from it).
  bool Holds(const KeyRange& span) const;
  // Whether the map holds no key outside `bounds` and admits none: true
  // once RetainOnly(bounds) ran, or when bounds() is `bounds` and no key
  // outside it was ever applied.
  bool HoldsOnly(const KeyRange& bounds) const;

  // ---- ranges built from ranges on this node (store_seed.h) ----

  // The keys of recipe.sources[i].span in stores[i] as of its seq, for
  // Open. RANGE_UNAVAILABLE when a store does not hold its span or has not
  // applied its seq yet; INTERNAL when a key of a span has a version after
  // its seq (a write slipped past the split's or merge's fence: the copy
  // would not be the source's state at that seq).
  static Result<StoreSeed> CopySeed(const SeedRecipe& recipe,
                                    std::span<const RangeStore* const> stores);
  // As CopySeed, but a span leaves its source rather than being copied
  // (its map nodes move: the cost is the smaller side, not the span's
  // keys) wherever that is safe; the source then refuses the span's keys
  // (NOT_OWNER) and writes no snapshot until RetainOnly narrows its files
  // too (CommittedMap::GiveSpan). gone[i]: stores[i] is a merged range's
  // source, gone from the map, which gives every key and admits none
  // afterwards; else only a span at the end of what the source holds
  // moves (a split's right part), any other is copied.
  static Result<StoreSeed> TakeSeed(const SeedRecipe& recipe, std::span<RangeStore* const> stores,
                                    std::span<const bool> gone);
  // Makes opts.dir the directory of range id built from `recipe`: the
  // marker first (durably), then, built aside and renamed into place, the
  // epoch history based at (recipe.at, recipe.epoch) and `span` retained.
  // recipe.at 0 (no record yet): an empty store, no marker.
  static Status PrepareSeeded(RangeId id, const KeyRange& span, const SeedRecipe& recipe,
                              StoreOptions opts);
  // The recipe of a directory PrepareSeeded made whose first snapshot is
  // not durable yet: Open needs its seed. nullopt otherwise.
  static Result<std::optional<SeedRecipe>> PendingSeed(fs::FileSystem& fs, const std::string& dir);
  // This store was opened from a seed and its first snapshot is not
  // durable yet: its sources must keep their keys.
  bool base_pending() const;
  // TakeSeed moved keys out of this store's map that its files still
  // hold (until RetainOnly): a seed needing them again cannot be made here.
  bool gave_away() const;

 private:
  struct Impl;
  explicit RangeStore(std::unique_ptr<Impl> impl);
  // Adds the committed entries of span as of `at` to *seed (the checks
  // of CopySeed).
  Status CopySpanTo(StoreSeed& seed, const KeyRange& span, Seq at) const;
  // The same, moving the span's entries where it can (TakeSeed, which
  // checks the source first).
  Status TakeSpanTo(StoreSeed& seed, const KeyRange& span, Seq at, bool gone);
  // RANGE_UNAVAILABLE unless the map holds span and has applied `at`.
  Status CheckSource(const KeyRange& span, Seq at) const;
  // INTERNAL when a key of span has a version above `at`.
  Status CheckFence(const KeyRange& span, Seq at, uint64_t max_version) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rangekv::kvnode
