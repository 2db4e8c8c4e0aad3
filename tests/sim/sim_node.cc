#include "tests/sim/sim_node.h"

#include <algorithm>

#include "common/log.h"
#include "kvnode/cluster/map_reader.h"
#include "tests/sim/sim_fs.h"

namespace rangekv::sim {
namespace {

constexpr Nanos kMemberTick = 20 * kMilli;
constexpr Nanos kReconcilePeriod = 1 * kSecond;
constexpr Nanos kNewsRetry = 3 * kMilli;
constexpr int kNewsRetries = 30;

bool IsNodeExists(const Status& st) {
  return st.code() == Code::kCasFailed && st.message().find("ZNODEEXISTS") != std::string::npos;
}

}  // namespace

struct SimNode::Incarnation {
  ProcessRef process;
  std::unique_ptr<SimEnv> env;
  std::unique_ptr<kvnode::Node> node;
  std::unique_ptr<kvnode::RequestHandler> handler;
  std::unique_ptr<ZkClient> zk;
  cluster::NodeInfo self;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  bool registered = false;
  bool registering = false;
  bool serving = false;
  bool suspended = false;
  bool reading = false;
  bool read_again = false;
  int torn_rereads = 0;  // of the read under way (MapReader::kTornRereads)
  Nanos next_periodic = 0;
  std::deque<std::pair<kvnode::IsrChange, std::function<void(Status)>>> isr_queue;
  bool isr_busy = false;
  bool clearing_suspect = false;
  // Another incarnation's znode for our id, and since when (cluster_member.cc
  // waits twice the session timeout for it before taking it for a duplicate).
  SessionId rival = 0;
  Nanos rival_since = 0;
};

SimNode::SimNode(Cluster& cluster, std::string id) : c_(cluster), id_(std::move(id)) {}

SimNode::~SimNode() {
  if (inc_) Crash(false);
}

bool SimNode::paused() const { return inc_ && inc_->process->paused_until > c_.world.now(); }

kvnode::Node* SimNode::node() const { return inc_ ? inc_->node.get() : nullptr; }

void SimNode::Start() {
  if (inc_) return;
  ++started_;
  auto inc = std::make_unique<Incarnation>();
  inc->process = std::make_shared<Process>(Process{id_ + "#" + std::to_string(started_)});
  inc->env = std::make_unique<SimEnv>(c_.world, inc->process, c_.fs,
                                      "boot-" + std::to_string(boots_));
  const ClusterParams& p = c_.params;
  kvnode::NodeConfig cfg;
  cfg.data_dir = data_dir();
  cfg.id = NodeId(id_);
  cfg.fsync = p.fsync;
  cfg.replication = p.replication;
  cfg.replication.step_hook = [this](std::string_view step, RangeId range) {
    if (c_.on_step) c_.on_step(id_, step, range);
  };
  cfg.segment_bytes = p.segment_bytes;
  cfg.snapshot_after_bytes = p.snapshot_after_bytes;
  cfg.keep_log_records = p.keep_log_records;
  cfg.env = inc->env.get();
  Network& net = c_.net;
  ProcessRef proc = inc->process;
  const std::string host = id_;
  cfg.transport = [&net, proc, host](exec::Executor& e) {
    return std::make_unique<SimTransport>(net, proc, host, e);
  };
  // Runs as an event of the new process, like its main().
  auto opened = kvnode::Node::OpenCluster(cfg);
  if (!opened.ok()) {
    LOG_ERROR(id_ << ": cannot start: " << opened.status().ToString());
    inc->process->alive = false;
    return;
  }
  inc->node = std::move(*opened);
  inc->handler = std::make_unique<kvnode::RequestHandler>(*inc->node);
  inc->self = cluster::NodeInfo{NodeId(id_), id_, "",
                                static_cast<uint64_t>(c_.world.now() / kMilli),
                                inc->node->data_dir().incarnation()};
  inc->self.life = inc->node->life();
  inc->self.suspect = inc->node->suspect();
  inc->self.opening = true;
  inc_ = std::move(inc);
  std::weak_ptr<bool> alive = inc_->alive;
  inc_->zk = std::make_unique<ZkClient>(
      c_.world, c_.zk, proc, p.session_timeout,
      [this, proc] { return proc->alive && c_.net.ZkReachable(id_); },
      [this, alive] {
        if (alive.lock()) TriggerReconcile();
      });
  inc_->node->replicator()->SetIsrChanger(
      [this, alive](kvnode::IsrChange c, std::function<void(Status)> done) {
        // A split's or merge's reads run with its multi in one server
        // step here (SplitOnServer): a hint to read early has no use.
        if (!alive.lock() || c.prefetch) return;
        inc_->isr_queue.emplace_back(std::move(c), std::move(done));
        NextIsrChange();
      });
  inc_->node->replicator()->SetNewsListener(
      [this, alive, proc](RangeId, cluster::ClusterMap::Written news) {
        // The member's news thread: an event of the process of its own.
        c_.world.After(0, proc, [this, alive, news = std::move(news)]() mutable {
          if (alive.lock()) ApplyNews(std::move(news), 0);
        });
      });
  c_.net.Listen(id_, proc, [this, alive](proto::Request req, Network::Reply reply) {
    if (alive.lock()) Handle(std::move(req), std::move(reply));
  });
  LOG_INFO(id_ << ": started (incarnation " << inc_->self.incarnation.substr(0, 8) << ")");
  Register();
  c_.world.After(kMemberTick, proc, [this, alive] {
    if (alive.lock()) MemberTick();
  });
}

void SimNode::Handle(proto::Request req, Network::Reply reply) {
  struct Sink final : kvnode::ResponseSink {
    Network::Reply reply;
    Reply ReplyLater() override { return reply; }
  } sink;
  sink.reply = reply;
  std::optional<std::pair<RangeId, Epoch>> read;
  if (req.kind == proto::OpKind::kGet && req.consistency != proto::Consistency::kStale &&
      !req.ops.empty()) {
    kvnode::Route route = inc_->node->RouteKey(req.range, req.epoch, req.ops.front().key,
                                               kvnode::Access::kRead);
    if (route.ok()) read = std::make_pair(route.store->id(), route.store->epoch());
  }
  std::optional<proto::Response> resp = inc_->handler->Handle(std::move(req), sink);
  if (!resp) return;
  if (read && resp->kind != proto::Response::Kind::kError && c_.observer.on_read) {
    c_.observer.on_read(id_, read->first, read->second);
  }
  reply(std::move(*resp));
}

// ---- membership ----

void SimNode::Register() {
  Incarnation& inc = *inc_;
  if (inc.registering) return;
  inc.registering = true;
  const std::string path = c_.paths.node(NodeId(id_));
  const std::string data = cluster::EncodeNode(inc.self);
  std::weak_ptr<bool> alive = inc.alive;
  inc.zk->Call([path, data](ZkSim& s, SessionId sid) { return s.Create(sid, path, data, true); },
               [this, alive](ZkReply r) {
                 if (alive.lock()) OnRegistered(std::move(r));
               });
}

// As the member's loop after it registers (cluster_member.cc): the ISR
// changes asked while it was not registered are written now, then the map
// is read.
void SimNode::OnRegisteredNow() {
  NextIsrChange();
  TriggerReconcile();
}

void SimNode::OnRegistered(ZkReply r) {
  Incarnation& inc = *inc_;
  if (r.status.ok()) {
    inc.registering = false;
    inc.registered = true;
    LOG_INFO(id_ << ": registered (session " << inc.zk->session() << ")");
    return OnRegisteredNow();
  }
  if (!IsNodeExists(r.status)) {
    inc.registering = false;  // the member tick tries again
    return;
  }
  const std::string path = c_.paths.node(NodeId(id_));
  std::weak_ptr<bool> alive = inc.alive;
  inc.zk->Call([path](ZkSim& s, SessionId sid) { return s.Get(sid, path); },
               [this, alive, path](ZkReply got) {
                 if (!alive.lock()) return;
                 Incarnation& inc = *inc_;
                 inc.registering = false;
                 if (!got.status.ok()) return;
                 if (!got.node) return Register();
                 if (got.node->owner == inc.zk->session()) {
                   inc.registered = true;
                   return OnRegisteredNow();
                 }
                 auto other = cluster::DecodeNode(got.node->data);
                 if (!other.ok() || other->incarnation != inc.self.incarnation) {
                   if (got.node->owner != inc.rival) {
                     inc.rival = got.node->owner;
                     inc.rival_since = c_.world.now();
                   }
                   if (c_.world.now() - inc.rival_since >= 2 * c_.params.session_timeout + kSecond) {
                     return Exit("node id " + id_ + " is already registered by a live node");
                   }
                   return;  // the member tick tries again
                 }
                 // Our own previous life's znode: replace it.
                 int32_t version = got.node->version;
                 std::weak_ptr<bool> alive2 = inc.alive;
                 inc.registering = true;
                 inc.zk->Call(
                     [path, version](ZkSim& s, SessionId sid) { return s.Delete(sid, path, version); },
                     [this, alive2](ZkReply) {
                       if (!alive2.lock()) return;
                       inc_->registering = false;
                       Register();
                     });
               });
}

void SimNode::TriggerReconcile() {
  Incarnation& inc = *inc_;
  if (inc.reading) {
    inc.read_again = true;
    return;
  }
  Reconcile();
}

void SimNode::Reconcile() {
  Incarnation& inc = *inc_;
  if (!inc.registered) return;
  inc.reading = true;
  // The children lists first (MapReader: Children of R/nodes, R/ranges)...
  auto names = std::make_shared<std::set<std::string>>();
  const cluster::Paths paths = c_.paths;
  std::weak_ptr<bool> alive = inc.alive;
  inc.zk->Call(
      [names, paths](ZkSim& s, SessionId sid) {
        ZkReply r = s.Get(sid, paths.root());
        if (!r.status.ok()) return r;
        for (const std::string& dir : {paths.nodes(), paths.ranges()}) {
          const std::string prefix = dir + "/";
          for (const auto& kid : s.Children(sid, dir).children) names->insert(prefix + kid);
        }
        return r;
      },
      [this, alive, names](ZkReply r) {
        if (!alive.lock()) return;
        if (!r.status.ok()) return EndReconcile(r, nullptr);
        ReadListed(names);
      });
}

// ...then the data of what was listed, a round trip later: a znode created
// in between is not seen, one deleted in between reads as absent, and a
// range gone so makes the whole read again (MapReader: a torn read).
void SimNode::ReadListed(std::shared_ptr<std::set<std::string>> names) {
  auto out = std::make_shared<std::pair<cluster::ClusterMap, SessionId>>();
  auto torn = std::make_shared<bool>(false);
  const cluster::Paths paths = c_.paths;
  const std::string self = id_;
  std::weak_ptr<bool> alive = inc_->alive;
  inc_->zk->Call(
      [out, torn, paths, self, names](ZkSim& s, SessionId sid) {
        ZkReply r = s.Get(sid, paths.root());
        if (!r.status.ok()) return r;
        std::map<std::string, Znode> listed;
        for (const auto& [path, z] : s.znodes()) {
          if (path == paths.config() || names->count(path)) listed.emplace(path, z);
        }
        const std::string ranges = paths.ranges() + "/";
        for (const std::string& name : *names) {
          *torn = *torn || (name.rfind(ranges, 0) == 0 && !listed.count(name));
        }
        out->first = MapFromZnodes(paths, listed, self, &out->second);
        return r;
      },
      [this, alive, out, torn](ZkReply r) {
        if (!alive.lock()) return;
        if (r.status.ok() && *torn && inc_->torn_rereads < kvnode::MapReader::kTornRereads) {
          ++inc_->torn_rereads;
          return Reconcile();
        }
        inc_->torn_rereads = 0;
        EndReconcile(r, out.get());
      });
}

void SimNode::EndReconcile(const ZkReply& r, std::pair<cluster::ClusterMap, SessionId>* out) {
  Incarnation& inc = *inc_;
  inc.reading = false;
  if (r.status.ok() && out != nullptr) {
    if (out->second != inc.zk->session()) {
      LOG_WARN(id_ << ": our node znode is gone; registering again");
      inc.registered = false;
      Register();
    } else {
      ApplyMap(out->first);
    }
  }
  if (inc.read_again) {
    inc.read_again = false;
    Reconcile();
  }
}

void SimNode::ApplyMap(const cluster::ClusterMap& map) {
  Incarnation& inc = *inc_;
  kvnode::ApplyReport report = inc.node->Apply(map);
  copies_rebuilt_ += static_cast<int>(report.rebuilt.size());
  // A range split off waits for its parent's copy: look again soon.
  if (report.retry_soon) inc.next_periodic = std::min(inc.next_periodic, c_.world.now());
  inc.serving = true;
  inc.suspended = false;
  if (inc.self.opening) PublishOpened();
}

// As the member's news thread (cluster_member.cc): applied at once, and
// again shortly while a range it made waits for its parent's copy.
void SimNode::ApplyNews(cluster::ClusterMap::Written news, int retries) {
  Incarnation& inc = *inc_;
  kvnode::ApplyReport report = inc.node->ApplyNews(std::move(news));
  copies_rebuilt_ += static_cast<int>(report.rebuilt.size());
  if (!report.derived.empty()) LOG_INFO(id_ << ": built from the owner's news");
  if (!report.retry_soon || !inc.node->NewsOutstanding() || retries >= kNewsRetries) return;
  std::weak_ptr<bool> alive = inc.alive;
  c_.world.After(kNewsRetry, inc.process, [this, alive, retries] {
    if (alive.lock()) ApplyNews({}, retries + 1);
  });
}

void SimNode::MemberTick() {
  Incarnation& inc = *inc_;
  const Nanos now = c_.world.now();
  const Nanos timeout = c_.params.session_timeout;
  if (inc.zk->expired()) {
    LOG_WARN(id_ << ": ZooKeeper session expired; rejoining");
    inc.node->Suspend("ZooKeeper session expired; rejoining");
    inc.serving = false;
    inc.suspended = true;
    inc.registered = false;
    inc.registering = false;
    inc.zk->NewSession();
    Register();
  } else if (!inc.registered && !inc.registering) {
    Register();
  }
  // The C client notices a silent server after two thirds of the timeout;
  // the member stops serving then (cluster_member.cc).
  const Nanos silent = now - inc.zk->last_contact();
  if (inc.serving && !inc.suspended && silent >= timeout * 2 / 3) {
    LOG_WARN(id_ << ": disconnected from ZooKeeper; not serving");
    inc.node->Suspend("disconnected from ZooKeeper");
    inc.serving = false;
    inc.suspended = true;
  }
  if (inc.suspended && inc.registered && silent < timeout / 3) TriggerReconcile();
  if (now >= inc.next_periodic) {
    inc.next_periodic = now + kReconcilePeriod;
    TriggerReconcile();
    SyncSuspect();
  }
  SyncLostOwners();
  std::weak_ptr<bool> alive = inc.alive;
  c_.world.After(kMemberTick, inc.process, [this, alive] {
    if (alive.lock()) MemberTick();
  });
}

void SimNode::PublishOpened() {
  Incarnation& inc = *inc_;
  if (inc.clearing_suspect) return;
  cluster::NodeInfo opened = inc.self;
  opened.opening = false;
  opened = inc.node->WithSuspicion(std::move(opened), inc.node->suspect());
  PublishSelf(std::move(opened));
}

void SimNode::SyncSuspect() {
  Incarnation& inc = *inc_;
  if (inc.self.opening || !inc.registered || inc.clearing_suspect) return;
  cluster::NodeInfo updated = inc.node->WithSuspicion(inc.self, inc.node->SuspectNow());
  if (updated != inc.self) PublishSelf(std::move(updated));
}

// Every member tick, as cluster_member.cc does every 50 ms: the owners
// whose stream this node lost, in its znode.
void SimNode::SyncLostOwners() {
  Incarnation& inc = *inc_;
  kvnode::Replicator* r = inc.node->replicator();
  if (inc.self.opening || !inc.registered || inc.clearing_suspect || r == nullptr) return;
  std::vector<NodeId> lost = r->LostOwners();
  if (lost == inc.self.unreachable) return;
  cluster::NodeInfo updated = inc.self;
  updated.unreachable = std::move(lost);
  PublishSelf(std::move(updated));
}

void SimNode::PublishSelf(cluster::NodeInfo updated) {
  Incarnation& inc = *inc_;
  const std::string path = c_.paths.node(NodeId(id_));
  const std::string data = cluster::EncodeNode(updated);
  inc.clearing_suspect = true;  // one update of our znode in flight at a time
  std::weak_ptr<bool> alive = inc.alive;
  inc.zk->Call([path, data](ZkSim& s, SessionId sid) { return s.Set(sid, path, data, -1); },
               [this, alive, updated](ZkReply r) {
                 if (!alive.lock()) return;
                 inc_->clearing_suspect = false;
                 if (r.status.ok()) inc_->self = updated;
               });
}

// The id a new range takes (cluster_member.cc TakeRangeId), and the
// counter's znode as read into *counter.
static Result<RangeId> NewRangeIdOnServer(ZkSim& s, SessionId sid, const cluster::Paths& paths,
                                          ZkReply* counter) {
  *counter = s.Get(sid, paths.next_range_id());
  ZkReply names = s.Children(sid, paths.ranges());
  if (!counter->status.ok() || !names.status.ok()) return Status(Code::kUnavailable, "read");
  std::vector<RangeId> existing;
  for (const std::string& name : names.children) {
    if (auto id = cluster::Paths::ParseRangeName(name)) existing.push_back(*id);
  }
  return kvnode::NextRangeId(
      counter->node ? std::optional<std::string>(counter->node->data) : std::nullopt, existing);
}

// Moves the id counter on to `next`, in the multi that creates a range.
// The range znodes a split or merge wrote (nullopt: deleted).
using Written = cluster::ClusterMap::Written;

static ZkOp CounterOp(const cluster::Paths& paths, const ZkReply& counter,
                      const std::string& next) {
  return counter.node ? ZkOp{ZkOp::Kind::kSet, paths.next_range_id(), next, counter.node->version}
                      : ZkOp{ZkOp::Kind::kCreate, paths.next_range_id(), next};
}

// A split's reads and multi (cluster_member.cc ApplySplit), on the server.
static ZkReply SplitOnServer(ZkSim& s, SessionId sid, const cluster::Paths& paths,
                             const NodeId& self, const kvnode::IsrChange& change, Written* wrote) {
  const std::string path = paths.range(change.range);
  ZkReply got = s.Get(sid, path);
  if (!got.status.ok()) return got;
  auto fail = [](Status st) {
    ZkReply r;
    r.status = std::move(st);
    return r;
  };
  if (!got.node) return fail(Status(Code::kRangeUnavailable, path + " is gone"));
  auto current = cluster::DecodeRange(got.node->data);
  if (!current.ok()) return fail(current.status());
  ZkReply counter;
  auto child_id = NewRangeIdOnServer(s, sid, paths, &counter);
  if (!child_id.ok()) return fail(child_id.status());
  auto split = kvnode::MakeSplitRecords(*current, change, self, *child_id);
  if (!split.ok()) return fail(split.status());
  const std::string next = std::to_string(child_id->value() + 1);
  std::vector<ZkOp> ops(3);
  ops[0] = {ZkOp::Kind::kSet, path, cluster::EncodeRange(split->parent), got.node->version};
  ops[1] = {ZkOp::Kind::kCreate, paths.range(*child_id), cluster::EncodeRange(split->child)};
  ops[2] = CounterOp(paths, counter, next);
  ZkReply done = s.Multi(sid, ops);
  if (done.status.ok()) {
    (*wrote)[change.range] = split->parent;
    (*wrote)[*child_id] = split->child;
  }
  return done;
}

// A merge's reads and multi (cluster_member.cc ApplyMerge), on the server.
static ZkReply MergeOnServer(ZkSim& s, SessionId sid, const cluster::Paths& paths,
                             const NodeId& self, const kvnode::IsrChange& change, Written* wrote) {
  auto fail = [](Status st) {
    ZkReply r;
    r.status = std::move(st);
    return r;
  };
  const std::string left_path = paths.range(change.range);
  const std::string right_path = paths.range(change.merge_right);
  ZkReply left = s.Get(sid, left_path);
  ZkReply right = s.Get(sid, right_path);
  if (!left.status.ok()) return left;
  if (!right.status.ok()) return right;
  if (!left.node || !right.node) return fail(Status(Code::kStaleEpoch, "a range to merge is gone"));
  auto l = cluster::DecodeRange(left.node->data);
  auto r = cluster::DecodeRange(right.node->data);
  if (!l.ok()) return fail(l.status());
  if (!r.ok()) return fail(r.status());
  ZkReply counter;
  auto merged_id = NewRangeIdOnServer(s, sid, paths, &counter);
  if (!merged_id.ok()) return fail(merged_id.status());
  auto m = kvnode::MakeMergeRecord(*l, *r, change, self, *merged_id);
  if (!m.ok()) return fail(m.status());
  const std::string next = std::to_string(merged_id->value() + 1);
  std::vector<ZkOp> ops(4);
  ops[0] = {ZkOp::Kind::kDelete, left_path, "", left.node->version};
  ops[1] = {ZkOp::Kind::kDelete, right_path, "", right.node->version};
  ops[2] = {ZkOp::Kind::kCreate, paths.range(*merged_id), cluster::EncodeRange(*m)};
  ops[3] = counter.node ? ZkOp{ZkOp::Kind::kSet, paths.next_range_id(), next, counter.node->version}
                        : ZkOp{ZkOp::Kind::kCreate, paths.next_range_id(), next};
  ZkReply done = s.Multi(sid, ops);
  if (done.status.ok()) {
    (*wrote)[change.range] = std::nullopt;
    (*wrote)[change.merge_right] = std::nullopt;
    (*wrote)[*merged_id] = *m;
  }
  return done;
}

void SimNode::NextIsrChange() {
  Incarnation& inc = *inc_;
  if (inc.isr_busy || inc.isr_queue.empty() || !inc.registered) return;
  inc.isr_busy = true;
  auto [change, done] = std::move(inc.isr_queue.front());
  inc.isr_queue.pop_front();
  const std::string path = c_.paths.range(change.range);
  std::weak_ptr<bool> alive = inc.alive;
  auto finish = [this, alive, done = done](Status st, bool changed) {
    if (done) done(st);
    if (!alive.lock()) return;
    inc_->isr_busy = false;
    if (changed) TriggerReconcile();
    NextIsrChange();
  };
  if (change.split || change.merge) {
    // The reads and the multi in one server step: the multi's version
    // checks make that equivalent to reading first (cluster_member.cc).
    const cluster::Paths paths = c_.paths;
    const NodeId self(id_);
    auto wrote = std::make_shared<Written>();
    inc.zk->Call(
        [paths, self, change = change, wrote](ZkSim& s, SessionId sid) {
          return change.split ? SplitOnServer(s, sid, paths, self, change, wrote.get())
                              : MergeOnServer(s, sid, paths, self, change, wrote.get());
        },
        [this, alive, finish, wrote, told = change.wrote](ZkReply r) {
          if (r.status.ok() && told) *told = *wrote;  // for the owner's news
          finish(r.status, r.status.ok());
          // The owner opens what it made at once, as news to its own node
          // (cluster_member.cc ApplyIsrChanges), before the read that follows.
          if (alive.lock() && r.status.ok()) ApplyNews(std::move(*wrote), 0);
        });
    return;
  }
  inc.zk->Call([path](ZkSim& s, SessionId sid) { return s.Get(sid, path); },
               [this, alive, path, change = change, finish](ZkReply got) {
                 if (!alive.lock()) return;
                 if (!got.status.ok()) return finish(got.status, false);
                 if (!got.node) return finish(Status(Code::kRangeUnavailable, path + " is gone"), false);
                 auto current = cluster::DecodeRange(got.node->data);
                 if (!current.ok()) return finish(current.status(), false);
                 auto next = kvnode::ApplyIsrChange(*current, change, NodeId(id_));
                 if (!next.ok()) return finish(next.status(), false);
                 if (!*next) return finish(Status::Ok(), false);
                 const std::string data = cluster::EncodeRange(**next);
                 const int32_t version = got.node->version;
                 inc_->zk->Call(
                     [path, data, version](ZkSim& s, SessionId sid) {
                       return s.Set(sid, path, data, version);
                     },
                     [finish](ZkReply set) { finish(set.status, set.status.ok()); });
               });
}

// ---- faults ----

void SimNode::Crash(bool power_loss) {
  if (!inc_) return;
  std::unique_ptr<Incarnation> inc = std::move(inc_);
  inc->process->alive = false;
  *inc->alive = false;
  c_.net.Unlisten(id_, inc->process);
  // What the disk holds at the moment of the crash; tearing the objects
  // down (stores close, flush, fsync) must not change it.
  const std::string root = "/" + id_;
  FileSystemSim::Image image = c_.fs.Capture(root);
  inc.reset();
  c_.fs.Restore(root, image);
  if (power_loss) c_.fs.PowerLoss(root);
}

void SimNode::Kill() {
  LOG_INFO(id_ << ": kill -9");
  Crash(false);
}

void SimNode::PowerLoss() {
  LOG_INFO(id_ << ": power loss");
  Crash(true);
  ++boots_;  // the machine comes back with a new boot id
}

void SimNode::Terminate() {
  if (!inc_) return;
  LOG_INFO(id_ << ": SIGTERM");
  // As kvnode's main: leave the cluster first, then close the stores.
  inc_->node->replicator()->SetIsrChanger(nullptr);
  inc_->zk->Close();
  (void)inc_->node->Close();
  std::unique_ptr<Incarnation> inc = std::move(inc_);
  *inc->alive = false;
  c_.net.Unlisten(id_, inc->process);
  inc->process->alive = false;
  inc.reset();
}

void SimNode::Exit(const std::string& why) {
  LOG_ERROR(id_ << ": " << why << "; exiting");
  c_.world.After(0, inc_->process, [this, alive = std::weak_ptr<bool>(inc_->alive)] {
    if (alive.lock()) Terminate();
  });
}

void SimNode::Pause(Nanos for_how_long) {
  if (!inc_) return;
  LOG_INFO(id_ << ": SIGSTOP for " << for_how_long / kMilli << " ms");
  Process& p = *inc_->process;
  p.paused_until = std::max(p.paused_until, c_.world.now() + for_how_long);
}

void SimNode::WipeDisk() {
  if (inc_) return;
  LOG_INFO(id_ << ": data directory wiped");
  c_.fs.Wipe(data_dir());
}

bool SimNode::CorruptRange() {
  if (inc_) return false;
  const std::string what = c_.fs.CorruptOneFile(data_dir() + "/ranges", [](const std::string& path) {
    const std::string name = path.substr(path.rfind('/') + 1);
    return name.rfind("wal-", 0) == 0 || name.rfind("snap-", 0) == 0;
  });
  if (!what.empty()) LOG_INFO(id_ << ": corrupted " << what);
  return !what.empty();
}

}  // namespace rangekv::sim
