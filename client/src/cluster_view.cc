#include "client/src/cluster_view.h"

#include <algorithm>
#include <functional>
#include <future>
#include <utility>
#include <vector>

#include "common/log.h"

namespace rangekv::client_internal {

using cluster::ClusterMap;
using cluster::RangeInfo;

// One reconcile run: the map being built plus the run's continuation.
struct ClusterView::ReadState {
  std::shared_ptr<ClusterMap> map = std::make_shared<ClusterMap>();
  zk::Reconciler::Done done;
  bool failed = false;
  Status error;
};

ClusterView::ClusterView(std::string cluster)
    : paths_(cluster), work_(asio::make_work_guard(io_)) {
  thread_ = std::thread([this] { io_.run(); });
}

ClusterView::~ClusterView() {
  // The reconciler first (no new runs), then the session (drops its
  // queued completions), then the thread.
  if (reconciler_) reconciler_->Stop();
  reconciler_.reset();
  // Let a run in flight finish (bounded): a request still inside the C
  // client when its handle closes is never completed, and what it holds
  // would be lost.
  {
    MutexLock lock(mu_);
    cv_.WaitFor(lock, std::chrono::seconds(2), [this] {
      mu_.AssertHeld();  // WaitFor calls the predicate with the lock held
      return !reading_;
    });
  }
  // On io_, so that no completion of the session runs concurrently with
  // its destruction.
  if (thread_.joinable()) {
    std::promise<void> gone;
    asio::post(io_, [this, &gone] {
      session_.reset();
      gone.set_value();
    });
    gone.get_future().wait();
  }
  session_.reset();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

Result<std::unique_ptr<ClusterView>> ClusterView::Open(std::string_view zk_connect,
                                                       std::string_view cluster,
                                                       std::chrono::milliseconds timeout,
                                                       std::optional<zk::ZkAuth> auth) {
  if (!cluster::IsValidNodeId(cluster)) {
    return Status(Code::kBadRequest, "cluster name wants 1-64 characters of [A-Za-z0-9._-], got '" +
                                         std::string(cluster) + "'");
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_ptr<ClusterView> view(new ClusterView(std::string(cluster)));
  zk::SessionOptions so;
  so.connect_string = std::string(zk_connect);
  so.blocking_timeout = timeout;
  so.auth = auth;
  view->session_options_ = so;
  auto session = zk::Session::Open(so, view->io_.get_executor());
  if (!session.ok()) return session.status().WithContext("ZooKeeper " + so.connect_string);
  view->session_ = std::move(*session);
  Status st = view->session_->WaitConnected(timeout);
  if (zk::IsZkRefusal(st)) return st;
  if (!st.ok()) {
    return Status(Code::kUnavailable, "cannot reach ZooKeeper at " + so.connect_string +
                                          " within " + std::to_string(timeout.count()) + " ms (" +
                                          st.message() + ")");
  }
  RANGEKV_RETURN_IF_ERROR(view->AwaitClusterExists(cluster, so.connect_string, deadline));
  zk::ReconcilerOptions ro;
  ro.channel.connect_string = so.connect_string;
  ro.channel.watch_paths = {view->paths_.root()};
  ro.channel.auth = auth;
  ClusterView* self = view.get();
  auto rec = zk::Reconciler::Create(
      view->io_.get_executor(), ro,
      [self](const zk::ReconcileTriggers&, zk::Reconciler::Done done) {
        self->Reconcile(std::move(done));
      });
  if (!rec.ok()) return rec.status().WithContext("ZooKeeper watch");
  view->reconciler_ = std::move(*rec);
  view->reconciler_->Start();
  view->reconciler_->TriggerNow();
  MutexLock lock(view->mu_);
  if (!view->cv_.WaitUntil(lock, deadline, [&] {
        view->mu_.AssertHeld();  // WaitUntil calls the predicate with the lock held
        return view->map_ != nullptr || !view->refused_.ok();
      })) {
    return Status(Code::kUnavailable, "could not read the cluster map of '" +
                                          std::string(cluster) + "' from ZooKeeper at " +
                                          so.connect_string + " within " +
                                          std::to_string(timeout.count()) + " ms");
  }
  if (view->map_ == nullptr) return view->refused_;
  lock.Unlock();
  return view;
}

namespace {

std::string JoinNames(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

// A cluster exists once a coordinator or node of it has created its root.
// A client started together with its cluster may get here first, so the
// root is polled until the deadline; then the error names the clusters
// this ZooKeeper does hold, which is what a mistyped name or a forgotten
// --cluster needs.
Status ClusterView::AwaitClusterExists(std::string_view cluster, const std::string& zk,
                                       std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    auto root = session_->Exists(paths_.root());
    if (!root.ok()) {
      return Status(Code::kUnavailable,
                    "cannot read the cluster list from ZooKeeper at " + zk + ": " +
                        root.status().message());
    }
    if (root->has_value()) return Status::Ok();
    if (std::chrono::steady_clock::now() + kExistsPoll >= deadline) break;
    std::this_thread::sleep_for(kExistsPoll);
  }
  auto names = session_->Children(std::string(cluster::kClustersRoot));
  std::string there = names.ok() && !names->empty()
                          ? "clusters there: " + JoinNames(*names)
                          : "no rangekv cluster there yet";
  return Status(Code::kBadRequest, "no cluster '" + std::string(cluster) +
                                       "' in ZooKeeper at " + zk + " (" + there + ")");
}

std::unique_ptr<ClusterView> ClusterView::Fixed(ClusterMap map) {
  std::unique_ptr<ClusterView> view(new ClusterView("fixed"));
  view->Replace(std::move(map));
  return view;
}

void ClusterView::Replace(ClusterMap map) {
  Publish(std::make_shared<ClusterMap>(std::move(map)), /*read=*/true);
}

std::shared_ptr<const ClusterMap> ClusterView::Current() const {
  MutexLock lock(mu_);
  return map_;
}

void ClusterView::Refresh() {
  if (reconciler_) reconciler_->TriggerNow();
}

bool ClusterView::Torn(const ClusterMap& read) {
  MutexLock lock(mu_);
  const auto tiles = [](const ClusterMap& m) { return m.Covers("", std::nullopt); };
  if (tiles(read) || !map_ || !tiles(*map_) || torn_reads_ >= kMaxTornReads) {
    torn_reads_ = 0;
    return false;
  }
  ++torn_reads_;
  return true;
}

void ClusterView::Learn(const proto::OwnerHint& hint) {
  MutexLock lock(mu_);
  auto patched = std::make_shared<ClusterMap>(*map_);
  if (ApplyHint(*patched, hint)) map_ = std::move(patched);
}

bool ApplyHint(ClusterMap& map, const proto::OwnerHint& hint) {
  if (!hint.bounds || hint.range.value() == 0 || hint.node_id.empty()) return false;
  const KeyRange& b = *hint.bounds;
  auto known = map.ranges.find(hint.range);
  if (known != map.ranges.end()) {
    const RangeInfo& k = known->second;
    if (std::tie(k.generation, k.epoch) >= std::tie(hint.generation, hint.epoch)) return false;
  }
  for (auto it = map.ranges.begin(); it != map.ranges.end();) {
    RangeInfo& o = it->second;
    if (o.id == hint.range || !o.bounds.Overlaps(b) || o.generation >= hint.generation) {
      ++it;
      continue;
    }
    // What o still covers outside the hinted bounds, when that is one span.
    const bool left = o.bounds.start() < b.start();
    const bool right = b.end() && (!o.bounds.end() || *b.end() < *o.bounds.end());
    if (left && !right) {
      o.bounds = KeyRange(o.bounds.start(), b.start());
    } else if (right && !left) {
      o.bounds = KeyRange(*b.end(), o.bounds.end());
    } else {
      it = map.ranges.erase(it);
      continue;
    }
    ++it;
  }
  RangeInfo r = known != map.ranges.end() ? known->second : RangeInfo{};
  r.id = hint.range;
  r.bounds = b;
  r.epoch = hint.epoch;
  r.generation = hint.generation;
  r.owner = NodeId(hint.node_id);
  r.state = cluster::RangeState::kActive;
  if (std::find(r.replicas.begin(), r.replicas.end(), *r.owner) == r.replicas.end()) {
    r.replicas.push_back(*r.owner);
  }
  map.ranges[hint.range] = std::move(r);
  if (!hint.address.empty() && map.Node(NodeId(hint.node_id)) == nullptr) {
    cluster::NodeInfo n;
    n.id = NodeId(hint.node_id);
    n.address = hint.address;
    map.live_nodes[n.id] = std::move(n);
  }
  return true;
}

uint64_t ClusterView::generation() const {
  MutexLock lock(mu_);
  return generation_;
}

void ClusterView::SetReadListener(ReadListener fn) {
  MutexLock lock(listener_mu_);
  listener_ = std::move(fn);
}

void ClusterView::Publish(std::shared_ptr<ClusterMap> map, bool read) {
  std::shared_ptr<const ClusterMap> before;
  std::shared_ptr<const ClusterMap> after = map;
  {
    MutexLock lock(mu_);
    before = std::move(map_);
    map_ = std::move(map);
    ++generation_;
  }
  cv_.NotifyAll();
  if (!read || before == nullptr) return;
  MutexLock lock(listener_mu_);
  if (listener_) listener_(*before, *after);
}

namespace {

// Reads every child of parent with AsyncGet and hands each (name, data) to
// accept; then calls next(status). A missing parent is an empty list.
void ReadChildren(zk::Session& s, const std::string& parent,
                  std::function<void(const std::string&, const std::string&)> accept,
                  std::function<void(Status)> next) {
  s.AsyncChildren(parent, [&s, parent, accept = std::move(accept),
                           next = std::move(next)](Result<std::vector<std::string>> names) {
    if (!names.ok()) {
      // ZNONODE maps to BAD_REQUEST: the cluster is not bootstrapped yet.
      if (names.status().code() == Code::kBadRequest) return next(Status::Ok());
      return next(names.status());
    }
    if (names->empty()) return next(Status::Ok());
    struct Count {
      size_t left;
      Status first_error;
    };
    auto count = std::make_shared<Count>(Count{names->size(), {}});
    for (const std::string& name : *names) {
      s.AsyncGet(parent + "/" + name,
                 [name, accept, next, count](Result<std::optional<zk::ZnodeData>> r) {
                   if (!r.ok() && count->first_error.ok()) count->first_error = r.status();
                   if (r.ok() && r->has_value()) accept(name, (*r)->data);
                   if (--count->left == 0) next(count->first_error);
                 });
    }
  });
}

}  // namespace

void ClusterView::WarnReadFailed(const Status& e) {
  constexpr std::chrono::seconds kReadWarnEvery{5};
  const auto now = std::chrono::steady_clock::now();
  uint64_t unlogged;
  {
    MutexLock lock(mu_);
    if (now - read_warned_at_ < kReadWarnEvery) {
      ++read_failures_unlogged_;
      return;
    }
    read_warned_at_ = now;
    unlogged = std::exchange(read_failures_unlogged_, 0);
  }
  LOG_WARN("cluster map read failed: "
           << e.ToString()
           << (unlogged == 0 ? std::string()
                             : " (" + std::to_string(unlogged) + " more failed reads not logged)"));
}

// Runs on io_ (one run at a time, so the chain needs no lock).
void ClusterView::Reconcile(zk::Reconciler::Done done) {
  const zk::SessionState state = session_->state();
  if (state == zk::SessionState::kExpired || state == zk::SessionState::kAuthFailed) {
    // No read of the old session is in flight (the previous run finished),
    // and closing an expired handle does no network I/O.
    LOG_WARN("ZooKeeper session " << zk::SessionStateName(state) << "; opening a new one");
    auto fresh = zk::Session::Open(session_options_, io_.get_executor());
    if (!fresh.ok()) {
      LOG_WARN("cannot open a ZooKeeper session: " << fresh.status().ToString());
      return done();
    }
    session_ = std::move(*fresh);
  }
  {
    MutexLock lock(mu_);
    reading_ = true;
  }
  auto st = std::make_shared<ReadState>();
  st->done = [this, done = std::move(done)] {
    {
      MutexLock lock(mu_);
      reading_ = false;
    }
    cv_.NotifyAll();
    done();
  };
  zk::Session& s = *session_;
  auto fail = [this, st](const Status& e) {
    WarnReadFailed(e);
    if (zk::IsZkRefusal(e)) {
      MutexLock lock(mu_);
      refused_ = e;
    }
    st->done();  // notifies cv_
  };
  auto read_config = [this, st, &s, fail](Status prev) {
    if (!prev.ok()) return fail(prev);
    s.AsyncGet(paths_.config(), [this, st, fail](Result<std::optional<zk::ZnodeData>> r) {
      if (!r.ok()) return fail(r.status());
      if (r->has_value()) {
        auto c = cluster::DecodeConfig((*r)->data);
        if (c.ok()) st->map->config = *c;
      }
      if (Torn(*st->map)) {
        // Read across a split: the new range's znode fires the watch, so
        // the next read follows at once; the map in hand stays meanwhile.
        LOG_DEBUG("cluster map read shows a hole the previous one did not; reading again");
        reconciler_->TriggerNow();
      } else {
        Publish(st->map, /*read=*/true);
      }
      st->done();
    });
  };
  auto read_ranges = [this, st, &s, fail, read_config](Status prev) {
    if (!prev.ok()) return fail(prev);
    ReadChildren(
        s, paths_.ranges(),
        [st](const std::string& name, const std::string& data) {
          auto r = cluster::DecodeRange(data);
          if (!r.ok()) {
            LOG_WARN("skipping range znode " << name << ": " << r.status().ToString());
            return;
          }
          st->map->ranges[r->id] = std::move(*r);
        },
        read_config);
  };
  auto read_nodes = [this, st, &s, fail, read_ranges](Status prev) {
    if (!prev.ok()) return fail(prev);
    ReadChildren(
        s, paths_.nodes(),
        [st](const std::string& name, const std::string& data) {
          auto n = cluster::DecodeNode(data);
          if (!n.ok()) {
            LOG_WARN("skipping node znode " << name << ": " << n.status().ToString());
            return;
          }
          st->map->live_nodes[n->id] = std::move(*n);
        },
        read_ranges);
  };
  s.AsyncSync(paths_.root(), [read_nodes](Status sync) {
    // A missing root is not an error: the reads below see it empty.
    read_nodes(sync.code() == Code::kBadRequest ? Status::Ok() : sync);
  });
}

}  // namespace rangekv::client_internal
