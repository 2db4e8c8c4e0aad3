// tests/sim/sim_coord.h — a coordinator of the simulated cluster.
//
// The decisions are the real coordinator's: coordinator::PlanReconcile, fed
// with the same snapshot kvcoord builds (config, live nodes, every range
// znode with its version, the highest epoch seen per range, how long each
// named node has been missing). Around it, what coordinator.cc does against
// ZooKeeper, against the simulated one: election by the lowest ephemeral
// sequential candidate; a reconcile on every watch notification, every
// second and when the plan asks to recheck; every write a multi that also
// checks our candidate znode, so a deposed coordinator never writes.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "tests/sim/sim_cluster.h"

namespace rangekv::sim {

class SimCoordinator {
 public:
  SimCoordinator(Cluster& cluster, std::string id);
  ~SimCoordinator();
  const std::string& id() const { return id_; }
  bool up() const { return inc_ != nullptr; }
  // Up and leading (it has seen its candidate lowest).
  bool leading() const;
  void Start();
  void Kill();

 private:
  struct Incarnation;
  void Trigger();
  void Reconcile();
  void Decide(bool leading, const std::map<std::string, Znode>& znodes);
  void Execute(std::vector<std::vector<ZkOp>> writes, size_t next);
  void Tick();
  void DetectorTick();

  Cluster& c_;
  const std::string id_;
  std::unique_ptr<Incarnation> inc_;
  int started_ = 0;
};

}  // namespace rangekv::sim
