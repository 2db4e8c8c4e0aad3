// common/log.h — minimal leveled logging to stderr, one line per message.
//
// Lines look like "2026-11-22T00:41:34.123Z W kvnode: message". Thread-safe:
// each line is written with a single write(2).
#pragma once

#include <sstream>
#include <string>

namespace rangekv::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLevel(Level level);
Level GetLevel();
// Name printed after the level letter; set once by each program's main.
void SetProgram(std::string name);
void Write(Level level, const std::string& message);
// Replaces the time stamp and program name of every line with what fn
// returns (the simulation prints simulated time and the process); nullptr
// restores them. Install before any thread logs.
void SetLineHeadForTesting(std::string (*fn)());

}  // namespace rangekv::log

#define RANGEKV_LOG(level, expr)                                              \
  do {                                                                        \
    if (::rangekv::log::Level::level >= ::rangekv::log::GetLevel()) {         \
      std::ostringstream _os;                                                 \
      _os << expr;                                                            \
      ::rangekv::log::Write(::rangekv::log::Level::level, _os.str());         \
    }                                                                         \
  } while (0)
#define LOG_DEBUG(expr) RANGEKV_LOG(kDebug, expr)
#define LOG_INFO(expr) RANGEKV_LOG(kInfo, expr)
#define LOG_WARN(expr) RANGEKV_LOG(kWarn, expr)
#define LOG_ERROR(expr) RANGEKV_LOG(kError, expr)
