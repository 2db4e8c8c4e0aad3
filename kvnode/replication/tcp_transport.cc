// The production ReplicationTransport (kvnode/replication/replicator.h):
// one pipelined connection per peer address, on the replication thread's
// io_context.
#include <map>

#include "common/asio_executor.h"
#include "common/net/connection.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode::replication {
namespace {

class TcpTransport final : public ReplicationTransport {
 public:
  TcpTransport(exec::AsioExecutor& exec, std::shared_ptr<net::TlsContext> tls)
      : exec_(exec), tls_(std::move(tls)) {}

  void Send(const std::string& address, proto::Request req, milliseconds timeout,
            std::function<void(Result<proto::Response>)> done) override {
    auto it = peers_.find(address);
    if (it == peers_.end()) {
      auto hp = net::ParseHostPort(address);
      if (!hp.ok()) {
        exec_.Post([done = std::move(done), st = hp.status()] { done(st); });
        return;
      }
      net::ConnectionOptions co;
      co.max_backoff = milliseconds(500);
      co.tls = tls_;
      co.fetch_stream = true;  // the owner serves it on its replication thread
      auto conn = std::make_unique<net::Connection>(
          exec_.io(), *hp, co,
          [](net::PendingRequest p) { p.done(Status(Code::kUnavailable, "connection lost")); },
          this);
      it = peers_.emplace(address, std::move(conn)).first;
    }
    net::PendingRequest p;
    p.id = req.id;
    p.timeout = timeout;
    p.deadline = std::chrono::steady_clock::now() + timeout;
    proto::EncodeRequest(req, p.frame);
    p.done = std::move(done);
    it->second->Send(std::move(p));
  }

  void CloseAll() override {
    for (auto& [addr, conn] : peers_) conn->Shutdown();
  }

 private:
  exec::AsioExecutor& exec_;
  const std::shared_ptr<net::TlsContext> tls_;
  std::map<std::string, std::unique_ptr<net::Connection>> peers_;
};

}  // namespace

std::unique_ptr<ReplicationTransport> NewTcpTransport(exec::Executor& exec,
                                                      std::shared_ptr<net::TlsContext> tls) {
  auto* asio_exec = dynamic_cast<exec::AsioExecutor*>(&exec);
  if (asio_exec == nullptr) {
    std::fprintf(stderr, "replication: the TCP transport needs an Asio executor\n");
    std::abort();
  }
  return std::make_unique<TcpTransport>(*asio_exec, std::move(tls));
}

}  // namespace rangekv::kvnode::replication
