// The REPL's membership commands, which write the cluster map in
// ZooKeeper directly (through a session of their own), as the
// coordinator's planner would, and leave the rest to it:
//   - `move <range-id> <from> <to>`: written into the range's znode as the
//     balancer writes it (common/cluster_map.h "move_replica": `to` added
//     to replicas, not to the isr), with a compare-and-set on the version
//     read, so it never overwrites a change it did not see. The owner
//     copies the range to `to` and adds it to the isr once caught up, and
//     the coordinator takes `from` out (planner rule 11).
//   - `decommission <node>`: creates R/draining/<node>; the coordinator
//     moves every copy off the node, one range at a time. `recommission`
//     deletes it.
// Everything that makes a command impossible is refused before anything
// is written.
#include <algorithm>
#include <thread>

#include "common/asio.h"
#include "common/cluster_map.h"
#include "common/zk/auth.h"
#include "common/zk/session.h"
#include "repl/cluster_backend.h"

namespace rangekv::repl {
namespace {

using cluster::RangeInfo;

bool Holds(const std::vector<NodeId>& ids, std::string_view id) {
  return std::find(ids.begin(), ids.end(), NodeId(std::string(id))) != ids.end();
}

// A ZooKeeper session on a thread of its own, for as long as the command.
class ZkClient {
 public:
  ~ZkClient() {
    session_.reset();
    guard_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // auth_file: "" for none; else its identity creates znodes with the
  // ACL of the cluster whose map is at `root`.
  Status Open(const std::string& connect, const std::string& auth_file, const std::string& root,
              std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    zk::SessionOptions so;
    if (!auth_file.empty()) {
      RANGEKV_ASSIGN_OR_RETURN(zk::AuthFile f, zk::LoadAuthFile(auth_file));
      so.auth = f.self;
      so.acl = zk::ClusterAcl(root, f);
    }
    thread_ = std::thread([this] { io_.run(); });
    so.connect_string = connect;
    so.session_timeout = std::chrono::milliseconds(10000);
    so.blocking_timeout = timeout;
    RANGEKV_ASSIGN_OR_RETURN(session_, zk::Session::Open(so, io_.get_executor()));
    return session_->WaitConnected(timeout);
  }
  zk::Session& session() { return *session_; }

 private:
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
      asio::make_work_guard(io_)};
  std::thread thread_;
  std::unique_ptr<zk::Session> session_;
};

// Why `r` cannot move its replica from `from` to `to` now, or OK.
Status CheckMove(const RangeInfo& r, std::string_view from, std::string_view to, bool to_live,
                 bool to_draining) {
  const std::string name = "range " + std::to_string(r.id.value());
  if (!Holds(r.replicas, from)) {
    return Status(Code::kBadRequest, name + ": " + std::string(from) + " holds no replica of it");
  }
  if (Holds(r.replicas, to)) {
    return Status(Code::kBadRequest, name + ": " + std::string(to) + " holds a replica already");
  }
  if (!to_live) {
    return Status(Code::kUnavailable, name + ": " + std::string(to) + " is not a live node");
  }
  if (to_draining) {
    return Status(Code::kBadRequest, name + ": " + std::string(to) +
                                         " is being decommissioned (recommission it first)");
  }
  if (r.move_replica) {
    return Status(Code::kRangeUnavailable,
                  name + ": the move of its replica on " + r.move_replica->from.str() + " to " +
                      r.move_replica->to.str() + " is under way; retry once it is done");
  }
  if (!r.owner || r.state != cluster::RangeState::kActive) {
    return Status(Code::kRangeUnavailable, name + " has no active owner to copy it from; retry");
  }
  return Status::Ok();
}

// Writes the move into the range's znode: `to` added to the replicas and
// move_replica set, compare-and-set on the version read (read again when
// another writer came first).
Status WriteMove(zk::Session& zk, const cluster::Paths& paths, RangeId id, std::string_view from,
                 std::string_view to, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> data, zk.Get(paths.range(id)));
    if (!data) {
      return Status(Code::kBadRequest,
                    "no range " + std::to_string(id.value()) + " in the cluster map");
    }
    RANGEKV_ASSIGN_OR_RETURN(RangeInfo r, cluster::DecodeRange(data->data));
    RANGEKV_ASSIGN_OR_RETURN(auto live, zk.Exists(paths.node(NodeId(std::string(to)))));
    RANGEKV_ASSIGN_OR_RETURN(auto draining, zk.Exists(paths.draining(NodeId(std::string(to)))));
    RANGEKV_RETURN_IF_ERROR(CheckMove(r, from, to, live.has_value(), draining.has_value()));
    r.replicas.emplace_back(std::string(to));
    r.move_replica = cluster::ReplicaMove{NodeId(std::string(from)), NodeId(std::string(to))};
    auto set = zk.Set(paths.range(id), cluster::EncodeRange(r), data->stat.version);
    if (set.ok() || set.status().code() != Code::kCasFailed) return set.status();
    if (std::chrono::steady_clock::now() >= deadline) return set.status();
  }
}

// true: done (`to` in sync, `from` gone); false: going on (or the read
// failed); an error: dropped (the field went with `to` out of the
// replicas: it died while copying) or the range is gone.
Result<bool> MoveDone(zk::Session& zk, const cluster::Paths& paths, RangeId id,
                      std::string_view from, std::string_view to) {
  const std::string name = "range " + std::to_string(id.value());
  auto data = zk.Get(paths.range(id));
  if (!data.ok()) return false;
  if (!*data) return Status(Code::kRangeUnavailable, name + " is gone (merged away?)");
  auto r = cluster::DecodeRange((*data)->data);
  if (!r.ok()) return false;
  if (Holds(r->isr, to) && !Holds(r->replicas, from)) return true;
  if (!r->move_replica && !Holds(r->replicas, to)) {
    return Status(Code::kUnavailable,
                  name + ": the move was dropped (" + std::string(to) +
                      " went down before it caught up and stayed down); nothing changed");
  }
  return false;
}

}  // namespace

Status ClusterBackend::Move(uint64_t range, std::string_view from, std::string_view to) {
  if (!cluster::IsValidNodeId(from) || !cluster::IsValidNodeId(to)) {
    return Status(Code::kBadRequest, "move: node ids are 1-64 of [A-Za-z0-9._-]");
  }
  const auto deadline = std::chrono::steady_clock::now() + kMoveTimeout;
  const cluster::Paths paths(cluster_);
  ZkClient zk;
  RANGEKV_RETURN_IF_ERROR(zk.Open(zookeeper_, zk_auth_file_, cluster::Paths(cluster_).root()));
  RANGEKV_RETURN_IF_ERROR(WriteMove(zk.session(), paths, RangeId(range), from, to, deadline));
  while (std::chrono::steady_clock::now() < deadline) {
    RANGEKV_ASSIGN_OR_RETURN(bool done, MoveDone(zk.session(), paths, RangeId(range), from, to));
    if (done) {
      // So that `ranges` right after shows it too.
      return AwaitMap(
          [&]() -> Result<bool> {
            RANGEKV_ASSIGN_OR_RETURN(std::vector<RangeStatus> ranges, Ranges());
            auto it = std::find_if(ranges.begin(), ranges.end(),
                                   [&](const RangeStatus& r) { return r.id == range; });
            return it != ranges.end() &&
                   std::find(it->replicas.begin(), it->replicas.end(), from) == it->replicas.end();
          },
          deadline);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status(Code::kTimeout, "range " + std::to_string(range) +
                                    ": the move is under way but not done after " +
                                    std::to_string(kMoveTimeout.count() / 1000) +
                                    " s; it goes on (`ranges` shows it)");
}

namespace {

// Whether `node` may stop holding copies: it is a node of the cluster, and
// the live nodes not being decommissioned besides it can hold rf copies.
Status CheckDecommission(zk::Session& zk, const cluster::Paths& paths, std::string_view node,
                         const std::vector<RangeStatus>& ranges) {
  RANGEKV_ASSIGN_OR_RETURN(std::vector<std::string> live, zk.Children(paths.nodes()));
  bool known = std::find(live.begin(), live.end(), node) != live.end();
  for (const RangeStatus& r : ranges) {
    known = known || std::find(r.replicas.begin(), r.replicas.end(), node) != r.replicas.end();
  }
  if (!known) return Status(Code::kBadRequest, "no node " + std::string(node) + " in the cluster");
  auto draining = zk.Children(paths.draining());
  std::vector<std::string> out = draining.ok() ? *draining : std::vector<std::string>{};
  out.emplace_back(node);
  int left = 0;
  for (const std::string& n : live) left += std::find(out.begin(), out.end(), n) == out.end();
  RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> config, zk.Get(paths.config()));
  int rf = 1;
  if (config) {
    if (auto c = cluster::DecodeConfig(config->data); c.ok()) rf = c->rf;
  }
  if (left < rf) {
    return Status(Code::kBadRequest, "decommissioning " + std::string(node) + " would leave " +
                                         std::to_string(left) + " live nodes to hold rf " +
                                         std::to_string(rf) + " copies; add a node first");
  }
  return Status::Ok();
}

}  // namespace

std::set<std::string> ClusterBackend::Draining() {
  ZkClient zk;
  if (!zk.Open(zookeeper_, zk_auth_file_, cluster::Paths(cluster_).root(),
               std::chrono::milliseconds(2000))
           .ok())
    return {};
  auto names = zk.session().Children(cluster::Paths(cluster_).draining());
  return names.ok() ? std::set<std::string>(names->begin(), names->end()) : std::set<std::string>{};
}

Status ClusterBackend::Decommission(std::string_view node) {
  if (!cluster::IsValidNodeId(node)) {
    return Status(Code::kBadRequest, "decommission: node ids are 1-64 of [A-Za-z0-9._-]");
  }
  const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  const cluster::Paths paths(cluster_);
  ZkClient zk;
  RANGEKV_RETURN_IF_ERROR(zk.Open(zookeeper_, zk_auth_file_, cluster::Paths(cluster_).root()));
  RANGEKV_ASSIGN_OR_RETURN(std::vector<RangeStatus> ranges, Ranges());
  const NodeId id{std::string(node)};
  auto marked = zk.session().Exists(paths.draining(id));
  if (!marked.ok() || !*marked) {
    RANGEKV_RETURN_IF_ERROR(CheckDecommission(zk.session(), paths, node, ranges));
    for (const std::string& path : {paths.draining(), paths.draining(id)}) {
      auto made = zk.session().Create(path, "", zk::CreateMode::kPersistent);
      if (!made.ok() && made.status().code() != Code::kCasFailed) return made.status();
    }
  }
  size_t held = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto now = Ranges();  // an error is a map read mid-change: read again
    if (now.ok()) {
      held = std::count_if(now->begin(), now->end(), [&](const RangeStatus& r) {
        return std::find(r.replicas.begin(), r.replicas.end(), node) != r.replicas.end();
      });
      if (held == 0) return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status(Code::kTimeout, std::string(node) + " still holds " + std::to_string(held) +
                                    " replicas after " +
                                    std::to_string(kDrainTimeout.count() / 1000) +
                                    " s; the drain goes on (`ranges` shows where)");
}

Status ClusterBackend::Recommission(std::string_view node) {
  if (!cluster::IsValidNodeId(node)) {
    return Status(Code::kBadRequest, "recommission: node ids are 1-64 of [A-Za-z0-9._-]");
  }
  ZkClient zk;
  RANGEKV_RETURN_IF_ERROR(zk.Open(zookeeper_, zk_auth_file_, cluster::Paths(cluster_).root()));
  Status st = zk.session().Delete(cluster::Paths(cluster_).draining(NodeId(std::string(node))));
  if (st.code() == Code::kBadRequest) {
    return Status(Code::kBadRequest, std::string(node) + " is not being decommissioned");
  }
  return st;
}

}  // namespace rangekv::repl
