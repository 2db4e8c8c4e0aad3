// kvnode/storage/committed_map.h — the map half of a RangeStore: the
// committed key map and everything waiting to join it. Internal to
// kvnode/storage (committed_map.cc; used by RangeStore::Impl and
// RangeSnapshots).
//
// Owns: the KeyMap and applied_seq (what Get/Scan/committed() see), the
// commit gate and commit point, the staged records (durable, not yet
// committed), the pending keys (the newest unapplied write to each key,
// which a cas compares against) and the cas failures deferred until the
// write they were decided from is applied. It never touches the log: the
// log hands it durable records (Stage), and the store asks it whether a
// truncation may take records back.
//
// Threads:
//   callers      Get/Scan/applied() share map_mu_; Write/AppendReplicated
//                note pending keys and check cas under mu() (held by
//                RangeStore::Impl after RangeLog's mutex); Commit and
//                SetGate move the commit point.
//   a turn       (the store's log thread, or a caller's turn: range_store.h
//                "Turns"; one at a time) Stage, ApplyCommitted (map_mu_
//                exclusive once per group, then the callbacks, with no
//                lock held), FailStaged, the truncation's drop.
//   snapshot     AddChunk copies the map out in chunks under map_mu_ shared
//                (and CopySpanChunk, for a range built from this one).
//
// Locks: mu_ -> map_mu_ (and RangeLog's mutex before mu_, see
// range_store_impl.h). Neither is held across I/O or a callback. map_mu_ is
// a reader/writer mutex: readers never wait for I/O, and a reader only
// delays the apply of the next group.
//
// Why the commit limit needs no durable seq from the log: staged_ only ever
// holds durable records (the log hands a group over once it is durable, and
// a truncation drops staged records above its seq before it lowers the
// log's durable point), so "committed and durable" is "staged and covered
// by the commit point" (or just "staged", gate off).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/key_range.h"
#include "common/mutex.h"
#include "common/protocol.h"
#include "kvnode/storage/key_map.h"
#include "kvnode/storage/pending_write.h"
#include "kvnode/storage/range_store.h"
#include "kvnode/storage/snapshot.h"
#include "kvnode/storage/wal.h"

namespace rangekv::kvnode {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class CommittedMap {
 public:
  using WriteCallback = RangeStore::WriteCallback;

  explicit CommittedMap(bool gate) : gate_(gate) {}
  CommittedMap(const CommittedMap&) = delete;
  CommittedMap& operator=(const CommittedMap&) = delete;

  // Exposed so RangeStore::Impl can hold it (after RangeLog's mutex) where
  // one step spans both halves.
  Mutex& mu() RETURN_CAPABILITY(mu_) { return mu_; }

  // ---- reads ----

  std::optional<proto::Entry> Get(std::string_view key) const EXCLUDES(map_mu_);
  std::vector<proto::Entry> Scan(std::string_view start, const std::optional<std::string>& end,
                                 uint32_t limit, bool* more) const EXCLUDES(map_mu_);
  // The highest Seq applied.
  Seq applied() const EXCLUDES(map_mu_);
  // applied(), the number of keys and their bytes, at one moment.
  void Stats(Seq* applied, size_t* keys, uint64_t* bytes) const EXCLUDES(map_mu_);
  // The first key at or after which the keys of span hold at most half of
  // their bytes, past span's start; nullopt when there is none (fewer than
  // two keys in span). What a size split cuts at.
  std::optional<std::string> MiddleKey(const KeyRange& span) const EXCLUDES(map_mu_);

  // ---- callers: writes (mu() held) ----

  // Every cas in ops compares against the state before them (the newest
  // pending write to its key, else the map), so the outcome does not depend
  // on their order. *wait: the pending write a failure was decided from, or 0.
  Status CheckConditionsLocked(const std::vector<proto::WriteOp>& ops, Seq* wait) const
      REQUIRES(mu_) EXCLUDES(map_mu_);
  // A failed cas decided from a write that is not applied yet answers only
  // once that write is (or with the error that drops it): a reader must
  // never see the old version after the cas was told it changed.
  void DeferLocked(Seq wait, Status st, WriteCallback cb) REQUIRES(mu_);
  // ops (cas resolved) will be record seq: the newest pending write to their keys.
  void AddPendingLocked(Seq seq, const std::vector<proto::WriteOp>& ops) REQUIRES(mu_);

  // ---- the commit point ----

  // Both return whether staged records became committed (the log thread
  // must be woken to apply them).
  bool SetGate(bool on) EXCLUDES(mu_);
  bool Commit(Seq through) EXCLUDES(mu_);

  // ---- the log thread ----

  bool CanApplyLocked() const REQUIRES(mu_);
  // Takes over a group the log made durable (after its durable callbacks).
  void Stage(std::vector<PendingWrite>& group) EXCLUDES(mu_);
  // Applies the staged records the commit point covers, in Seq order, then
  // runs their callbacks and the deferred cas failures they decide. False
  // when there was nothing to apply. One call at a time (the store's turns).
  bool ApplyCommitted() EXCLUDES(mu_, map_mu_);
  // Durable records that will never be applied (close, I/O failure): their
  // callbacks and every deferred failure get st.
  void FailStaged(const Status& st) EXCLUDES(mu_);
  void FailDeferredAbove(Seq seq, const Status& st) EXCLUDES(mu_);

  // ---- truncation (mu() held) ----

  // BAD_REQUEST when records above seq are applied or being applied.
  Status TruncateRefusalLocked(Seq seq) const REQUIRES(mu_);
  void LowerCommitLocked(Seq seq) REQUIRES(mu_);
  // Moves staged records above seq to *dropped, newest first.
  void DropStagedAboveLocked(Seq seq, std::vector<PendingWrite>* dropped) REQUIRES(mu_);
  // Pending keys from what is left: the staged records, then `queued`.
  void RebuildPendingLocked(const std::vector<PendingWrite>& queued) REQUIRES(mu_);

  // ---- Open (no worker runs yet) ----

  void Load(KeyMap map) EXCLUDES(map_mu_);
  // What Load took, moved back out (an Open that failed hands its seed back).
  KeyMap Release() EXCLUDES(map_mu_);
  // A record through the commit point: applied now.
  Status ReplayRecovered(const wal::RecordView& rec) EXCLUDES(map_mu_);
  // A record past the commit point: staged, as if the log had just written it.
  Status StageRecovered(const wal::RecordView& rec) EXCLUDES(mu_);
  // Everything before the first staged record (else through last) is applied.
  void FinishRecovery(Seq last) EXCLUDES(mu_, map_mu_);
  size_t staged_count() const EXCLUDES(mu_);
  size_t size() const EXCLUDES(map_mu_);

  // ---- snapshots ----

  // Adds the entries after *last_key (from the first unless started) to
  // writer until it buffers chunk_bytes; *end = applied() at that moment.
  // True once the map is exhausted.
  bool AddChunk(snapshot::SnapshotWriter* writer, size_t chunk_bytes, bool started,
                std::string* last_key, Seq* end) const EXCLUDES(map_mu_);
  // Copies the entries of span after *last_key (from span's start unless
  // started) into *out, up to max_entries; *max_version: the highest
  // version copied so far (a split or merge checks that nothing in span
  // changed after its seq). True once span is exhausted. For a range built
  // from this one (store_seed.h).
  bool CopySpanChunk(KeyMap* out, const KeyRange& span, size_t max_entries, bool started,
                     std::string* last_key, uint64_t* max_version) const EXCLUDES(map_mu_);

  // ---- a range built from this one takes its keys (store_seed.h) ----

  // Moves the entries of span into *out (nodes, not copies; after what it
  // holds), as a narrowing would drop them, while nothing on disk changes:
  // the files still hold them, which is what the range built from them
  // needs until its own first snapshot is durable. From then on the map
  // holds only the rest and writes no snapshot (one would pass for the
  // files' whole truth) until Retain narrows it durably. `all`: every key
  // the map holds lies in span (a merged range's source, gone from the
  // map), and nothing is held afterwards. Else span must be the tail of
  // what the map holds (a split's right part). False, nothing changed,
  // otherwise, or when a key of span has a version above `at` (the fence
  // failed; *max_version says so, as for CopySpanChunk): the caller copies
  // or reports it.
  bool GiveSpan(const KeyRange& span, bool all, Seq at, KeyMap* out, uint64_t* max_version)
      EXCLUDES(map_mu_);
  // Keys left the map by GiveSpan that its directory's files still hold.
  bool gave_pending() const EXCLUDES(map_mu_);
  // Whether the map holds every key of span.
  bool Holds(const KeyRange& span) const EXCLUDES(map_mu_);

  // ---- a split's narrowing (range_store_split.cc) ----

  // From now on the map holds only keys of `keep`: the others are dropped
  // now, and records applied later (a replica catching up, a replay of the
  // log) leave them out. Only ever narrows.
  void Retain(const KeyRange& keep) EXCLUDES(map_mu_);
  // Whether a key outside b is in the map (two tree lookups).
  bool HasKeysOutside(const KeyRange& b) const EXCLUDES(map_mu_);
  // The span the map holds every key of (nullopt: the whole key space).
  std::optional<KeyRange> retained() const EXCLUDES(map_mu_);

 private:
  // The newest pending write to a key: what a cas must compare against.
  struct PendingKey {
    Seq seq{0};
    bool exists = false;  // false: the pending write deletes the key
  };
  struct DeferredFailure {
    Status status;
    WriteCallback cb;
  };

  // The committed version of key (0: absent).
  uint64_t CommittedVersion(std::string_view key) const EXCLUDES(map_mu_);
  void ApplyGroup(std::vector<PendingWrite>& group) EXCLUDES(map_mu_);
  void ErasePendingLocked(const std::vector<PendingWrite>& applied) REQUIRES(mu_);
  void FireDeferredUpTo(Seq applied) EXCLUDES(mu_);

  mutable Mutex mu_ ACQUIRED_BEFORE(map_mu_);
  bool gate_ GUARDED_BY(mu_);
  Seq commit_seq_ GUARDED_BY(mu_) = Seq(0);  // Commit()'s point; lowered only by a truncation
  // The highest Seq the log thread took to apply (>= applied_seq_): a
  // truncation racing with an apply sees those records as applied.
  Seq committing_seq_ GUARDED_BY(mu_) = Seq(0);
  std::deque<PendingWrite> staged_ GUARDED_BY(mu_);  // durable, waiting for Commit
  // ApplyCommitted's batch, kept with its capacity between calls (one at
  // a time: the store's turns are).
  std::vector<PendingWrite> applying_;
  std::unordered_map<std::string, PendingKey, StringHash, std::equal_to<>> pending_
      GUARDED_BY(mu_);
  std::multimap<Seq, DeferredFailure> deferred_ GUARDED_BY(mu_);  // by the Seq each waits for

  void DropOutsideLocked() REQUIRES(map_mu_);
  bool Kept(std::string_view key) const REQUIRES_SHARED(map_mu_) {
    return !hollow_ && (!keep_ || keep_->Contains(key));
  }

  mutable SharedMutex map_mu_;
  KeyMap map_ GUARDED_BY(map_mu_);
  std::optional<KeyRange> keep_ GUARDED_BY(map_mu_);
  bool gave_ GUARDED_BY(map_mu_) = false;    // GiveSpan, until Retain
  bool hollow_ GUARDED_BY(map_mu_) = false;  // GiveSpan(all): holds nothing, ever
  Seq applied_seq_ GUARDED_BY(map_mu_) = Seq(0);
};

}  // namespace rangekv::kvnode
