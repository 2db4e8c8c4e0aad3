// coordinator/metrics_export.h — publishes CoordinatorStats as Prometheus
// metrics on the --admin endpoint.
//
// The coordinator keeps plain counters (CoordinatorStats); this exporter
// copies them into a metrics::Registry once per period on the coordinator's
// executor, so the reconcile path never touches the metrics library.
// Exported: rangekv_kvcoord_<stat>_total counters (promotions_total among
// them), the gauge rangekv_kvcoord_leader (1 while this coordinator leads),
// the gauge rangekv_kvcoord_last_failover_window_seconds (the latest
// promotion's failover window, coordinator.h) and the histogram
// rangekv_kvcoord_failover_window_seconds (every known window; buckets
// 1 ms .. 32 s, doubling), and the map's health as gauges from the latest
// map read: rangekv_kvcoord_ranges, _ranges_under_replicated (ISR smaller
// than rf), _ranges_under_min_insync (writes wait), _replica_moves_in_flight
// and _range_isr_size{range="<id>"} (series of merged ranges dropped).
//
// Lifetime: the Coordinator must outlive the exporter; Stop() before either
// is destroyed. Thread-safety: Start/Stop from one thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/metrics/metrics.h"
#include "coordinator/coordinator.h"

namespace rangekv::coordinator {

class MetricsExporter {
 public:
  // Listens on host:port (port 0 = any). UNAVAILABLE with one line when the
  // address cannot be used.
  static Result<std::unique_ptr<MetricsExporter>> Start(asio::any_io_executor executor,
                                                        const Coordinator& coordinator,
                                                        const std::string& host, uint16_t port,
                                                        std::chrono::milliseconds period);
  ~MetricsExporter();
  void Stop();
  const std::string& address() const;

 private:
  struct Impl;
  explicit MetricsExporter(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace rangekv::coordinator
