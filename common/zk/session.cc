#include "common/zk/session.h"

#include <zookeeper/zookeeper.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <future>
#include <mutex>  // std::call_once

#include "common/log.h"
#include "common/mutex.h"
#include "common/zk/c_acl.h"
#include "common/zk/c_ops.h"
#include "common/zk/callback_gate.h"

namespace rangekv::zk {

using internal::FillCOps;
using internal::MultiCtx;
using internal::OnData;
using internal::OnExistsStat;
using internal::OnMulti;
using internal::OnSetStat;
using internal::OnString;
using internal::OnStrings;
using internal::OnSyncDone;
using internal::OnVoid;
using internal::OpCtx;
using internal::Sink;
using internal::ToCMode;

namespace {

SessionState FromCState(int state) {
  if (state == ZOO_CONNECTED_STATE) return SessionState::kConnected;
  if (state == ZOO_EXPIRED_SESSION_STATE) return SessionState::kExpired;
  if (state == ZOO_AUTH_FAILED_STATE) return SessionState::kAuthFailed;
  return SessionState::kConnecting;
}

bool Terminal(SessionState s) {
  return s == SessionState::kExpired || s == SessionState::kAuthFailed ||
         s == SessionState::kClosed;
}

// The C client's log lines go to our log; it has no per-line level, and we
// only let it emit warnings and errors (set once per process below). While a
// server is down it logs every retry (about 30 lines a second), so at most
// kClientLogBurst lines pass per kClientLogWindow and the rest are counted:
// an operator sees the cause and a count, not a flood.
constexpr int kClientLogBurst = 2;
constexpr std::chrono::seconds kClientLogWindow{5};

void ClientLog(const char* message) {
  static Mutex mu;
  static std::chrono::steady_clock::time_point window GUARDED_BY(mu);
  static int in_window GUARDED_BY(mu) = 0;
  static int suppressed GUARDED_BY(mu) = 0;
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == '\r')) m.pop_back();
  int dropped = 0;
  {
    MutexLock lock(mu);
    auto now = std::chrono::steady_clock::now();
    if (now - window >= kClientLogWindow) {
      window = now;
      in_window = 0;
      dropped = suppressed;
      suppressed = 0;
    }
    if (++in_window > kClientLogBurst) {
      ++suppressed;
      return;
    }
  }
  if (dropped > 0) LOG_WARN("zookeeper client: (" << dropped << " similar lines suppressed)");
  LOG_WARN("zookeeper client: " << m);
}

// True when the calling thread runs `ex` (best effort: io_context executors
// and strands over them, the kinds rangekv uses).
bool OnExecutorThread(const asio::any_io_executor& ex) {
  using IoExecutor = asio::io_context::executor_type;
  if (const auto* io = ex.target<IoExecutor>()) return io->running_in_this_thread();
  if (const auto* s = ex.target<asio::strand<IoExecutor>>()) return s->running_in_this_thread();
  if (const auto* s = ex.target<asio::strand<asio::any_io_executor>>()) {
    return s->running_in_this_thread();
  }
  return false;
}

void Watcher(zhandle_t* zh, int type, int state, const char* path, void* context);
void OnAuthDone(int rc, const void* data);

}  // namespace

const char* SessionStateName(SessionState state) {
  switch (state) {
    case SessionState::kConnecting:
      return "CONNECTING";
    case SessionState::kConnected:
      return "CONNECTED";
    case SessionState::kExpired:
      return "EXPIRED";
    case SessionState::kAuthFailed:
      return "AUTH_FAILED";
    case SessionState::kClosed:
      return "CLOSED";
  }
  return "UNKNOWN";
}

ZkOp ZkOp::Create(std::string path, std::string data, CreateMode mode) {
  return ZkOp{Kind::kCreate, std::move(path), std::move(data), mode, kAnyVersion};
}
ZkOp ZkOp::Delete(std::string path, ZnodeVersion version) {
  return ZkOp{Kind::kDelete, std::move(path), {}, CreateMode::kPersistent, version};
}
ZkOp ZkOp::SetData(std::string path, std::string data, ZnodeVersion version) {
  return ZkOp{Kind::kSetData, std::move(path), std::move(data), CreateMode::kPersistent, version};
}
ZkOp ZkOp::Check(std::string path, ZnodeVersion version) {
  return ZkOp{Kind::kCheck, std::move(path), {}, CreateMode::kPersistent, version};
}

struct Session::Impl {
  SessionOptions options;
  asio::any_io_executor executor;
  StateCallback on_state;
  std::shared_ptr<CallbackGate> gate = std::make_shared<CallbackGate>();
  zhandle_t* zh = nullptr;
  std::unique_ptr<internal::CAcl> acl_inside, acl_outside;  // null: open

  mutable Mutex mu;
  bool auth_pending GUARDED_BY(mu) = false;  // credentials sent, no answer yet
  CondVar cv;  // waits on mu for state
  SessionState state GUARDED_BY(mu) = SessionState::kConnecting;
  int64_t session_id GUARDED_BY(mu) = 0;

  // Runs on the C completion thread: record, wake waiters, post the callback.
  void OnState(zhandle_t* handle, SessionState s) EXCLUDES(mu) {
    {
      MutexLock lock(mu);
      if (state == SessionState::kClosed || (Terminal(state) && s != SessionState::kClosed)) return;
      state = s;
      if (s == SessionState::kConnected) session_id = zoo_client_id(handle)->client_id;
    }
    cv.NotifyAll();
    if (!on_state) return;
    asio::post(executor, [gate = gate, cb = on_state, s] { gate->Run([&] { cb(s); }); });
  }

  const ACL_vector* AclFor(const std::string& path) const {
    const Acl* acl = options.acl.For(path);
    if (acl == nullptr) return &ZOO_OPEN_ACL_UNSAFE;
    return (acl == &options.acl.inside ? acl_inside : acl_outside)->get();
  }

  // The C completion thread: the answer to the credentials. The C client
  // calls back once, for the first answer or for the connection it was
  // sent on being lost (a starting server closes the first connections;
  // one that refuses the credentials closes it too, and the close may come
  // first). It sends them again on every connection, but without asking us
  // back, so after a loss they are added again (the list then holds them
  // twice, which the server does not mind) until an answer comes. A
  // refusal ends the session whatever state the C client is left in.
  void OnAuth(int rc) EXCLUDES(mu) {
    if (rc == ZCLOSING) return;
    if (rc != ZOK && rc != ZAUTHFAILED) {
      const ZkAuth& a = *options.auth;
      int again = zoo_add_auth(zh, a.scheme.c_str(), a.credential.data(),
                               static_cast<int>(a.credential.size()), OnAuthDone, this);
      if (again == ZOK) return;
      rc = again;  // an expired or failed handle: nothing will answer
    }
    if (rc == ZAUTHFAILED) {
      LOG_ERROR("ZooKeeper refused the credentials of " << options.auth->source << " ("
                                                        << ZkErrorName(rc) << ")");
      OnState(zh, SessionState::kAuthFailed);
    }
    {
      MutexLock lock(mu);
      auth_pending = false;
    }
    cv.NotifyAll();
  }

  // Adapts a user completion: post it onto the executor, behind the gate.
  template <typename T>
  Sink<T> Post(std::function<void(T)> done) {
    return [ex = executor, gate = gate, done = std::move(done)](T v) {
      asio::post(ex, [gate, done, v = std::move(v)]() mutable {
        gate->Run([&] {
          if (done) done(std::move(v));
        });
      });
    };
  }

  // Runs `start` with a sink that fulfils a promise, and waits for it.
  template <typename T, typename Start>
  T Block(const std::string& what, Start&& start) {
    if (OnExecutorThread(executor)) {
      // Enforces the header's rule where it can be detected: waiting here
      // would stall every handler of the executor for a round trip or more.
      LOG_ERROR("zookeeper " << what << ": blocking call on an executor thread refused");
      return Status(Code::kInternal,
                    "zookeeper " + what + ": blocking call on the session's executor thread");
    }
    auto promise = std::make_shared<std::promise<T>>();
    std::future<T> future = promise->get_future();
    start(Sink<T>([promise](T v) { promise->set_value(std::move(v)); }));
    if (future.wait_for(options.blocking_timeout) != std::future_status::ready) {
      return Status(Code::kTimeout, "zookeeper " + what + ": no answer within " +
                                        std::to_string(options.blocking_timeout.count()) + " ms");
    }
    return future.get();
  }

  static const Status& StatusOf(const Status& s) { return s; }
  template <typename U>
  static Status StatusOf(const Result<U>& r) {
    return r.ok() ? Status::Ok() : r.status();
  }
  // Reports refusals to on_refused on the way to `sink`.
  template <typename T>
  Sink<T> Watched(Sink<T> sink) {
    if (!options.on_refused) return sink;
    return [cb = options.on_refused, sink = std::move(sink)](T v) {
      if (IsZkRefusal(StatusOf(v))) cb(StatusOf(v));
      sink(std::move(v));
    };
  }

  // Hands a request to the C client; on immediate failure the sink gets the
  // error now (the C client will never call back for it).
  template <typename T, typename Call>
  void Issue(Sink<T> sink, std::string what, Call&& call) {
    auto* ctx = new OpCtx<T>{Watched(std::move(sink)), std::move(what)};
    int rc = call(static_cast<const void*>(ctx));
    if (rc != ZOK) {
      std::unique_ptr<OpCtx<T>> own(ctx);
      own->sink(ZkStatus(rc, own->what));
    }
  }

  void StartCreate(const std::string& path, const std::string& data, CreateMode mode,
                   Sink<Result<std::string>> sink) {
    Issue(std::move(sink), "create " + path, [&](const void* ctx) {
      return zoo_acreate(zh, path.c_str(), data.data(), static_cast<int>(data.size()), AclFor(path),
                         ToCMode(mode), OnString, ctx);
    });
  }
  void StartDelete(const std::string& path, ZnodeVersion v, Sink<Status> sink) {
    Issue(std::move(sink), "delete " + path,
          [&](const void* ctx) { return zoo_adelete(zh, path.c_str(), v.value(), OnVoid, ctx); });
  }
  void StartGet(const std::string& path, Sink<Result<std::optional<ZnodeData>>> sink) {
    Issue(std::move(sink), "get " + path,
          [&](const void* ctx) { return zoo_aget(zh, path.c_str(), 0, OnData, ctx); });
  }
  void StartSet(const std::string& path, const std::string& data, ZnodeVersion v,
                Sink<Result<ZnodeStat>> sink) {
    Issue(std::move(sink), "set " + path, [&](const void* ctx) {
      return zoo_aset(zh, path.c_str(), data.data(), static_cast<int>(data.size()), v.value(),
                      OnSetStat, ctx);
    });
  }
  void StartExists(const std::string& path, Sink<Result<std::optional<ZnodeStat>>> sink) {
    Issue(std::move(sink), "exists " + path,
          [&](const void* ctx) { return zoo_aexists(zh, path.c_str(), 0, OnExistsStat, ctx); });
  }
  void StartChildren(const std::string& path, Sink<Result<std::vector<std::string>>> sink) {
    Issue(std::move(sink), "children " + path,
          [&](const void* ctx) { return zoo_aget_children(zh, path.c_str(), 0, OnStrings, ctx); });
  }
  void StartSync(const std::string& path, Sink<Status> sink) {
    Issue(std::move(sink), "sync " + path,
          [&](const void* ctx) { return zoo_async(zh, path.c_str(), OnSyncDone, ctx); });
  }
  void StartMulti(const std::vector<ZkOp>& ops, Sink<Result<std::vector<ZkOpResult>>> sink) {
    if (ops.empty()) return sink(std::vector<ZkOpResult>());
    auto* m = new MultiCtx{Watched(std::move(sink)),
                           [this](const std::string& p) { return AclFor(p); },
                           ops,
                           {},
                           {},
                           {},
                           {}};
    FillCOps(m);
    int rc = zoo_amulti(zh, static_cast<int>(m->c_ops.size()), m->c_ops.data(), m->results.data(),
                        OnMulti, m);
    if (rc != ZOK) {
      std::unique_ptr<MultiCtx> own(m);
      own->sink(ZkStatus(rc, "multi of " + std::to_string(ops.size()) + " ops"));
    }
  }
};

namespace {
void Watcher(zhandle_t* zh, int type, int state, const char*, void* context) {
  // Only session events: this Session never sets C-client watches.
  if (type != ZOO_SESSION_EVENT || context == nullptr) return;
  static_cast<Session::Impl*>(context)->OnState(zh, FromCState(state));
}

void OnAuthDone(int rc, const void* data) {
  static_cast<Session::Impl*>(const_cast<void*>(data))->OnAuth(rc);
}
}  // namespace

Result<std::unique_ptr<Session>> Session::Open(const SessionOptions& options,
                                               asio::any_io_executor executor,
                                               StateCallback on_state) {
  // Process-wide: the C client logs every connect at INFO otherwise.
  static std::once_flag log_level_once;
  std::call_once(log_level_once, [] { zoo_set_debug_level(ZOO_LOG_LEVEL_WARN); });
  if (options.connect_string.empty()) {
    return Status(Code::kBadRequest, "zookeeper: empty connect string");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->executor = std::move(executor);
  impl->on_state = std::move(on_state);
  if (!options.acl.empty()) {
    impl->acl_inside = std::make_unique<internal::CAcl>(options.acl.inside);
    impl->acl_outside = std::make_unique<internal::CAcl>(options.acl.outside);
  }
  errno = 0;
  impl->zh = zookeeper_init2(options.connect_string.c_str(), Watcher,
                             static_cast<int>(options.session_timeout.count()), nullptr, impl.get(),
                             0, ClientLog);
  if (impl->zh == nullptr) {
    int err = errno;
    Code code = (err == EINVAL || err == 0) ? Code::kBadRequest : Code::kUnavailable;
    return Status(code, "zookeeper: cannot open a session to \"" + options.connect_string +
                            "\": " + (err ? std::strerror(err) : "rejected by the client"));
  }
  if (options.auth) {
    {
      MutexLock lock(impl->mu);
      impl->auth_pending = true;
    }
    // Queued until connected, then sent first on this and every later
    // connection; the completion runs once, for the first answer.
    const ZkAuth& a = *options.auth;
    int rc = zoo_add_auth(impl->zh, a.scheme.c_str(), a.credential.data(),
                          static_cast<int>(a.credential.size()), OnAuthDone, impl.get());
    if (rc != ZOK) {
      zookeeper_close(impl->zh);
      return ZkStatus(rc, "add the credentials of " + a.source);
    }
  }
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Session::~Session() {
  impl_->gate->Close();
  {
    MutexLock lock(impl_->mu);
    impl_->state = SessionState::kClosed;
  }
  impl_->cv.NotifyAll();
  // Joins the C client's threads; in-flight requests complete with ZCLOSING
  // into sinks whose posted callbacks the closed gate drops.
  int rc = zookeeper_close(impl_->zh);
  if (rc != ZOK) LOG_WARN("zookeeper: close: " << ZkErrorName(rc));
}

SessionState Session::state() const {
  MutexLock lock(impl_->mu);
  return impl_->state;
}

int64_t Session::session_id() const {
  MutexLock lock(impl_->mu);
  return impl_->state == SessionState::kConnected ? impl_->session_id : 0;
}

std::chrono::milliseconds Session::negotiated_timeout() const {
  return std::chrono::milliseconds(zoo_recv_timeout(impl_->zh));
}

Status Session::WaitConnected(std::chrono::milliseconds timeout) {
  MutexLock lock(impl_->mu);
  bool done = impl_->cv.WaitFor(lock, timeout, [&] {
    impl_->mu.AssertHeld();  // WaitFor calls the predicate with the lock held
    return (impl_->state == SessionState::kConnected && !impl_->auth_pending) ||
           Terminal(impl_->state);
  });
  if (!done) {
    return Status(Code::kTimeout, "zookeeper: not connected to \"" + impl_->options.connect_string +
                                      "\" within " + std::to_string(timeout.count()) + " ms");
  }
  if (impl_->state == SessionState::kAuthFailed) {
    const std::string source = impl_->options.auth ? impl_->options.auth->source : "none";
    return ZkStatus(ZAUTHFAILED, "credentials of " + source);
  }
  if (impl_->state != SessionState::kConnected) {
    return Status(Code::kUnavailable,
                  std::string("zookeeper: session ") + SessionStateName(impl_->state));
  }
  return Status::Ok();
}

Result<std::string> Session::Create(const std::string& path, const std::string& data,
                                    CreateMode mode) {
  return impl_->Block<Result<std::string>>(
      "create " + path, [&](auto sink) { impl_->StartCreate(path, data, mode, std::move(sink)); });
}

Status Session::Delete(const std::string& path, ZnodeVersion version) {
  return impl_->Block<Status>(
      "delete " + path, [&](auto sink) { impl_->StartDelete(path, version, std::move(sink)); });
}

Result<std::optional<ZnodeData>> Session::Get(const std::string& path) {
  return impl_->Block<Result<std::optional<ZnodeData>>>(
      "get " + path, [&](auto sink) { impl_->StartGet(path, std::move(sink)); });
}

Result<ZnodeStat> Session::Set(const std::string& path, const std::string& data,
                               ZnodeVersion version) {
  return impl_->Block<Result<ZnodeStat>>(
      "set " + path, [&](auto sink) { impl_->StartSet(path, data, version, std::move(sink)); });
}

Result<std::optional<ZnodeStat>> Session::Exists(const std::string& path) {
  return impl_->Block<Result<std::optional<ZnodeStat>>>(
      "exists " + path, [&](auto sink) { impl_->StartExists(path, std::move(sink)); });
}

Result<std::vector<std::string>> Session::Children(const std::string& path) {
  return impl_->Block<Result<std::vector<std::string>>>(
      "children " + path, [&](auto sink) { impl_->StartChildren(path, std::move(sink)); });
}

Result<std::vector<ZkOpResult>> Session::Multi(const std::vector<ZkOp>& ops) {
  return impl_->Block<Result<std::vector<ZkOpResult>>>(
      "multi", [&](auto sink) { impl_->StartMulti(ops, std::move(sink)); });
}

Status Session::Sync(const std::string& path) {
  return impl_->Block<Status>("sync " + path,
                              [&](auto sink) { impl_->StartSync(path, std::move(sink)); });
}

void Session::AsyncCreate(const std::string& path, const std::string& data, CreateMode mode,
                          ResultCallback<std::string> done) {
  impl_->StartCreate(path, data, mode, impl_->Post(std::move(done)));
}

void Session::AsyncDelete(const std::string& path, ZnodeVersion version, StatusCallback done) {
  impl_->StartDelete(path, version, impl_->Post(std::move(done)));
}

void Session::AsyncGet(const std::string& path, ResultCallback<std::optional<ZnodeData>> done) {
  impl_->StartGet(path, impl_->Post(std::move(done)));
}

void Session::AsyncSet(const std::string& path, const std::string& data, ZnodeVersion version,
                       ResultCallback<ZnodeStat> done) {
  impl_->StartSet(path, data, version, impl_->Post(std::move(done)));
}

void Session::AsyncExists(const std::string& path, ResultCallback<std::optional<ZnodeStat>> done) {
  impl_->StartExists(path, impl_->Post(std::move(done)));
}

void Session::AsyncChildren(const std::string& path,
                            ResultCallback<std::vector<std::string>> done) {
  impl_->StartChildren(path, impl_->Post(std::move(done)));
}

void Session::AsyncMulti(const std::vector<ZkOp>& ops,
                         ResultCallback<std::vector<ZkOpResult>> done) {
  impl_->StartMulti(ops, impl_->Post(std::move(done)));
}

void Session::AsyncSync(const std::string& path, StatusCallback done) {
  impl_->StartSync(path, impl_->Post(std::move(done)));
}

}  // namespace rangekv::zk
