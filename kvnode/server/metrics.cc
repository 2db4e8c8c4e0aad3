#include "kvnode/server/metrics.h"

#include <algorithm>

namespace rangekv::kvnode {
namespace {

constexpr proto::OpKind kAllOps[] = {
    proto::OpKind::kGet,         proto::OpKind::kPut,      proto::OpKind::kDelete,
    proto::OpKind::kCas,         proto::OpKind::kScan,     proto::OpKind::kBatch,
    proto::OpKind::kPing,        proto::OpKind::kFetch,    proto::OpKind::kSnapshot,
    proto::OpKind::kRangeStatus, proto::OpKind::kTransfer, proto::OpKind::kSplit,
    proto::OpKind::kMerge};

constexpr const char* kSessionStates[] = {"none",    "connecting",  "connected",
                                          "expired", "auth_failed", "closed"};

const char* SessionLabel(std::optional<zk::SessionState> s) {
  if (!s) return "none";
  switch (*s) {
    case zk::SessionState::kConnecting:
      return "connecting";
    case zk::SessionState::kConnected:
      return "connected";
    case zk::SessionState::kExpired:
      return "expired";
    case zk::SessionState::kAuthFailed:
      return "auth_failed";
    case zk::SessionState::kClosed:
      return "closed";
  }
  return "none";
}

size_t OpIndex(proto::OpKind op) { return static_cast<size_t>(op) % std::size(kAllOps); }

}  // namespace

const char* OpName(proto::OpKind op) {
  switch (op) {
    case proto::OpKind::kGet:
      return "get";
    case proto::OpKind::kPut:
      return "put";
    case proto::OpKind::kDelete:
      return "delete";
    case proto::OpKind::kCas:
      return "cas";
    case proto::OpKind::kScan:
      return "scan";
    case proto::OpKind::kBatch:
      return "batch";
    case proto::OpKind::kPing:
      return "ping";
    case proto::OpKind::kFetch:
      return "fetch";
    case proto::OpKind::kSnapshot:
      return "snapshot";
    case proto::OpKind::kRangeStatus:
      return "range_status";
    case proto::OpKind::kTransfer:
      return "transfer";
    case proto::OpKind::kSplit:
      return "split";
    case proto::OpKind::kMerge:
      return "merge";
  }
  return "unknown";
}

NodeMetrics::NodeMetrics(metrics::Registry& registry)
    : requests_(registry.AddCounterFamily("rangekv_kvnode_requests_total",
                                          "Requests answered, by operation and result code.")),
      ranges_served_(registry
                         .AddGaugeFamily("rangekv_kvnode_ranges_served",
                                         "Ranges this node serves (store open, in the table).")
                         .WithLabels()),
      joined_(registry
                  .AddGaugeFamily("rangekv_kvnode_joined",
                                  "1 while the node serves from a cluster map read under a live "
                                  "ZooKeeper session (standalone: always 1).")
                  .WithLabels()),
      session_state_(registry.AddGaugeFamily("rangekv_kvnode_zk_session_state",
                                             "1 for the current ZooKeeper session state.")),
      watch_events_(registry.AddCounterFamily("rangekv_kvnode_zk_watch_events_total",
                                              "Events from the ZooKeeper watch channel.")) {
  static_assert(std::size(kAllOps) == kOps);
  auto latency = registry.AddHistogramFamily(
      "rangekv_kvnode_request_duration_seconds",
      "Time from a decoded request to its answer being ready, by operation.",
      metrics::ExponentialBuckets(25e-6, 2, 17));
  for (proto::OpKind op : kAllOps) {
    ok_[OpIndex(op)] = requests_.WithLabels({{"op", OpName(op)}, {"result", "OK"}});
    latency_[OpIndex(op)] = latency.WithLabels({{"op", OpName(op)}});
  }
  auto reconciles = registry.AddCounterFamily("rangekv_kvnode_reconciles_total",
                                              "Re-reads of the cluster map, by result.");
  reconciles_ok_ = reconciles.WithLabels({{"result", "ok"}});
  reconciles_failed_ = reconciles.WithLabels({{"result", "failed"}});
  range_keys_ =
      registry.AddGaugeFamily("rangekv_kvnode_range_keys", "Keys of each range this node owns.");
  range_bytes_ = registry.AddGaugeFamily("rangekv_kvnode_range_bytes",
                                         "Key and value bytes of each range this node owns.");
  range_qps_ = registry.AddGaugeFamily(
      "rangekv_kvnode_range_requests_per_second",
      "Requests a second each range this node owns admitted, over the last three seconds.");
  range_lag_ = registry.AddGaugeFamily(
      "rangekv_kvnode_range_replica_lag_records",
      "Records of each range this node owns that its furthest-behind other replica lacks.");
  copied_ = registry
                .AddCounterFamily("rangekv_kvnode_copied_bytes_total",
                                  "Snapshot bytes this node copied from owners: new, moved and "
                                  "rebuilt copies of ranges.")
                .WithLabels();
  refused_ = registry
                 .AddCounterFamily("rangekv_kvnode_connections_refused_total",
                                   "Connections refused before any request was read: a failed "
                                   "TLS handshake (no, a wrong or an expired certificate), "
                                   "plaintext on a TLS node or TLS on a plaintext one.")
                 .WithLabels();
  zk_refused_ = registry
                    .AddCounterFamily("rangekv_kvnode_zk_refused_total",
                                      "ZooKeeper requests refused for want of rights (ZNOAUTH, "
                                      "ZAUTHFAILED): the credentials or the ACLs are wrong.")
                    .WithLabels();
  splits_ = registry
                .AddCounterFamily("rangekv_kvnode_splits_total",
                                  "Splits this node completed as the range's owner.")
                .WithLabels();
  transfers_ = registry
                   .AddCounterFamily("rangekv_kvnode_transfers_total",
                                     "Ranges this node handed over to another owner.")
                   .WithLabels();
  merges_ = registry
                .AddCounterFamily("rangekv_kvnode_merges_total",
                                  "Merges of two ranges this node completed as their owner.")
                .WithLabels();
  parked_ = registry
                .AddCounterFamily("rangekv_kvnode_parked_writes_total",
                                  "Writes that waited on this node through a split, merge or "
                                  "transfer of their range.")
                .WithLabels();
  SetSessionState(std::nullopt);
}

void NodeMetrics::SetOwnedRanges(const std::map<RangeId, OwnedRange>& ranges) {
  MutexLock lock(ranges_mu_);
  for (auto it = ranges_.begin(); it != ranges_.end();) {
    if (ranges.count(it->first)) {
      ++it;
      continue;
    }
    range_keys_.Remove(it->second.keys);
    range_bytes_.Remove(it->second.bytes);
    range_qps_.Remove(it->second.qps);
    range_lag_.Remove(it->second.lag);
    it = ranges_.erase(it);
  }
  for (const auto& [id, r] : ranges) {
    auto it = ranges_.find(id);
    if (it == ranges_.end()) {
      const metrics::Labels l{{"range", std::to_string(id.value())}};
      it = ranges_
               .emplace(id, RangeSeries{range_keys_.WithLabels(l), range_bytes_.WithLabels(l),
                                        range_qps_.WithLabels(l), range_lag_.WithLabels(l)})
               .first;
    }
    it->second.keys.Set(static_cast<double>(r.keys));
    it->second.bytes.Set(static_cast<double>(r.bytes));
    it->second.qps.Set(r.requests_per_sec);
    it->second.lag.Set(static_cast<double>(r.max_lag_records));
  }
}

void NodeMetrics::SetRangeChanges(uint64_t splits, uint64_t transfers, uint64_t merges) {
  MutexLock lock(ranges_mu_);
  if (merges > merges_seen_) merges_.Inc(static_cast<double>(merges - merges_seen_));
  merges_seen_ = std::max(merges_seen_, merges);
  if (splits > splits_seen_) splits_.Inc(static_cast<double>(splits - splits_seen_));
  if (transfers > transfers_seen_) transfers_.Inc(static_cast<double>(transfers - transfers_seen_));
  splits_seen_ = std::max(splits_seen_, splits);
  transfers_seen_ = std::max(transfers_seen_, transfers);
}

void NodeMetrics::SetParkedWrites(uint64_t total) {
  MutexLock lock(ranges_mu_);
  if (total > parked_seen_) parked_.Inc(static_cast<double>(total - parked_seen_));
  parked_seen_ = std::max(parked_seen_, total);
}

void NodeMetrics::SetCopiedBytes(uint64_t total) {
  MutexLock lock(ranges_mu_);
  if (total > copied_seen_) copied_.Inc(static_cast<double>(total - copied_seen_));
  copied_seen_ = std::max(copied_seen_, total);
}

void NodeMetrics::RecordRequest(proto::OpKind op, Code result, std::chrono::nanoseconds latency) {
  size_t i = OpIndex(op);
  latency_[i].Observe(std::chrono::duration<double>(latency).count());
  if (result == Code::kOk) {
    ok_[i].Inc();
    return;
  }
  metrics::Counter c;
  {
    MutexLock lock(errors_mu_);
    auto it = errors_.find({i, result});
    if (it == errors_.end()) {
      it = errors_
               .emplace(std::make_pair(i, result),
                        requests_.WithLabels({{"op", OpName(op)}, {"result", CodeName(result)}}))
               .first;
    }
    c = it->second;
  }
  c.Inc();
}

void NodeMetrics::SetSessionState(std::optional<zk::SessionState> state) {
  const char* now = SessionLabel(state);
  for (const char* s : kSessionStates) {
    session_state_.WithLabels({{"state", s}}).Set(std::string_view(s) == now ? 1 : 0);
  }
}

void NodeMetrics::CountWatchEvent(zk::WatchEventType type) {
  watch_events_.WithLabels({{"type", zk::WatchEventTypeName(type)}}).Inc();
}

void NodeMetrics::CountReconcile(ReconcileResult result) {
  (result == ReconcileResult::kOk ? reconciles_ok_ : reconciles_failed_).Inc();
}

}  // namespace rangekv::kvnode
