#include "bench/key_chooser.h"

#include <algorithm>
#include <cmath>

namespace rangekv::bench {

std::optional<KeyDistribution> ParseKeyDistribution(std::string_view s) {
  if (s == "uniform") return KeyDistribution::kUniform;
  if (s == "zipfian") return KeyDistribution::kZipfian;
  return std::nullopt;
}

const char* KeyDistributionName(KeyDistribution d) {
  return d == KeyDistribution::kUniform ? "uniform" : "zipfian";
}

KeyChooser::KeyChooser(KeyDistribution d, uint64_t items)
    : dist_(d), items_(std::max<uint64_t>(items, 1)) {
  if (dist_ != KeyDistribution::kZipfian) return;
  const double theta = kZipfianTheta;
  for (uint64_t i = 1; i <= items_; ++i) zeta_n_ += 1.0 / std::pow(static_cast<double>(i), theta);
  const double zeta_2 = 1.0 + 1.0 / std::pow(2.0, theta);
  alpha_ = 1.0 / (1.0 - theta);
  half_pow_theta_ = std::pow(0.5, theta);
  const double n = static_cast<double>(items_);
  // With one item every draw is rank 0 (the branches below never get here).
  eta_ = items_ < 2 ? 0.0 : (1.0 - std::pow(2.0 / n, 1.0 - theta)) / (1.0 - zeta_2 / zeta_n_);
}

uint64_t KeyChooser::Random(uint64_t* state) {  // xorshift64*
  uint64_t s = *state;
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  *state = s;
  return s * 0x2545f4914f6cdd1dULL;
}

double KeyChooser::Uniform01(uint64_t* state) {
  return static_cast<double>(Random(state) >> 11) * 0x1.0p-53;
}

uint64_t KeyChooser::Scramble(uint64_t rank) {  // splitmix64's finaliser
  uint64_t z = rank + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t KeyChooser::NextRank(uint64_t* state) const {
  const double u = Uniform01(state);
  const double uz = u * zeta_n_;
  if (uz < 1.0) return 0;
  if (uz < 1.0 + half_pow_theta_) return std::min<uint64_t>(1, items_ - 1);
  const double r = static_cast<double>(items_) * std::pow(eta_ * u - eta_ + 1.0, alpha_);
  return std::min<uint64_t>(static_cast<uint64_t>(r), items_ - 1);
}

uint64_t KeyChooser::Next(uint64_t* state) const {
  if (dist_ == KeyDistribution::kUniform) return Random(state) % items_;
  return Scramble(NextRank(state)) % items_;
}

}  // namespace rangekv::bench
