// kvnode/replication/replicator.h — per-range replication on one node
// (docs/design.md §5; wire messages in common/protocol.capnp: fetch, snapshot,
// rangeStatus).
//
// For every range this node holds, the Replicator runs one role:
//
//   owner    a Leader: answers its replicas' fetches (long poll) with whole
//            WAL records and its high-water mark, computes the commit point
//            hwm = min(own durable, every other ISR member's ack), keeps the
//            read lease confirmed by the ISR, asks ZooKeeper (through the
//            member) to drop a lagging replica from the ISR or to add a
//            caught-up one, and serves its snapshot to replicas too far behind.
//   replica  a Follower: one fetch outstanding to the owner; appends what it
//            gets, acks by fetching again once durable, applies up to the
//            owner's hwm, truncates a diverged tail, installs a snapshot when
//            the owner's log no longer reaches back far enough.
//
// News: once a split's or merge's multi is written, the owner answers each
// replica's parked fetch of the range at once with the znodes the multi
// wrote (protocol.capnp "news"; once per replica copy, for a few seconds);
// the replica hands them to the node (SetNewsListener), which builds the
// new ranges without waiting for its own map read, 8-20 ms on a loaded
// machine, while writes to them wait for every ISR member.
//
// Protocol invariants:
//   - A fetch {from, last_epoch} with Request.epoch E acknowledges every
//     record below `from` as durable on the replica. The owner answers only
//     E == its epoch; E greater deposes it (it stops admitting anything
//     until its map catches up), E smaller gets STALE_EPOCH.
//   - Divergence: a replica whose last record has epoch e < owner's epoch
//     is told to truncate to t = min(from-1, owner.EpochEnd(e)), with a =
//     the owner's epoch at t. When a < e the replica's records of epochs in
//     (a, e] were never the owner's, so it truncates to min(t, its own
//     EpochEnd(a)) — the owner's EpochEnd(e) alone can reach past them.
//   - The owner never commits while the ISR (from the map) is smaller than
//     min-insync, and only counts ISR members: a replica is dropped from the
//     ISR in ZooKeeper (compare-and-set) before the owner commits without it.
//   - Lease: the owner credits a replica's fetch with a lease running from
//     the moment it sent the answer that fetch follows, for 0.9 x lease
//     (clock-rate margin). The replica, on receiving an answer (later than
//     it was sent), promises not to fetch from or become a newer owner
//     before now + lease; a fetch that gets no answer extends nothing, so a
//     dead owner's lease runs out while its replicas retry. Reads need the
//     minimum over the ISR (without the owner) in the future. A promoted
//     owner waits until its own last promise as a replica has run out, and
//     a restarted process waits one lease from its start before it takes
//     over a range.
//   - A new owner admits linearizable reads only once it has committed
//     every record its log held when it took over (its predecessor's
//     acknowledged writes are then visible).
//
// Threads: all replication state lives on one serial executor of its own
// (common/exec.h; a thread in production). I/O threads post fetches to it and
// get their answer through the ResponseSink's Reply; store workers post their
// listener calls and the completions of truncations and snapshot exports; an
// owner's writes (under `batch` and `never`) ask it for their turn
// (RangeStore::SetWriteTurns), so the group is written here, where its news
// is handled next. The one slow job, installing a copied snapshot (closing
// the old store, writing and opening the new one), runs on a second executor,
// so no range waits for another range's install. BeginEpoch (one small fsync)
// and reads of old log records for a lagging replica run here. The
// replication thread never takes a lock of the Node or the member, so Update
// may block waiting for it.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cluster_map.h"
#include "common/exec.h"
#include "common/protocol.h"
#include "common/types.h"
#include "kvnode/replication/range_slot.h"
#include "kvnode/storage/range_store.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace rangekv::net {
class TlsContext;
}  // namespace rangekv::net

namespace rangekv::kvnode {

struct ReplicationOptions {
  std::chrono::milliseconds lease{600};
  std::chrono::milliseconds fetch_wait{250};         // long-poll bound
  std::chrono::milliseconds isr_lag_timeout{2000};   // drop a replica behind this long
  uint32_t fetch_max_bytes = 4u << 20;
  uint32_t snapshot_chunk_bytes = 1u << 20;
  // Throttle of the copies this node makes (snapshot chunks, and log a
  // replica outside the ISR catches up on), shared by all of them (kvnode
  // --move-rate): it ends with the copies.
  uint64_t snapshot_bytes_per_sec = uint64_t{100} << 20;
  // The owner splits a range by itself (docs/elastic.md §3): by size once
  // its map holds more than split_bytes of keys and values (at the key
  // that halves them), by load once it admitted more than split_qps
  // requests a second for split_load_window (at the key that halves the
  // sampled requests). 0: never.
  uint64_t split_bytes = 64u << 20;
  uint32_t split_qps = 2000;
  std::chrono::milliseconds split_load_window{10000};
  // Two neighbours this node owns merge by themselves once both are small
  // (under a quarter of split_bytes), cold (under a quarter of split_qps
  // for the whole split_load_window) and have kept their bounds for
  // merge_delay, so a load split is not undone at once (docs/elastic.md
  // §4). 0: never.
  std::chrono::milliseconds merge_delay{300000};
  // TLS for the connections to other nodes (client role, with this node's
  // certificate; common/net/tls.h). Null: plaintext.
  std::shared_ptr<net::TlsContext> tls;
  // Tests only (the simulation's failpoints): called at each step of a
  // split or a transfer, on the thread taking the step, right after it:
  // split.fenced, split.asked, split.written (owner), split.built,
  // split.narrowed (every node holding the range), merge.fenced,
  // merge.asked, merge.written (owner; the left range), merge.built (every
  // node; the merged range), seed.opened (every node; a range opened from
  // a seed, before its first snapshot), merge.dropped (every node; each range merged
  // away, once its directory is deleted), transfer.fenced,
  // transfer.asked, transfer.written (owner). Empty: nothing is called.
  std::function<void(std::string_view step, RangeId range)> step_hook{};
};

// A change of a range's ISR that this node asks ZooKeeper for.
//   add / remove: by the owner, applied only if the range znode still names
//     this node as owner at `epoch`; an added member is recorded with
//     `incarnation`, the copy of the data it caught up with.
//   resign: by any member about itself (its copy of the range is gone or
//     damaged): it leaves the ISR and, if it is the owner, the ownership
//     (the coordinator then gives the range to another in-sync replica).
//   resign with keep_isr: leaves only the ownership (its copy is intact but
//     may lack its last records: it must not go on at the same epoch).
//   transfer: by the owner at `epoch`, which has stopped serving and whose
//     log `node` (an ISR member) holds entirely: `node` becomes owner at
//     epoch + 1, granted to its process `life`, with handoff_from = epoch
//     (cluster_map.h); the ISR and replicas stay as they are.
//   split: by the owner at `epoch`, which has stopped writes and whose log
//     through `split_seq` every ISR member holds: the range is cut at
//     `split_key` (MakeSplitRecords), in one multi that also takes a new
//     range id (docs/elastic.md §3).
//   merge: by the owner of `range` at `epoch` and of its right neighbour
//     `merge_right` at `merge_right_epoch`, which has stopped writes to
//     both and whose logs through `merge_left_seq` and `merge_right_seq`
//     every ISR member holds: both znodes are deleted and the merged range
//     created under a new id (MakeMergeRecord), in one multi
//     (docs/elastic.md §4).
//   prefetch: no change, a hint: the owner has just fenced `range` (and
//     `merge_right` when not 0) for a split or merge and will ask for it
//     once its replicas hold the log's end. The member may read now what
//     that multi is conditioned on, while the owner drains; nothing is
//     written and done is never called. A changer may ignore it.
struct IsrChange {
  RangeId range{0};
  Epoch epoch{0};
  NodeId node;
  bool add = false;
  bool resign = false;
  std::string incarnation{};
  bool keep_isr = false;
  bool transfer = false;
  std::string life{};  // transfer: the new owner's process
  bool split = false;
  std::string split_key{};
  Seq split_seq{0};
  bool merge = false;
  Seq merge_left_seq{0};
  RangeId merge_right{0};
  Epoch merge_right_epoch{0};
  Seq merge_right_seq{0};
  bool prefetch = false;
  // split, merge: where the member puts the range znodes its multi wrote,
  // before done(OK): news for the owner's replicas (Replicator "news") and
  // its own node (Node::ApplyNews).
  std::shared_ptr<cluster::ClusterMap::Written> wrote{};
};

// The two records a split makes of `current` (the parent's znode as read):
// the parent narrowed to [start, split_key) and the new range `child_id`
// over [split_key, end), both at generation + 1; the new one with the
// parent's owner, epoch, grant, replicas and ISR, and split_from =
// parent@split_seq. STALE_EPOCH unless `current` names self owner at
// change.epoch; BAD_REQUEST unless split_key lies inside the range and
// after its start.
struct SplitRecords {
  cluster::RangeInfo parent;
  cluster::RangeInfo child;
};
Result<SplitRecords> MakeSplitRecords(const cluster::RangeInfo& current, const IsrChange& change,
                                      const NodeId& self, RangeId child_id);
// The record a merge makes of `left` and `right` (their znodes as read):
// range `merged_id` over [left.start, right.end) with their owner, grant,
// replicas and ISR, at the larger of their epochs, max(generations) + 1,
// and merged_from = left@merge_left_seq,right@merge_right_seq. STALE_EPOCH
// unless both name self owner at the change's epochs; BAD_REQUEST unless
// they are adjacent, granted to the same process and hold the same
// replicas and ISR (each member the same copy).
Result<cluster::RangeInfo> MakeMergeRecord(const cluster::RangeInfo& left,
                                           const cluster::RangeInfo& right, const IsrChange& change,
                                           const NodeId& self, RangeId merged_id);
// Why left and right (as a map shows them) cannot be merged, or OK: they
// must be adjacent, have one owner with one grant, and the same replicas
// and ISR (each member the same copy).
Status CheckMergeable(const cluster::RangeInfo& left, const cluster::RangeInfo& right);
// The id a new range takes: the value of R/next_range_id (`counter`, its
// data; nullopt when the znode does not exist yet), but never below one
// more than the highest of `existing`. BAD_REQUEST when the counter's data is not a
// number.
Result<RangeId> NextRangeId(const std::optional<std::string>& counter,
                            const std::vector<RangeId>& existing);

// The range record an ISR change makes of `current` (the znode as read),
// requested by `self`: STALE_EPOCH when an owner's change meets a znode that
// no longer names self as owner at change.epoch (a stale request must never
// touch a newer owner's ISR); nullopt when there is nothing to change
// (already in / out, not a replica, or self).
Result<std::optional<cluster::RangeInfo>> ApplyIsrChange(const cluster::RangeInfo& current,
                                                         const IsrChange& change,
                                                         const NodeId& self);

// A copy being made again: "<range dir>.copying", an empty file beside the
// range's directory, written (and its directory synced) before a lost or
// damaged copy is replaced by an empty store and removed only once every
// range of the node has caught up with its owner. While it exists the
// range's store, however many records it holds, is not the copy the ISR
// counted: the node neither leads the range nor stays in its ISR, in this
// process or the next (a crash before the ISR change reached ZooKeeper
// must not bring back an empty copy as in sync).
std::string CopyingMarkerPath(const std::string& range_dir);
Status MarkCopying(fs::FileSystem& fs, const std::string& range_dir);
// Whether the marker exists (an error reading counts as yes).
bool IsCopying(fs::FileSystem& fs, const std::string& range_dir);
// The identity of the owner's snapshot a copy under way writes into
// "<range dir>.incoming": "<range dir>.copy" (follower_copy.cc), so the
// node's next life can resume it.
std::string CopyIdentityPath(const std::string& range_dir);
// No range directory (or it cannot be listed), an empty one, or one a
// crash took back before its preparation was durable (PreparedDirLost).
bool RangeDirEmpty(fs::FileSystem& fs, const std::string& range_dir);

// One range this node holds, as the control plane hands it over.
struct HeldRange {
  cluster::RangeInfo info;
  std::shared_ptr<RangeSlot> slot;
  std::string owner_address;  // "" when the owner has no live node znode
  // The live node znodes of the range's replicas (their present process
  // and copy of the data), by id.
  std::map<NodeId, cluster::NodeInfo> live{};
};

// How replication messages reach other nodes: Send delivers req to the node
// at address and done runs exactly once, on the replication executor, with
// the answer or the error (TIMEOUT after `timeout`; UNAVAILABLE when the
// connection is lost). In production a pipelined connection per peer
// (common/net); in the simulation, the simulated network.
class ReplicationTransport {
 public:
  virtual ~ReplicationTransport() = default;
  virtual void Send(const std::string& address, proto::Request req,
                    std::chrono::milliseconds timeout,
                    std::function<void(Result<proto::Response>)> done) = 0;
  // Fails everything in flight (UNAVAILABLE) and closes the connections.
  virtual void CloseAll() = 0;
};

class Replicator {
 public:
  // Asks for an ISR change; done gets its outcome, on any thread: OK when
  // ZooKeeper holds the change (or it was not needed), an error when it
  // was not written, UNAVAILABLE when the outcome is unknown.
  using IsrChangeFn = std::function<void(IsrChange, std::function<void(Status)> done)>;
  // Options for opening a range's store (a replica installing a snapshot).
  using StoreOptionsFn = std::function<StoreOptions(RangeId)>;
  // Makes the transport once the replication executor exists; empty: TCP.
  using TransportFactory =
      std::function<std::unique_ptr<ReplicationTransport>(exec::Executor& replication)>;

  // self_life: this process's life (cluster_map.h): it leads only ranges
  // granted to it. env: where the executors come from (nullptr:
  // DefaultEnv()).
  Replicator(NodeId self, std::string self_life, ReplicationOptions options,
             StoreOptionsFn store_options, Env* env = nullptr, TransportFactory transport = {});
  ~Replicator();  // Stop()
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Where ISR changes go (the member's ZooKeeper thread). Set before the
  // first Update; the function must not block.
  void SetIsrChanger(IsrChangeFn fn);
  // News: the range znodes a split's or merge's multi wrote, as the owner
  // of the range `from` told this replica in a fetch answer (decoded, and
  // naming `from`): the node builds the new ranges at once, without
  // waiting for its own read of ZooKeeper (Node::ApplyNews). Called on
  // the replication thread; the function must not block.
  using NewsFn = std::function<void(RangeId from, cluster::ClusterMap::Written news)>;
  void SetNewsListener(NewsFn fn);

  // Control plane: the ranges held now, and min-insync. Starts, changes
  // and ends roles; returns once the replication thread has taken it, so a
  // range left out is no longer touched (its store may be closed after).
  void Update(std::vector<HeldRange> held, int min_insync);

  // A range whose local copy was lost (its store rebuilt empty): this node
  // does not lead it, and leaves its ISR (resign), until it has caught up
  // with an owner again.
  void MarkUntrusted(RangeId range);
  // Whether every range held has caught up with its owner since this
  // process started, or since its store was last reopened (led ranges count
  // as caught up).
  bool AllCaughtUp();
  // The owners (ascending ids) of ranges this node follows whose stream it
  // lost (Follower::LostOwner): the node reports them in its znode
  // (cluster_map.h "unreachable").
  std::vector<NodeId> LostOwners();
  // A store of this process hit an I/O error and was reopened: records it
  // had acknowledged may be gone (the node is suspect, cluster_map.h).
  bool lost_records() const;
  // Splits and transfers this process completed as owner, so far.
  uint64_t splits_done() const;
  uint64_t transfers_done() const;
  uint64_t merges_done() const;
  // Snapshot bytes copied from owners, so far (a copy started again counts
  // again).
  uint64_t copied_bytes() const;

  // Data plane (any thread): the fetch, snapshot, transfer and rangeStatus
  // requests. reply runs exactly once, on any thread.
  using Reply = std::function<void(proto::Response)>;
  void HandleFetch(proto::Request req, Reply reply);
  void HandleSnapshot(proto::Request req, Reply reply);
  // Hands req.range to the in-sync replica req.transfer_to (protocol.capnp
  // "transfer"): pong once ZooKeeper names it owner.
  void HandleTransfer(proto::Request req, Reply reply);
  // Splits req.range at req.ops[0].key (protocol.capnp "split"): pong once
  // ZooKeeper holds the new map.
  void HandleSplit(proto::Request req, Reply reply);
  // Merges req.range with the range right of it, both owned here
  // (protocol.capnp "merge"): pong once ZooKeeper holds the new map.
  void HandleMerge(proto::Request req, Reply reply);
  void HandleStatus(uint64_t id, Reply reply);

  // Ends every role (waiting fetches are answered UNAVAILABLE) and the
  // thread. Idempotent.
  void Stop();

  // The replication thread's io_context, where the server may move fetch
  // connections (Server::ServeFetchesOn); null when the executors are not
  // Asio's (the simulation's). Its thread runs until Stop; the
  // io_context lives as long as the Replicator.
  boost::asio::io_context* io_context();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rangekv::kvnode
