// tests/testutil/zk_ensemble.h — a ZooKeeper ensemble whose servers each run
// on a host of a HostNet (tests/testutil/host_net.h), for the partition
// tests.
//
// Server i (1..n) runs QuorumPeerMain from Debian's zookeeper package on host
// "zk<i>", at that host's address: client port 2181, quorum port 2888,
// election port 3888, ticks of 500 ms (sessions 1000..20000 ms), its data in
// a TempDir with its myid. Start() waits until every server answers "ruok"
// and one reports itself leader. Servers are ended only by their PIDs.
// A server's mode is read with the "srvr" four-letter command.
//
// Thread-safety: none; use from the test thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/testutil/host_net.h"
#include "tests/testutil/testutil.h"

namespace rangekv::testing {

class ZkEnsemble {
 public:
  static constexpr int kClientPort = 2181;

  // Adds hosts zk1..zk<servers> to net (which must outlive this).
  ZkEnsemble(HostNet& net, int servers);
  ~ZkEnsemble();  // stops every server still running
  ZkEnsemble(const ZkEnsemble&) = delete;
  ZkEnsemble& operator=(const ZkEnsemble&) = delete;

  Status Start(std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  void Stop();
  // Every server runs, one leads and the others follow it.
  bool Serving() const;
  // The host of the server that reports itself leader; "" when none does.
  std::string Leader() const;
  // SIGKILL one server (by host) / start it again on its data.
  void Kill(const std::string& host);
  Status Restart(const std::string& host);
  // SIGSTOP (waits until every thread stopped) / SIGCONT one server.
  Status Pause(const std::string& host);
  Status Resume(const std::string& host);

  // "zk1".."zk<n>", the HostNet names of the servers.
  std::vector<std::string> hosts() const;
  // Every server's address:2181, comma-separated.
  std::string connect_string() const;
  // The servers' logs, each headed by its host.
  std::string log() const;

 private:
  void Launch(size_t i);
  // hosts_ index of host, or hosts_.size().
  size_t IndexOf(const std::string& host) const;

  HostNet& net_;
  TempDir dir_;
  std::vector<std::string> hosts_;
  std::vector<Process> servers_;
  Status added_;
};

}  // namespace rangekv::testing
