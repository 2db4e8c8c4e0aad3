// tests/sim/sim_client.h — a client of the simulated cluster, recording its
// history for the linearizability checker.
//
// It routes as the smart client does (client/include/rangekv/client.h): by
// its copy of the map (re-read from ZooKeeper every half second and after
// an error), straight to the owner, with the range id and epoch it knows;
// NOT_OWNER with a hint goes to the hinted owner at once (at most three
// hops); connection refused, RANGE_UNAVAILABLE, STALE_EPOCH and
// NOT_ENOUGH_REPLICAS are retried after a re-read and a backoff until the
// op's deadline. A write whose request may have reached a store (TIMEOUT,
// UNAVAILABLE) has an unknown outcome: it is recorded indeterminate and
// never resent, as the real client never resends a write. Every other
// error is taken to mean that nothing was written.
//
// Ops: get (linearizable), put, delete and cas on a few keys spread over
// the ranges, one at a time per client (closed loop).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/lincheck/lincheck.h"
#include "tests/sim/sim_cluster.h"

namespace rangekv::sim {

class SimClient {
 public:
  SimClient(Cluster& cluster, int id, std::vector<std::string> keys, lincheck::History& history);
  ~SimClient();

  // Issues ops until `until` (the one in flight then completes).
  void Run(Nanos until);
  // One linearizable get of key, recorded like any other op; done(found).
  void Read(const std::string& key, Nanos deadline, std::function<void(bool ok)> done);
  bool idle() const { return !busy_; }
  uint64_t ops() const { return ops_; }

 private:
  struct Op;
  void NextOp();
  void Attempt(std::shared_ptr<Op> op);
  void OnAnswer(std::shared_ptr<Op> op, Result<proto::Response> r, int hops,
                const std::string& address);
  void Retry(std::shared_ptr<Op> op);
  void Finish(std::shared_ptr<Op> op, lincheck::Outcome outcome);
  void RefreshMap();
  void MapLoop();

  Cluster& c_;
  const int id_;
  const std::string host_;
  std::vector<std::string> keys_;
  lincheck::History& history_;
  ProcessRef process_;
  std::unique_ptr<ZkClient> zk_;
  std::shared_ptr<cluster::ClusterMap> map_;
  bool reading_map_ = false;
  Nanos until_ = 0;
  bool busy_ = false;
  uint64_t ops_ = 0;
  uint64_t next_value_ = 0;
  uint64_t next_request_ = 1;
};

}  // namespace rangekv::sim
