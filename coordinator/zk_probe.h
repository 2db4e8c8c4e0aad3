// coordinator/zk_probe.h — wait, with backoff and readable logs, until a
// ZooKeeper server accepts TCP connections.
//
// Why: the ZooKeeper C client retries an unreachable server by itself, many
// times a second, and logs every failure. kvcoord must never crash or fall
// silent when ZooKeeper is down, but one line every few seconds says
// enough. So it opens a zk::Session only once a plain TCP connect to one of
// the servers of the connect string succeeds, and probes like this before
// the first session and after every expired one.
//
// Attempts go round-robin over the servers (resolve, then TCP connect
// bounded by connect_timeout); the delay between failed attempts doubles
// from backoff_initial to backoff_max. Logging: the first failure at once
// ("ZooKeeper unreachable ... retrying"), then at most one line per
// log_every with the attempt count and the latest error, and one line when
// a server answers after failures.
//
//   Start ─► Attempt ─ok─► on_reachable() (once) ─► idle
//              │  ▲
//           fail  └── Backoff ◄─┘
//   Cancel: any state ─► idle, on_reachable is not called
//
// Threads and lifetime: use from the executor given at Create (a strand).
// A running probe keeps itself alive (shared_from_this) until it succeeds or
// is cancelled, so an owner whose on_reachable captures it must Cancel()
// before going away; after Cancel() on_reachable is never called.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/zk/connect_string.h"
#include "rangekv/status.h"

namespace rangekv::coordinator {

struct ZkProbeOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{2000};
  std::chrono::milliseconds log_every{5000};
};

class ZkProbe : public std::enable_shared_from_this<ZkProbe> {
 public:
  // kBadRequest for a connect string that does not parse.
  static Result<std::shared_ptr<ZkProbe>> Create(asio::any_io_executor executor,
                                                 const std::string& connect_string,
                                                 ZkProbeOptions options = {});

  // Waits `delay`, then probes until a server answers and calls
  // on_reachable on the executor. A Start while running restarts it.
  void Start(std::chrono::milliseconds delay, std::function<void()> on_reachable);
  void Cancel();

  // Failed attempts since the last Start (for stats and tests).
  uint64_t failures() const { return failures_; }

  ZkProbe(asio::any_io_executor executor, zk::ConnectString servers, ZkProbeOptions options);

 private:
  asio::awaitable<void> Run(std::shared_ptr<ZkProbe> self, uint64_t generation,
                            std::chrono::milliseconds delay);
  asio::awaitable<Status> Attempt(const zk::ZkServerAddress& server);
  void LogFailure(const zk::ZkServerAddress& server, const Status& why);

  asio::any_io_executor executor_;
  zk::ConnectString servers_;
  ZkProbeOptions options_;
  std::function<void()> on_reachable_;
  uint64_t generation_ = 0;  // bumped by Start and Cancel; a Run of an older one ends
  uint64_t failures_ = 0;
  std::chrono::steady_clock::time_point first_failure_;
  std::chrono::steady_clock::time_point last_log_;
  asio::steady_timer sleep_timer_;
};

}  // namespace rangekv::coordinator
