// coordinator/zk_await.h — zk::Session's async calls as C++20 awaitables.
//
//   Result<std::optional<zk::ZnodeData>> r = co_await zkawait::Get(session, path);
//
// Each call starts the Session's Async* call and suspends the coroutine
// until the completion, which zk::Session posts onto the executor it was
// opened with; the coroutine resumes right there. So run these coroutines
// on that same executor (the coordinator uses one strand for both).
//
// Abandonment: when the Session is destroyed with a call in flight, the
// completion is dropped (session.h, "Callback lifetime") and the waiting
// coroutine never resumes; Asio then destroys its frame on the executor
// (locals are destroyed, nothing after the co_await runs). Coroutines that
// must report completion do it from a destructor (see DoneGuard in
// coordinator.cc).
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
//   * a completion that arrives inside the initiating call resumes the
//     coroutine recursively: fine once, a stack overflow in a loop.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/asio.h"
#include "common/log.h"
#include "common/zk/session.h"

namespace rangekv::coordinator::zkawait {

// Suspends until `start(callback)` calls callback(T) once.
template <typename T, typename Start>
asio::awaitable<T> Await(Start start) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [start = std::move(start)](auto handler) mutable {
        // zk::Session copies callbacks; the handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start([shared](T value) { (*shared)(std::move(value)); });
      },
      asio::use_awaitable);
}

inline asio::awaitable<Status> Sync(zk::Session& s, std::string path) {
  return Await<Status>([&s, path](auto cb) { s.AsyncSync(path, std::move(cb)); });
}

inline asio::awaitable<Result<std::string>> Create(zk::Session& s, std::string path,
                                                   std::string data, zk::CreateMode mode) {
  return Await<Result<std::string>>(
      [&s, path, data, mode](auto cb) { s.AsyncCreate(path, data, mode, std::move(cb)); });
}

inline asio::awaitable<Result<std::optional<zk::ZnodeData>>> Get(zk::Session& s, std::string path) {
  return Await<Result<std::optional<zk::ZnodeData>>>(
      [&s, path](auto cb) { s.AsyncGet(path, std::move(cb)); });
}

inline asio::awaitable<Result<std::optional<zk::ZnodeStat>>> Exists(zk::Session& s,
                                                                    std::string path) {
  return Await<Result<std::optional<zk::ZnodeStat>>>(
      [&s, path](auto cb) { s.AsyncExists(path, std::move(cb)); });
}

inline asio::awaitable<Result<std::vector<std::string>>> Children(zk::Session& s,
                                                                  std::string path) {
  return Await<Result<std::vector<std::string>>>(
      [&s, path](auto cb) { s.AsyncChildren(path, std::move(cb)); });
}

inline asio::awaitable<Result<std::vector<zk::ZkOpResult>>> Multi(zk::Session& s,
                                                                  std::vector<zk::ZkOp> ops) {
  return Await<Result<std::vector<zk::ZkOpResult>>>(
      [&s, ops = std::move(ops)](auto cb) { s.AsyncMulti(ops, std::move(cb)); });
}

// Gets all `paths` concurrently (one round trip instead of one per path).
// Element i is the result for paths[i].
using GetResult = Result<std::optional<zk::ZnodeData>>;
inline asio::awaitable<std::vector<std::optional<GetResult>>> GetAll(
    zk::Session& s, std::vector<std::string> paths) {
  using Out = std::vector<std::optional<GetResult>>;
  return Await<Out>([&s, paths = std::move(paths)](auto cb) {
    if (paths.empty()) return cb(Out());  // one immediate completion is fine
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
  });
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
