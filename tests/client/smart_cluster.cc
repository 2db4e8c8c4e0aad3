#include "tests/client/smart_cluster.h"

#include <chrono>
#include <csignal>

#include "rangekv/client.h"

namespace rangekv::testing {

using std::chrono::milliseconds;

SmartCluster::~SmartCluster() {
  for (auto& [id, n] : nodes_) n.process.Stop(milliseconds(5000));
  session_.reset();
}

bool SmartCluster::Start() {
  if (!zk_.Start()) {
    error_ = "ZooKeeper did not start: " + zk_.log();
    return false;
  }
  zk::SessionOptions so;
  so.connect_string = zk_.connect_string();
  auto s = zk::Session::Open(so, io_.executor());
  if (!s.ok()) {
    error_ = s.status().ToString();
    return false;
  }
  session_ = std::move(*s);
  Status st = session_->WaitConnected(milliseconds(10000));
  if (!st.ok()) {
    error_ = st.ToString();
    return false;
  }
  for (const std::string& p : {std::string("/rangekv"), paths_.root(), paths_.nodes(),
                               paths_.ranges()}) {
    if (!Put(p, "", zk::CreateMode::kPersistent)) return false;
  }
  cluster::ClusterConfig c;
  c.rf = 1;
  c.min_insync = 1;
  c.initial_ranges = 2;
  return Put(paths_.config(), cluster::EncodeConfig(c), zk::CreateMode::kPersistent);
}

bool SmartCluster::Put(const std::string& path, const std::string& data, zk::CreateMode mode) {
  auto created = session_->Create(path, data, mode);
  if (created.ok()) return true;
  if (created.status().code() != Code::kCasFailed) {
    error_ = "create " + path + ": " + created.status().ToString();
    return false;
  }
  auto set = session_->Set(path, data);
  if (!set.ok()) error_ = "set " + path + ": " + set.status().ToString();
  return set.ok();
}

bool SmartCluster::WriteRange(const cluster::RangeInfo& r) {
  return Put(paths_.range(r.id), cluster::EncodeRange(r), zk::CreateMode::kPersistent);
}

bool SmartCluster::WriteTwoRanges(const std::string& a, const std::string& b,
                                  const std::string& split) {
  cluster::RangeInfo r1;
  r1.id = RangeId(1);
  r1.bounds = KeyRange("", split);
  r1.epoch = Epoch(1);
  r1.owner = NodeId(a);
  r1.replicas = {NodeId(a)};
  r1.isr = {NodeId(a)};
  cluster::RangeInfo r2 = r1;
  r2.id = RangeId(2);
  r2.bounds = KeyRange(split, std::nullopt);
  r2.owner = NodeId(b);
  r2.replicas = {NodeId(b)};
  r2.isr = {NodeId(b)};
  return WriteRange(r1) && WriteRange(r2);
}

bool SmartCluster::PublishNode(const std::string& id, const std::string& address) {
  cluster::NodeInfo n;
  n.id = NodeId(id);
  n.address = address;
  n.started_ms = 1;
  n.incarnation = "test-" + id;
  return Put(paths_.node(n.id), cluster::EncodeNode(n), zk::CreateMode::kEphemeral);
}

bool SmartCluster::UnpublishNode(const std::string& id) {
  Status st = session_->Delete(paths_.node(NodeId(id)));
  if (!st.ok()) error_ = st.ToString();
  return st.ok();
}

std::string SmartCluster::log(const std::string& id) const {
  return ReadFile(dir_.Sub(id + ".log"));
}

bool SmartCluster::StartNode(const std::string& id) {
  Node& n = nodes_[id];
  n.address = "127.0.0.1:" + std::to_string(FreePort());
  n.process = Process::Start({BuildPath("kvnode/kvnode"), "--standalone", "--listen", n.address,
                              "--data", dir_.Sub("data-" + id), "--fsync", "always"},
                             dir_.Sub(id + ".log"));
  bool up = WaitFor(
      [&] {
        auto c = Client::ConnectNode(n.address);
        return c.ok() && (*c)->Ping().ok();
      },
      milliseconds(15000), milliseconds(50));
  if (!up) {
    error_ = "kvnode " + id + " did not come up: " + log(id);
    return false;
  }
  return PublishNode(id, n.address);
}

bool SmartCluster::StartClusterNode(const std::string& id) {
  Node& n = nodes_[id];
  n.address = "127.0.0.1:" + std::to_string(FreePort());
  n.process = Process::Start({BuildPath("kvnode/kvnode"), "--id", id, "--listen", n.address,
                              "--zk", zk_.connect_string(), "--cluster", name_,
                              "--session-timeout-ms", "2000", "--data",
                              dir_.Sub("data-" + id), "--fsync", "always"},
                             dir_.Sub(id + ".log"));
  bool up = WaitFor(
      [&] {
        auto z = session_->Get(paths_.node(NodeId(id)));
        if (!z.ok() || !z->has_value()) return false;
        auto info = cluster::DecodeNode((*z)->data);
        return info.ok() && info->address == n.address;
      },
      milliseconds(20000), milliseconds(50));
  if (!up) error_ = "kvnode " + id + " did not register: " + log(id);
  return up;
}

void SmartCluster::KillNode(const std::string& id) { nodes_.at(id).process.Kill(); }

void SmartCluster::StopNode(const std::string& id) { nodes_.at(id).process.Stop(); }

bool SmartCluster::PauseNode(const std::string& id) {
  Process& p = nodes_.at(id).process;
  p.Signal(SIGSTOP);
  return p.WaitStopped(milliseconds(5000));
}

void SmartCluster::ResumeNode(const std::string& id) { nodes_.at(id).process.Signal(SIGCONT); }

}  // namespace rangekv::testing
