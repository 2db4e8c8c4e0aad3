// kvnode/range_store.h — the storage of one range on one node.
//
// A RangeStore owns one range's durable state: its write-ahead log (one log
// and one sequence per range, kvnode/wal_format.h), its snapshots, and the
// ordered in-memory map key -> (value, version) rebuilt from them at Open.
//
// Write path (group commit):
//
//   Write(ops, cb) --validate cas against latest state (committed + pending)
//        |          assign Seq, encode one WAL record, enqueue  [caller thread]
//        v
//   log thread: take everything queued, one writev(), one fsync under
//        |      `always`, then apply to the map in Seq order
//        |      (under `batch`/`never` a separate sync thread fdatasyncs
//        |      the active segment while appends go on)
//        v
//   cb(Seq) on the log thread  -> the caller posts back to its own executor
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
// Thread-safety: all methods are safe from any thread. A mutex guards the
// pending queue and a shared_mutex the map (readers share it; the log thread
// takes it exclusively to apply a group); neither is held across I/O
// (lock order and details: kvnode/range_store_impl.h). Do not destroy a
// store from inside one of its own write callbacks.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/key_range.h"
#include "common/protocol.h"
#include "common/types.h"
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
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  std::chrono::milliseconds batch_interval{10};
  size_t segment_bytes = 64u << 20;        // rotate the WAL segment past this size
  size_t snapshot_after_bytes = 256u << 20;  // log bytes since the last snapshot
  // Log records kept below the snapshot for replica catch-up.
  uint64_t keep_records_below_snapshot = 100000;
};

struct StoreStats {
  Seq last_seq{0};         // highest Seq durable and applied
  size_t keys = 0;
  uint64_t wal_bytes = 0;  // bytes in live segments
  size_t segments = 0;
  Seq snapshot_seq{0};     // Seq covered by the newest snapshot (0: none)
};

class RangeStore {
 public:
  using WriteCallback = std::function<void(Result<Seq>)>;

  // Opens (or creates) the store in opts.dir: loads the newest valid
  // snapshot, replays the log after it, truncates a torn tail of the newest
  // segment. Corruption anywhere else returns CORRUPTION naming the file and
  // offset; the range must then not be served.
  static Result<std::unique_ptr<RangeStore>> Open(RangeId id, KeyRange bounds, StoreOptions opts);

  ~RangeStore();  // Close() if not yet closed
  RangeStore(const RangeStore&) = delete;
  RangeStore& operator=(const RangeStore&) = delete;

  RangeId id() const;
  const KeyRange& bounds() const;

  // Reads of committed state. Keys outside bounds() are a caller bug.
  std::optional<proto::Entry> Get(std::string_view key) const;
  // Up to limit entries with start <= key < end (end nullopt: unbounded),
  // in key order; *more is set when entries remain past the limit.
  std::vector<proto::Entry> Scan(std::string_view start, const std::optional<std::string>& end,
                                 uint32_t limit, bool* more) const;

  // Appends ops as one atomic record. cb runs exactly once, on the log
  // thread (or inline for an immediate error such as CAS_FAILED): with the
  // record's Seq (the new version of every key it touched) once durable and
  // applied, or with an error, in which case nothing was applied.
  // put/delete/cas semantics: delete of a missing key succeeds; cas with
  // expected_version 0 requires the key to be absent.
  void Write(std::vector<proto::WriteOp> ops, WriteCallback cb);

  StoreStats Stats() const;

  // Writes a snapshot now (normally done in the background) and deletes
  // segments below the low-water mark. For tests and shutdown.
  Status SnapshotNow();

  // Stops accepting writes, completes queued ones, fsyncs, stops threads.
  Status Close();

 private:
  struct Impl;
  explicit RangeStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rangekv::kvnode
