// bench/bench_args.h — command-line numbers for the benchmark programs
// (kvbench, pingpong, failover_probe).
#pragma once

#include <charconv>
#include <cstring>
#include <system_error>

namespace rangekv::bench {

// The whole of `s` as a number of T (integer or floating point); false on
// anything else (empty, trailing characters, out of T's range).
template <typename T>
bool ParseNumber(const char* s, T& out) {
  const char* end = s + std::strlen(s);
  auto [p, ec] = std::from_chars(s, end, out);
  return ec == std::errc() && p == end;
}

// The same, and above zero.
template <typename T>
bool ParsePositive(const char* s, T& out) {
  return ParseNumber(s, out) && out > 0;
}

}  // namespace rangekv::bench
