// The production implementations of common/exec.h: a thread per worker, an
// Asio io_context thread per executor, and the default Env.
#include "common/exec.h"

#include <pthread.h>

#include <algorithm>
#include <random>
#include <thread>

#include "common/asio_executor.h"
#include "common/fs.h"
#include "common/mutex.h"

namespace rangekv {
namespace exec {
namespace {

// Names the calling thread after its worker or executor, as top -H, perf
// and /proc/<pid>/task/*/comm show it: "range-12-snapshot" becomes
// "r12-snapshot" (Linux keeps 15 bytes).
void NameThisThread(const std::string& name) {
  std::string shown = name.rfind("range-", 0) == 0 ? "r" + name.substr(6) : name;
  shown.resize(std::min<size_t>(shown.size(), 15));
  (void)pthread_setname_np(pthread_self(), shown.c_str());
}

class ThreadWorker final : public Worker {
 public:
  ThreadWorker(std::string name, Step step) : name_(std::move(name)), step_(std::move(step)) {
    thread_ = std::thread([this] {
      NameThisThread(name_);
      Run();
    });
  }
  ~ThreadWorker() override { Join(); }

  void Notify() override {
    // The flag keeps the common case (already notified) off the mutex.
    if (notified_.exchange(true, std::memory_order_acq_rel)) return;
    { MutexLock lock(mu_); }
    cv_.NotifyOne();
  }

  void Join() override {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    NextStep next = NextStep::Again();
    for (;;) {
      if (next.kind() != NextStep::Kind::kAgain) {
        MutexLock lock(mu_);
        auto ready = [&] { return notified_.load(std::memory_order_acquire); };
        if (next.kind() == NextStep::Kind::kAt) {
          cv_.WaitUntil(lock, MonoClock::ToSteady(next.at()), ready);
        } else {
          cv_.Wait(lock, ready);
        }
      }
      notified_.store(false, std::memory_order_release);
      next = step_();
      if (next.kind() == NextStep::Kind::kExit) return;
    }
  }

  const std::string name_;
  const Step step_;
  std::atomic<bool> notified_{false};
  // Guards no data (notified_ is atomic): held around the wait and the
  // notify so that a Notify cannot fall between the check and the sleep.
  Mutex mu_;
  CondVar cv_;
  std::thread thread_;
};

class AsioTimer final : public Timer {
 public:
  explicit AsioTimer(asio::io_context& io) : timer_(io) {}
  ~AsioTimer() override { Cancel(); }
  // Runs on the executor's thread only (the replication code does), like
  // any Asio timer.
  void ExpiresAt(MonoClock::time_point t, std::function<void()> task) override {
    timer_.expires_at(MonoClock::ToSteady(t));
    timer_.async_wait([task = std::move(task)](const boost::system::error_code& ec) {
      if (!ec) task();
    });
  }
  void Cancel() override { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace

AsioExecutor::AsioExecutor(std::string name)
    : name_(std::move(name)), work_(asio::make_work_guard(io_)) {
  thread_ = std::thread([this] {
    NameThisThread(name_);
    io_.run();
  });
}

AsioExecutor::~AsioExecutor() { Stop(); }

void AsioExecutor::Post(std::function<void()> task) {
  MutexLock lock(mu_);
  if (stopped_) return;
  asio::post(io_, std::move(task));
}

std::unique_ptr<Timer> AsioExecutor::NewTimer() { return std::make_unique<AsioTimer>(io_); }

bool AsioExecutor::RunningHere() const { return std::this_thread::get_id() == thread_.get_id(); }

void AsioExecutor::Stop() {
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  work_.reset();
  if (thread_.joinable() && !RunningHere()) thread_.join();
}

}  // namespace exec

namespace {

class DefaultEnvImpl final : public Env {
 public:
  fs::FileSystem& fs() override { return fs::Posix(); }
  std::unique_ptr<exec::Worker> StartWorker(std::string name, exec::Step step) override {
    return std::make_unique<exec::ThreadWorker>(std::move(name), std::move(step));
  }
  std::unique_ptr<exec::Executor> NewExecutor(std::string name) override {
    return std::make_unique<exec::AsioExecutor>(std::move(name));
  }
  uint64_t RandomU64() override {
    std::random_device rd;  // the kernel's CSPRNG on Linux (getrandom)
    return (static_cast<uint64_t>(rd()) << 32) | rd();
  }
  std::string BootId() override {
    auto text = fs::Posix().ReadSmallFile("/proc/sys/kernel/random/boot_id", 256);
    if (!text.ok() || !*text) return "";
    std::string id = **text;
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    return id;
  }
};

}  // namespace

Env& DefaultEnv() {
  static DefaultEnvImpl* env = new DefaultEnvImpl();  // never destroyed: used until exit
  return *env;
}

}  // namespace rangekv
