// common/clock.h — the monotonic clock every time-based rule of the server
// side reads (leases, the ISR lag, fetch deadlines, fsync batching).
//
// MonoClock is std::chrono::steady_clock unless a test has installed another
// source: the deterministic simulation (sim/) runs a whole cluster in one
// process on simulated time, so "now" must come from it. The check costs one
// relaxed atomic load.
//
// Its time points share steady_clock's epoch, so ToSteady/FromSteady convert
// exactly in production (Asio timers and condition variables want
// steady_clock).
//
// Thread-safety: now() from any thread; install a source before any thread
// that reads the clock starts, and remove it after they have ended.
#pragma once

#include <chrono>

namespace rangekv {

struct MonoClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<MonoClock, duration>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept;

  static std::chrono::steady_clock::time_point ToSteady(time_point t) {
    return std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.time_since_epoch()));
  }
  static time_point FromSteady(std::chrono::steady_clock::time_point t) {
    return time_point(std::chrono::duration_cast<duration>(t.time_since_epoch()));
  }
};

// A replacement for steady_clock::now(); nullptr restores the real clock.
using ClockSource = MonoClock::time_point (*)();
void SetClockSourceForTesting(ClockSource source);

}  // namespace rangekv
