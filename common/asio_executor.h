// common/asio_executor.h — the production exec::Executor: one thread running
// an Asio io_context. Its io() is what Asio objects of the same thread
// (sockets, the pipelined connections of common/net) need.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/asio.h"
#include "common/exec.h"
#include "common/mutex.h"

namespace rangekv::exec {

class AsioExecutor final : public Executor {
 public:
  explicit AsioExecutor(std::string name);
  ~AsioExecutor() override;

  void Post(std::function<void()> task) override EXCLUDES(mu_);
  std::unique_ptr<Timer> NewTimer() override;
  bool RunningHere() const override;
  // Ends the thread once every handler already posted has run (so Asio
  // objects get their completions); later posts are dropped.
  void Stop() override EXCLUDES(mu_);

  asio::io_context& io() { return io_; }

 private:
  std::string name_;
  // Concurrency hint 1: one thread runs it, so a handler's posts to its
  // own thread (a fetch connection's answers, on the replication thread)
  // queue privately instead of taking the scheduler's lock and waking the
  // reactor; other threads' posts are as safe as before.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  Mutex mu_;
  bool stopped_ GUARDED_BY(mu_) = false;
};

}  // namespace rangekv::exec
