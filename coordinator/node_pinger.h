// coordinator/node_pinger.h — the failure detector's pings
// (coordinator/failure_detector.h): a ping request (common/protocol.h,
// kind ping) to a node's client address, answered by any node that runs.
//
// One pipelined connection per address, all on a thread of the pinger's
// own, so a stopped node (whose kernel still accepts, and then holds, what
// we send) never holds up the coordinator's strand. A lost connection is
// made again by the next ping, after a short backoff while connects fail.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/asio.h"
#include "common/net/connection.h"

namespace rangekv::coordinator {

class NodePinger {
 public:
  // tls: for nodes that serve TLS (null: plaintext).
  explicit NodePinger(std::shared_ptr<net::TlsContext> tls = nullptr);
  ~NodePinger();  // Stop()
  NodePinger(const NodePinger&) = delete;
  NodePinger& operator=(const NodePinger&) = delete;

  // Pings `address`; done runs once, on the pinger's thread, with whether
  // the node answered within `timeout`. Thread-safe. After Stop, done runs
  // never.
  void Ping(const std::string& address, std::chrono::milliseconds timeout,
            std::function<void(bool answered)> done);
  // Ends every connection and the thread; every done due has run when it
  // returns. Idempotent.
  void Stop();

 private:
  void PingHere(const std::string& address, std::chrono::milliseconds timeout,
                std::function<void(bool)> done);

  const std::shared_ptr<net::TlsContext> tls_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  // Pinger thread only.
  std::map<std::string, std::unique_ptr<net::Connection>> conns_;
  uint64_t next_id_ = 0;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace rangekv::coordinator
