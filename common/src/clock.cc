#include "common/clock.h"

#include <atomic>

namespace rangekv {
namespace {

std::atomic<ClockSource> g_source{nullptr};

}  // namespace

MonoClock::time_point MonoClock::now() noexcept {
  if (ClockSource s = g_source.load(std::memory_order_relaxed)) return s();
  return FromSteady(std::chrono::steady_clock::now());
}

void SetClockSourceForTesting(ClockSource source) { g_source.store(source); }

}  // namespace rangekv
