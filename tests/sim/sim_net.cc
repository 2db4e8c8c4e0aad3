#include "tests/sim/sim_net.h"

namespace rangekv::sim {
namespace {

bool IsReplication(const proto::Request& req) {
  return req.kind == proto::OpKind::kFetch || req.kind == proto::OpKind::kSnapshot ||
         req.kind == proto::OpKind::kRangeStatus;
}

}  // namespace

void Network::Listen(const std::string& address, ProcessRef process, Handler handler) {
  endpoints_[address] = Endpoint{std::move(process), std::move(handler)};
}

void Network::Unlisten(const std::string& address, const ProcessRef& process) {
  auto it = endpoints_.find(address);
  if (it != endpoints_.end() && it->second.process == process) endpoints_.erase(it);
}

void Network::SetCut(const std::string& from, const std::string& to, bool cut) {
  if (cut) {
    cuts_.insert({from, to});
  } else {
    cuts_.erase({from, to});
  }
}

void Network::Finish(const ProcessRef& from, const std::shared_ptr<Pending>& p, Nanos delay,
                     Result<proto::Response> r) {
  world_.After(delay, from, [p, r = std::move(r)]() mutable {
    if (p->done) return;
    p->done = true;
    p->fn(std::move(r));
  });
}

void Network::Call(const ProcessRef& from, const std::string& from_host,
                   const std::string& address, proto::Request req, Nanos timeout, Done done) {
  auto p = std::make_shared<Pending>();
  p->fn = std::move(done);
  world_.After(timeout, from, [p, timeout] {
    if (p->done) return;
    p->done = true;
    p->fn(Status(Code::kTimeout, "no answer within " + std::to_string(timeout / kMilli) + " ms"));
  });
  auto it = endpoints_.find(address);
  if (it == endpoints_.end() || !it->second.process->alive) {
    if (!Cut(from_host, address)) {
      Finish(from, p, 2 * OneWay(), Status(Code::kUnavailable, "connection refused"));
    }
    return;
  }
  if (Cut(from_host, address) || Lost()) return;
  const int copies = IsReplication(req) && world_.Chance(duplicate_) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    Deliver(from, from_host, address, it->second.process, req, p);
  }
}

void Network::Deliver(const ProcessRef& from, const std::string& from_host,
                      const std::string& address, const ProcessRef& target, proto::Request req,
                      std::shared_ptr<Pending> p) {
  // In flight: it arrives even if the sender dies meanwhile.
  world_.After(OneWay(), nullptr,
               [this, from, from_host, address, target, req = std::move(req), p]() mutable {
                 auto it = endpoints_.find(address);
                 if (it == endpoints_.end() || it->second.process != target || !target->alive) {
                   if (!Cut(address, from_host)) {
                     Finish(from, p, OneWay(), Status(Code::kUnavailable, "connection lost"));
                   }
                   return;
                 }
                 Handler handler = it->second.handler;
                 // Handled as an event of the receiving process (a paused
                 // process handles it when it resumes).
                 world_.After(0, target,
                              [this, from, from_host, address, handler, req = std::move(req),
                               p]() mutable {
                                handler(std::move(req), [this, from, from_host, address,
                                                         p](proto::Response resp) {
                                  if (Cut(address, from_host) || Lost()) return;
                                  Finish(from, p, OneWay(), std::move(resp));
                                });
                              });
               });
}

void SimTransport::Send(const std::string& address, proto::Request req,
                        std::chrono::milliseconds timeout,
                        std::function<void(Result<proto::Response>)> done) {
  const uint64_t id = next_++;
  pending_[id] = std::move(done);
  std::weak_ptr<bool> open = closed_;
  net_.Call(process_, host_, address, std::move(req), timeout.count() * kMilli,
            [this, open, id](Result<proto::Response> r) {
              auto alive = open.lock();
              if (!alive || *alive) return;
              auto it = pending_.find(id);
              if (it == pending_.end()) return;
              auto fn = std::move(it->second);
              pending_.erase(it);
              exec_.Post([fn = std::move(fn), r = std::move(r)]() mutable { fn(std::move(r)); });
            });
}

void SimTransport::CloseAll() {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, fn] : pending) {
    exec_.Post([fn = std::move(fn)] { fn(Status(Code::kUnavailable, "connection lost")); });
  }
}

}  // namespace rangekv::sim
