#include "bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace rangekv::bench {

size_t LatencyHistogram::BucketOf(uint64_t value) {
  constexpr uint64_t kLinear = uint64_t{1} << kLinearBits;
  if (value < kLinear) return static_cast<size_t>(value);
  if (value >= (uint64_t{1} << kMaxBits)) return kBuckets - 1;
  const int k = 63 - std::countl_zero(value);  // kLinearBits <= k < kMaxBits
  const int shift = k - (kLinearBits - 1);     // keep the top 8 bits
  const uint64_t top = value >> shift;         // in [128, 256)
  return kLinear + static_cast<size_t>(k - kLinearBits) * kSubBuckets + (top - kSubBuckets);
}

uint64_t LatencyHistogram::BucketLow(size_t i) {
  constexpr size_t kLinear = size_t{1} << kLinearBits;
  if (i < kLinear) return i;
  const size_t k = (i - kLinear) / kSubBuckets + kLinearBits;
  const uint64_t top = (i - kLinear) % kSubBuckets + kSubBuckets;
  return top << (k - (kLinearBits - 1));
}

uint64_t LatencyHistogram::BucketHigh(size_t i) {
  constexpr size_t kLinear = size_t{1} << kLinearBits;
  if (i < kLinear) return i;
  const size_t k = (i - kLinear) / kSubBuckets + kLinearBits;
  return BucketLow(i) + (uint64_t{1} << (k - (kLinearBits - 1))) - 1;
}

void LatencyHistogram::Record(uint64_t value) {
  ++buckets_[BucketOf(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() { *this = LatencyHistogram(); }

uint64_t LatencyHistogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // The rank of the sample asked for, 1-based; at least the first sample.
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(BucketHigh(i), max_);
  }
  return max_;
}

std::vector<std::pair<size_t, uint64_t>> IntervalHistogram::Drain() {
  std::vector<std::pair<size_t, uint64_t>> out;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i].load(std::memory_order_relaxed) == 0) continue;
    const uint64_t n = counts_[i].exchange(0, std::memory_order_relaxed);
    if (n != 0) out.emplace_back(i, n);
  }
  return out;
}

}  // namespace rangekv::bench
