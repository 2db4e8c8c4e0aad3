// coordinator/zk_await.h — zk::Session's async calls as C++20 awaitables,
// with a way to end every waiting coroutine before the Session goes.
//
//   auto calls = zkawait::Calls::Create(session);   // one per Session
//   Result<std::optional<zk::ZnodeData>> r = co_await zkawait::Get(*calls, path);
//   ...
//   calls->Close(why);  // every waiter resumes with `why`
//   session.reset();    // once in_flight() is 0 (see below)
//
// Each call starts the Session's Async* call and suspends the coroutine
// until the completion, which zk::Session posts onto the executor it was
// opened with; the coroutine resumes through its own executor, never inside
// the call that started it. So run these coroutines on that same executor
// (the coordinator uses one strand for both).
//
// Why Calls exists. A Session destroyed with a call in flight drops the
// completion (session.h, "Callback lifetime"), so a coroutine waiting on it
// would never resume: its frame would live on inside the completion until
// the ZooKeeper C client freed that, and libzookeeper_mt 3.8 does not
// always: zookeeper_close() sets close_requested before it queues the
// ZCLOSING completions, and a completion thread that is busy at that moment
// leaves its loop without running them. Then the C client's completion
// entry, our callback and the coroutine frame in it are never freed. Hence
// the owner's protocol:
//   1. Close(why): every coroutine waiting on a call resumes with an error
//      built from `why`, and later calls fail the same way at once, without
//      touching the Session. A completion that arrives later is dropped.
//   2. Wait (bounded) until in_flight() is 0 (OnIdle): the C client then
//      holds no request of ours when it closes.
//   3. Destroy the Session, then drop the Calls.
// A value other than that error always means the Session was open when the
// coroutine resumed (a result that arrives just before Close is replaced
// by the error), so a coroutine may use the Session right after it.
//
// Threads: Calls and the coroutines using it live on the Session's
// executor (one strand); nothing here locks.
//
// Errors are values (Status / Result); nothing here throws.
//
// g++ 12 pitfalls (checked with a counting type; fixed in later releases):
//   * a lambda with by-value captures written inside a co_await expression
//     of a coroutine body has its captures destroyed twice (heap corruption).
//     Such lambdas live only in the plain (non-coroutine) functions below;
//     coroutine bodies pass them plain values.
//   * a braced list in a co_await expression ("co_await f(s, {a, b})") does
//     not compile ("array used as initializer"): build the vector first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/asio.h"
#include "common/log.h"
#include "common/zk/session.h"

namespace rangekv::coordinator::zkawait {

class Calls : public std::enable_shared_from_this<Calls> {
 public:
  // `session` must outlive every call started before Close().
  static std::shared_ptr<Calls> Create(zk::Session& session) {
    return std::shared_ptr<Calls>(new Calls(session));
  }

  // Step 1 above. Idempotent (the first `why` stays).
  void Close(Status why) {
    if (closed_) return;
    closed_ = true;
    why_ = std::move(why);
    std::map<uint64_t, std::function<void()>> waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [id, abort] : waiting) abort();
  }
  bool closed() const { return closed_; }
  // Requests handed to the Session whose completion has not come back.
  size_t in_flight() const { return in_flight_; }
  // Calls `f` once in_flight() is 0: now if it is, else from the completion
  // that makes it 0. Replaces an earlier `f`; an empty one cancels it.
  void OnIdle(std::function<void()> f) {
    on_idle_ = std::move(f);
    if (in_flight_ == 0) RunOnIdle();
  }
  // The Session's id; 0 once closed (the Session may be gone).
  int64_t session_id() const { return closed_ ? 0 : session_->session_id(); }

  // Starts `start(session, callback)` for a coroutine suspended with
  // `handler` (see Await); `aborted(why)` is its value after Close.
  template <typename T, typename Handler, typename Start, typename Aborted>
  void Begin(Handler handler, Start& start, const Aborted& aborted) {
    auto ex = asio::get_associated_executor(handler);
    auto waiter = std::make_shared<std::optional<Handler>>(std::move(handler));
    if (closed_) return Finish<T>(shared_from_this(), ex, waiter, aborted, aborted(why_));
    const uint64_t id = next_id_++;
    // Held by this object only: no reference to it from here.
    waiting_.emplace(id, [this, ex, waiter, aborted] {
      Finish<T>(shared_from_this(), ex, waiter, aborted, aborted(why_));
    });
    ++in_flight_;
    // Keeps this object alive while the Session holds the request.
    start(*session_, [self = shared_from_this(), id, ex, waiter, aborted](T value) {
      self->waiting_.erase(id);
      Finish<T>(self, ex, waiter, aborted, std::move(value));
      if (--self->in_flight_ == 0) self->RunOnIdle();
    });
  }

 private:
  explicit Calls(zk::Session& session) : session_(&session) {}
  // Resumes the waiting coroutine, once, through its executor. Whether it
  // was closed is checked at resumption: a Close in between wins.
  template <typename T, typename Executor, typename Waiter, typename Aborted>
  static void Finish(std::shared_ptr<Calls> self, const Executor& ex, const Waiter& waiter,
                     const Aborted& aborted, T value) {
    if (!waiter->has_value()) return;
    auto resume = [self = std::move(self), h = std::move(**waiter), aborted,
                   value = std::move(value)]() mutable {
      if (self->closed_) {
        std::move(h)(aborted(self->why_));
      } else {
        std::move(h)(std::move(value));
      }
    };
    waiter->reset();
    asio::post(ex, std::move(resume));
  }
  void RunOnIdle() {
    std::function<void()> f = std::move(on_idle_);
    on_idle_ = nullptr;
    if (f) f();
  }

  zk::Session* session_;
  bool closed_ = false;
  Status why_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::function<void()>> waiting_;  // by call: resumes it with why_
  size_t in_flight_ = 0;
  std::function<void()> on_idle_;
};

// Suspends until `start(session, callback)` calls callback(T) once, or until
// Close; then the value is aborted(why).
template <typename T, typename Start, typename Aborted>
asio::awaitable<T> Await(Calls& calls, Start start, Aborted aborted) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [c = calls.shared_from_this(), start = std::move(start), aborted = std::move(aborted)](
          auto handler) mutable { c->Begin<T>(std::move(handler), start, aborted); },
      asio::use_awaitable);
}

// The value after Close of a call whose result is a Status or a Result.
template <typename T>
auto AsError() {
  return [](const Status& why) { return T(why); };
}

inline asio::awaitable<Status> Sync(Calls& c, std::string path) {
  return Await<Status>(
      c, [path](zk::Session& s, auto cb) { s.AsyncSync(path, std::move(cb)); }, AsError<Status>());
}

inline asio::awaitable<Result<std::string>> Create(Calls& c, std::string path, std::string data,
                                                   zk::CreateMode mode) {
  using T = Result<std::string>;
  return Await<T>(
      c,
      [path, data, mode](zk::Session& s, auto cb) {
        s.AsyncCreate(path, data, mode, std::move(cb));
      },
      AsError<T>());
}

inline asio::awaitable<Result<std::optional<zk::ZnodeData>>> Get(Calls& c, std::string path) {
  using T = Result<std::optional<zk::ZnodeData>>;
  return Await<T>(
      c, [path](zk::Session& s, auto cb) { s.AsyncGet(path, std::move(cb)); }, AsError<T>());
}

inline asio::awaitable<Result<std::optional<zk::ZnodeStat>>> Exists(Calls& c, std::string path) {
  using T = Result<std::optional<zk::ZnodeStat>>;
  return Await<T>(
      c, [path](zk::Session& s, auto cb) { s.AsyncExists(path, std::move(cb)); }, AsError<T>());
}

inline asio::awaitable<Result<std::vector<std::string>>> Children(Calls& c, std::string path) {
  using T = Result<std::vector<std::string>>;
  return Await<T>(
      c, [path](zk::Session& s, auto cb) { s.AsyncChildren(path, std::move(cb)); }, AsError<T>());
}

inline asio::awaitable<Result<std::vector<zk::ZkOpResult>>> Multi(Calls& c,
                                                                  std::vector<zk::ZkOp> ops) {
  using T = Result<std::vector<zk::ZkOpResult>>;
  return Await<T>(
      c, [ops = std::move(ops)](zk::Session& s, auto cb) { s.AsyncMulti(ops, std::move(cb)); },
      AsError<T>());
}

// Gets all `paths` concurrently (one round trip instead of one per path).
// Element i is the result for paths[i]. Counts as one call in flight.
using GetResult = Result<std::optional<zk::ZnodeData>>;
inline asio::awaitable<std::vector<std::optional<GetResult>>> GetAll(
    Calls& c, std::vector<std::string> paths) {
  using Out = std::vector<std::optional<GetResult>>;
  const size_t n = paths.size();
  return Await<Out>(
      c,
      [paths = std::move(paths)](zk::Session& s, auto cb) {
        if (paths.empty()) return cb(Out());
        struct Gather {
          Out results;
          size_t remaining;
          decltype(cb) done;
        };
        auto g = std::make_shared<Gather>(Gather{Out(paths.size()), paths.size(), std::move(cb)});
        // Completions run one at a time on the Session's executor (a strand):
        // no lock.
        for (size_t i = 0; i < paths.size(); ++i) {
          s.AsyncGet(paths[i], [g, i](GetResult r) {
            g->results[i] = std::move(r);
            if (--g->remaining == 0) g->done(std::move(g->results));
          });
        }
      },
      [n](const Status& why) { return Out(n, GetResult(why)); });
}

// A co_spawn completion token that logs an exception escaping the
// coroutine (there should be none: errors are values) instead of dropping
// it silently as asio::detached would.
inline auto LogExceptions(std::string what) {
  return [what = std::move(what)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      LOG_ERROR(what << " stopped by an exception: " << x.what());
    } catch (...) {
      LOG_ERROR(what << " stopped by an unknown exception");
    }
  };
}

}  // namespace rangekv::coordinator::zkawait
