// repl/backend.h — what kvrepl commands run against.
//
// The shell never talks to the network itself: every command calls one of
// these methods. Implementations:
//   - ClientBackend (repl/client_backend.h): one node through rangekv::Client
//     (--node HOST:PORT);
//   - ClusterBackend (repl/cluster_backend.h): a cluster through ZooKeeper
//     (--zk), the only one answering the cluster queries below;
//   - FakeBackend in tests/repl: an in-memory map for unit tests.
//
// Return meanings follow rangekv/client.h exactly: errors are Status values
// with a Code (CAS_FAILED, TOO_LARGE, UNAVAILABLE, TIMEOUT, ...); writes
// return the version they created.
//
// Read consistency: the shell's `consistency` command sets it on the
// backend (SetConsistency); Get and Scan of the client backends pass it to
// the client (CallOptions::consistency). Writes ignore it.
//
// Thread-safety: the shell calls one method at a time from one thread;
// implementations need not be thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/client.h"
#include "rangekv/cluster_info.h"
#include "rangekv/status.h"

namespace rangekv::repl {

// Replication progress of one range as its owner reports it.
struct RangeProgress {
  uint64_t hwm = 0;  // the owner's high-water mark (commit seq)
  struct Lag {
    std::string node;      // a replica other than the owner
    uint64_t records = 0;  // owner's last seq minus the replica's acked seq
  };
  std::vector<Lag> lag;  // in the owner's order
  uint64_t keys = 0;
  uint64_t bytes = 0;
  uint32_t requests_per_sec = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;

  // nullopt when the key does not exist.
  virtual Result<std::optional<VersionedValue>> Get(std::string_view key) = 0;
  virtual Result<uint64_t> Put(std::string_view key, std::string_view value) = 0;
  virtual Result<uint64_t> Delete(std::string_view key) = 0;
  // expected_version 0 = the key must not exist. Mismatch: CAS_FAILED.
  virtual Result<uint64_t> Cas(std::string_view key, uint64_t expected_version,
                               std::string_view value) = 0;
  // Keys in [start, end); end nullopt = to the end; limit 0 = server default.
  virtual Result<ScanResult> Scan(std::string_view start, std::optional<std::string_view> end,
                                  uint32_t limit) = 0;
  // All ops apply or none.
  virtual Result<uint64_t> Batch(std::vector<BatchOp> ops) = 0;
  virtual Status Ping() = 0;

  // ---- cluster queries (from the client's cluster map) ----
  // The default implementations fail with BAD_REQUEST "'<cmd>' needs --zk".
  struct ClusterIdentity {
    std::string cluster;
    std::string zookeeper;
  };
  virtual Result<std::vector<NodeStatus>> Nodes();
  virtual Result<std::vector<RangeStatus>> Ranges();
  virtual Result<RangeStatus> Locate(std::string_view key);
  virtual Result<ClusterIdentity> Identity();
  // Asks the owner of range `range` to hand it to the in-sync replica
  // `node` (no failover; common/protocol.capnp "transfer"). OK once the
  // map names `node` owner.
  virtual Status Transfer(uint64_t range, std::string_view node);
  // Moves range `range`'s replica on node `from` to node `to`
  // (common/cluster_map.h "move_replica"): OK once the map shows `to` in
  // its in-sync replicas and `from` gone from them.
  virtual Status Move(uint64_t range, std::string_view from, std::string_view to);
  // Moves every replica and ownership off `node` (common/cluster_map.h
  // "R/draining"): OK once no range names it any more (safe to stop).
  virtual Status Decommission(std::string_view node);
  // Undoes a decommission: the node may take replicas again.
  virtual Status Recommission(std::string_view node);
  // The nodes being decommissioned, for `nodes` (empty when unknown: the
  // list of nodes alone is still worth printing).
  virtual std::set<std::string> Draining() { return {}; }
  // Asks the owner of the range holding `key` to split it at key
  // (common/protocol.capnp "split"). OK once the map shows a range
  // starting at key.
  virtual Status Split(std::string_view key);
  // Merges the range holding `key` with the range right of it
  // (common/protocol.capnp "merge"), handing the right one to the left's
  // owner first when they differ. OK once the map shows one range over
  // both.
  virtual Status Merge(std::string_view key);
  // Progress of the given ranges (from Ranges()) by range id, asked of
  // their owners; ranges whose owner did not say (down, not asked, an
  // older node) are missing. Never an error: the map alone is still worth
  // printing. The default knows nothing (empty).
  virtual std::map<uint64_t, RangeProgress> Progress(const std::vector<RangeStatus>& ranges);

  void SetConsistency(ReadConsistency c) { consistency_ = c; }
  ReadConsistency consistency() const { return consistency_; }

  // What the shell is connected to, for the banner, e.g. "127.0.0.1:7000".
  virtual std::string Describe() const = 0;

 protected:
  ReadConsistency consistency_ = ReadConsistency::kLinearizable;
};

}  // namespace rangekv::repl
