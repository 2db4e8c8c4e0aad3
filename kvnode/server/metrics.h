// kvnode/server/metrics.h — the kvnode's Prometheus metrics (common/metrics/metrics.h),
// served on GET /metrics of the --admin address.
//
// Every name starts with rangekv_kvnode_:
//
// | name                     | type      | labels     | meaning                                 |
// |--------------------------|-----------|------------|-----------------------------------------|
// | requests_total           | counter   | op, result | requests answered; op: get, put, delete,|
// |                          |           |            | cas, scan, batch, ping; result: OK or   |
// |                          |           |            | the error code (NOT_OWNER, CAS_FAILED..)|
// | request_duration_seconds | histogram | op         | request decoded -> answer ready (writes:|
// |                          |           |            | durable per the fsync policy)           |
// | ranges_served            | gauge     |            | ranges with an open store               |
// | joined                   | gauge     |            | 1 while serving from a map read under a |
// |                          |           |            | live session (standalone: always 1)     |
// | zk_session_state         | gauge     | state      | 1 for the current state: none,          |
// |                          |           |            | connecting, connected, expired,         |
// |                          |           |            | auth_failed, closed; 0 for the others   |
// | zk_watch_events_total    | counter   | type       | watch channel events (NodeCreated, ...) |
// | reconciles_total         | counter   | result     | cluster map re-reads: ok / failed       |
// | range_keys               | gauge     | range      | keys of each range this node owns       |
// | range_bytes              | gauge     | range      | their key and value bytes               |
// | range_requests_per_second| gauge     | range      | requests admitted, last three seconds   |
// | range_replica_lag_records| gauge     | range      | records its furthest-behind other       |
// |                          |           |            | replica lacks (replication lag)         |
// | splits_total             | counter   |            | splits this node completed as owner     |
// | transfers_total          | counter   |            | ranges this node handed over as owner   |
// | merges_total             | counter   |            | merges this node completed as owner     |
// | parked_writes_total      | counter   |            | writes that waited on the node through  |
// |                          |           |            | a split, merge or transfer              |
// |                          |           |            | (write_parking.h; counted again when    |
// |                          |           |            | one waits a second time)                |
// | copied_bytes_total       | counter   |            | snapshot bytes copied from owners: new, |
// |                          |           |            | moved and rebuilt copies (bytes moved)  |
//
// The range_* series exist while this node owns the range (looked at once
// a second); a range that moved or merged away drops its series.
//
// Latency buckets: 25 us doubling up to ~1.6 s (17 buckets, then +Inf).
//
// Thread-safety: all methods are safe from any thread; RecordRequest is
// lock-free for successful requests (the hot path) and takes a short mutex
// the first time an (op, error code) pair is seen.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <utility>

#include "common/metrics/metrics.h"
#include "common/mutex.h"
#include "common/protocol.h"
#include "common/types.h"
#include "common/zk/session.h"
#include "common/zk/watch_channel.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

// "get", "put", ... as used in the op label.
const char* OpName(proto::OpKind op);

enum class ReconcileResult { kOk, kFailed };

class NodeMetrics {
 public:
  // Registers the families in registry, which must outlive this object.
  explicit NodeMetrics(metrics::Registry& registry);

  void RecordRequest(proto::OpKind op, Code result, std::chrono::nanoseconds latency)
      EXCLUDES(errors_mu_);
  void SetRangesServed(size_t n) { ranges_served_.Set(static_cast<double>(n)); }
  void SetJoined(bool joined) { joined_.Set(joined ? 1 : 0); }
  // nullopt: no session object exists (ZooKeeper not reached yet).
  void SetSessionState(std::optional<zk::SessionState> state);
  void CountWatchEvent(zk::WatchEventType type);
  void CountReconcile(ReconcileResult result);
  struct OwnedRange {
    uint64_t keys = 0;
    uint64_t bytes = 0;
    uint32_t requests_per_sec = 0;
    // Records the furthest-behind other replica lacks (the owner's view).
    uint64_t max_lag_records = 0;
  };
  // The ranges this node owns now (the others' series are dropped).
  void SetOwnedRanges(const std::map<RangeId, OwnedRange>& ranges) EXCLUDES(ranges_mu_);
  // Totals so far (the counters move by the difference).
  void SetRangeChanges(uint64_t splits, uint64_t transfers, uint64_t merges) EXCLUDES(ranges_mu_);
  void SetParkedWrites(uint64_t total) EXCLUDES(ranges_mu_);
  void SetCopiedBytes(uint64_t total) EXCLUDES(ranges_mu_);
  // Counts connections refused before any request was read (TLS).
  metrics::Counter refused_connections() const { return refused_; }
  // Counts ZooKeeper requests refused for want of rights (ZNOAUTH,
  // ZAUTHFAILED) while the node runs (at start-up a refusal stops it).
  metrics::Counter zk_refused() const { return zk_refused_; }

 private:
  static constexpr size_t kOps = 13;  // proto::OpKind values

  metrics::CounterFamily requests_;
  std::array<metrics::Counter, kOps> ok_;
  std::array<metrics::Histogram, kOps> latency_;
  Mutex errors_mu_;
  std::map<std::pair<size_t, Code>, metrics::Counter> errors_ GUARDED_BY(errors_mu_);
  metrics::Gauge ranges_served_;
  metrics::Gauge joined_;
  metrics::GaugeFamily session_state_;
  metrics::CounterFamily watch_events_;
  metrics::Counter reconciles_ok_;
  metrics::Counter reconciles_failed_;
  struct RangeSeries {
    metrics::Gauge keys, bytes, qps, lag;
  };
  metrics::GaugeFamily range_keys_, range_bytes_, range_qps_, range_lag_;
  metrics::Counter splits_, transfers_, merges_, parked_, copied_, refused_, zk_refused_;
  Mutex ranges_mu_;
  std::map<RangeId, RangeSeries> ranges_ GUARDED_BY(ranges_mu_);
  uint64_t splits_seen_ GUARDED_BY(ranges_mu_) = 0;
  uint64_t transfers_seen_ GUARDED_BY(ranges_mu_) = 0;
  uint64_t merges_seen_ GUARDED_BY(ranges_mu_) = 0;
  uint64_t parked_seen_ GUARDED_BY(ranges_mu_) = 0;
  uint64_t copied_seen_ GUARDED_BY(ranges_mu_) = 0;
};

}  // namespace rangekv::kvnode
