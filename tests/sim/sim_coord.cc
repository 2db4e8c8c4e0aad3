#include "tests/sim/sim_coord.h"

#include <algorithm>

#include "common/log.h"
#include "coordinator/failure_detector.h"
#include "coordinator/planner.h"

namespace rangekv::sim {

using coordinator::FailureDetector;

namespace {

constexpr Nanos kPeriod = 1 * kSecond;
constexpr Nanos kDetectorTick = 10 * kMilli;  // kvcoord's detector timer
constexpr std::string_view kCandidate = "leader-";

}  // namespace

struct SimCoordinator::Incarnation {
  ProcessRef process;
  std::unique_ptr<ZkClient> zk;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  std::string candidate;  // our candidate znode's full path
  bool running = false;
  bool again = false;
  Nanos leader_since = 0;
  Nanos recheck_at = 0;
  std::map<RangeId, Epoch> known_epochs;
  std::map<RangeId, cluster::RangeInfo> last_valid;
  std::set<NodeId> seen_live;
  std::map<NodeId, Nanos> missing_since;
  std::unique_ptr<coordinator::FailureDetector> detector;
  uint64_t pings = 0;
};

bool SimCoordinator::leading() const { return inc_ != nullptr && inc_->leader_since != 0; }

SimCoordinator::SimCoordinator(Cluster& cluster, std::string id)
    : c_(cluster), id_(std::move(id)) {}

SimCoordinator::~SimCoordinator() { Kill(); }

void SimCoordinator::Start() {
  if (inc_) return;
  ++started_;
  inc_ = std::make_unique<Incarnation>();
  inc_->detector = std::make_unique<coordinator::FailureDetector>(c_.params.detector);
  inc_->process = std::make_shared<Process>(Process{id_ + "#" + std::to_string(started_)});
  std::weak_ptr<bool> alive = inc_->alive;
  ProcessRef proc = inc_->process;
  inc_->zk = std::make_unique<ZkClient>(
      c_.world, c_.zk, proc, c_.params.session_timeout,
      [this, proc] { return proc->alive && c_.net.ZkReachable(id_); },
      [this, alive] {
        if (alive.lock()) Trigger();
      });
  Trigger();
  c_.world.After(kPeriod, proc, [this, alive] {
    if (alive.lock()) Tick();
  });
  if (inc_->detector->enabled()) {
    c_.world.After(kDetectorTick, proc, [this, alive] {
      if (alive.lock()) DetectorTick();
    });
  }
}

// What kvcoord's detector timer does (coordinator.cc): the pings due, then
// the verdicts; a changed verdict is a reconcile. The leader's only.
void SimCoordinator::DetectorTick() {
  Incarnation& inc = *inc_;
  const Nanos now = c_.world.now();
  coordinator::FailureDetector& d = *inc.detector;
  if (leading()) {
    for (const coordinator::FailureDetector::Probe& p : d.DueProbes(FailureDetector::Time(now))) {
      proto::Request ping;
      ping.id = ++inc.pings;
      ping.kind = proto::OpKind::kPing;
      std::weak_ptr<bool> alive = inc.alive;
      const Nanos timeout = c_.params.detector.failure_timeout.count() * kMilli;
      c_.net.Call(inc.process, id_, p.address, std::move(ping), timeout,
                  [this, alive, p, now](Result<proto::Response> r) {
                    if (!alive.lock() || !r.ok()) return;
                    inc_->detector->OnAnswer(p.node, p.life, FailureDetector::Time(now));
                  });
    }
    bool changed = false;
    for (const auto& v : d.Decide(FailureDetector::Time(now))) {
      LOG_WARN(id_ << ": node " << v.node.str() << (v.failed ? " failed: " : " is live again: ")
                   << v.why);
      changed = true;
    }
    if (changed) Trigger();
  }
  std::weak_ptr<bool> alive = inc.alive;
  c_.world.After(kDetectorTick, inc.process, [this, alive] {
    if (alive.lock()) DetectorTick();
  });
}

void SimCoordinator::Kill() {
  if (!inc_) return;
  LOG_INFO(id_ << ": kill -9");
  inc_->process->alive = false;
  *inc_->alive = false;
  inc_.reset();
}

void SimCoordinator::Tick() {
  if (inc_->zk->expired()) {
    LOG_WARN(id_ << ": ZooKeeper session expired; new session");
    inc_->zk->NewSession();
    inc_->candidate.clear();
  }
  Trigger();
  std::weak_ptr<bool> alive = inc_->alive;
  Nanos next = kPeriod;
  if (inc_->recheck_at > c_.world.now()) next = std::min(next, inc_->recheck_at - c_.world.now());
  c_.world.After(next, inc_->process, [this, alive] {
    if (alive.lock()) Tick();
  });
}

void SimCoordinator::Trigger() {
  if (inc_->running) {
    inc_->again = true;
    return;
  }
  Reconcile();
}

// One round trip for the election (create our candidate if it is gone,
// then lead iff ours is the lowest), one for the read: the state as the
// server holds it when the read arrives.
void SimCoordinator::Reconcile() {
  Incarnation& inc = *inc_;
  inc.running = true;
  const std::string dir = c_.paths.coordinator();
  auto candidate = std::make_shared<std::string>(inc.candidate);
  auto leading = std::make_shared<bool>(false);
  std::weak_ptr<bool> alive = inc.alive;
  inc.zk->Call(
      [dir, candidate, leading](ZkSim& s, SessionId sid) {
        if (candidate->empty() || !s.znodes().count(*candidate)) {
          ZkReply made = s.Create(sid, dir + "/" + std::string(kCandidate), "", true, true);
          if (!made.status.ok()) return made;
          *candidate = made.created;
        }
        ZkReply kids = s.Children(sid, dir);
        if (!kids.status.ok()) return kids;
        std::string lowest;
        for (const std::string& k : kids.children) {
          if (k.rfind(kCandidate, 0) == 0 && (lowest.empty() || k < lowest)) lowest = k;
        }
        *leading = dir + "/" + lowest == *candidate;
        return kids;
      },
      [this, alive, candidate, leading](ZkReply r) {
        if (!alive.lock()) return;
        Incarnation& inc = *inc_;
        if (!r.status.ok()) {
          inc.running = false;
          return;
        }
        inc.candidate = *candidate;
        if (*leading && inc.leader_since == 0) {
          LOG_INFO(id_ << ": became leader");
          inc.leader_since = c_.world.now();
        } else if (!*leading) {
          inc.leader_since = 0;
        }
        auto snap = std::make_shared<std::map<std::string, Znode>>();
        std::weak_ptr<bool> alive2 = inc.alive;
        const std::string root = c_.paths.root();
        inc.zk->Call(
            [snap, root](ZkSim& s, SessionId sid) {
              ZkReply got = s.Get(sid, root);
              if (got.status.ok()) *snap = s.znodes();
              return got;
            },
            [this, alive2, snap, leading = *leading](ZkReply got) {
              if (!alive2.lock()) return;
              if (!got.status.ok()) {
                inc_->running = false;
                return;
              }
              Decide(leading, *snap);
            });
      });
}

void SimCoordinator::Decide(bool leading, const std::map<std::string, Znode>& znodes) {
  Incarnation& inc = *inc_;
  using coordinator::ClusterSnapshot;
  ClusterSnapshot snap;
  cluster::ClusterMap map = MapFromZnodes(c_.paths, znodes);
  if (map.config) snap.config = *map.config;
  snap.live_nodes = map.live_nodes;
  inc.detector->Observe(snap.live_nodes);
  inc.detector->Exclude(&snap.live_nodes);
  for (const auto& [path, z] : znodes) {
    if (path.rfind(c_.paths.ranges() + "/", 0) != 0) continue;
    auto id = cluster::Paths::ParseRangeName(path.substr(c_.paths.ranges().size() + 1));
    if (!id) continue;
    coordinator::RangeZnode rz;
    rz.version = zk::ZnodeVersion(z.version);
    auto info = cluster::DecodeRange(z.data);
    if (info.ok() && info->id == *id) {
      rz.info = *info;
      Epoch& known = inc.known_epochs[*id];
      known = std::max(known, info->epoch);
      inc.last_valid[*id] = *info;
    } else {
      rz.error = info.ok() ? "names another range" : info.status().message();
    }
    snap.ranges.emplace(*id, std::move(rz));
  }
  // Liveness as coordinator.cc tracks it.
  const Nanos now = c_.world.now();
  for (const auto& [id, n] : snap.live_nodes) {
    inc.seen_live.insert(id);
    inc.missing_since.erase(id);
  }
  std::set<NodeId> named;
  for (const auto& [rid, z] : snap.ranges) {
    if (!z.info) continue;
    if (z.info->owner) named.insert(*z.info->owner);
    named.insert(z.info->replicas.begin(), z.info->replicas.end());
    named.insert(z.info->isr.begin(), z.info->isr.end());
  }
  for (const NodeId& id : inc.seen_live) {
    if (!snap.live_nodes.count(id) && named.count(id)) inc.missing_since.emplace(id, now);
  }
  for (const NodeId& id : named) {
    if (snap.live_nodes.count(id)) continue;
    auto since = inc.missing_since.find(id);
    Nanos from = since != inc.missing_since.end() ? since->second
                 : leading                        ? inc.leader_since
                                                  : now;
    snap.dead_for[id] = std::chrono::milliseconds((now - from) / kMilli);
  }
  if (!leading) {
    inc.running = false;
    if (inc.again) {
      inc.again = false;
      Reconcile();
    }
    return;
  }
  snap.known_epochs = inc.known_epochs;
  snap.last_valid = inc.last_valid;
  snap.replace_after = std::chrono::milliseconds(3000);
  snap.balance = c_.params.balance;
  coordinator::Plan plan = coordinator::PlanReconcile(snap);
  if (plan.recheck_after) {
    inc.recheck_at = now + plan.recheck_after->count() * kMilli;
  }
  const ZkOp check{ZkOp::Kind::kCheck, inc.candidate, "", -1, false, false};
  std::vector<std::vector<ZkOp>> writes;
  if (!plan.bootstrap.empty()) {
    std::vector<ZkOp> ops{check};
    for (const cluster::RangeInfo& r : plan.bootstrap) {
      ops.push_back(ZkOp{ZkOp::Kind::kCreate, c_.paths.range(r.id), cluster::EncodeRange(r), -1,
                         false, false});
    }
    writes.push_back(std::move(ops));
  } else {
    for (const coordinator::RangeWrite& w : plan.writes) {
      LOG_INFO(id_ << ": range " << w.record.id.value() << " "
                   << coordinator::WriteKindName(w.kind) << ": " << w.reason);
      writes.push_back({check, ZkOp{ZkOp::Kind::kSet, c_.paths.range(w.record.id),
                                    cluster::EncodeRange(w.record), w.expected_version.value(),
                                    false, false}});
    }
  }
  Execute(std::move(writes), 0);
}

void SimCoordinator::Execute(std::vector<std::vector<ZkOp>> writes, size_t next) {
  Incarnation& inc = *inc_;
  if (next >= writes.size()) {
    inc.running = false;
    if (inc.again) {
      inc.again = false;
      Reconcile();
    }
    return;
  }
  std::vector<ZkOp> ops = writes[next];
  std::weak_ptr<bool> alive = inc.alive;
  inc.zk->Call([ops](ZkSim& s, SessionId sid) { return s.Multi(sid, ops); },
               [this, alive, writes = std::move(writes), next](ZkReply r) mutable {
                 if (!alive.lock()) return;
                 // A CAS conflict: the next reconcile plans again from fresher
                 // data; anything else ends this run.
                 if (!r.status.ok() && r.status.code() != Code::kCasFailed) {
                   inc_->running = false;
                   inc_->again = true;
                   return;
                 }
                 Execute(std::move(writes), next + 1);
               });
}

}  // namespace rangekv::sim
