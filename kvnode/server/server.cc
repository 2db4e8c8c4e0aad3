#include "kvnode/server/server.h"

#include <algorithm>
#include <future>
#include <sstream>
#include <system_error>
#include <thread>

#include "common/log.h"
#include "kvnode/server/connection.h"
#include "kvnode/server/connection_manager.h"

namespace rangekv::kvnode {
namespace {

using tcp = asio::ip::tcp;

// After a failed accept (e.g. out of file descriptors) wait a little instead
// of spinning on the same error.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// Connections still open after the drain timeout are closed; this bounds the
// wait for those closes to be processed.
constexpr std::chrono::seconds kCloseWait{2};

}  // namespace

struct Server::Worker {
  explicit Worker(ConnectionCount& count) : manager(count) {}
  // Concurrency hint 1: one thread runs it; other threads may still post.
  asio::io_context ctx{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ctx.get_executor()};
  ConnectionManager manager;
  std::thread thread;
};

Server::Server(const ServerOptions& opts, int threads)
    : max_frame_(opts.max_frame),
      security_(std::make_shared<ConnectionSecurity>(opts.tls, opts.refused)),
      count_(std::make_unique<ConnectionCount>()),
      workers_([&] {
        std::vector<std::unique_ptr<Worker>> w;
        for (int i = 0; i < threads; ++i) w.push_back(std::make_unique<Worker>(*count_));
        return w;
      }()),
      acceptor_(workers_[0]->ctx),
      accept_retry_(std::make_unique<asio::steady_timer>(workers_[0]->ctx)) {}

Server::~Server() { Stop(); }

Result<std::unique_ptr<Server>> Server::Bind(const ServerOptions& opts) {
  int threads =
      opts.io_threads > 0 ? opts.io_threads : static_cast<int>(std::thread::hardware_concurrency());
  std::unique_ptr<Server> server(new Server(opts, std::max(threads, 1)));
  RANGEKV_RETURN_IF_ERROR(server->Listen(opts.listen));
  return server;
}

Status Server::Start(const RequestHandler& handler) {
  handler_ = &handler;
  Accept();
  for (auto& w : workers_) {
    Worker* worker = w.get();
    try {
      worker->thread = std::thread([worker] {
        // Handlers report errors as values; anything thrown is a bug, logged
        // rather than allowed to kill the process mid-write.
        while (!worker->ctx.stopped()) {
          try {
            worker->ctx.run();
          } catch (const std::exception& e) {
            LOG_ERROR("I/O thread: unexpected exception: " << e.what());
          }
        }
      });
    } catch (const std::system_error& e) {
      return Status(Code::kInternal, std::string("cannot start I/O thread: ") + e.what());
    }
  }
  return Status::Ok();
}

void Server::ServeFetchesOn(asio::io_context& ctx) {
  if (handler_ != nullptr) return;  // too late: connections may be up
  home_manager_ = std::make_unique<ConnectionManager>(*count_);
  fetch_home_ = std::make_unique<FetchHome>(ctx, *home_manager_);
}

void Server::CloseFetches() {
  if (!fetch_home_) return;
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  {
    MutexLock lock(fetch_home_->mu);
    if (!fetch_home_->open) return;
    fetch_home_->open = false;
    asio::post(fetch_home_->ctx, [home = fetch_home_.get(), closed] {
      home->manager.CloseAll();
      closed->set_value();
    });
  }
  if (done.wait_for(kCloseWait) != std::future_status::ready) {
    LOG_WARN("fetch connections not closed after " << kCloseWait.count()
                                                   << " s: the replication thread is busy");
  }
}

Status Server::Listen(const HostPort& listen) {
  boost::system::error_code ec;
  tcp::resolver resolver(workers_[0]->ctx);
  auto results = resolver.resolve(listen.host, std::to_string(listen.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) {
    return Status(Code::kUnavailable, "cannot resolve host '" + listen.host + "': " + ec.message());
  }
  std::string last_error = "no address";
  for (const auto& entry : results) {
    tcp::endpoint ep = entry.endpoint();
    if (TryListen(ep, ec)) return Status::Ok();
    last_error = ec.message();
  }
  acceptor_.close(ec);
  return Status(Code::kUnavailable,
                "cannot listen on " + FormatHostPort(listen) + ": " + last_error);
}

bool Server::TryListen(const asio::ip::tcp::endpoint& ep, boost::system::error_code& ec) {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  acceptor_.open(ep.protocol(), ec);
  // reuse_address lets a restarted node bind while old connections sit in
  // TIME_WAIT; Linux still refuses a port another socket listens on.
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) local_ = acceptor_.local_endpoint(ec);
  return !ec;
}

std::string Server::local_address() const {
  std::ostringstream os;
  os << local_;  // Asio brackets IPv6 addresses
  return os.str();
}

void Server::Accept() {
  size_t target = next_worker_;
  next_worker_ = (next_worker_ + 1) % workers_.size();
  // The socket is created on the target thread's io_context, so all its
  // later operations run there.
  acceptor_.async_accept(workers_[target]->ctx,
                         [this, target](const boost::system::error_code& ec, tcp::socket socket) {
                           if (!ec) HandOff(*workers_[target], std::move(socket));
                           OnAccept(ec);
                         });
}

void Server::HandOff(Worker& w, asio::ip::tcp::socket socket) {
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);  // responses are small; never wait to batch
  count_->Add();  // counted before the hop, so Stop() cannot miss it in flight
  asio::post(w.ctx, [this, &w, s = std::move(socket)]() mutable {
    w.manager.Start(std::make_shared<Connection>(std::move(s), *handler_, w.manager, max_frame_,
                                                 security_, fetch_home_.get()));
  });
}

void Server::OnAccept(const boost::system::error_code& ec) {
  if (!acceptor_.is_open() || ec == asio::error::operation_aborted) return;  // stopping
  if (!ec) {
    Accept();
    return;
  }
  LOG_WARN("accept failed: " << ec.message() << "; retrying");
  accept_retry_->expires_after(kAcceptRetryDelay);
  accept_retry_->async_wait([this](const boost::system::error_code& wait_ec) {
    if (!wait_ec && acceptor_.is_open()) Accept();
  });
}

void Server::Stop(std::chrono::milliseconds drain_timeout) {
  if (stopped_) return;
  stopped_ = true;
  asio::post(workers_[0]->ctx, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    accept_retry_->cancel();
  });
  // Fetches are long polls with nothing to finish: their connections
  // close at once (the followers fetch again from whoever owns next).
  CloseFetches();
  for (auto& w : workers_) {
    asio::post(w->ctx, [worker = w.get()] { worker->manager.DrainAll(); });
  }
  if (!count_->WaitForZero(std::chrono::steady_clock::now() + drain_timeout)) {
    LOG_WARN(count_->value() << " connections still busy after " << drain_timeout.count()
                             << " ms; closing them");
    for (auto& w : workers_) {
      asio::post(w->ctx, [worker = w.get()] { worker->manager.CloseAll(); });
    }
    (void)count_->WaitForZero(std::chrono::steady_clock::now() + kCloseWait);
  }
  for (auto& w : workers_) {
    w->work.reset();
    w->ctx.stop();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace rangekv::kvnode
