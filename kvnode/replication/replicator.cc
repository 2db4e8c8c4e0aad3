#include "kvnode/replication/replicator.h"

#include <future>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode {
namespace replication {

constexpr milliseconds kTick{50};

void Context::Send(const std::string& address, proto::Request req, milliseconds timeout,
                   std::function<void(Result<proto::Response>)> done) {
  auto it = peers_.find(address);
  if (it == peers_.end()) {
    auto hp = net::ParseHostPort(address);
    if (!hp.ok()) {
      asio::post(io, [done = std::move(done), st = hp.status()] { done(st); });
      return;
    }
    net::ConnectionOptions co;
    co.max_backoff = milliseconds(500);
    auto conn = std::make_unique<net::Connection>(
        io, *hp, co, [](net::PendingRequest p) {
          p.done(Status(Code::kUnavailable, "connection lost"));
        },
        this);
    it = peers_.emplace(address, std::move(conn)).first;
  }
  req.id = next_id_++;
  net::PendingRequest p;
  p.id = req.id;
  p.timeout = timeout;
  p.deadline = Clock::now() + timeout;
  proto::EncodeRequest(req, p.frame);
  p.done = std::move(done);
  it->second->Send(std::move(p));
}

void Context::RequestIsrChange(const IsrChange& change) {
  if (isr_changer) isr_changer(change);
}

void Context::CloseAll() {
  for (auto& [addr, conn] : peers_) conn->Shutdown();
}

}  // namespace replication

using replication::Clock;
using replication::Follower;
using replication::Leader;

class Replicator::Impl {
 public:
  Impl(NodeId self, ReplicationOptions options, StoreOptionsFn store_options)
      : work_(io_.get_executor()),
        ctx_(io_, std::move(self), options, std::move(store_options)),
        ticker_(io_) {
    thread_ = std::thread([this] { io_.run(); });
    asio::post(io_, [this] { Tick(); });
  }
  ~Impl() { Stop(); }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    RunHere([this] {
      std::lock_guard lock(accept_mu_);
      accepting_ = false;  // an Update racing with Stop returns at once from now on
      roles_.clear();
      ticker_.cancel();
      ctx_.CloseAll();
    });
    work_.reset();
    // Connections answer their pending requests with posted handlers: let
    // them run, then end.
    thread_.join();
  }

  void SetIsrChanger(IsrChangeFn fn) {
    RunHere([&] { ctx_.isr_changer = std::move(fn); });
  }

  void Update(std::vector<HeldRange> held, int min_insync) {
    RunHere([&] { Apply(std::move(held), min_insync); });
  }

  // Posts fn to the replication thread, or runs refused() here once Stop
  // has begun (a handler posted after the thread ends would never run, and
  // its request would never be answered).
  void PostOr(std::function<void()> fn, const std::function<void()>& refused) {
    {
      std::lock_guard lock(accept_mu_);
      if (accepting_) {
        asio::post(io_, std::move(fn));
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
    if (std::this_thread::get_id() == thread_.get_id()) return fn();
    std::promise<void> done;
    {
      std::lock_guard lock(accept_mu_);
      if (!accepting_) return;
      asio::post(io_, [&] {
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
    if (stopped_) return;
    for (auto& [id, role] : roles_) {
      if (role.leader) role.leader->Tick();
    }
    ticker_.expires_after(replication::kTick);
    ticker_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Tick();
    });
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  replication::Context ctx_;
  asio::steady_timer ticker_;
  std::thread thread_;
  bool stopped_ = false;
  std::mutex accept_mu_;
  bool accepting_ = true;  // guarded by accept_mu_
};

Replicator::Replicator(NodeId self, ReplicationOptions options, StoreOptionsFn store_options)
    : impl_(std::make_unique<Impl>(std::move(self), options, std::move(store_options))) {}

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
