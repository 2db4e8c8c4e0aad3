#include "tests/sim/sim_zk.h"

#include <cstdio>

namespace rangekv::sim {
namespace {

constexpr Nanos kTick = 100 * kMilli;

Status NoNode(const std::string& path) { return Status(Code::kBadRequest, "ZNONODE " + path); }
Status Exists(const std::string& path) { return Status(Code::kCasFailed, "ZNODEEXISTS " + path); }
Status BadVersion(const std::string& path) {
  return Status(Code::kCasFailed, "ZBADVERSION " + path);
}
Status ConnectionLoss() { return Status(Code::kUnavailable, "ZCONNECTIONLOSS"); }

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

ZkSim::ZkSim(World& world) : world_(world) {
  znodes_["/"] = Znode{};
  world_.After(kTick, nullptr, [this] { Tick(); });
}

SessionId ZkSim::OpenSession(Nanos timeout) {
  SessionId s = next_session_++;
  sessions_[s] = Session{timeout, world_.now()};
  return s;
}

void ZkSim::Heard(SessionId s) {
  auto it = sessions_.find(s);
  if (it != sessions_.end()) it->second.last_heard = world_.now();
}

void ZkSim::CloseSession(SessionId s) {
  if (sessions_.erase(s)) DropEphemerals(s);
}

void ZkSim::ExpireSession(SessionId s) { CloseSession(s); }

void ZkSim::DropEphemerals(SessionId s) {
  bool changed = false;
  for (auto it = znodes_.begin(); it != znodes_.end();) {
    if (it->second.owner == s) {
      it = znodes_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (changed) Changed();
}

void ZkSim::Tick() {
  std::vector<SessionId> expired;
  for (const auto& [s, session] : sessions_) {
    if (world_.now() - session.last_heard > session.timeout) expired.push_back(s);
  }
  for (SessionId s : expired) ExpireSession(s);
  world_.After(kTick, nullptr, [this] { Tick(); });
}

void ZkSim::Changed() {
  for (auto& w : watchers_) w();
}

Status ZkSim::Check(SessionId s) const {
  if (!sessions_.count(s)) return Status(Code::kUnavailable, "ZSESSIONEXPIRED");
  return Status::Ok();
}

void ZkSim::Put(const std::string& path, const std::string& data) {
  Znode& z = znodes_[path];
  z.data = data;
  ++z.version;
  Changed();
}

ZkReply ZkSim::Get(SessionId s, const std::string& path) {
  ZkReply r;
  r.status = Check(s);
  if (!r.status.ok()) return r;
  auto it = znodes_.find(path);
  if (it != znodes_.end()) r.node = it->second;
  return r;
}

ZkReply ZkSim::Children(SessionId s, const std::string& path) {
  ZkReply r;
  r.status = Check(s);
  if (!r.status.ok()) return r;
  if (!znodes_.count(path)) {
    r.status = NoNode(path);
    return r;
  }
  const std::string prefix = path == "/" ? "/" : path + "/";
  for (auto it = znodes_.lower_bound(prefix); it != znodes_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    std::string rest = it->first.substr(prefix.size());
    if (!rest.empty() && rest.find('/') == std::string::npos) r.children.push_back(rest);
  }
  return r;
}

ZkReply ZkSim::Apply(SessionId s, const ZkOp& op) {
  ZkReply r;
  auto it = znodes_.find(op.path);
  switch (op.kind) {
    case ZkOp::Kind::kCreate: {
      std::string path = op.path;
      if (op.sequential) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%010llu", static_cast<unsigned long long>(next_sequence_++));
        path += buf;
      }
      if (znodes_.count(path)) {
        r.status = Exists(path);
      } else if (!znodes_.count(Parent(path))) {
        r.status = NoNode(Parent(path));
      } else {
        znodes_[path] = Znode{op.data, 0, op.ephemeral ? s : 0};
        r.created = path;
      }
      break;
    }
    case ZkOp::Kind::kSet:
      if (it == znodes_.end()) {
        r.status = NoNode(op.path);
      } else if (op.version >= 0 && it->second.version != op.version) {
        r.status = BadVersion(op.path);
      } else {
        it->second.data = op.data;
        r.version = ++it->second.version;
      }
      break;
    case ZkOp::Kind::kDelete:
      if (it == znodes_.end()) {
        r.status = NoNode(op.path);
      } else if (op.version >= 0 && it->second.version != op.version) {
        r.status = BadVersion(op.path);
      } else {
        znodes_.erase(it);
      }
      break;
    case ZkOp::Kind::kCheck:
      if (it == znodes_.end()) {
        r.status = NoNode(op.path);
      } else if (op.version >= 0 && it->second.version != op.version) {
        r.status = BadVersion(op.path);
      }
      break;
  }
  return r;
}

ZkReply ZkSim::Create(SessionId s, const std::string& path, const std::string& data, bool ephemeral,
                      bool sequential) {
  ZkOp op{ZkOp::Kind::kCreate, path, data, -1, ephemeral, sequential};
  return Multi(s, {op});
}

ZkReply ZkSim::Set(SessionId s, const std::string& path, const std::string& data,
                   int32_t version) {
  return Multi(s, {ZkOp{ZkOp::Kind::kSet, path, data, version, false, false}});
}

ZkReply ZkSim::Delete(SessionId s, const std::string& path, int32_t version) {
  return Multi(s, {ZkOp{ZkOp::Kind::kDelete, path, "", version, false, false}});
}

ZkReply ZkSim::Multi(SessionId s, const std::vector<ZkOp>& ops) {
  ZkReply r;
  r.status = Check(s);
  if (!r.status.ok()) return r;
  // All or nothing: apply to a copy, keep it only if every op succeeded.
  std::map<std::string, Znode> before = znodes_;
  const uint64_t sequence_before = next_sequence_;
  ZkReply last;
  for (size_t i = 0; i < ops.size(); ++i) {
    last = Apply(s, ops[i]);
    if (!last.status.ok()) {
      znodes_ = std::move(before);
      next_sequence_ = sequence_before;
      last.status = Status(last.status.code(),
                           "multi op #" + std::to_string(i) + " (" + ops[i].path + "): " +
                               last.status.message());
      return last;
    }
  }
  Changed();
  return last;
}

// ---- client ----

ZkClient::ZkClient(World& world, ZkSim& server, ProcessRef process, Nanos session_timeout,
                   ZkReachable reachable, std::function<void()> on_change)
    : world_(world),
      server_(server),
      process_(std::move(process)),
      timeout_(session_timeout),
      reachable_(std::move(reachable)),
      on_change_(std::move(on_change)),
      alive_(std::make_shared<bool>(true)) {
  std::weak_ptr<bool> alive = alive_;
  server_.AddWatcher([this, alive] {
    if (!alive.lock() || !process_->alive || session_ == 0 || !reachable_()) return;
    world_.After(world_.Latency(100 * kMicro, 2 * kMilli), process_, [this, alive] {
      if (alive.lock() && reachable_()) on_change_();
    });
  });
  NewSession();
  world_.After(timeout_ / 3, process_, [this, alive] {
    if (alive.lock()) Ping();
  });
}

ZkClient::~ZkClient() { *alive_ = false; }

void ZkClient::NewSession() {
  // Connecting takes a round trip; the session exists from the server's
  // point of view at once (a reply lost on the way makes no difference to
  // the model: the client then never uses it and it expires).
  session_ = server_.OpenSession(timeout_);
  expired_ = false;
  last_contact_ = world_.now();
}

void ZkClient::Close() {
  if (session_ != 0 && reachable_()) server_.CloseSession(session_);
  session_ = 0;
}

void ZkClient::Call(std::function<ZkReply(ZkSim&, SessionId)> op,
                    std::function<void(ZkReply)> done) {
  std::weak_ptr<bool> alive = alive_;
  const Nanos there = world_.Latency(100 * kMicro, 1 * kMilli);
  if (!reachable_()) {
    // The C client fails calls after its connection is found dead.
    world_.After(there, process_, [alive, done = std::move(done)] {
      if (alive.lock()) done(ZkReply{ConnectionLoss(), {}, {}, {}, 0});
    });
    return;
  }
  const SessionId s = session_;
  ZkSim& server = server_;
  World& world = world_;
  ProcessRef process = process_;
  // Sent: the server applies it even if this process dies meanwhile (so
  // nothing here may touch the client before `alive` says it still exists).
  world_.After(there, nullptr, [this, &server, &world, process, alive, s, op = std::move(op),
                                done = std::move(done)]() mutable {
    ZkReply reply = op(server, s);
    server.Heard(s);
    world.After(world.Latency(100 * kMicro, 1 * kMilli), process,
                 [this, alive, reply = std::move(reply), done = std::move(done)]() mutable {
                   if (!alive.lock()) return;
                   if (!reachable_()) return done(ZkReply{ConnectionLoss(), {}, {}, {}, 0});
                   last_contact_ = world_.now();
                   if (reply.status.message() == "ZSESSIONEXPIRED") expired_ = true;
                   done(std::move(reply));
                 });
  });
}

void ZkClient::Ping() {
  std::weak_ptr<bool> alive = alive_;
  if (session_ != 0 && !expired_) {
    Call([](ZkSim& server, SessionId s) {
           ZkReply r;
           if (!server.SessionAlive(s)) r.status = Status(Code::kUnavailable, "ZSESSIONEXPIRED");
           return r;
         },
         [](ZkReply) {});
  }
  world_.After(timeout_ / 3, process_, [this, alive] {
    if (alive.lock()) Ping();
  });
}

}  // namespace rangekv::sim
