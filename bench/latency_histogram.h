// bench/latency_histogram.h — a log-bucketed latency histogram for kvbench.
//
// Buckets in the spirit of HdrHistogram, with 8 significant bits:
//
//   | value v (ns)        | bucket index                              | width   |
//   |---------------------|-------------------------------------------|---------|
//   | 0 .. 255            | v                                         | 1       |
//   | 2^k .. 2^(k+1)-1,   | 256 + (k-8)*128 + (v >> (k-7)) - 128      | 2^(k-7) |
//   |   k = 8 .. 47       |                                           |         |
//
// So every recorded value lands in a bucket whose width is under 1/128 of
// the value: a percentile is reported within 0.8 % of the true sample.
// Values of 2^48 ns (about 78 hours) and more are clamped into the last
// bucket. Percentiles report the highest value of their bucket.
//
// Thread-safety: none; keep one histogram per thread and Merge at the end.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace rangekv::bench {

class LatencyHistogram {
 public:
  static constexpr int kLinearBits = 8;      // values below 2^8 have their own bucket
  static constexpr int kMaxBits = 48;        // values of 2^48 and above are clamped
  static constexpr size_t kSubBuckets = 128;  // per power of two above the linear part
  static constexpr size_t kBuckets =
      (size_t{1} << kLinearBits) + (kMaxBits - kLinearBits) * kSubBuckets;

  void Record(uint64_t value);
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The smallest bucket bound at or below which at least p percent of the
  // samples lie (p in [0, 100]); 0 when empty. Never above max().
  uint64_t Percentile(double p) const;

  static size_t BucketOf(uint64_t value);
  // Smallest and largest value that fall into bucket i.
  static uint64_t BucketLow(size_t i);
  static uint64_t BucketHigh(size_t i);

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

// Latencies of the last interval (kvbench's one-second lines), shared by
// every I/O thread: Record is a relaxed atomic add, Drain hands the counts
// over and zeroes them. A record racing a Drain lands in one interval or
// the next, never lost. The buckets of LatencyHistogram, so a percentile
// over several intervals is the one over their summed counts.
class IntervalHistogram {
 public:
  void Record(uint64_t value) {
    counts_[LatencyHistogram::BucketOf(value)].fetch_add(1, std::memory_order_relaxed);
  }
  // (bucket index, count) of every non-empty bucket, zeroed here.
  std::vector<std::pair<size_t, uint64_t>> Drain();

 private:
  std::array<std::atomic<uint64_t>, LatencyHistogram::kBuckets> counts_{};
};

}  // namespace rangekv::bench
