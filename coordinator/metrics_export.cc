#include "coordinator/metrics_export.h"

#include <array>
#include <atomic>
#include <map>
#include <string>
#include <utility>

namespace rangekv::coordinator {
namespace {

using StatField = uint64_t CoordinatorStats::*;
struct Exported {
  const char* name;
  const char* help;
  StatField field;
};
constexpr std::array<Exported, 23> kExported = {{
    {"reconciles_started", "Reconcile runs that reached ZooKeeper.",
     &CoordinatorStats::reconciles_started},
    {"reconciles", "Reconcile runs that reached ZooKeeper and ended.",
     &CoordinatorStats::reconciles},
    {"reconcile_failures", "Reconcile runs cut short by a ZooKeeper error.",
     &CoordinatorStats::reconcile_failures},
    {"elections_won", "Times this coordinator became leader.", &CoordinatorStats::elections_won},
    {"leadership_lost", "Times it stopped leading while running.",
     &CoordinatorStats::leadership_lost},
    {"writes", "Successful writes to the cluster map.", &CoordinatorStats::writes},
    {"cas_conflicts", "Writes refused because a znode version changed.",
     &CoordinatorStats::cas_conflicts},
    {"write_failures", "Writes that failed for another reason.", &CoordinatorStats::write_failures},
    {"ranges_created", "Ranges created by bootstrap.", &CoordinatorStats::ranges_created},
    {"ranges_marked_unavailable", "Ranges marked unavailable.",
     &CoordinatorStats::ranges_marked_unavailable},
    {"ranges_marked_active", "Ranges marked active again.",
     &CoordinatorStats::ranges_marked_active},
    {"owners_assigned", "Owners given to ownerless ranges.", &CoordinatorStats::owners_assigned},
    {"ranges_repaired", "Range znodes with bad data rewritten.",
     &CoordinatorStats::ranges_repaired},
    {"promotions", "Ranges whose dead owner was replaced by a live ISR member.",
     &CoordinatorStats::promotions},
    {"isr_shrinks", "Writes that removed dead members from an ISR.",
     &CoordinatorStats::isr_shrinks},
    {"replicas_replaced", "Writes that swapped dead replicas for live nodes.",
     &CoordinatorStats::replicas_replaced},
    {"replicas_added", "Writes that added replicas to a range below rf.",
     &CoordinatorStats::replicas_added},
    {"balance_moves",
     "Writes that asked an owner to hand a range over to balance load (or dropped such an ask).",
     &CoordinatorStats::balance_moves},
    {"replica_moves",
     "Writes that started, advanced, ended or dropped a replica move (balance, REPL move).",
     &CoordinatorStats::replica_moves},
    {"sessions_opened", "ZooKeeper sessions opened.", &CoordinatorStats::sessions_opened},
    {"session_expiries", "ZooKeeper sessions that expired.", &CoordinatorStats::session_expiries},
    {"zk_refused",
     "ZooKeeper requests refused for want of rights (ZNOAUTH, ZAUTHFAILED): the credentials or "
     "the ACLs are wrong.",
     &CoordinatorStats::zk_refused},
    {"nodes_failed",
     "Nodes the failure detector declared failed (reported unreachable, no answer to pings).",
     &CoordinatorStats::nodes_failed},
}};

}  // namespace

struct MetricsExporter::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor ex, const Coordinator& c, std::chrono::milliseconds p)
      : timer(ex), coordinator(c), period(p) {}

  void Publish() {
    CoordinatorStats now = coordinator.stats();
    for (size_t i = 0; i < kExported.size(); ++i) {
      uint64_t v = now.*(kExported[i].field);
      uint64_t before = last.*(kExported[i].field);
      // Counters only go up; the stats only go up too, so the delta is safe.
      if (v > before) counters[i].Inc(static_cast<double>(v - before));
    }
    leader.Set(now.elections_won > now.leadership_lost ? 1 : 0);
    if (now.failovers_timed > 0) last_failover.Set(static_cast<double>(now.last_failover_ms) / 1e3);
    for (double ms : coordinator.FailoverWindowsSince(&windows_seen)) {
      failover_window.Observe(ms / 1e3);
    }
    ranges.Set(static_cast<double>(now.ranges));
    under_replicated.Set(static_cast<double>(now.ranges_under_replicated));
    under_min_insync.Set(static_cast<double>(now.ranges_under_min_insync));
    moves.Set(static_cast<double>(now.replica_moves_in_flight));
    PublishIsrSizes(now.isr_sizes);
    last = now;
  }

  // One series per range; those of ranges gone (merged) are dropped.
  void PublishIsrSizes(const std::map<RangeId, size_t>& sizes) {
    for (auto it = isr_size.begin(); it != isr_size.end();) {
      if (sizes.count(it->first)) {
        ++it;
        continue;
      }
      isr_size_family.Remove(it->second);
      it = isr_size.erase(it);
    }
    for (const auto& [id, n] : sizes) {
      auto it = isr_size.find(id);
      if (it == isr_size.end()) {
        it = isr_size
                 .emplace(id, isr_size_family.WithLabels({{"range", std::to_string(id.value())}}))
                 .first;
      }
      it->second.Set(static_cast<double>(n));
    }
  }

  void Arm() {
    timer.expires_after(period);
    timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped) return;
      self->Publish();
      self->Arm();
    });
  }

  metrics::Registry registry;
  std::array<metrics::Counter, kExported.size()> counters;
  metrics::Gauge leader;
  metrics::Gauge last_failover;
  metrics::Histogram failover_window;
  metrics::Gauge ranges, under_replicated, under_min_insync, moves;
  metrics::GaugeFamily isr_size_family;
  std::map<RangeId, metrics::Gauge> isr_size;
  uint64_t windows_seen = 0;
  std::unique_ptr<metrics::HttpEndpoint> http;
  asio::steady_timer timer;
  const Coordinator& coordinator;
  std::chrono::milliseconds period;
  CoordinatorStats last;
  std::atomic<bool> stopped{false};
};

MetricsExporter::MetricsExporter(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsExporter::~MetricsExporter() { Stop(); }

Result<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(asio::any_io_executor executor,
                                                                const Coordinator& coordinator,
                                                                const std::string& host,
                                                                uint16_t port,
                                                                std::chrono::milliseconds period) {
  auto impl = std::make_shared<Impl>(executor, coordinator, period);
  for (size_t i = 0; i < kExported.size(); ++i) {
    impl->counters[i] =
        impl->registry
            .AddCounterFamily(std::string("rangekv_kvcoord_") + kExported[i].name + "_total",
                              kExported[i].help)
            .WithLabels();
  }
  impl->leader = impl->registry
                     .AddGaugeFamily("rangekv_kvcoord_leader",
                                     "1 while this coordinator is the leader, else 0.")
                     .WithLabels();
  impl->last_failover =
      impl->registry
          .AddGaugeFamily("rangekv_kvcoord_last_failover_window_seconds",
                          "Failover window of the latest promotion: old owner's node znode first "
                          "seen missing -> promotion written.")
          .WithLabels();
  impl->failover_window =
      impl->registry
          .AddHistogramFamily("rangekv_kvcoord_failover_window_seconds",
                              "Failover windows of promotions (see last_failover_window).",
                              metrics::ExponentialBuckets(0.001, 2, 16))
          .WithLabels();
  auto gauge = [&](const char* name, const char* help) {
    return impl->registry.AddGaugeFamily(name, help).WithLabels();
  };
  impl->ranges = gauge("rangekv_kvcoord_ranges", "Ranges in the cluster map (valid records).");
  impl->under_replicated = gauge("rangekv_kvcoord_ranges_under_replicated",
                                 "Ranges with fewer in-sync replicas than rf.");
  impl->under_min_insync =
      gauge("rangekv_kvcoord_ranges_under_min_insync",
            "Ranges with fewer in-sync replicas than min-insync: their writes wait.");
  impl->moves = gauge("rangekv_kvcoord_replica_moves_in_flight",
                      "Replica moves under way (balance, drain or REPL move).");
  impl->isr_size_family = impl->registry.AddGaugeFamily("rangekv_kvcoord_range_isr_size",
                                                        "In-sync replicas of each range.");
  auto http = metrics::HttpEndpoint::Start(host, port, impl->registry);
  if (!http.ok()) return http.status();
  impl->http = std::move(http).value();
  // The first publish runs on the executor, like every later one.
  asio::post(executor, [weak = std::weak_ptr<Impl>(impl)] {
    if (auto self = weak.lock(); self && !self->stopped) {
      self->Publish();
      self->Arm();
    }
  });
  return std::unique_ptr<MetricsExporter>(new MetricsExporter(std::move(impl)));
}

void MetricsExporter::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  asio::post(impl_->timer.get_executor(), [impl = impl_] { impl->timer.cancel(); });
  impl_->http.reset();
}

const std::string& MetricsExporter::address() const { return impl_->http->address(); }

}  // namespace rangekv::coordinator
