// The coordinator's reads and writes of the cluster map (coordinator.h,
// steps 4-6 of a reconcile).
#include <map>

#include "common/escape.h"
#include "common/log.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_internal.h"
#include "coordinator/zk_await.h"

namespace rangekv::coordinator {

using cluster::ClusterConfig;
using cluster::RangeInfo;
using internal::IsNoNode;

namespace {

std::string ConfigText(const ClusterConfig& c) {
  std::string s = "rf " + std::to_string(c.rf) + ", min_insync " + std::to_string(c.min_insync) +
                  ", initial_ranges " + std::to_string(c.initial_ranges);
  for (size_t i = 0; i < c.initial_splits.size(); ++i) {
    s += (i ? "," : ", initial_splits ") + QuoteIfNeeded(c.initial_splits[i]);
  }
  return s;
}

std::string Describe(const RangeInfo& r) {
  std::string s = "state " + std::string(cluster::RangeStateName(r.state)) + ", owner " +
                  (r.owner ? r.owner->str() : std::string("-")) + ", epoch " +
                  std::to_string(r.epoch.value()) + ", replicas ";
  for (size_t i = 0; i < r.replicas.size(); ++i) s += (i ? "," : "") + r.replicas[i].str();
  s += ", isr ";
  for (size_t i = 0; i < r.isr.size(); ++i) s += (i ? "," : "") + r.isr[i].str();
  return s;
}

}  // namespace

std::vector<zk::ZkOp> Coordinator::AsLeader(std::optional<zk::ZkOp> op) const {
  std::vector<zk::ZkOp> ops;
  ops.push_back(zk::ZkOp::Check(paths_.coordinator() + "/" + leader_candidate_, leader_version_));
  if (op) ops.push_back(std::move(*op));
  return ops;
}

asio::awaitable<Status> Coordinator::PrepareAsLeader(zkawait::Calls& z) {
  if (leader_setup_done_) co_return Status::Ok();
  COORD_CO_RETURN_IF_ERROR(co_await EnsurePath(z, paths_.nodes()));
  COORD_CO_RETURN_IF_ERROR(co_await EnsurePath(z, paths_.ranges()));
  leader_setup_done_ = true;
  co_return Status::Ok();
}

asio::awaitable<Status> Coordinator::ReadConfig(zkawait::Calls& z, ClusterConfig* config) {
  auto got = co_await zkawait::Get(z, paths_.config());
  if (!got.ok()) co_return got.status();
  *config = options_.config;
  if (!got->has_value()) {
    if (role() != Role::kLeader) co_return Status::Ok();  // the leader will write it
    auto made = co_await zkawait::Multi(
        z, AsLeader(zk::ZkOp::Create(paths_.config(), cluster::EncodeConfig(options_.config))));
    if (made.ok()) {
      UpdateStats([](CoordinatorStats& st) { ++st.writes; });
      LOG_INFO("created " << paths_.config() << ": " << ConfigText(options_.config));
    } else {
      co_await OnWriteFailure(z, made.status(), "creating " + paths_.config());
    }
    co_return Status::Ok();
  }
  Result<ClusterConfig> stored = cluster::DecodeConfig((*got)->data);
  if (!stored.ok()) {
    if (warn_limiter_.Allow("config")) {
      LOG_ERROR(paths_.config() << " is not a valid config (" << stored.status().message()
                                << "); using the flags (" << ConfigText(options_.config)
                                << ") until it is fixed");
    }
    co_return Status::Ok();
  }
  *config = *stored;
  if (*stored != options_.config && warned_config_ != *stored) {
    warned_config_ = *stored;
    LOG_WARN("the config in ZooKeeper (" << ConfigText(*stored) << ") differs from the flags ("
                                         << ConfigText(options_.config)
                                         << "); the existing config wins");
  }
  co_return Status::Ok();
}

asio::awaitable<Status> Coordinator::ReadNodes(zkawait::Calls& z, ClusterSnapshot* snap) {
  auto names = co_await zkawait::Children(z, paths_.nodes());
  if (!names.ok()) {
    if (!IsNoNode(names.status())) co_return names.status();
    leader_setup_done_ = false;  // someone removed it; recreate as leader
    co_return Status::Ok();
  }
  std::vector<std::string> znodes;
  for (const std::string& name : *names) znodes.push_back(paths_.nodes() + "/" + name);
  auto got = co_await zkawait::GetAll(z, znodes);
  for (size_t i = 0; i < got.size(); ++i) {
    const zkawait::GetResult& r = *got[i];
    if (!r.ok()) co_return r.status();
    if (!r->has_value()) continue;  // gone since the listing
    Result<cluster::NodeInfo> node = cluster::DecodeNode((*r)->data);
    if (!node.ok() || node->id.str() != (*names)[i]) {
      if (warn_limiter_.Allow("node " + znodes[i])) {
        LOG_WARN(
            "node znode " << znodes[i] << " has bad data ("
                          << (node.ok() ? "names node " + node->id.str() : node.status().message())
                          << "); not counted as live");
      }
      continue;
    }
    snap->live_nodes.emplace(node->id, std::move(node).value());
  }
  co_return Status::Ok();
}

asio::awaitable<Status> Coordinator::ReadDraining(zkawait::Calls& z, ClusterSnapshot* snap) {
  auto names = co_await zkawait::Children(z, paths_.draining());
  if (!names.ok()) co_return IsNoNode(names.status()) ? Status::Ok() : names.status();
  for (const std::string& name : *names) {
    if (cluster::IsValidNodeId(name)) snap->draining.insert(NodeId(name));
  }
  co_return Status::Ok();
}

asio::awaitable<Status> Coordinator::ReadRanges(zkawait::Calls& z, ClusterSnapshot* snap) {
  auto names = co_await zkawait::Children(z, paths_.ranges());
  if (!names.ok()) {
    if (!IsNoNode(names.status())) co_return names.status();
    leader_setup_done_ = false;
    co_return Status::Ok();
  }
  std::vector<RangeId> ids;
  std::vector<std::string> znodes;
  for (const std::string& name : *names) {
    std::optional<RangeId> id = cluster::Paths::ParseRangeName(name);
    if (!id) {
      if (warn_limiter_.Allow("range name " + name)) {
        LOG_WARN("ignoring " << paths_.ranges() << "/" << name << ": not a range id");
      }
      continue;
    }
    ids.push_back(*id);
    znodes.push_back(paths_.range(*id));
  }
  auto got = co_await zkawait::GetAll(z, znodes);
  for (size_t i = 0; i < got.size(); ++i) {
    const zkawait::GetResult& r = *got[i];
    if (!r.ok()) co_return r.status();
    if (!r->has_value()) continue;
    RangeZnode z;
    z.version = (*r)->stat.version;
    Result<RangeInfo> info = cluster::DecodeRange((*r)->data);
    if (!info.ok()) {
      z.error = info.status().message();
    } else if (info->id != ids[i]) {
      z.error = "record names range " + std::to_string(info->id.value());
    } else {
      z.info = std::move(info).value();
    }
    snap->ranges.emplace(ids[i], std::move(z));
  }
  co_return Status::Ok();
}

asio::awaitable<void> Coordinator::Execute(zkawait::Calls& z, const Plan& plan) {
  if (!plan.bootstrap.empty()) {
    co_await Bootstrap(z, plan.bootstrap);
    co_return;
  }
  for (const RangeWrite& w : plan.writes) {
    if (!co_await Write(z, w)) co_return;
  }
}

asio::awaitable<bool> Coordinator::Bootstrap(zkawait::Calls& z,
                                             const std::vector<RangeInfo>& ranges) {
  std::vector<zk::ZkOp> ops = AsLeader();
  for (const RangeInfo& r : ranges) {
    ops.push_back(zk::ZkOp::Create(paths_.range(r.id), cluster::EncodeRange(r)));
  }
  auto done = co_await zkawait::Multi(z, std::move(ops));
  if (!done.ok()) co_return co_await OnWriteFailure(z, done.status(), "bootstrap");
  std::map<NodeId, int> owned;
  for (const RangeInfo& r : ranges) {
    ++owned[*r.owner];
    Remember(r);
  }
  std::string spread;
  for (const auto& [id, n] : owned) {
    spread += (spread.empty() ? "" : ", ") + id.str() + " " + std::to_string(n);
  }
  UpdateStats([&](CoordinatorStats& st) {
    ++st.writes;
    st.ranges_created += ranges.size();
  });
  LOG_INFO("bootstrapped " << ranges.size() << " ranges (epoch 1, rf "
                           << ranges.front().replicas.size() << "); ranges owned: " << spread);
  for (const RangeInfo& r : ranges) {
    LOG_DEBUG("range " << r.id.value() << " " << r.bounds.ToString() << ": " << Describe(r));
  }
  co_return true;
}

asio::awaitable<bool> Coordinator::Write(zkawait::Calls& z, const RangeWrite& w) {
  const RangeInfo& r = w.record;
  auto done = co_await zkawait::Multi(
      z,
      AsLeader(zk::ZkOp::SetData(paths_.range(r.id), cluster::EncodeRange(r), w.expected_version)));
  std::string what = "range " + std::to_string(r.id.value()) + " " + r.bounds.ToString();
  if (!done.ok())
    co_return co_await OnWriteFailure(z, done.status(), what + " " + WriteKindName(w.kind));
  Remember(r);
  UpdateStats([&](CoordinatorStats& st) {
    ++st.writes;
    switch (w.kind) {
      case WriteKind::kMarkUnavailable:
        ++st.ranges_marked_unavailable;
        break;
      case WriteKind::kMarkActive:
        ++st.ranges_marked_active;
        break;
      case WriteKind::kAssignOwner:
        ++st.owners_assigned;
        break;
      case WriteKind::kRepair:
        ++st.ranges_repaired;
        break;
      case WriteKind::kPromote:
        ++st.promotions;
        break;
      case WriteKind::kShrinkIsr:
        ++st.isr_shrinks;
        break;
      case WriteKind::kReplace:
        ++st.replicas_replaced;
        break;
      case WriteKind::kAddReplica:
        ++st.replicas_added;
        break;
      case WriteKind::kBalance:
        ++st.balance_moves;
        break;
      case WriteKind::kMoveReplica:
        ++st.replica_moves;
        break;
    }
  });
  if (w.kind == WriteKind::kBalance && r.move_to) {
    balance_asked_[r.id] = std::chrono::steady_clock::now();
  }
  if (w.kind == WriteKind::kPromote) {
    LogPromotion(w, what);
  } else if (w.kind == WriteKind::kRepair) {
    LOG_WARN(what << ": " << w.reason << "; now " << Describe(r));
  } else {
    LOG_INFO(what << ": " << w.reason << "; now " << Describe(r));
  }
  co_return true;
}

// The failover window as the coordinator sees it: from the first reconcile
// that found the old owner's node znode missing (a watch event starts it)
// to this promotion being written. The node's session timeout comes before
// that and is not in it.
void Coordinator::LogPromotion(const RangeWrite& w, const std::string& what) {
  const RangeInfo& r = w.record;
  std::optional<int64_t> window_ms;
  if (w.deposed) {
    auto since = missing_since_.find(*w.deposed);
    if (since != missing_since_.end()) {
      window_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - since->second)
                      .count();
    }
  }
  if (window_ms) {
    MutexLock lock(stats_mu_);  // windows_ too, so not UpdateStats
    ++stats_.failovers_timed;
    stats_.last_failover_ms = static_cast<uint64_t>(*window_ms);
    windows_.push_back(static_cast<double>(*window_ms));
    if (windows_.size() > kKeptWindows) windows_.pop_front();
  }
  LOG_INFO(what << ": failover: owner " << (w.deposed ? w.deposed->str() : std::string("?"))
                << " -> " << (r.owner ? r.owner->str() : std::string("-")) << ", epoch "
                << r.epoch.value() << ", failover window "
                << (window_ms ? std::to_string(*window_ms) + " ms since the old owner's node "
                                                             "znode was first seen missing"
                              : std::string("unknown (its node was never seen live here)"))
                << " (" << w.reason << "); now " << Describe(r));
}

asio::awaitable<bool> Coordinator::OnWriteFailure(zkawait::Calls& z, const Status& st,
                                                  const std::string& what) {
  // Cut short by Stop or an expiry: the write's outcome is unknown, and the
  // next session re-reads everything anyway.
  if (z.closed()) co_return false;
  // The check on our candidate znode and the version CAS fail as ZNONODE /
  // ZBADVERSION (kCasFailed); anything else is not a conflict.
  if (st.code() != Code::kCasFailed && !IsNoNode(st)) {
    UpdateStats([](CoordinatorStats& c) { ++c.write_failures; });
    LOG_WARN(what << " failed: " << st.ToString() << "; retried on the next reconcile");
    co_return false;
  }
  UpdateStats([](CoordinatorStats& c) { ++c.cas_conflicts; });
  auto ours = co_await zkawait::Exists(z, paths_.coordinator() + "/" + leader_candidate_);
  if (ours.ok() && !ours->has_value()) {
    LoseLeadership("our candidate znode " + leader_candidate_ + " is gone");
    co_return false;
  }
  LOG_INFO(what << ": changed since it was read (" << st.message()
                << "); re-read on the next reconcile");
  co_return true;
}

}  // namespace rangekv::coordinator
