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

 private:
  static constexpr size_t kOps = 12;  // proto::OpKind values

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
};

}  // namespace rangekv::kvnode
