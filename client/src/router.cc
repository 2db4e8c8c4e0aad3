#include "client/src/router.h"

#include <algorithm>
#include <set>
#include <utility>

#include "client/src/replica_choice.h"
#include "common/log.h"

namespace rangekv::client_internal {

using cluster::ClusterMap;
using cluster::RangeInfo;

namespace {

constexpr std::chrono::milliseconds kInitialBackoff{2};
constexpr std::chrono::milliseconds kMaxBackoff{100};
// NOT_OWNER hints followed in a row before falling back to the map: two
// nodes that disagree must not bounce a request forever.
constexpr int kMaxHintHops = 3;
// A stale read's attempt at one replica ends after a share of the
// request's timeout (at least kMinStaleAttempt), so one node that accepts
// the request and never answers (paused) leaves time for the next.
constexpr std::chrono::milliseconds kMinStaleAttempt{200};
constexpr int kStaleAttemptShare = 4;

bool IsWrite(proto::OpKind k) {
  switch (k) {
    case proto::OpKind::kPut: case proto::OpKind::kDelete: case proto::OpKind::kCas:
    case proto::OpKind::kBatch:
      return true;
    default: return false;
  }
}

// Stale reads may be answered by any replica (replica_choice.h).
bool IsStaleRead(const proto::Request& req) {
  return req.consistency == proto::Consistency::kStale &&
         (req.kind == proto::OpKind::kGet || req.kind == proto::OpKind::kScan);
}

std::string RoutingKey(const proto::Request& req) {
  if (req.kind == proto::OpKind::kScan) return req.scan_start;
  if (!req.ops.empty()) return req.ops[0].key;
  return {};  // ping: the range holding the empty key
}

Status NoRange() {
  return Status(Code::kRangeUnavailable, "no range of the cluster map holds the key");
}

RangeStatus ToStatus(const RangeInfo& r, const ClusterMap& map) {
  RangeStatus s;
  s.id = r.id.value();
  s.start = r.bounds.start();
  s.end = r.bounds.end();
  s.epoch = r.epoch.value();
  if (r.owner) {
    s.owner = r.owner->str();
    if (const auto* n = map.Node(*r.owner)) s.owner_address = n->address;
  }
  for (const auto& id : r.replicas) s.replicas.push_back(id.str());
  for (const auto& id : r.isr) s.isr.push_back(id.str());
  s.state = r.state == cluster::RangeState::kActive ? RangeHealth::kActive
                                                    : RangeHealth::kUnavailable;
  s.history = r.history;
  if (r.move_replica)
    s.move = RangeStatus::Move{r.move_replica->from.str(), r.move_replica->to.str()};
  return s;
}

}  // namespace

struct Router::Pool {
  std::vector<std::unique_ptr<Connection>> conns;
  std::atomic<size_t> rr{0};
};

struct Router::Call {
  proto::Request req;
  std::string key;
  bool is_write = false;
  bool stale = false;  // a stale read: any live replica may answer
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  ResponseCallback done;
  asio::io_context* io = nullptr;  // for backoff timers
  int backoffs = 0;
  int hops = 0;
  std::optional<std::string> hint_address;  // route the next attempt here
  std::string target;                       // address of the current attempt
  // The range and its epoch the current attempt was routed by (the owner
  // in the map; 0: routed by a hint, or a stale read).
  uint64_t route = 0;
  uint64_t route_epoch = 0;
  // Stale reads: replicas that failed since the last backoff, by address.
  std::vector<std::string> tried;
  Status last_error;
};

Router::Router(std::vector<asio::io_context*> ios, std::unique_ptr<ClusterView> view,
               ClientOptions options, std::shared_ptr<net::TlsContext> tls)
    : ios_(std::move(ios)), view_(std::move(view)), options_(options), tls_(std::move(tls)) {
  view_->SetReadListener(
      [this](const ClusterMap& before, const ClusterMap& after) { OnMapRead(before, after); });
}

Router::~Router() { view_->SetReadListener(nullptr); }

void Router::OnMapRead(const ClusterMap& before, const ClusterMap& after) {
  if (closed_) return;
  for (const auto& [id, was] : before.ranges) {
    auto it = after.ranges.find(id);
    if (it == after.ranges.end() || !was.owner) continue;
    const RangeInfo& now = it->second;
    // Only a failover: a handed-over range's old owner refuses the
    // requests it holds itself, and they are retried.
    if (now.epoch <= was.epoch || now.owner == was.owner || now.handoff_from == was.epoch) {
      continue;
    }
    const cluster::NodeInfo* node = before.Node(*was.owner);
    if (node == nullptr) continue;
    const Status st(
        Code::kUnavailable,
        "range " + std::to_string(id.value()) + " failed over from " + was.owner->str() + " to " +
            (now.owner ? now.owner->str() : "-") + " (epoch " + std::to_string(now.epoch.value()) +
            ") while this request waited for " + was.owner->str() + "; its outcome is unknown");
    MutexLock lock(mu_);
    auto pool = pools_.find(node->address);
    if (pool == pools_.end()) continue;
    for (auto& c : pool->second->conns) c->FailRoute(id.value(), now.epoch.value(), st);
  }
}

void Router::Shutdown() {
  closed_ = true;
  MutexLock lock(mu_);
  for (auto& [addr, pool] : pools_) {
    for (auto& c : pool->conns) c->Shutdown();
  }
}

asio::io_context& Router::NextIo() {
  return *ios_[rr_.fetch_add(1, std::memory_order_relaxed) % ios_.size()];
}

void Router::Submit(proto::Request req, Clock::time_point deadline,
                    std::chrono::milliseconds timeout, ResponseCallback done) {
  auto call = std::make_shared<Call>();
  call->key = RoutingKey(req);
  call->is_write = IsWrite(req.kind);
  call->stale = IsStaleRead(req);
  call->req = std::move(req);
  call->deadline = deadline;
  call->timeout = timeout;
  call->done = std::move(done);
  call->io = &NextIo();
  Dispatch(std::move(call));
}

void Router::Dispatch(std::shared_ptr<Call> call) {
  if (closed_) {
    asio::post(*call->io,
               [call] { call->done(Status(Code::kUnavailable, "client is shutting down")); });
    return;
  }
  if (Clock::now() >= call->deadline) {
    Status st = call->last_error.ok()
                    ? Status(Code::kTimeout, "no response within " +
                                                 std::to_string(call->timeout.count()) + " ms")
                    : call->last_error.WithContext("gave up after " +
                                                   std::to_string(call->timeout.count()) + " ms");
    asio::post(*call->io, [call, st] { call->done(st); });
    return;
  }
  std::string address;
  call->route = 0;
  call->route_epoch = 0;
  if (call->hint_address) {
    address = std::move(*call->hint_address);
    call->hint_address.reset();
  } else {
    auto map = view_->Current();
    const RangeInfo* r = map->Locate(call->key);
    if (r == nullptr) {
      return RetryLater(call, NoRange());
    }
    if (call->req.kind == proto::OpKind::kBatch) {
      for (const auto& op : call->req.ops) {
        if (!r->bounds.Contains(op.key)) {
          Status st(Code::kCrossRange, "batch keys span more than one range (range " +
                                           std::to_string(r->id.value()) + " is " +
                                           r->bounds.ToString() + ")");
          asio::post(*call->io, [call, st] { call->done(st); });
          return;
        }
      }
    }
    // Built only for an error: most requests never need it.
    const auto rid = [r] { return "range " + std::to_string(r->id.value()); };
    if (call->stale) {
      const auto targets = StaleReadTargets(*map, *r);
      const ReplicaTarget* next = NextUntried(targets, call->tried);
      if (next == nullptr) {
        // Every live replica failed (or none is live): a new round after
        // a backoff, with a fresh map.
        call->tried.clear();
        return RetryLater(call, targets.empty() || call->last_error.ok()
                                    ? Status(Code::kUnavailable, "no live replica of " + rid())
                                    : call->last_error);
      }
      address = next->address;
    } else {
      if (!r->owner) {
        return RetryLater(call, Status(Code::kRangeUnavailable, rid() + " has no owner"));
      }
      if (r->state != cluster::RangeState::kActive) {
        return RetryLater(call, Status(Code::kRangeUnavailable, rid() + " is unavailable"));
      }
      const cluster::NodeInfo* node = map->Node(*r->owner);
      if (node == nullptr) {
        return RetryLater(call, Status(Code::kUnavailable,
                                       "owner " + r->owner->str() + " of " + rid() + " is down"));
      }
      address = node->address;
      call->route = r->id.value();
      call->route_epoch = r->epoch.value();
    }
  }
  call->target = address;
  Result<Connection*> picked = PickConnection(address);
  if (!picked.ok()) return TryElsewhere(call, picked.status());
  Connection& conn = **picked;
  if (conn.connected()) return Send(std::move(call), conn);
  // Not sent until connected: a failed connect leaves the request unsent,
  // so even a write may then be retried.
  conn.Connect([this, call, &conn](Status st) {
    if (!st.ok()) return TryElsewhere(call, st);
    Send(call, conn);
  });
}

Result<Connection*> Router::PickConnection(const std::string& address) {
  MutexLock lock(mu_);
  auto& pool = pools_[address];
  if (!pool) {
    // Parsed once per address, when its pool is made.
    auto parsed = ParseHostPort(address);
    if (!parsed.ok()) {
      pools_.erase(address);
      return Status(Code::kUnavailable, parsed.status().message());
    }
    pool = std::make_unique<Pool>();
    ConnectionOptions copts;
    copts.connect_timeout = options_.connect_timeout;
    copts.tls = tls_;
    const HostPort& hp = *parsed;
    for (int i = 0; i < options_.connections_per_node; ++i) {
      pool->conns.push_back(std::make_unique<Connection>(
          *ios_[(pools_.size() + i) % ios_.size()], hp, copts,
          [](PendingRequest req) {
            req.done(Status(Code::kUnavailable, "connection lost"));
          },
          this));
    }
  }
  const size_t n = pool->conns.size();
  const size_t start = pool->rr.fetch_add(1, std::memory_order_relaxed) % n;
  for (size_t i = 0; i < n; ++i) {
    Connection& c = *pool->conns[(start + i) % n];
    if (c.connected()) return &c;
  }
  return pool->conns[start].get();
}

void Router::Send(std::shared_ptr<Call> call, Connection& conn) {
  PendingRequest p;
  p.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  call->req.id = p.id;
  p.deadline = call->deadline;
  p.timeout = call->timeout;
  if (call->stale) {
    const auto attempt = std::max(kMinStaleAttempt, call->timeout / kStaleAttemptShare);
    if (Clock::now() + attempt < call->deadline) {
      p.deadline = Clock::now() + attempt;
      p.timeout = attempt;
    }
  }
  p.retries_left = 0;  // this layer retries, with a fresh route
  p.route = call->route;
  p.route_epoch = call->route_epoch;
  proto::EncodeRequest(call->req, p.frame);
  p.done = [this, call](Result<proto::Response> r) { OnResponse(call, r); };
  conn.Send(std::move(p));
}

void Router::OnResponse(std::shared_ptr<Call> call, Result<proto::Response>& r) {
  if (!r.ok()) {
    if (r.status().code() == Code::kUnavailable && !call->is_write && !closed_) {
      return TryElsewhere(std::move(call), r.status());
    }
    // Only a stale read's attempt ends before the request's deadline (Send).
    if (r.status().code() == Code::kTimeout && call->stale && !closed_ &&
        Clock::now() < call->deadline) {
      return TryElsewhere(std::move(call), r.status());
    }
    if (r.status().code() == Code::kUnavailable) view_->Refresh();
    return call->done(std::move(r));
  }
  if (r->kind == proto::Response::Kind::kError) {
    switch (r->error.code()) {
      case Code::kNotOwner:
        // A replica that does not hold the range (or not consistently yet)
        // refuses a stale read: the next replica may hold it.
        if (call->stale) return TryElsewhere(std::move(call), r->error);
        view_->Refresh();
        if (r->hint && r->hint->bounds && call->hops < kMaxHintHops) {
          // The answer carries the range's layout: route by the corrected
          // map at once (a range split off on the same node included).
          view_->Learn(*r->hint);
          ++call->hops;
          return Dispatch(std::move(call));
        }
        if (r->hint && !r->hint->address.empty() && r->hint->address != call->target &&
            call->hops < kMaxHintHops) {
          ++call->hops;
          call->hint_address = r->hint->address;
          return Dispatch(std::move(call));
        }
        return RetryLater(std::move(call), r->error);
      case Code::kStaleEpoch:
        if (r->hint && r->hint->bounds) view_->Learn(*r->hint);
        return TryElsewhere(std::move(call), r->error);
      case Code::kRangeUnavailable:
        return TryElsewhere(std::move(call), r->error);
      default: break;
    }
  }
  call->done(std::move(r));
}

void Router::TryElsewhere(std::shared_ptr<Call> call, Status why) {
  if (!call->stale || closed_) return RetryLater(std::move(call), std::move(why));
  view_->Refresh();
  call->hops = 0;
  call->tried.push_back(call->target);
  call->last_error = std::move(why);
  Dispatch(std::move(call));
}

void Router::RetryLater(std::shared_ptr<Call> call, Status why) {
  view_->Refresh();
  call->hops = 0;
  call->last_error = std::move(why);
  const auto now = Clock::now();
  if (now >= call->deadline || closed_) return Dispatch(std::move(call));
  auto delay = std::min(kMaxBackoff, kInitialBackoff * (1 << std::min(call->backoffs, 10)));
  ++call->backoffs;
  auto until = std::min(call->deadline, now + delay);
  auto timer = std::make_shared<asio::steady_timer>(*call->io, until);
  timer->async_wait([this, call, timer](const boost::system::error_code&) { Dispatch(call); });
}

// ---- multi-range scan ----

namespace {

struct ScanWalk {
  proto::Request base;
  std::string cursor;
  std::optional<std::string> end;
  uint32_t left = 0;
  proto::Response acc;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};
  ResponseCallback done;
};

}  // namespace

void Router::Scan(proto::Request req, Clock::time_point deadline,
                  std::chrono::milliseconds timeout, ResponseCallback done) {
  auto walk = std::make_shared<ScanWalk>();
  walk->cursor = req.scan_start;
  walk->end = req.scan_end;
  walk->left = req.scan_limit == 0 ? proto::Limits::kDefaultScanLimit : req.scan_limit;
  walk->acc.kind = proto::Response::Kind::kEntries;
  walk->base = std::move(req);
  walk->deadline = deadline;
  walk->timeout = timeout;
  walk->done = std::move(done);
  auto step = std::make_shared<std::function<void()>>();
  // The step function holds itself through the callbacks it registers and
  // is released when the walk finishes.
  *step = [this, walk, step] {
    std::optional<std::string> sub_end = walk->end;
    {
      auto map = view_->Current();
      if (const RangeInfo* r = map->Locate(walk->cursor); r != nullptr && r->bounds.end()) {
        if (!sub_end || *r->bounds.end() < *sub_end) sub_end = r->bounds.end();
      }
    }
    proto::Request sub = walk->base;
    sub.scan_start = walk->cursor;
    sub.scan_end = sub_end;
    sub.scan_limit = walk->left;
    Submit(std::move(sub), walk->deadline, walk->timeout,
           [walk, step, sub_end](Result<proto::Response> r) {
             auto finish = [&](Result<proto::Response> out) {
               auto done = std::move(walk->done);
               *step = nullptr;
               done(std::move(out));
             };
             if (!r.ok() || r->kind != proto::Response::Kind::kEntries) return finish(std::move(r));
             for (auto& e : r->entries) walk->acc.entries.push_back(std::move(e));
             walk->left -= std::min<uint32_t>(walk->left, r->entries.size());
             const bool at_end = sub_end == walk->end;
             if (r->more && !walk->acc.entries.empty()) {
               if (walk->left == 0) {
                 walk->acc.more = true;
                 return finish(std::move(walk->acc));
               }
               walk->cursor = walk->acc.entries.back().key + '\0';
             } else if (at_end) {
               return finish(std::move(walk->acc));
             } else {
               if (walk->left == 0) {
                 walk->acc.more = true;  // further ranges not looked at
                 return finish(std::move(walk->acc));
               }
               walk->cursor = *sub_end;
             }
             (*step)();
           });
  };
  (*step)();
}

// ---- introspection ----

std::vector<NodeStatus> Router::Nodes() const {
  auto map = view_->Current();
  std::map<std::string, NodeStatus> out;
  for (const auto& [id, n] : map->live_nodes) out[id.str()] = NodeStatus{id.str(), n.address, true};
  for (const auto& [rid, r] : map->ranges) {
    std::vector<NodeId> named = r.replicas;
    if (r.owner) named.push_back(*r.owner);
    for (const auto& id : named) {
      if (!out.count(id.str())) out[id.str()] = NodeStatus{id.str(), "", false};
    }
  }
  std::vector<NodeStatus> v;
  for (auto& [id, s] : out) v.push_back(std::move(s));
  return v;
}

std::vector<RangeStatus> Router::Ranges() const {
  auto map = view_->Current();
  std::vector<RangeStatus> v;
  for (const auto& [rid, r] : map->ranges) v.push_back(ToStatus(r, *map));
  std::sort(v.begin(), v.end(),
            [](const RangeStatus& a, const RangeStatus& b) { return a.start < b.start; });
  return v;
}

Result<RangeStatus> Router::Locate(std::string_view key) const {
  auto map = view_->Current();
  const RangeInfo* r = map->Locate(key);
  if (r == nullptr) return NoRange();
  return ToStatus(*r, *map);
}

}  // namespace rangekv::client_internal
