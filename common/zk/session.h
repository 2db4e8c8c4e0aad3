// common/zk/session.h — one ZooKeeper session over the ZooKeeper C client
// (libzookeeper_mt), with results as rangekv Status / Result.
//
// What it offers: create (persistent / ephemeral / sequential), delete, get
// (data + Stat), set with compare-and-set on the znode version, exists,
// children, multi (atomic batch) and sync, each as
//   * a blocking call (Get, Set, ...), for tools, tests and start-up code;
//   * an async call (AsyncGet, AsyncSet, ...) whose completion is posted onto
//     the executor given at Open.
// Watches are not offered here: the C client has no persistent recursive
// watch. Use zk::WatchChannel (its own connection and session) and re-read
// through this Session.
//
// Threads. The C client runs two threads of its own (I/O and completion).
// Its callbacks never touch Session state or user code directly: they post
// onto the executor, and user callbacks run there. Blocking calls wait on a
// future that the completion thread fulfils, so:
//   * NEVER call a blocking method on an Asio thread (any thread running an
//     io_context): it stalls every handler of that context for up to a ZooKeeper
//     round trip, or until blocking_timeout when the server is unreachable.
//     On an executor, use the Async* methods. A blocking call made on a
//     thread that is running the Session's own executor (the one case that
//     can be detected) is refused with kInternal.
// All methods are thread-safe. The destructor must not run on the C client's
// threads (it never does if you only use the callbacks below).
//
// Session lifecycle (reported through the state callback, on the executor):
//
//   Open ──> kConnecting ──> kConnected <──> kConnecting (connection lost; the
//                                │             C client reconnects by itself,
//                                │             session and ephemerals intact)
//                                └──> kExpired / kAuthFailed (terminal)
//
// An expired session never comes back, and neither do its ephemeral znodes.
// The owner's pattern on kExpired:
//   1. drop the old Session (destroy it; off the executor, or accept a short
//      block: closing an expired handle does no network I/O),
//   2. Session::Open a new one and WaitConnected / wait for kConnected,
//   3. re-create its ephemeral znodes, then sync + re-read all state it acts on
//      (changes made meanwhile are not replayed to anyone).
//
// Callback lifetime: after the destructor returns, no callback of this
// Session (state or completion) runs, including completions already queued on
// the executor; they are dropped. Requests still in flight at destruction
// complete inside the C client with ZCLOSING, which is not delivered.
//
// Outcomes of writes that fail with kUnavailable (ZCONNECTIONLOSS) or
// kTimeout are unknown: the write may have been applied. Re-read before
// retrying a CAS. See common/zk/errors.h for the error mapping.
//
// Authentication and ACLs (common/zk/auth.h): with SessionOptions::auth the
// credentials go to the server after the handshake, and again after every
// reconnect (the C client keeps them); WaitConnected waits for the server's
// answer, and a refusal ends the session in kAuthFailed. Every znode is
// created with SessionOptions::acl; without one, world-readable and writable
// (ZOO_OPEN_ACL_UNSAFE). A request the ACLs forbid fails with
// kUnauthenticated (ZNOAUTH; see errors.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/types.h"
#include "common/zk/auth.h"
#include "common/zk/errors.h"
#include "rangekv/status.h"

namespace rangekv::zk {

struct ZnodeVersionTag {};
// A znode's data version (Stat.version). kAnyVersion skips the CAS check.
using ZnodeVersion = StrongValue<ZnodeVersionTag, int32_t>;
inline constexpr ZnodeVersion kAnyVersion{-1};

enum class CreateMode { kPersistent, kEphemeral, kPersistentSequential, kEphemeralSequential };

enum class SessionState {
  kConnecting,  // disconnected: not yet or no longer connected; the client keeps trying
  kConnected,
  kExpired,     // terminal: open a new Session
  kAuthFailed,  // terminal
  kClosed,      // the Session is being destroyed
};
const char* SessionStateName(SessionState state);

struct ZnodeStat {
  ZnodeVersion version{0};
  int32_t cversion = 0;         // children version
  int64_t czxid = 0;            // zxid of the create
  int64_t mzxid = 0;            // zxid of the last data change
  int64_t pzxid = 0;            // zxid of the last child change
  int64_t ephemeral_owner = 0;  // session id of the owner; 0 if persistent
  int32_t data_length = 0;
  int32_t num_children = 0;
  int64_t ctime_ms = 0;
  int64_t mtime_ms = 0;
};

struct ZnodeData {
  std::string data;
  ZnodeStat stat;
};

// One operation of a multi. Build with the factories.
struct ZkOp {
  enum class Kind { kCreate, kDelete, kSetData, kCheck };
  Kind kind = Kind::kCheck;
  std::string path;
  std::string data;
  CreateMode mode = CreateMode::kPersistent;
  ZnodeVersion version = kAnyVersion;

  static ZkOp Create(std::string path, std::string data, CreateMode mode = CreateMode::kPersistent);
  static ZkOp Delete(std::string path, ZnodeVersion version = kAnyVersion);
  static ZkOp SetData(std::string path, std::string data, ZnodeVersion version = kAnyVersion);
  // Fails the whole multi unless the znode exists at exactly `version`.
  static ZkOp Check(std::string path, ZnodeVersion version);
};

struct ZkOpResult {
  std::string created_path;       // kCreate: the real path (sequential suffix included)
  std::optional<ZnodeStat> stat;  // kSetData: the Stat after the write
};

struct SessionOptions {
  // "host:port[,host:port...][/chroot]", passed to the C client as is.
  std::string connect_string;
  // Requested session timeout; the server clamps it to its [min, max]
  // (by default 2..20 ticks).
  std::chrono::milliseconds session_timeout{10000};
  // Upper bound on any blocking call; kTimeout afterwards (the request may
  // still complete later, its outcome is then unknown).
  std::chrono::milliseconds blocking_timeout{30000};
  // Sent on every connection; none: anonymous (world:anyone).
  std::optional<ZkAuth> auth;
  // The ACL of every znode this session creates; empty: open to everyone.
  AclPolicy acl;
  // Called (on the C client's thread; must not block) for every request
  // ZooKeeper refused (ZNOAUTH, ZAUTHFAILED): for a count of refusals that
  // outlives any one session.
  std::function<void(const Status&)> on_refused;
};

class Session {
 public:
  using StateCallback = std::function<void(SessionState)>;
  using StatusCallback = std::function<void(Status)>;
  template <typename T>
  using ResultCallback = std::function<void(Result<T>)>;

  // Starts connecting and returns at once (connection is asynchronous; calls
  // made before it completes are queued by the C client). `on_state` (may be
  // empty) is posted onto `executor` on every state change. kBadRequest for a
  // connect string the C client rejects (e.g. an unresolvable host),
  // kUnavailable if the handle cannot be created.
  static Result<std::unique_ptr<Session>> Open(const SessionOptions& options,
                                               asio::any_io_executor executor,
                                               StateCallback on_state = {});
  // Closes the session (the server then deletes its ephemerals at once).
  // Blocks for the close round trip when connected (bounded by the session
  // timeout; a few ms normally).
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  SessionState state() const;
  // Session id once connected, else 0.
  int64_t session_id() const;
  // The timeout the server granted (after clamping); the requested one
  // before the first connect. The server deletes this session's ephemerals
  // this long after it last heard from the client.
  std::chrono::milliseconds negotiated_timeout() const;
  // Blocking: waits until connected and, with credentials, until the server
  // accepted them. kTimeout after `timeout`, kUnavailable once expired,
  // kUnauthenticated when the credentials were refused.
  Status WaitConnected(std::chrono::milliseconds timeout);

  // ---- blocking calls (never on an Asio thread; see above) ----

  // Returns the path created (differs from `path` for sequential modes).
  // kCasFailed (ZNODEEXISTS) if it exists; kBadRequest (ZNONODE) if the
  // parent is missing.
  Result<std::string> Create(const std::string& path, const std::string& data,
                             CreateMode mode = CreateMode::kPersistent);
  // kCasFailed (ZBADVERSION) on a version mismatch, kBadRequest (ZNONODE)
  // if missing, kBadRequest (ZNOTEMPTY) if it has children.
  Status Delete(const std::string& path, ZnodeVersion version = kAnyVersion);
  // nullopt if the znode does not exist.
  Result<std::optional<ZnodeData>> Get(const std::string& path);
  // CAS: kCasFailed (ZBADVERSION) unless the current version is `version`.
  // Returns the new Stat (its version is the one to pass next time).
  Result<ZnodeStat> Set(const std::string& path, const std::string& data,
                        ZnodeVersion version = kAnyVersion);
  // nullopt if the znode does not exist.
  Result<std::optional<ZnodeStat>> Exists(const std::string& path);
  // Names (not paths) of the children, in no particular order.
  Result<std::vector<std::string>> Children(const std::string& path);
  // All ops or none. On failure the Status is the first failing op's error,
  // its message prefixed with "multi op #<i> (<path>): ".
  Result<std::vector<ZkOpResult>> Multi(const std::vector<ZkOp>& ops);
  // Makes the server this session talks to catch up with the leader for
  // `path`: a read after Sync sees every write committed before it started.
  Status Sync(const std::string& path);

  // ---- async calls: `done` is posted onto the executor, exactly once,
  // unless the Session is destroyed first (see Callback lifetime). ----

  void AsyncCreate(const std::string& path, const std::string& data, CreateMode mode,
                   ResultCallback<std::string> done);
  void AsyncDelete(const std::string& path, ZnodeVersion version, StatusCallback done);
  void AsyncGet(const std::string& path, ResultCallback<std::optional<ZnodeData>> done);
  void AsyncSet(const std::string& path, const std::string& data, ZnodeVersion version,
                ResultCallback<ZnodeStat> done);
  void AsyncExists(const std::string& path, ResultCallback<std::optional<ZnodeStat>> done);
  void AsyncChildren(const std::string& path, ResultCallback<std::vector<std::string>> done);
  void AsyncMulti(const std::vector<ZkOp>& ops, ResultCallback<std::vector<ZkOpResult>> done);
  void AsyncSync(const std::string& path, StatusCallback done);

  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rangekv::zk
