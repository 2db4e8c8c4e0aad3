// bench/key_chooser.h — which key kvbench touches next.
//
// Two distributions over item numbers [0, n):
//
//   uniform   every item equally likely.
//   zipfian   item of popularity rank r (0 = most popular) drawn with
//             probability proportional to 1 / (r + 1)^theta, theta = 0.99
//             (the skew YCSB's workloads use). Ranks are drawn with the
//             closed-form method of Gray et al. ("Quickly generating
//             billion-record synthetic databases", SIGMOD 1994): one
//             uniform draw and a power per item, after an O(n) sum at
//             construction (about 10 ms per million items). Ranks 0 and 1
//             come out exact; from rank 2 on the method follows the curve
//             approximately (rank 2 about 15 % too often).
//
// Ranks are then scrambled (a 64-bit mix of the rank, modulo n), so the
// popular items are spread over the key space rather than packed at its
// start: in a store that partitions by key range, unscrambled ranks would
// put every hot key into the first range. Scrambling maps several ranks to
// one item now and then; the skew stays.
//
// Thread-safety: Next is const and takes the caller's generator state, so
// one chooser serves every thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rangekv::bench {

enum class KeyDistribution { kUniform, kZipfian };

std::optional<KeyDistribution> ParseKeyDistribution(std::string_view s);
const char* KeyDistributionName(KeyDistribution d);

class KeyChooser {
 public:
  static constexpr double kZipfianTheta = 0.99;

  KeyChooser(KeyDistribution d, uint64_t items);

  // An item in [0, items); advances *state (xorshift64*; never 0).
  uint64_t Next(uint64_t* state) const;

  // The unscrambled zipfian rank of one draw (tests check its shape).
  uint64_t NextRank(uint64_t* state) const;

  static uint64_t Random(uint64_t* state);
  static double Uniform01(uint64_t* state);  // in [0, 1)
  static uint64_t Scramble(uint64_t rank);

 private:
  KeyDistribution dist_;
  uint64_t items_;
  // Zipfian constants (unused for uniform).
  double zeta_n_ = 0, alpha_ = 0, eta_ = 0, half_pow_theta_ = 0;
};

}  // namespace rangekv::bench
