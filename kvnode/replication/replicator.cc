#include "kvnode/replication/replicator.h"

#include <algorithm>
#include <future>
#include <mutex>

#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode {
namespace replication {

constexpr milliseconds kTick{50};

}  // namespace replication

Result<std::optional<cluster::RangeInfo>> ApplyIsrChange(const cluster::RangeInfo& current,
                                                         const IsrChange& c, const NodeId& self) {
  if (current.owner != self || current.epoch != c.epoch) {
    return Status(Code::kStaleEpoch, "the range moved on (epoch " +
                                         std::to_string(current.epoch.value()) + ")");
  }
  cluster::RangeInfo r = current;
  auto it = std::find(r.isr.begin(), r.isr.end(), c.node);
  bool replica = std::find(r.replicas.begin(), r.replicas.end(), c.node) != r.replicas.end();
  if (c.add) {
    if (it != r.isr.end() || !replica) return std::optional<cluster::RangeInfo>();
    r.isr.push_back(c.node);
  } else {
    if (it == r.isr.end() || c.node == self) return std::optional<cluster::RangeInfo>();
    r.isr.erase(it);
  }
  return std::optional<cluster::RangeInfo>(std::move(r));
}

using replication::Clock;
using replication::Follower;
using replication::Leader;

class Replicator::Impl {
 public:
  Impl(NodeId self, ReplicationOptions options, StoreOptionsFn store_options, Env& env,
       const TransportFactory& transport)
      : exec_(env.NewExecutor("replication")),
        background_(env.NewExecutor("replication-io")),
        ctx_(env, *exec_, *background_, std::move(self), options, std::move(store_options)),
        ticker_(exec_->NewTimer()) {
    ctx_.transport = transport ? transport(*exec_) : replication::NewTcpTransport(*exec_);
    exec_->Post([this] { Tick(); });
  }
  ~Impl() { Stop(); }

  void Stop() {
    {
      std::lock_guard lock(accept_mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    RunHere([this] {
      std::lock_guard lock(accept_mu_);
      accepting_ = false;  // an Update racing with Stop returns at once from now on
      roles_.clear();
      ticker_->Cancel();
      ctx_.transport->CloseAll();
    });
    // An install in progress finishes (its store is then closed with the
    // others); the main executor lets the connections answer their pending
    // requests with posted handlers, then ends.
    background_->Stop();
    exec_->Stop();
  }

  void SetIsrChanger(IsrChangeFn fn) {
    RunHere([&] { ctx_.isr_changer = std::move(fn); });
  }

  void Update(std::vector<HeldRange> held, int min_insync) {
    RunHere([&] { Apply(std::move(held), min_insync); });
  }

  // True once Stop has begun.
  bool stopped() {
    std::lock_guard lock(accept_mu_);
    return stopped_;
  }

  // Posts fn to the replication thread, or runs refused() here once Stop
  // has begun (a handler posted after the thread ends would never run, and
  // its request would never be answered).
  void PostOr(std::function<void()> fn, const std::function<void()>& refused) {
    {
      std::lock_guard lock(accept_mu_);
      if (accepting_) {
        exec_->Post(std::move(fn));
        return;
      }
    }
    refused();
  }

  struct Role {
    std::unique_ptr<Leader> leader;
    std::unique_ptr<Follower> follower;
  };
  std::map<RangeId, Role> roles_;

 private:
  // Runs fn on the replication thread and waits for it; does nothing once
  // Stop has begun (the thread may be gone).
  void RunHere(std::function<void()> fn) {
    if (exec_->RunningHere()) return fn();
    std::promise<void> done;
    {
      std::lock_guard lock(accept_mu_);
      if (!accepting_) return;
      exec_->Post([&] {
        fn();
        done.set_value();
      });
    }
    done.get_future().wait();
  }

  void Apply(std::vector<HeldRange> held, int min_insync) {
    ctx_.min_insync = std::max(1, min_insync);
    std::map<RangeId, HeldRange> now;
    for (HeldRange& h : held) {
      if (h.slot && h.slot->store()) now.emplace(h.info.id, std::move(h));
    }
    for (auto it = roles_.begin(); it != roles_.end();) {
      if (!now.count(it->first)) {
        it = roles_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [id, h] : now) {
      Role& role = roles_[id];
      bool owner = h.info.owner == ctx_.self;
      if (owner) {
        if (role.leader && role.leader->epoch() == h.info.epoch) {
          role.leader->Update(std::move(h));
          continue;
        }
        Clock::time_point serve_after = Clock::now();
        if (role.follower) serve_after = std::max(serve_after, role.follower->promise_until());
        role.follower.reset();
        role.leader.reset();
        role.leader = std::make_unique<Leader>(ctx_, std::move(h), serve_after);
      } else {
        role.leader.reset();
        if (role.follower) {
          role.follower->Update(std::move(h));
        } else {
          role.follower = std::make_unique<Follower>(ctx_, std::move(h), Clock::now());
        }
      }
    }
  }

  void Tick() {
    if (stopped()) return;
    for (auto& [id, role] : roles_) {
      if (role.leader) role.leader->Tick();
    }
    ticker_->ExpiresAt(Clock::now() + replication::kTick, [this] { Tick(); });
  }

  std::unique_ptr<exec::Executor> exec_;
  std::unique_ptr<exec::Executor> background_;
  replication::Context ctx_;
  std::unique_ptr<exec::Timer> ticker_;
  std::mutex accept_mu_;
  bool stopped_ = false;   // guarded by accept_mu_
  bool accepting_ = true;  // guarded by accept_mu_
};

Replicator::Replicator(NodeId self, ReplicationOptions options, StoreOptionsFn store_options,
                       Env* env, TransportFactory transport)
    : impl_(std::make_unique<Impl>(std::move(self), options, std::move(store_options),
                                   env != nullptr ? *env : DefaultEnv(), transport)) {}

Replicator::~Replicator() { Stop(); }

void Replicator::Stop() { impl_->Stop(); }

void Replicator::SetIsrChanger(IsrChangeFn fn) { impl_->SetIsrChanger(std::move(fn)); }

void Replicator::Update(std::vector<HeldRange> held, int min_insync) {
  impl_->Update(std::move(held), min_insync);
}

namespace {
proto::Response NotHere(uint64_t id, RangeId range) {
  return proto::Response::Error(
      id, Status(Code::kNotOwner, "range " + std::to_string(range.value()) + " is not owned here"));
}
}  // namespace

namespace {
proto::Response Stopping(uint64_t id) {
  return proto::Response::Error(id, Status(Code::kUnavailable, "node is shutting down"));
}
}  // namespace

namespace {
// Hands a request for range R to R's leader on the replication thread (or
// answers it at once when there is none, or when the replicator stops).
template <typename Method>
void ToLeader(Replicator::Impl* impl, proto::Request req, Replicator::Reply reply, Method method) {
  const uint64_t id = req.id;
  auto shared = std::make_shared<Replicator::Reply>(std::move(reply));
  impl->PostOr(
      [impl, req = std::move(req), shared, method]() mutable {
        auto it = impl->roles_.find(req.range);
        if (it == impl->roles_.end() || !it->second.leader) {
          return (*shared)(NotHere(req.id, req.range));
        }
        ((*it->second.leader).*method)(std::move(req), std::move(*shared));
      },
      [id, shared] { (*shared)(Stopping(id)); });
}
}  // namespace

void Replicator::HandleFetch(proto::Request req, Reply reply) {
  ToLeader(impl_.get(), std::move(req), std::move(reply), &Leader::OnFetch);
}

void Replicator::HandleSnapshot(proto::Request req, Reply reply) {
  ToLeader(impl_.get(), std::move(req), std::move(reply), &Leader::OnSnapshot);
}

void Replicator::HandleStatus(uint64_t id, Reply reply) {
  Impl* impl = impl_.get();
  auto shared = std::make_shared<Reply>(std::move(reply));
  impl->PostOr(
      [impl, id, shared] {
        proto::Response r;
        r.id = id;
        r.kind = proto::Response::Kind::kRangeStatus;
        for (auto& [rid, role] : impl->roles_) {
          if (role.leader) r.status.push_back(role.leader->Report());
          if (role.follower) r.status.push_back(role.follower->Report());
        }
        (*shared)(std::move(r));
      },
      [id, shared] { (*shared)(Stopping(id)); });
}

}  // namespace rangekv::kvnode
