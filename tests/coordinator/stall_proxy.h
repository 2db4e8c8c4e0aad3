// tests/coordinator/stall_proxy.h — a loopback TCP proxy that can stall.
//
// Unlike TcpProxy's cut (tests/common/zk/zk_test_util.h), Stall() keeps every
// connection open and simply stops forwarding, in both directions: a hung
// server. A client's requests then wait for an answer until its own
// timeout. Resume() forwards what was held back and goes on. Bytes are
// never lost: a stalled direction stops reading once it holds one buffer,
// and TCP flow control holds the rest.
//
// Thread-safety: the public methods are for one test thread; the proxy runs
// on its own io thread.
#pragma once

#include <cstddef>
#include <memory>

#include "tests/common/zk/zk_test_util.h"

namespace rangekv::testing {

class StallProxy {
 public:
  explicit StallProxy(int upstream_port);
  ~StallProxy();
  StallProxy(const StallProxy&) = delete;
  StallProxy& operator=(const StallProxy&) = delete;

  int port() const { return port_; }
  void Stall();
  void Resume();
  // Reads held back by the stall (either direction), not yet forwarded.
  size_t parked();

  class Impl;

 private:
  IoThread io_;
  std::shared_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace rangekv::testing
