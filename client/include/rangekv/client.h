// rangekv/client.h — the rangekv client library.
//
// A Client holds connections to rangekv nodes and sends each request to the
// node that serves its key. Requests are pipelined: many may be in flight on
// one connection at once, matched by id.
//
// Two APIs over the same machinery:
//   - blocking: Get/Put/... return when the answer arrives or the deadline
//     passes; safe to call from many threads at once;
//   - async: GetAsync/PutAsync/... return at once; the callback runs exactly
//     once on one of the client's I/O threads. Callbacks must not block (no
//     blocking Client calls inside them).
//
// Errors are values: every call returns a Status/Result with a Code from
// rangekv/status.h. TIMEOUT and UNAVAILABLE on a write mean "outcome
// unknown": the write may or may not have been applied. Final errors
// (CAS_FAILED, TOO_LARGE, BAD_REQUEST, CROSS_RANGE) are never retried.
//
// Lifetime: destroying the Client fails every pending request with
// UNAVAILABLE (callbacks still run once) and joins its threads. Do not
// destroy it from inside one of its callbacks.
//
// No Asio, Cap'n Proto or ZooKeeper type appears in this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/cluster_info.h"
#include "rangekv/status.h"

#if defined(RANGEKV_CLIENT_BUILD)
#define RANGEKV_EXPORT __attribute__((visibility("default")))
#else
#define RANGEKV_EXPORT
#endif

namespace rangekv {

struct ClientOptions {
  // Deadline of each request unless the call gives its own.
  std::chrono::milliseconds request_timeout{5000};
  std::chrono::milliseconds connect_timeout{2000};
  // TCP connections kept to each node; requests are spread over them.
  int connections_per_node = 1;
  // Threads running the client's I/O.
  int io_threads = 1;
  // TLS with mutual certificates (PEM files: the cluster CA, this client's
  // certificate and its key; all three or none). Empty: plaintext, which a
  // TLS node refuses with UNAUTHENTICATED. A node's certificate must name
  // the host the client dials (its address in the cluster map).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // ZooKeeper credentials for Connect (a cluster): a file whose first line
  // is user:password (ZooKeeper's digest scheme; docs/security.md), never
  // the secret itself. Empty: anonymous, which a cluster with ACLs refuses
  // with UNAUTHENTICATED. Connect fails with BAD_REQUEST naming the file
  // when it is missing or malformed, and never prints what it holds.
  std::string zk_auth_file;
};

enum class ReadConsistency { kLinearizable, kStale };

struct CallOptions {
  std::optional<std::chrono::milliseconds> timeout;  // default: request_timeout
  ReadConsistency consistency = ReadConsistency::kLinearizable;
};

struct VersionedValue {
  std::string value;
  uint64_t version = 0;  // sequence of the write that last changed the key
};

struct KeyValue {
  std::string key;
  std::string value;
  uint64_t version = 0;
};

struct ScanResult {
  std::vector<KeyValue> entries;  // in key order
  bool more = false;              // stopped at the limit; more keys follow
};

struct BatchOp {
  enum class Kind { kPut, kDelete, kCas } kind = Kind::kPut;
  std::string key;
  std::string value;
  uint64_t expected_version = 0;  // kCas; 0 = the key must not exist

  static BatchOp Put(std::string k, std::string v) { return {Kind::kPut, std::move(k), std::move(v), 0}; }
  static BatchOp Delete(std::string k) { return {Kind::kDelete, std::move(k), {}, 0}; }
  static BatchOp Cas(std::string k, uint64_t ver, std::string v) {
    return {Kind::kCas, std::move(k), std::move(v), ver};
  }
};

class RANGEKV_EXPORT Client {
 public:
  // Connects to one node, given as "host:port" (IPv4, [IPv6] or a name).
  // Fails with UNAVAILABLE when the node cannot be reached within
  // connect_timeout, BAD_REQUEST for a malformed address.
  static Result<std::unique_ptr<Client>> ConnectNode(std::string_view address,
                                                     ClientOptions options = {});
  // Connects to a cluster through ZooKeeper (zk_connect: "host:port[,...]")
  // and routes each request straight to the owner of its key's range, per a
  // cluster map it keeps current (watch + periodic re-read). Fails with
  // UNAVAILABLE when ZooKeeper cannot be reached (or the map read) within
  // connect_timeout, BAD_REQUEST for a bad connect string or cluster name,
  // and BAD_REQUEST naming the clusters that ZooKeeper does hold when no
  // cluster of this name appears there within connect_timeout (a cluster
  // exists once one of its coordinators or nodes has started).
  //
  // Routing and retries within each request's deadline:
  //   - NOT_OWNER: resent at once to the node named by the owner hint, and
  //     the map is re-read;
  //   - connect refused, RANGE_UNAVAILABLE, a range with no owner or whose
  //     owner is down: map re-read, retry with backoff (2 ms doubling to
  //     100 ms) until the deadline, which then fails with the last error;
  //   - a read whose connection is lost after it was sent: retried the same
  //     way; a write is not (its outcome is unknown): UNAVAILABLE. A write
  //     is only sent on a connection already established, so a refused
  //     connect never makes its outcome unknown;
  //   - a request still waiting on an owner when a read of the map shows
  //     its range failed over to another node (the old owner stopped, or
  //     cut off with its connection up): ends at once like a lost
  //     connection (a read retried at the new owner, a write UNAVAILABLE,
  //     outcome unknown) instead of waiting for the old owner or the
  //     deadline. A handoff (a transfer) does not end them: the old owner
  //     answers them itself;
  //   - TIMEOUT and the final errors are returned as they are.
  // Stale reads (get/scan with ReadConsistency::kStale) may be answered by
  // any replica of the range from its committed state: they go to the
  // owner when it is live, else to the first live replica of the range in
  // the map's order; after an error from one (any of the retried cases
  // above) the next live replica is tried at once, and only when every one
  // failed does the read back off. Each attempt at one node may take at
  // most max(200 ms, timeout / 4) (less when the deadline is nearer); one
  // that runs out counts as an error of that node, so a node that accepts
  // the request but never answers (paused) does not use up the deadline.
  // So they keep working while the owner is down, paused, ownerless or the
  // range is unavailable, as long as one live replica serves them.
  // Linearizable reads and all writes go to the owner only.
  // Batch: every key must be in one range of the current map, else
  // CROSS_RANGE without contacting any node. Scan: walks the ranges in key
  // order, one request per range, until the limit (0 = 1000) is reached or
  // the end; `more` is set when the limit stopped it (at a range boundary
  // the next range is not looked at, so more keys may, not must, follow). A
  // scan across ranges is not a snapshot: each range is read at its own
  // moment.
  // Ping: pings the owner of the range holding the empty key.
  // Blocking work (the ZooKeeper session, the first map read) happens in
  // this call, on the caller's thread; afterwards the map is kept current
  // on a thread of its own, never on the I/O threads. Destroying a cluster
  // client waits up to 2 s for a map read in flight to finish.
  static Result<std::unique_ptr<Client>> Connect(std::string_view zk_connect,
                                                 std::string_view cluster,
                                                 ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ---- blocking ----
  // nullopt when the key does not exist.
  Result<std::optional<VersionedValue>> Get(std::string_view key, CallOptions o = {});
  // Each returns the version of the write (its sequence number).
  Result<uint64_t> Put(std::string_view key, std::string_view value, CallOptions o = {});
  Result<uint64_t> Delete(std::string_view key, CallOptions o = {});
  Result<uint64_t> Cas(std::string_view key, uint64_t expected_version, std::string_view value,
                       CallOptions o = {});
  // Keys in [start, end); end nullopt = to the end. limit 0 = server default.
  Result<ScanResult> Scan(std::string_view start, std::optional<std::string_view> end,
                          uint32_t limit, CallOptions o = {});
  // All ops apply or none; the whole batch must fall in one range.
  Result<uint64_t> Batch(std::vector<BatchOp> ops, CallOptions o = {});
  Status Ping(CallOptions o = {});

  // ---- cluster introspection (Connect only; from the current map) ----
  // Live nodes plus owners/replicas without a live znode (down), by id.
  // Empty for a ConnectNode client.
  std::vector<NodeStatus> Nodes() const;
  // Every range in key order. Empty for a ConnectNode client.
  std::vector<RangeStatus> Ranges() const;
  // The range holding key; RANGE_UNAVAILABLE when no range does (a hole),
  // BAD_REQUEST for a ConnectNode client.
  Result<RangeStatus> Locate(std::string_view key) const;

  // ---- async ----
  using GetCallback = std::function<void(Result<std::optional<VersionedValue>>)>;
  using WriteCallback = std::function<void(Result<uint64_t>)>;
  using ScanCallback = std::function<void(Result<ScanResult>)>;

  void GetAsync(std::string key, GetCallback cb, CallOptions o = {});
  void PutAsync(std::string key, std::string value, WriteCallback cb, CallOptions o = {});
  void DeleteAsync(std::string key, WriteCallback cb, CallOptions o = {});
  void CasAsync(std::string key, uint64_t expected_version, std::string value, WriteCallback cb,
                CallOptions o = {});
  void ScanAsync(std::string start, std::optional<std::string> end, uint32_t limit,
                 ScanCallback cb, CallOptions o = {});
  void BatchAsync(std::vector<BatchOp> ops, WriteCallback cb, CallOptions o = {});

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rangekv
