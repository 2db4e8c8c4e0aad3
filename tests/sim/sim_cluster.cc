#include "tests/sim/sim_cluster.h"

#include <algorithm>
#include <cstdio>

#include "tests/sim/sim_coord.h"
#include "tests/sim/sim_node.h"

namespace rangekv::sim {
namespace {

World* g_log_world = nullptr;

std::string SimLogHead() {
  char buf[48];
  const Nanos t = g_log_world->now() - World::kEpochStart;
  std::snprintf(buf, sizeof buf, "%4lld.%06lld", static_cast<long long>(t / kSecond),
                static_cast<long long>((t % kSecond) / kMicro));
  const ProcessRef& p = g_log_world->current();
  return std::string(buf) + " " + (p ? p->name : std::string("world"));
}

}  // namespace

void Cluster::Transfer(RangeId range, const std::string& target,
                       std::function<void(Status)> done) {
  const cluster::ClusterMap map = MapNow();
  auto r = map.ranges.find(range);
  const cluster::NodeInfo* owner =
      r == map.ranges.end() || !r->second.owner ? nullptr : map.Node(*r->second.owner);
  if (owner == nullptr) {
    return done(Status(Code::kRangeUnavailable, "range has no live owner in the map"));
  }
  net.Call(operator_, "operator", owner->address,
           proto::MakeTransfer(range, r->second.epoch, target), 2 * kSecond,
           [done = std::move(done)](Result<proto::Response> got) {
             done(proto::TransferOutcome(got));
           });
}

void Cluster::Split(const std::string& key, std::function<void(Status)> done) {
  const cluster::ClusterMap map = MapNow();
  const cluster::RangeInfo* r = map.Locate(key);
  const cluster::NodeInfo* owner = r == nullptr || !r->owner ? nullptr : map.Node(*r->owner);
  if (owner == nullptr) {
    return done(Status(Code::kRangeUnavailable, "the key's range has no live owner in the map"));
  }
  net.Call(operator_, "operator", owner->address, proto::MakeSplit(r->id, r->epoch, key),
           2 * kSecond, [done = std::move(done)](Result<proto::Response> got) {
             done(proto::TransferOutcome(got));
           });
}

void Cluster::Merge(const std::string& key, std::function<void(Status)> done) {
  const cluster::ClusterMap map = MapNow();
  const cluster::RangeInfo* r = map.Locate(key);
  const cluster::NodeInfo* owner = r == nullptr || !r->owner ? nullptr : map.Node(*r->owner);
  if (owner == nullptr) {
    return done(Status(Code::kRangeUnavailable, "the key's range has no live owner in the map"));
  }
  net.Call(
      operator_, "operator", owner->address, proto::MakeMerge(r->id, r->epoch), 2 * kSecond,
      [done = std::move(done)](Result<proto::Response> got) { done(proto::TransferOutcome(got)); });
}

void Cluster::Move(RangeId range, const std::string& from, const std::string& to, Nanos within,
                   std::function<void(Status)> done) {
  // One event: nothing else reads or writes ZooKeeper between the read
  // and the write (what the REPL's compare-and-set stands for).
  auto it = zk.znodes().find(paths.range(range));
  auto r = it == zk.znodes().end()
               ? Result<cluster::RangeInfo>(Status(Code::kBadRequest, "no range"))
               : cluster::DecodeRange(it->second.data);
  if (!r.ok()) return done(r.status());
  auto holds = [&](const std::string& n) {
    return std::find(r->replicas.begin(), r->replicas.end(), NodeId(n)) != r->replicas.end();
  };
  if (r->move_replica || !holds(from) || holds(to)) {
    return done(Status(Code::kBadRequest, "no such move can start now"));
  }
  r->replicas.emplace_back(to);
  r->move_replica = cluster::ReplicaMove{NodeId(from), NodeId(to)};
  zk.Put(paths.range(range), cluster::EncodeRange(*r));
  WatchMove(range, from, to, world.now() + within, std::move(done));
}

void Cluster::WatchMove(RangeId range, const std::string& from, const std::string& to,
                        Nanos deadline, std::function<void(Status)> done) {
  world.After(20 * kMilli, operator_, [this, range, from, to, deadline, done = std::move(done)] {
    const cluster::ClusterMap map = MapNow();
    auto r = map.ranges.find(range);
    if (r == map.ranges.end()) return done(Status(Code::kRangeUnavailable, "the range is gone"));
    auto in = [](const std::vector<NodeId>& v, const std::string& n) {
      return std::find(v.begin(), v.end(), NodeId(n)) != v.end();
    };
    if (in(r->second.isr, to) && !in(r->second.replicas, from)) return done(Status::Ok());
    if (!r->second.move_replica && !in(r->second.replicas, to)) {
      return done(Status(Code::kUnavailable, "the move was dropped"));
    }
    if (world.now() >= deadline) return done(Status(Code::kTimeout, "the move is still going"));
    WatchMove(range, from, to, deadline, done);
  });
}

void InstallSimLogPrefix(World& world) {
  g_log_world = &world;
  log::SetLineHeadForTesting(&SimLogHead);
}

Cluster::Cluster(World& w, ClusterParams p)
    : world(w), params(std::move(p)), fs(w), zk(w), net(w), paths("sim") {
  // What kvcoord and the nodes would create first.
  for (const std::string& path : {std::string("/rangekv"), paths.root(), paths.nodes(),
                                  paths.ranges(), paths.coordinator()}) {
    zk.Put(path, "");
  }
  cluster::ClusterConfig config;
  config.rf = params.rf;
  config.min_insync = params.min_insync;
  config.initial_ranges = params.ranges;
  zk.Put(paths.config(), cluster::EncodeConfig(config));
  for (int i = 1; i <= params.nodes; ++i) {
    nodes.push_back(std::make_unique<SimNode>(*this, "n" + std::to_string(i)));
  }
  for (int i = 1; i <= params.coordinators; ++i) {
    coordinators.push_back(std::make_unique<SimCoordinator>(*this, "coord" + std::to_string(i)));
  }
}

Cluster::~Cluster() {
  // Processes go before the disk, ZooKeeper and network they use.
  coordinators.clear();
  nodes.clear();
}

SimNode* Cluster::Node(const std::string& id) {
  for (auto& n : nodes) {
    if (n->id() == id) return n.get();
  }
  return nullptr;
}

cluster::ClusterMap Cluster::MapNow() const { return MapFromZnodes(paths, zk.znodes()); }

cluster::ClusterMap MapFromZnodes(const cluster::Paths& paths,
                                  const std::map<std::string, Znode>& znodes,
                                  const std::string& self, SessionId* self_owner) {
  cluster::ClusterMap map;
  if (self_owner != nullptr) *self_owner = 0;
  if (auto it = znodes.find(paths.config()); it != znodes.end()) {
    auto c = cluster::DecodeConfig(it->second.data);
    if (c.ok()) map.config = *c;
  }
  const std::string nodes = paths.nodes() + "/";
  for (auto it = znodes.lower_bound(nodes); it != znodes.end() && it->first.rfind(nodes, 0) == 0;
       ++it) {
    auto n = cluster::DecodeNode(it->second.data);
    if (n.ok()) map.live_nodes[n->id] = *n;
    if (self_owner != nullptr && it->first == nodes + self) *self_owner = it->second.owner;
  }
  const std::string ranges = paths.ranges() + "/";
  for (auto it = znodes.lower_bound(ranges);
       it != znodes.end() && it->first.rfind(ranges, 0) == 0; ++it) {
    auto r = cluster::DecodeRange(it->second.data);
    if (r.ok()) map.ranges[r->id] = *r;
  }
  return map;
}

}  // namespace rangekv::sim
