// tests/sim/world.h — the deterministic simulation's world: simulated time,
// the one random generator, the event queue, and the processes whose
// events it runs.
//
// Everything of a simulated cluster (kvnodes, coordinators, clients, the
// network, ZooKeeper, the disks) runs on one thread, one event at a time.
// An event is a function due at a simulated time; events due at the same
// time run in the order they were scheduled. Every choice (latencies, which
// message is lost, when a fault strikes) is drawn from one generator seeded
// by the run's seed, so a seed replays exactly.
//
// Processes. Each simulated program incarnation (a kvnode process, a
// coordinator, a client) is a Process. Events belong to a process (or to
// the world): a dead process's events are dropped when they come due; a
// paused one's wait until it resumes (SIGSTOP). A restarted program is a
// new Process, so nothing of its previous life runs again.
//
// Time. The world installs itself as the source of MonoClock (common/clock.h),
// so the real code under test reads simulated time. Time starts at kEpochStart
// (never 0, which the code treats as "never").
//
// SimEnv is the Env (common/exec.h) of one process: its workers and
// executors schedule their steps and tasks as that process's events, with a
// small random delay standing for thread scheduling, so their interleaving
// is the seed's choice.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/exec.h"

namespace rangekv::sim {

using Nanos = int64_t;
constexpr Nanos kMicro = 1000;
constexpr Nanos kMilli = 1000 * kMicro;
constexpr Nanos kSecond = 1000 * kMilli;

class FileSystemSim;

// A random stream. The world has one for everything that happens (latencies,
// losses, scheduling); a run draws its cluster and its fault schedule from a
// second one, so a seed keeps its scenario when the code under test changes
// how often it draws from the first.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t Next() { return gen_(); }
  // Uniform in [lo, hi].
  int64_t Uniform(int64_t lo, int64_t hi);
  bool Chance(double p);
  // A latency: mostly in [lo, hi], with probability `tail` up to 10x hi.
  int64_t Latency(int64_t lo, int64_t hi, double tail = 0.02);

 private:
  std::mt19937_64 gen_;
};

struct Process {
  std::string name;       // "n1#3": program and incarnation
  bool alive = true;
  Nanos paused_until = 0;  // events wait until then
};
using ProcessRef = std::shared_ptr<Process>;

class World {
 public:
  static constexpr Nanos kEpochStart = 1000 * kSecond;

  explicit World(uint64_t seed);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  Nanos now() const { return now_; }
  MonoClock::time_point Now() const { return MonoClock::time_point(std::chrono::nanoseconds(now_)); }
  static Nanos ToNanos(MonoClock::time_point t) { return t.time_since_epoch().count(); }

  // ---- randomness (the world's stream; see Rng) ----
  uint64_t Next() { return rng_.Next(); }
  int64_t Uniform(int64_t lo, int64_t hi) { return rng_.Uniform(lo, hi); }
  bool Chance(double p) { return rng_.Chance(p); }
  Nanos Latency(Nanos lo, Nanos hi, double tail = 0.02) { return rng_.Latency(lo, hi, tail); }

  // ---- events ----
  // Runs fn at `at` (not before now) as an event of `owner` (null: the world).
  void At(Nanos at, ProcessRef owner, std::function<void()> fn);
  void After(Nanos delay, ProcessRef owner, std::function<void()> fn) {
    At(now_ + delay, std::move(owner), std::move(fn));
  }
  // Runs events until none is due before `until` (then time is `until`),
  // or stop() returns true after an event, or the event budget is spent.
  // Returns the events run.
  uint64_t RunUntil(Nanos until, const std::function<bool()>& stop = {});
  // A watchdog: once `budget` events have run in total, RunUntil runs no
  // more (a livelock then ends the run instead of hanging it). 0: none.
  void SetEventBudget(uint64_t budget) { budget_ = budget; }
  bool budget_spent() const { return budget_ != 0 && events_run_ >= budget_; }
  // Called after every event (the checkers' hook).
  void SetAfterEvent(std::function<void()> fn) { after_event_ = std::move(fn); }
  uint64_t events_run() const { return events_run_; }

  // The process whose event runs now (null: a world event).
  const ProcessRef& current() const { return current_; }

 private:
  struct Event {
    Nanos at;
    uint64_t seq;
    ProcessRef owner;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };

  Nanos now_ = kEpochStart;
  Rng rng_;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  uint64_t next_seq_ = 0;
  uint64_t events_run_ = 0;
  uint64_t budget_ = 0;
  ProcessRef current_;
  std::function<void()> after_event_;
};

// The Env of one simulated process.
class SimEnv final : public Env {
 public:
  SimEnv(World& world, ProcessRef process, fs::FileSystem& fs, std::string boot_id = "boot-1");
  fs::FileSystem& fs() override { return fs_; }
  std::unique_ptr<exec::Worker> StartWorker(std::string name, exec::Step step) override;
  std::unique_ptr<exec::Executor> NewExecutor(std::string name) override;
  uint64_t RandomU64() override { return world_.Next(); }
  std::string BootId() override { return boot_id_; }

  World& world() { return world_; }
  const ProcessRef& process() const { return process_; }
  // A delay standing for a thread being scheduled.
  Nanos SchedulingDelay() { return world_.Latency(0, 50 * kMicro, 0.05); }

 private:
  World& world_;
  ProcessRef process_;
  fs::FileSystem& fs_;
  std::string boot_id_;
};

}  // namespace rangekv::sim
