#include "coordinator/zk_probe.h"

#include <algorithm>

#include "common/log.h"
#include "coordinator/zk_await.h"

namespace rangekv::coordinator {
namespace {

using std::chrono::milliseconds;

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Result<std::shared_ptr<ZkProbe>> ZkProbe::Create(asio::any_io_executor executor,
                                                 const std::string& connect_string,
                                                 ZkProbeOptions options) {
  RANGEKV_ASSIGN_OR_RETURN(zk::ConnectString parsed, zk::ParseConnectString(connect_string));
  return std::make_shared<ZkProbe>(std::move(executor), std::move(parsed), options);
}

ZkProbe::ZkProbe(asio::any_io_executor executor, zk::ConnectString servers, ZkProbeOptions options)
    : executor_(executor),
      servers_(std::move(servers)),
      options_(options),
      sleep_timer_(executor) {}

void ZkProbe::Start(milliseconds delay, std::function<void()> on_reachable) {
  Cancel();
  on_reachable_ = std::move(on_reachable);
  failures_ = 0;
  asio::co_spawn(executor_, Run(shared_from_this(), generation_, delay),
                 zkawait::LogExceptions("zookeeper probe"));
}

void ZkProbe::Cancel() {
  // A Run of an older generation checks this after every wait and ends; an
  // attempt in flight is bounded by connect_timeout.
  ++generation_;
  on_reachable_ = nullptr;
  sleep_timer_.cancel();
}

asio::awaitable<void> ZkProbe::Run([[maybe_unused]] std::shared_ptr<ZkProbe> self,
                                   uint64_t generation, milliseconds delay) {
  boost::system::error_code ec;
  if (delay.count() > 0) {
    sleep_timer_.expires_after(delay);
    co_await sleep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (generation != generation_) co_return;
  }
  milliseconds backoff = options_.backoff_initial;
  for (size_t i = 0;; ++i) {
    const zk::ZkServerAddress& server = servers_.servers[i % servers_.servers.size()];
    Status st = co_await Attempt(server);
    if (generation != generation_) co_return;
    if (st.ok()) {
      if (failures_ > 0) {
        LOG_INFO("ZooKeeper reachable at " << server.ToString() << " after " << failures_
                                           << " failed attempts in " << SecondsSince(first_failure_)
                                           << " s");
      }
      std::function<void()> done = std::move(on_reachable_);
      ++generation_;  // this run is over; a later Cancel has nothing to stop
      if (done) done();
      co_return;
    }
    ++failures_;
    LogFailure(server, st);
    sleep_timer_.expires_after(backoff);
    co_await sleep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (generation != generation_) co_return;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

asio::awaitable<Status> ZkProbe::Attempt(const zk::ZkServerAddress& server) {
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(executor_);
  auto endpoints = co_await resolver.async_resolve(server.host, std::to_string(server.port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return Status(Code::kUnavailable, server.ToString() + ": resolve: " + ec.message());
  auto socket = std::make_shared<asio::ip::tcp::socket>(executor_);
  asio::steady_timer deadline(executor_, options_.connect_timeout);
  // Shared: a deadline that fired just as the connect finished runs after
  // this frame may be gone.
  auto timed_out = std::make_shared<bool>(false);
  deadline.async_wait([socket, timed_out](boost::system::error_code wait_ec) {
    if (wait_ec) return;  // cancelled: the connect finished first
    *timed_out = true;
    boost::system::error_code ignored;
    socket->close(ignored);
  });
  co_await asio::async_connect(*socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  boost::system::error_code ignored;
  socket->close(ignored);
  if (*timed_out) {
    co_return Status(Code::kUnavailable, server.ToString() + ": connect timed out after " +
                                             std::to_string(options_.connect_timeout.count()) +
                                             " ms");
  }
  if (ec) co_return Status(Code::kUnavailable, server.ToString() + ": " + ec.message());
  co_return Status::Ok();
}

void ZkProbe::LogFailure(const zk::ZkServerAddress&, const Status& why) {
  auto now = std::chrono::steady_clock::now();
  if (failures_ == 1) {
    first_failure_ = now;
    last_log_ = now;
    LOG_WARN("ZooKeeper unreachable (" << why.message() << "); retrying with backoff, logging "
                                       << "at most every " << options_.log_every.count() / 1000.0
                                       << " s until it answers");
    return;
  }
  if (now - last_log_ < options_.log_every) return;
  last_log_ = now;
  LOG_WARN("ZooKeeper still unreachable after " << failures_ << " attempts in "
                                                << SecondsSince(first_failure_)
                                                << " s (last: " << why.message() << "); retrying");
}

}  // namespace rangekv::coordinator
