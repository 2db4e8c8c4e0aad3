// tests/testutil/host_net.h — hosts of their own on one machine, for the
// partition tests: every process gets a Linux network namespace with its own
// address, all joined by one bridge, and the test cuts links between them.
//
// Layout (K is picked at Create, one /24 per live HostNet):
//   198.19.K.0/24      the hosts' subnet, inside 198.18.0.0/15 (the range
//                      reserved for network benchmarks; nothing else is
//                      ever addressed)
//   rkt<K>-<host>      one namespace per AddHost(host), address 198.19.K.i
//                      (i = 1, 2, ... in the order hosts were added) on its
//                      eth0
//   rkt<K> (link)      the test's own (root) namespace's link to the others,
//                      address 198.19.K.254: the test process and its
//                      clients are the host kTestHost
// and what joins them, by LinkMode:
//   kBridge            a namespace rkt<K>-sw holding the bridge br0; every
//                      eth0 and rkt<K> is a veth whose other end is on it
//   kEmulated          every eth0 and rkt<K> is a TAP device of one
//                      link_emulator process (tests/testutil/link_emulator.cc),
//                      a userspace switch that can delay, jitter and drop
//                      frames per direction of each pair of hosts (SetDelay,
//                      SetLoss); it costs a copy per frame through one
//                      process, so it is for tests that need those
//
// Cuts are nftables rules in table `inet rkt` of the hosts' namespaces, never
// in the root namespace: a cut from A to B drops, in B's input chain, what
// comes from A's address (or, when B is the test itself, in A's output chain
// what goes to it). TCP connections across a cut hang rather than fail, as
// they do when a real link drops packets.
//
// Ownership: ~HostNet deletes its namespaces and the root veth. Processes
// started in a namespace (Wrap: `ip netns exec`, which execs the program, so
// the PID is the program's) must be ended by their owner first; a namespace
// whose processes live on is only unnamed, not gone.
//
// Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), iproute2 and nftables;
// Unavailable() says what is missing so a test can skip with the reason.
// Thread-safety: none; use from the test thread.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rangekv/status.h"
#include "tests/testutil/testutil.h"

namespace rangekv::testing {

class HostNet {
 public:
  // The host name of the test process itself (the root namespace).
  static constexpr const char* kTestHost = "test";

  // "" when hosts can be made here, else why not (one line).
  static std::string Unavailable();
  enum class LinkMode { kBridge, kEmulated };
  // The switch and the test's link to it, on a free 198.19.K.0/24.
  static Result<std::unique_ptr<HostNet>> Create(LinkMode mode = LinkMode::kBridge);
  ~HostNet();
  HostNet(const HostNet&) = delete;
  HostNet& operator=(const HostNet&) = delete;

  // A new host joined to the bridge; returns its address.
  Result<std::string> AddHost(const std::string& name);
  // The host's address; "" for an unknown host.
  std::string Address(const std::string& host) const;
  // argv run inside the host's namespace.
  std::vector<std::string> Wrap(const std::string& host, std::vector<std::string> argv) const;
  // Every host added, in order (kTestHost not included).
  std::vector<std::string> Hosts() const;

  // Drops every packet from `from` to `to` (either may be kTestHost, not
  // both).
  Status Cut(const std::string& from, const std::string& to);
  // Both directions.
  Status CutBoth(const std::string& a, const std::string& b);
  // Removes every cut.
  Status Heal();

  // kEmulated only (BAD_REQUEST otherwise): frames from `from` to `to` wait
  // ms +/- jitter_ms (uniform, in order), or are dropped at `percent`.
  Status SetDelay(const std::string& from, const std::string& to, int ms, int jitter_ms);
  Status SetLoss(const std::string& from, const std::string& to, double percent);
  // Every pair of hosts there are now (kTestHost included), both ways.
  Status SetDelayAll(int ms, int jitter_ms);
  // No delay and no loss anywhere.
  Status ClearLinks();

 private:
  HostNet(int subnet, LinkMode mode) : subnet_(subnet), mode_(mode) {}
  Status CreateSwitch();
  Status StartEmulator();
  // The host's port: a veth end in rkt<K>-sw, or an emulator TAP device
  // (which AddHost then moves into the host's namespace).
  Status MakePort(const std::string& ns, int index);
  // One command to the emulator, and its answer.
  Status Emulator(const std::string& command);
  std::string TapOf(const std::string& host) const;
  std::string Namespace(const std::string& host) const;
  Status Nft(const std::string& host, const std::string& script);

  int subnet_;
  LinkMode mode_;
  std::unique_ptr<TempDir> emulator_dir_;
  Process emulator_;
  int emulator_commands_ = 0;
  bool created_switch_ = false;
  bool created_link_ = false;
  std::vector<std::pair<std::string, std::string>> hosts_;  // name, address
};

}  // namespace rangekv::testing
