// tests/member/cut_proxy.h — a loopback TCP proxy that can cut a process off
// from a server without giving up its port.
//
// Cut() closes every proxied connection and from then on closes each new
// connection right after accepting it (the client sees the server vanish,
// as in a network partition or a crashed server). Heal() proxies again.
// The listener stays bound throughout: a proxy that re-binds after a cut
// can find its port taken by some other socket meanwhile.
//
// Everything runs on the proxy's own io thread; the methods are safe from
// the test thread and return once the change is in effect.
#pragma once

#include <memory>

#include "tests/zk/zk_test_util.h"

namespace rangekv::testing {

class CutProxy {
 public:
  explicit CutProxy(int upstream_port);
  ~CutProxy();
  CutProxy(const CutProxy&) = delete;
  CutProxy& operator=(const CutProxy&) = delete;

  int port() const { return port_; }
  void Cut();
  void Heal();

  class Impl;

 private:
  IoThread io_;
  std::shared_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace rangekv::testing
