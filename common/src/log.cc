#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

#include "common/mutex.h"

namespace rangekv::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
Mutex g_program_mu;
std::string g_program GUARDED_BY(g_program_mu) = "rangekv";
std::atomic<std::string (*)()> g_head{nullptr};
}  // namespace

void SetLineHeadForTesting(std::string (*fn)()) { g_head.store(fn); }

void SetLevel(Level level) { g_level.store(level); }
Level GetLevel() { return g_level.load(std::memory_order_relaxed); }

void SetProgram(std::string name) {
  MutexLock lock(g_program_mu);
  g_program = std::move(name);
}

void Write(Level level, const std::string& message) {
  static constexpr char kLetters[] = {'D', 'I', 'W', 'E'};
  if (auto head = g_head.load(std::memory_order_relaxed)) {
    std::string line = head();
    line += ' ';
    line += kLetters[static_cast<int>(level)];
    line += ' ';
    line += message;
    line += '\n';
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
    return;
  }
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string program;
  {
    MutexLock lock(g_program_mu);
    program = g_program;
  }
  char head[96];
  int n = std::snprintf(head, sizeof head, "%s.%03dZ %c %s: ", ts, static_cast<int>(ms),
                        kLetters[static_cast<int>(level)], program.c_str());
  std::string line(head, n > 0 ? static_cast<size_t>(n) : 0);
  line += message;
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace rangekv::log
