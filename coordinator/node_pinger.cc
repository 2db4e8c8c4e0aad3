#include "coordinator/node_pinger.h"

#include "common/log.h"
#include "common/net/address.h"

namespace rangekv::coordinator {
namespace {

// A node that was down is pinged again within this after it is back.
constexpr std::chrono::milliseconds kMaxBackoff{200};

}  // namespace

NodePinger::NodePinger(std::shared_ptr<net::TlsContext> tls)
    : tls_(std::move(tls)), work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

NodePinger::~NodePinger() { Stop(); }

void NodePinger::Ping(const std::string& address, std::chrono::milliseconds timeout,
                      std::function<void(bool answered)> done) {
  asio::post(io_, [this, address, timeout, done = std::move(done)]() mutable {
    PingHere(address, timeout, std::move(done));
  });
}

void NodePinger::PingHere(const std::string& address, std::chrono::milliseconds timeout,
                          std::function<void(bool)> done) {
  auto it = conns_.find(address);
  if (it == conns_.end()) {
    auto hp = net::ParseHostPort(address);
    if (!hp.ok()) {
      LOG_WARN("cannot ping " << address << ": " << hp.status().ToString());
      return done(false);
    }
    net::ConnectionOptions co;
    co.connect_timeout = timeout;
    co.max_backoff = kMaxBackoff;
    co.tls = tls_;
    auto conn = std::make_unique<net::Connection>(
        io_, *hp, co, [](net::PendingRequest p) { p.done(Status(Code::kUnavailable, "lost")); },
        this);
    it = conns_.emplace(address, std::move(conn)).first;
  }
  proto::Request ping;
  ping.id = ++next_id_;
  ping.kind = proto::OpKind::kPing;
  net::PendingRequest p;
  p.id = ping.id;
  p.timeout = timeout;
  p.deadline = net::Clock::now() + timeout;
  proto::EncodeRequest(ping, p.frame);
  p.done = [done = std::move(done)](Result<proto::Response> r) { done(r.ok()); };
  it->second->Send(std::move(p));
}

void NodePinger::Stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::post(io_, [this] {
    for (auto& [address, conn] : conns_) conn->Shutdown();
  });
  work_.reset();
  thread_.join();
  conns_.clear();
}

}  // namespace rangekv::coordinator
