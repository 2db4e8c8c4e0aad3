// common/protocol.h — the client protocol as plain C++ values, and its codec.
//
// The wire schema is common/protocol.capnp (read its header for the
// invariants); this file turns those messages into Request/Response values
// and back. The codec is I/O-free so it can be fuzzed: Decode* never throws,
// never reads past its input, and returns BAD_REQUEST for anything that does
// not decode. Encode* appends one complete frame (length prefix included).
//
// Thread-safety: free functions over values; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/key_range.h"
#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::proto {

struct Limits {
  static constexpr uint32_t kMaxFetchBytes = 16u << 20;
  static constexpr uint32_t kMaxFetchWaitMs = 10000;
  static constexpr size_t kMaxKeyBytes = 4 * 1024;
  static constexpr size_t kMaxValueBytes = 1024 * 1024;
  static constexpr uint32_t kDefaultScanLimit = 1000;
  static constexpr uint32_t kMaxScanLimit = 100000;
  static constexpr size_t kMaxBatchOps = 10000;
};

enum class Consistency : uint8_t { kLinearizable = 0, kStale = 1 };

enum class OpKind : uint8_t {
  kGet, kPut, kDelete, kCas, kScan, kBatch, kPing,
  kFetch, kSnapshot, kRangeStatus,  // node to node (replication, status)
  kTransfer, kSplit, kMerge,         // operator to owner (protocol.capnp)
};

// True for the kinds a replica sends to an owner (not client operations).
inline bool IsReplicationKind(OpKind k) { return k == OpKind::kFetch || k == OpKind::kSnapshot; }

struct FetchArgs {
  std::string replica;  // the fetching node's id
  Seq from{0};          // first Seq wanted; all below are durable at the replica
  Epoch last_epoch{0};  // epoch of the replica's record from-1 (0: empty log)
  uint32_t max_bytes = 0;
  uint32_t wait_ms = 0;  // long poll bound
  std::string replica_life{};  // the replica's process ("": unknown)
  uint64_t copy = 0;           // the replica's copy of the range in that process
  friend bool operator==(const FetchArgs&, const FetchArgs&) = default;
};

struct SnapshotArgs {
  std::string replica;
  Seq replay_from{0};  // 0: the owner's current export
  uint64_t offset = 0;
  uint32_t max_bytes = 0;
  friend bool operator==(const SnapshotArgs&, const SnapshotArgs&) = default;
};

// One operation inside a batch (and the shape of a single put/delete/cas).
struct WriteOp {
  enum class Kind : uint8_t { kPut, kDelete, kCas } kind = Kind::kPut;
  std::string key;
  std::string value;             // put, cas
  uint64_t expected_version = 0;  // cas; 0 = must not exist

  static WriteOp Put(std::string k, std::string v) { return {Kind::kPut, std::move(k), std::move(v), 0}; }
  static WriteOp Delete(std::string k) { return {Kind::kDelete, std::move(k), {}, 0}; }
  static WriteOp Cas(std::string k, uint64_t ver, std::string v) {
    return {Kind::kCas, std::move(k), std::move(v), ver};
  }
  friend bool operator==(const WriteOp&, const WriteOp&) = default;
};

struct Request {
  uint64_t id = 0;
  RangeId range{0};
  Epoch epoch{0};
  Consistency consistency = Consistency::kLinearizable;
  OpKind kind = OpKind::kPing;
  // get/put/delete/cas use ops[0] for key (and value / expected version);
  // batch uses every element; scan and ping use none.
  std::vector<WriteOp> ops;
  // scan only:
  std::string scan_start;
  std::optional<std::string> scan_end;
  uint32_t scan_limit = 0;
  FetchArgs fetch;        // kFetch
  SnapshotArgs snapshot;  // kSnapshot
  std::string transfer_to;  // kTransfer: node id of the new owner

  friend bool operator==(const Request&, const Request&) = default;
};

struct Entry {
  std::string key;
  std::string value;
  uint64_t version = 0;
  friend bool operator==(const Entry&, const Entry&) = default;
};

struct OwnerHint {
  std::string node_id;
  std::string address;
  Epoch epoch{0};
  RangeId range{0};
  // The range's layout as the answering node knows it (nodes since splits
  // fill them): a client whose map predates a split or a move corrects its
  // copy from the answer without waiting for ZooKeeper.
  std::optional<KeyRange> bounds{};
  uint64_t generation = 0;
  friend bool operator==(const OwnerHint&, const OwnerHint&) = default;
};

// One range znode as a split's or merge's multi wrote it (protocol.capnp
// "news"): its text (common/cluster_map.h), "" when the multi deleted it.
struct RangeNews {
  RangeId range{0};
  std::string record;
  friend bool operator==(const RangeNews&, const RangeNews&) = default;
};

struct Fetched {
  std::string records;  // whole WAL records, back to back, from the fetch's `from`
  Seq hwm{0};
  bool diverged = false;
  Seq truncate_to{0};  // with diverged
  bool snapshot_needed = false;
  Epoch agreed_epoch{0};  // with diverged: the owner's epoch at truncate_to
  std::vector<RangeNews> news{};  // a split or merge of this range, just written
  friend bool operator==(const Fetched&, const Fetched&) = default;
};

struct SnapshotChunk {
  Seq replay_from{0};
  Seq end{0};
  Epoch epoch{0};
  uint64_t total_bytes = 0;
  uint64_t offset = 0;
  std::string data;
  friend bool operator==(const SnapshotChunk&, const SnapshotChunk&) = default;
};

struct ReplicaProgress {
  std::string node_id;
  Seq acked{0};
  bool in_isr = false;
  uint64_t since_contact_ms = UINT64_MAX;
  friend bool operator==(const ReplicaProgress&, const ReplicaProgress&) = default;
};

struct RangeStatus {
  RangeId range{0};
  Epoch epoch{0};
  bool owner = false;
  Seq last_seq{0};
  Seq hwm{0};
  std::vector<ReplicaProgress> replicas;
  // The owner's: what the range holds and how busy it is.
  uint64_t keys = 0;
  uint64_t bytes = 0;
  uint32_t requests_per_sec = 0;
  friend bool operator==(const RangeStatus&, const RangeStatus&) = default;
};

struct Response {
  enum class Kind : uint8_t {
    kError, kFound, kNotFound, kWritten, kEntries, kPong,
    kFetched, kSnapshotChunk, kRangeStatus,
  };
  uint64_t id = 0;
  Kind kind = Kind::kPong;
  Status error;                   // kError
  std::optional<OwnerHint> hint;  // kError with NOT_OWNER
  Entry found;                    // kFound
  uint64_t written_version = 0;   // kWritten
  std::vector<Entry> entries;     // kEntries
  bool more = false;              // kEntries
  Fetched fetched;                // kFetched
  SnapshotChunk chunk;            // kSnapshotChunk
  std::vector<RangeStatus> status;  // kRangeStatus

  static Response Error(uint64_t id, Status st) {
    Response r;
    r.id = id;
    r.kind = Kind::kError;
    r.error = std::move(st);
    return r;
  }
  friend bool operator==(const Response&, const Response&) = default;
};

// A transfer of `range` (owned at `epoch`, 0: any) to node `target`, and
// what its answer says: OK for pong, the error, or INTERNAL for any other
// kind. One definition for every sender (REPL, tests).
Request MakeTransfer(RangeId range, Epoch epoch, std::string target);
Status TransferOutcome(const Result<Response>& answer);
// A split of `range` (owned at `epoch`, 0: any) at `key`; its outcome is
// read like a transfer's.
Request MakeSplit(RangeId range, Epoch epoch, std::string key);
// A merge of `range` (owned at `epoch`, 0: any) with the range right of it;
// its outcome is read like a transfer's.
Request MakeMerge(RangeId range, Epoch epoch);

// Checks the limits of the header of protocol.capnp (sizes, arity, scan
// bounds). OK or TOO_LARGE / BAD_REQUEST with a message naming the field.
Status Validate(const Request& req);

// Appends one frame holding req / resp to out.
void EncodeRequest(const Request& req, std::string& out);
void EncodeResponse(const Response& resp, std::string& out);

// Decodes the payload of one frame (without its length prefix).
Result<Request> DecodeRequest(std::string_view payload);
Result<Response> DecodeResponse(std::string_view payload);

}  // namespace rangekv::proto
