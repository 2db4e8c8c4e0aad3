// tests/sim/sim_zk.h — a simulated ZooKeeper: one server holding znodes,
// sessions and their ephemerals, and the client side each simulated process
// uses to reach it over the simulated network.
//
// Server (ZkSim). Znodes with data and a version (compare-and-set), children
// listed by path, ephemeral znodes owned by a session, sequential names, and
// multi (all or nothing). A session expires when the server has not heard
// from its client for longer than its timeout (checked every tick, 100 ms,
// like a real server's expiry buckets); expiry and closeSession delete its
// ephemerals. Every change bumps the zxid and calls the watchers, which
// deliver their notification with a latency of their own (a persistent
// recursive watch: a trigger; readers re-read).
//
// Client (ZkClient). Calls travel to the server and back with random
// latencies. A call made while the process is cut from ZooKeeper fails
// with connection loss; one whose reply is cut off after the server applied
// it fails the same way, its outcome unknown, as with the real C client.
// The client pings every third of the timeout; like the C client it counts
// itself disconnected once nothing came back for two thirds of it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rangekv/status.h"
#include "tests/sim/world.h"

namespace rangekv::sim {

using SessionId = int64_t;

struct Znode {
  std::string data;
  int32_t version = 0;
  SessionId owner = 0;  // ephemeral: the session; 0: persistent
};

// One op of a multi.
struct ZkOp {
  enum class Kind { kCreate, kSet, kDelete, kCheck } kind = Kind::kCheck;
  std::string path;
  std::string data;
  int32_t version = -1;  // kSet/kDelete/kCheck: -1 = any
  bool ephemeral = false;
  bool sequential = false;
};

// The answer of a call: status plus what the call reads.
struct ZkReply {
  Status status;
  std::optional<Znode> node;          // get
  std::vector<std::string> children;  // children (names)
  std::string created;                // create: the real path
  int32_t version = 0;                // set: the new version
};

class ZkSim {
 public:
  explicit ZkSim(World& world);

  SessionId OpenSession(Nanos timeout);
  bool SessionAlive(SessionId s) const { return sessions_.count(s) != 0; }
  void Heard(SessionId s);
  void CloseSession(SessionId s);
  // Expires a session now (the server lost it).
  void ExpireSession(SessionId s);

  // Server-side operations (the session must be alive, else SESSIONEXPIRED
  // as UNAVAILABLE). Codes as common/zk/errors.h maps them: ZNODEEXISTS and
  // ZBADVERSION -> CAS_FAILED, ZNONODE -> BAD_REQUEST.
  ZkReply Get(SessionId s, const std::string& path);
  ZkReply Children(SessionId s, const std::string& path);
  ZkReply Create(SessionId s, const std::string& path, const std::string& data, bool ephemeral,
                 bool sequential = false);
  ZkReply Set(SessionId s, const std::string& path, const std::string& data, int32_t version);
  ZkReply Delete(SessionId s, const std::string& path, int32_t version);
  ZkReply Multi(SessionId s, const std::vector<ZkOp>& ops);

  // Direct access for checkers and set-up (no session, no latency).
  const std::map<std::string, Znode>& znodes() const { return znodes_; }
  void Put(const std::string& path, const std::string& data);

  // Called after every change (from the server's event).
  void AddWatcher(std::function<void()> fn) { watchers_.push_back(std::move(fn)); }

 private:
  struct Session {
    Nanos timeout;
    Nanos last_heard;
  };
  ZkReply Apply(SessionId s, const ZkOp& op);
  Status Check(SessionId s) const;
  void Changed();
  void Tick();
  void DropEphemerals(SessionId s);

  World& world_;
  std::map<std::string, Znode> znodes_;
  std::map<SessionId, Session> sessions_;
  std::vector<std::function<void()>> watchers_;
  SessionId next_session_ = 0x1000;
  uint64_t next_sequence_ = 0;
};

// What a process sees of ZooKeeper: whether it can reach it right now.
using ZkReachable = std::function<bool()>;

class ZkClient {
 public:
  // on_change: a watch notification arrived (a trigger to re-read).
  ZkClient(World& world, ZkSim& server, ProcessRef process, Nanos session_timeout,
           ZkReachable reachable, std::function<void()> on_change);
  ~ZkClient();

  SessionId session() const { return session_; }
  // Opens a new session (the old one, if any, is left to expire).
  void NewSession();
  // Closes the session at once (graceful stop: ephemerals go now).
  void Close();
  // Runs op at the server (with the session) and calls done with its reply
  // on this process; connection loss when cut from ZooKeeper on the way.
  void Call(std::function<ZkReply(ZkSim&, SessionId)> op, std::function<void(ZkReply)> done);
  // The last time a reply came back (a ping or any call).
  Nanos last_contact() const { return last_contact_; }
  // The session is known expired (a reply said so).
  bool expired() const { return expired_; }
  Nanos timeout() const { return timeout_; }

 private:
  void Ping();

  World& world_;
  ZkSim& server_;
  ProcessRef process_;
  const Nanos timeout_;
  ZkReachable reachable_;
  std::function<void()> on_change_;
  SessionId session_ = 0;
  Nanos last_contact_ = 0;
  bool expired_ = false;
  std::shared_ptr<bool> alive_;
};

}  // namespace rangekv::sim
