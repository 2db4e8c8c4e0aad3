# rangekv client protocol, version 1.
#
# Each message travels in one frame (common/frame.h): a 4-byte big-endian
# length, then a Cap'n Proto message in the standard (unpacked) flat encoding.
# A connection carries many requests at once; every Response echoes the id of
# its Request, and responses may come back in any order (pipelining).
#
# Invariants checked by every receiver (common/protocol.h):
#   - key <= Limits.maxKeyBytes (4 KiB), value <= Limits.maxValueBytes (1 MiB)
#     -> TOO_LARGE; scan limit 0 means "the server's default".
#   - expectedVersion 0 in a cas means "the key must not exist".
#   - error codes are the numeric values of rangekv::Code (rangekv/status.h);
#     an unknown code decodes as INTERNAL.
#   - rangeId/epoch 0 mean "unknown": route by key, do not fence.
#
# Replication (node to node, same port; kvnode/replication/replicator.h,
# docs/replication.md):
#   - fetch: a replica asks the owner of rangeId for log records from
#     fromSeq; every record below fromSeq is durable on the replica (this is
#     its acknowledgement). epoch is the epoch the replica knows for the range,
#     lastEpoch the epoch of its record fromSeq-1 (0: empty log). The owner
#     answers at once when it holds records >= fromSeq, else after at most
#     waitMs (long poll) with none. records: whole WAL records (header and
#     payload, kvnode/storage/wal_format.h) back to back, consecutive from fromSeq,
#     at most maxBytes unless one record is larger. hwm: the owner's commit
#     point. diverged: the replica must drop its records above
#     min(truncateTo, the end of its own records of epochs <= agreedEpoch)
#     and fetch again (agreedEpoch is the epoch of the owner's record at
#     truncateTo: records of newer epochs the owner never had, however
#     their seqs compare). snapshotNeeded: fromSeq is below the owner's log
#     start; fetch the snapshot first. replicaLife and copy name the copy of
#     the range the acknowledgement speaks for (a restarted or re-copied
#     replica starts its count over; an older copy's fetch is refused).
#     news: the range znodes the multi of a split or merge of rangeId
#     wrote, as the owner wrote them (sent once per replica, at once, on
#     the parked fetch): the replica builds the new ranges without waiting
#     to read ZooKeeper, and its later map reads are patched with them
#     until they show them (common/cluster_map.h PatchNews). They speak
#     only for what ZooKeeper held once: newer reads win by generation.
#   - snapshot: a chunk of the owner's snapshot file. replayFrom 0 asks for
#     the owner's current export; otherwise for the export with that
#     replay-from seq (resume); the error RANGE_UNAVAILABLE when the owner
#     no longer has that export (the replica starts over).
#   - rangeStatus: every range the node owns or replicates, with its
#     progress (for the REPL and operators).
#   - transfer: the owner of rangeId (at epoch, when not 0) hands the range
#     to the in-sync replica `target` without a failover: it stops serving
#     the range, waits until target holds every record, and writes target
#     as owner at epoch + 1 into ZooKeeper. pong once written; otherwise an
#     error, and the owner serves on (BAD_REQUEST: target is not another
#     in-sync replica; RANGE_UNAVAILABLE: not serving now; TIMEOUT: target
#     did not catch up in time, or the write's outcome is unknown, when the
#     owner gives up the range instead).
#   - split: the owner of rangeId (at epoch, when not 0) cuts the range at
#     key: [start, key) keeps the id, [key, end) becomes a new range with
#     the same owner, epoch and ISR, built by every replica from its own
#     copy (no data moves). Writes pause while it runs; reads go on. pong
#     once ZooKeeper holds the new map (BAD_REQUEST: key outside the range
#     or at its start; RANGE_UNAVAILABLE: not serving writes now, or a
#     split or transfer is under way; TIMEOUT: a replica did not catch up).
#   - merge: the owner of rangeId (at epoch, when not 0) merges it with the
#     range right of it, which it must own too with the same replicas and
#     ISR: both become one new range (a new id, the union of the bounds),
#     built by every replica from its own two copies (no data moves).
#     Writes to both pause while it runs; reads go on. pong once ZooKeeper
#     holds the new map (BAD_REQUEST: the last range, or the two cannot
#     merge, with the reason; RANGE_UNAVAILABLE: not serving writes now,
#     or a split, transfer or merge is under way; TIMEOUT: a replica did
#     not catch up).

@0xa2cfe16b32ae3cf2;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("rangekv::wire");

enum Consistency {
  linearizable @0;
  stale @1;
}

struct KeyOnly { key @0 :Data; }
struct KeyValue { key @0 :Data; value @1 :Data; }
struct CasOp { key @0 :Data; expectedVersion @1 :UInt64; value @2 :Data; }

struct ScanOp {
  start @0 :Data;
  end @1 :Data;
  hasEnd @2 :Bool;       # false: to the end of the key space
  limit @3 :UInt32;      # 0: server default
}

struct WriteOp {
  union {
    put @0 :KeyValue;
    delete @1 :KeyOnly;
    cas @2 :CasOp;
  }
}

struct Request {
  id @0 :UInt64;
  rangeId @1 :UInt64;
  epoch @2 :UInt64;
  consistency @3 :Consistency;
  union {
    get @4 :KeyOnly;
    put @5 :KeyValue;
    delete @6 :KeyOnly;
    cas @7 :CasOp;
    scan @8 :ScanOp;
    batch @9 :List(WriteOp);
    ping @10 :Void;
    fetch @11 :FetchRequest;
    snapshot @12 :SnapshotRequest;
    rangeStatus @13 :Void;
    transfer @14 :TransferRequest;
    split @15 :KeyOnly;
    merge @16 :Void;
  }
}

struct TransferRequest {
  target @0 :Text;   # node id of an in-sync replica
}

struct FetchRequest {
  replicaId @0 :Text;
  fromSeq @1 :UInt64;
  lastEpoch @2 :UInt64;
  maxBytes @3 :UInt32;
  waitMs @4 :UInt32;
  replicaLife @5 :Text;   # the replica's process ("life" in its node znode); "": unknown
  copy @6 :UInt64;        # which copy of the range in that process (grows with each
                          # new local store); the owner's count of the replica's
                          # progress starts over when life or copy changes
}

struct SnapshotRequest {
  replicaId @0 :Text;
  replayFrom @1 :UInt64;    # 0: the owner's current export
  offset @2 :UInt64;
  maxBytes @3 :UInt32;
}

struct Fetched {
  records @0 :Data;
  hwm @1 :UInt64;
  diverged @2 :Bool;
  truncateTo @3 :UInt64;
  snapshotNeeded @4 :Bool;
  agreedEpoch @5 :UInt64;   # with diverged
  news @6 :List(RangeNews); # see "news" above; empty almost always
}

struct RangeNews {
  rangeId @0 :UInt64;
  record @1 :Text;          # the range znode's text; "" when deleted
}

struct SnapshotChunk {
  replayFrom @0 :UInt64;
  end @1 :UInt64;           # the snapshot's end seq E
  epoch @2 :UInt64;         # the epoch of the owner's record at replayFrom
  totalBytes @3 :UInt64;
  offset @4 :UInt64;
  data @5 :Data;
}

struct ReplicaProgress {
  nodeId @0 :Text;
  ackedSeq @1 :UInt64;
  inIsr @2 :Bool;
  sinceContactMs @3 :UInt64;   # ms since its last fetch; max when never
}

struct RangeStatus {
  rangeId @0 :UInt64;
  epoch @1 :UInt64;
  owner @2 :Bool;              # this node owns it (else it replicates it)
  lastSeq @3 :UInt64;
  hwm @4 :UInt64;
  replicas @5 :List(ReplicaProgress);   # owner only: every other replica
  keys @6 :UInt64;             # owner only: keys in the range
  bytes @7 :UInt64;            # owner only: their key and value bytes
  requestsPerSec @8 :UInt32;   # owner only: requests admitted, last second
}

struct OwnerHint {
  nodeId @0 :Text;
  address @1 :Text;
  epoch @2 :UInt64;
  rangeId @3 :UInt64;
  # The range's bounds [start, end) and generation, when the node sent them
  # (hasBounds); end absent (hasEnd false) means to the end of the key space.
  hasBounds @4 :Bool;
  start @5 :Data;
  hasEnd @6 :Bool;
  end @7 :Data;
  generation @8 :UInt64;
}

struct Error {
  code @0 :UInt16;
  message @1 :Text;
  ownerHint @2 :OwnerHint;   # set with NOT_OWNER when the node knows the owner
}

struct Entry { key @0 :Data; value @1 :Data; version @2 :UInt64; }

struct Response {
  id @0 :UInt64;
  union {
    error @1 :Error;
    found @2 :Entry;          # get: the key exists
    notFound @3 :Void;        # get: the key does not exist
    written @4 :UInt64;       # put/delete/cas/batch: the version (sequence) of the write
    entries @5 :List(Entry);  # scan, in key order
    pong @6 :Void;
    fetched @8 :Fetched;
    snapshotChunk @9 :SnapshotChunk;
    rangeStatus @10 :List(RangeStatus);
  }
  more @7 :Bool;              # scan stopped at the limit; more keys may follow
}
