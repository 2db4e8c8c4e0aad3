#include "tests/sim/world.h"

#include <cstdio>
#include <cstdlib>
#include <deque>

#include "tests/sim/sim_fs.h"

namespace rangekv::sim {
namespace {

World* g_world = nullptr;

MonoClock::time_point SimNow() { return g_world->Now(); }

}  // namespace

World::World(uint64_t seed) : rng_(seed) {
  if (g_world != nullptr) {
    std::fprintf(stderr, "sim: one World at a time\n");
    std::abort();
  }
  g_world = this;
  SetClockSourceForTesting(&SimNow);
}

World::~World() {
  // Events own objects (closures); drop them while the clock still works.
  while (!queue_.empty()) queue_.pop();
  SetClockSourceForTesting(nullptr);
  g_world = nullptr;
}

int64_t Rng::Uniform(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
  return lo + static_cast<int64_t>(gen_() % span);
}

bool Rng::Chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return static_cast<double>(gen_() >> 11) * (1.0 / 9007199254740992.0) < p;
}

int64_t Rng::Latency(int64_t lo, int64_t hi, double tail) {
  if (Chance(tail)) return Uniform(hi, hi * 10);
  return Uniform(lo, hi);
}

void World::At(Nanos at, ProcessRef owner, std::function<void()> fn) {
  queue_.push(Event{std::max(at, now_), next_seq_++, std::move(owner), std::move(fn)});
}

uint64_t World::RunUntil(Nanos until, const std::function<bool()>& stop) {
  uint64_t ran = 0;
  while (!queue_.empty() && queue_.top().at <= until) {
    if (budget_spent()) return ran;
    Event e = std::move(const_cast<Event&>(queue_.top()));
    queue_.pop();
    now_ = e.at;
    if (e.owner) {
      if (!e.owner->alive) continue;
      if (const Nanos resume = e.owner->paused_until; resume > now_) {
        At(resume, std::move(e.owner), std::move(e.fn));
        continue;
      }
    }
    current_ = e.owner;
    e.fn();
    current_.reset();
    ++ran;
    ++events_run_;
    if (after_event_) after_event_();
    if (stop && stop()) return ran;
  }
  if (now_ < until && !budget_spent()) now_ = until;
  return ran;
}

// ---- workers ----

namespace {

// A worker's step runs as an event of its process; its next run comes
// after a scheduling delay plus the simulated disk time the step used.
class SimWorker final : public exec::Worker {
 public:
  SimWorker(SimEnv& env, FileSystemSim* disk, std::string name, exec::Step step)
      : env_(env), disk_(disk), name_(std::move(name)), step_(std::move(step)),
        state_(std::make_shared<State>()) {
    Schedule(env_.SchedulingDelay());
  }
  ~SimWorker() override { state_->gone = true; }

  void Notify() override {
    state_->notified = true;
    if (!state_->exited) Schedule(env_.SchedulingDelay());
  }

  // Runs the steps here until the worker exits: nothing else can run them
  // while the caller waits on the one simulation thread.
  void Join() override {
    for (int i = 0; !state_->exited; ++i) {
      if (i == 1000000) {
        std::fprintf(stderr, "sim: worker %s never exits\n", name_.c_str());
        std::abort();
      }
      RunStep();
    }
  }

 private:
  struct State {
    bool gone = false;
    bool exited = false;
    bool notified = false;
    Nanos scheduled_at = -1;  // the earliest pending run; -1: none
    uint64_t generation = 0;  // bumped to void a pending run
  };

  // Keeps the earliest of the pending run and `delay` from now.
  void Schedule(Nanos delay) {
    World& w = env_.world();
    const Nanos at = w.now() + delay;
    if (state_->scheduled_at >= 0 && state_->scheduled_at <= at) return;
    state_->scheduled_at = at;
    const uint64_t gen = ++state_->generation;
    std::weak_ptr<State> weak = state_;
    w.At(at, env_.process(), [this, weak, gen] {
      auto s = weak.lock();
      if (!s || s->gone || s->generation != gen) return;
      s->scheduled_at = -1;
      RunStep();
    });
  }

  void RunStep() {
    if (state_->exited) return;
    state_->notified = false;
    if (disk_ != nullptr) disk_->TakeIoTime();
    exec::NextStep next = step_();
    const Nanos io = disk_ != nullptr ? disk_->TakeIoTime() : 0;
    switch (next.kind()) {
      case exec::NextStep::Kind::kExit:
        state_->exited = true;
        ++state_->generation;
        state_->scheduled_at = -1;
        return;
      case exec::NextStep::Kind::kAgain:
        Schedule(io + env_.SchedulingDelay());
        return;
      case exec::NextStep::Kind::kIdle:
        if (state_->notified) Schedule(io + env_.SchedulingDelay());
        return;
      case exec::NextStep::Kind::kAt: {
        const Nanos at = World::ToNanos(next.at());
        Schedule(std::max(io, at - env_.world().now()) + env_.SchedulingDelay());
        return;
      }
    }
  }

  SimEnv& env_;
  FileSystemSim* disk_;
  const std::string name_;
  const exec::Step step_;
  std::shared_ptr<State> state_;
};

// A serial executor: its tasks run one per event, in the order posted.
class SimExecutor final : public exec::Executor {
 public:
  SimExecutor(SimEnv& env, std::string name)
      : env_(env), name_(std::move(name)), state_(std::make_shared<State>()) {}
  ~SimExecutor() override { Stop(); }

  void Post(std::function<void()> task) override {
    if (state_->stopped) return;
    state_->tasks.push_back(std::move(task));
    Kick(env_.SchedulingDelay());
  }
  std::unique_ptr<exec::Timer> NewTimer() override;
  // Everything runs on the simulation's one thread, so a caller that would
  // post and wait runs its function inline instead (the moral equivalent:
  // nothing else of this executor runs meanwhile).
  bool RunningHere() const override { return true; }
  void Stop() override {
    state_->stopped = true;
    state_->tasks.clear();
  }

  SimEnv& env() { return env_; }
  bool stopped() const { return state_->stopped; }

 private:
  struct State {
    bool stopped = false;
    bool scheduled = false;
    std::deque<std::function<void()>> tasks;
  };

  void Kick(Nanos delay) {
    if (state_->scheduled || state_->tasks.empty()) return;
    state_->scheduled = true;
    std::weak_ptr<State> weak = state_;
    env_.world().After(delay, env_.process(), [this, weak] {
      auto s = weak.lock();
      if (!s || s->stopped) return;
      s->scheduled = false;
      if (s->tasks.empty()) return;
      std::function<void()> task = std::move(s->tasks.front());
      s->tasks.pop_front();
      task();
      // `this` may be gone now (the task may have destroyed its executor).
      if (!s->stopped && !s->tasks.empty()) Kick(env_.SchedulingDelay());
    });
  }

  SimEnv& env_;
  const std::string name_;
  std::shared_ptr<State> state_;
};

class SimTimer final : public exec::Timer {
 public:
  explicit SimTimer(SimExecutor& exec) : exec_(exec), state_(std::make_shared<uint64_t>(0)) {}
  ~SimTimer() override { Cancel(); }
  void ExpiresAt(MonoClock::time_point t, std::function<void()> task) override {
    const uint64_t gen = ++*state_;
    std::weak_ptr<uint64_t> weak = state_;
    SimExecutor* exec = &exec_;
    exec_.env().world().At(World::ToNanos(t), exec_.env().process(),
                           [weak, gen, exec, task = std::move(task)]() mutable {
                             auto s = weak.lock();
                             if (!s || *s != gen) return;
                             exec->Post(std::move(task));
                           });
  }
  void Cancel() override { ++*state_; }

 private:
  SimExecutor& exec_;
  std::shared_ptr<uint64_t> state_;
};

std::unique_ptr<exec::Timer> SimExecutor::NewTimer() { return std::make_unique<SimTimer>(*this); }

}  // namespace

SimEnv::SimEnv(World& world, ProcessRef process, fs::FileSystem& fs, std::string boot_id)
    : world_(world), process_(std::move(process)), fs_(fs), boot_id_(std::move(boot_id)) {}

std::unique_ptr<exec::Worker> SimEnv::StartWorker(std::string name, exec::Step step) {
  return std::make_unique<SimWorker>(*this, dynamic_cast<FileSystemSim*>(&fs_), std::move(name),
                                     std::move(step));
}

std::unique_ptr<exec::Executor> SimEnv::NewExecutor(std::string name) {
  return std::make_unique<SimExecutor>(*this, std::move(name));
}

}  // namespace rangekv::sim
