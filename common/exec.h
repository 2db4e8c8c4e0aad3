// common/exec.h — how the server side runs work off the caller's thread:
// serial executors (the replication thread), workers with a step function
// (a store's log, sync and snapshot threads), and the Env that makes them,
// together with the file system (common/fs.h).
//
// Why a seam: in production each of these is a thread; in the deterministic
// simulation (sim/) they are event sources whose every step the simulation
// schedules from one seed, so a run replays exactly. Code written against
// these interfaces never blocks waiting for another executor or worker
// (except Worker::Join and Executor::Stop at shutdown), because in the
// simulation all of them share one thread.
//
// Worker. A worker runs `step` repeatedly, one call at a time, never
// concurrently with itself. Each call returns when it wants to run next:
//
//   | NextStep      | the worker calls step again                           |
//   |---------------|-------------------------------------------------------|
//   | Again()       | at once (there is more work)                          |
//   | Idle()        | after the next Notify()                               |
//   | At(t)         | at t, or after the next Notify() if that comes first  |
//   | Exit()        | never: the worker has ended; Join returns             |
//
// Notify() may come from any thread, any number of times (they coalesce);
// a Notify during a step makes the worker step again after it, so a caller
// that changes state and then notifies is never missed.
//
// Executor. Tasks posted to one executor run one at a time, in the order
// posted; timers post their task when they expire. Stop() ends it: tasks
// not yet run are dropped (posted afterwards: dropped at once), and once it
// returns no task of it runs any more.
//
// Thread-safety: Notify, Post, timers' ExpiresAt/Cancel from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"

namespace rangekv {

namespace fs {
class FileSystem;
}  // namespace fs

namespace exec {

class NextStep {
 public:
  enum class Kind : uint8_t { kAgain, kIdle, kAt, kExit };
  static NextStep Again() { return NextStep(Kind::kAgain, {}); }
  static NextStep Idle() { return NextStep(Kind::kIdle, {}); }
  static NextStep At(MonoClock::time_point t) { return NextStep(Kind::kAt, t); }
  static NextStep Exit() { return NextStep(Kind::kExit, {}); }
  Kind kind() const { return kind_; }
  MonoClock::time_point at() const { return at_; }

 private:
  NextStep(Kind k, MonoClock::time_point at) : kind_(k), at_(at) {}
  Kind kind_;
  MonoClock::time_point at_;
};

using Step = std::function<NextStep()>;

class Worker {
 public:
  virtual ~Worker() = default;  // joins: make the step want to exit first
  virtual void Notify() = 0;
  // Blocks until step has returned Exit. The caller must have made it want
  // to (a flag the step reads) and notified it.
  virtual void Join() = 0;
};

class Timer {
 public:
  virtual ~Timer() = default;  // cancels
  // Replaces any pending expiry: task is posted to the executor at t.
  virtual void ExpiresAt(MonoClock::time_point t, std::function<void()> task) = 0;
  virtual void Cancel() = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;  // Stop()
  virtual void Post(std::function<void()> task) = 0;
  virtual std::unique_ptr<Timer> NewTimer() = 0;
  // True on the thread that runs this executor's tasks.
  virtual bool RunningHere() const = 0;
  virtual void Stop() = 0;
};

}  // namespace exec

// The factory of workers and executors and the file system that server-side
// code uses. DefaultEnv(): threads and the POSIX file system.
class Env {
 public:
  virtual ~Env() = default;
  virtual fs::FileSystem& fs() = 0;
  virtual std::unique_ptr<exec::Worker> StartWorker(std::string name, exec::Step step) = 0;
  virtual std::unique_ptr<exec::Executor> NewExecutor(std::string name) = 0;
  // Random bits (identities such as a data directory's incarnation).
  virtual uint64_t RandomU64() = 0;
  // The running operating system boot ("" when unknown). Data a process
  // wrote without fsync survives that process's death while this stays
  // the same (the page cache outlives processes); a new boot id means the
  // machine restarted and such data may be gone.
  virtual std::string BootId() = 0;
};

Env& DefaultEnv();

}  // namespace rangekv
