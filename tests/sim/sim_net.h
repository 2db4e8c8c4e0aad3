// tests/sim/sim_net.h — the simulated network between simulated processes.
//
// Hosts are named (node ids, "coord1", "c1"); a kvnode incarnation listens at
// its node id as address. A call carries a decoded request to the process
// listening at the address and its answer back, each way with a random
// latency, so messages overtake each other. Faults:
//   - a cut link (one direction or both) loses everything sent over it;
//   - a random loss rate drops single messages; replication messages can
//     also be duplicated (the receiver sees them twice);
//   - a host cut from ZooKeeper only (ZkReachable) keeps its other links.
// A call to an address nobody listens at fails at once with UNAVAILABLE
// (connection refused); one whose listener went away (crash, restart)
// before it arrived fails UNAVAILABLE (connection lost); an answer that is
// lost leaves the caller to its timeout (TIMEOUT). Every done runs exactly
// once, as an event of the calling process.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "common/protocol.h"
#include "kvnode/replication/replicator.h"
#include "tests/sim/world.h"

namespace rangekv::sim {

class Network {
 public:
  using Reply = std::function<void(proto::Response)>;
  using Handler = std::function<void(proto::Request, Reply)>;
  using Done = std::function<void(Result<proto::Response>)>;

  explicit Network(World& world) : world_(world) {}

  void Listen(const std::string& address, ProcessRef process, Handler handler);
  void Unlisten(const std::string& address, const ProcessRef& process);

  // `from` is the calling process, `from_host` its host name (link rules).
  void Call(const ProcessRef& from, const std::string& from_host, const std::string& address,
            proto::Request req, Nanos timeout, Done done);

  // ---- faults ----
  void SetCut(const std::string& from, const std::string& to, bool cut);
  bool Cut(const std::string& from, const std::string& to) const {
    return cuts_.count({from, to}) != 0;
  }
  void HealAll() { cuts_.clear(); zk_cut_.clear(); }
  void SetLoss(double drop, double duplicate) {
    drop_ = drop;
    duplicate_ = duplicate;
  }
  void SetZkCut(const std::string& host, bool cut) {
    if (cut) zk_cut_.insert(host); else zk_cut_.erase(host);
  }
  bool ZkReachable(const std::string& host) const { return zk_cut_.count(host) == 0; }

 private:
  struct Endpoint {
    ProcessRef process;
    Handler handler;
  };
  struct Pending {
    bool done = false;
    Done fn;
  };
  void Finish(const ProcessRef& from, const std::shared_ptr<Pending>& p, Nanos delay,
              Result<proto::Response> r);
  void Deliver(const ProcessRef& from, const std::string& from_host, const std::string& address,
               const ProcessRef& target, proto::Request req, std::shared_ptr<Pending> p);
  bool Lost() { return world_.Chance(drop_); }
  Nanos OneWay() { return world_.Latency(50 * kMicro, 1 * kMilli); }

  World& world_;
  std::map<std::string, Endpoint> endpoints_;
  std::set<std::pair<std::string, std::string>> cuts_;
  std::set<std::string> zk_cut_;
  double drop_ = 0;
  double duplicate_ = 0;
};

// The ReplicationTransport of one kvnode incarnation over the Network.
class SimTransport final : public kvnode::ReplicationTransport {
 public:
  SimTransport(Network& net, ProcessRef process, std::string host, exec::Executor& exec)
      : net_(net), process_(std::move(process)), host_(std::move(host)), exec_(exec),
        closed_(std::make_shared<bool>(false)) {}
  ~SimTransport() override { *closed_ = true; }
  void Send(const std::string& address, proto::Request req, std::chrono::milliseconds timeout,
            std::function<void(Result<proto::Response>)> done) override;
  void CloseAll() override;

 private:
  Network& net_;
  ProcessRef process_;
  std::string host_;
  exec::Executor& exec_;
  std::shared_ptr<bool> closed_;
  uint64_t next_ = 0;
  std::map<uint64_t, std::function<void(Result<proto::Response>)>> pending_;
};

}  // namespace rangekv::sim
