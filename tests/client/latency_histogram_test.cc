#include "bench/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace rangekv::bench {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.Percentile(0), 1u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndNarrow) {
  for (size_t i = 0; i + 1 < LatencyHistogram::kBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketHigh(i) + 1, LatencyHistogram::BucketLow(i + 1)) << i;
    ASSERT_EQ(LatencyHistogram::BucketOf(LatencyHistogram::BucketLow(i)), i);
    ASSERT_EQ(LatencyHistogram::BucketOf(LatencyHistogram::BucketHigh(i)), i);
    const uint64_t low = LatencyHistogram::BucketLow(i);
    const uint64_t width = LatencyHistogram::BucketHigh(i) - low + 1;
    ASSERT_LE(width * 128, std::max<uint64_t>(low, 128)) << "bucket " << i << " too wide";
  }
}

TEST(LatencyHistogramTest, HugeValuesAreClamped) {
  LatencyHistogram h;
  h.Record(UINT64_MAX);
  EXPECT_EQ(LatencyHistogram::BucketOf(UINT64_MAX), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(h.max(), UINT64_MAX);
  EXPECT_EQ(h.Percentile(100), LatencyHistogram::BucketHigh(LatencyHistogram::kBuckets - 1));
}

TEST(LatencyHistogramTest, PercentilesWithinOnePercentOfExact) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(11.0, 1.0);  // around 60 us, long tail
  std::vector<uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 200000; ++i) {
    auto v = static_cast<uint64_t>(dist(rng));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    auto rank = static_cast<size_t>(std::ceil(p / 100 * values.size())) - 1;
    double exact = static_cast<double>(values[rank]);
    double got = static_cast<double>(h.Percentile(p));
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(got, exact * 1.01) << "p" << p;
  }
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (uint64_t v = 0; v < 5000; v += 7) {
    (v % 2 ? a : b).Record(v * 131);
    all.Record(v * 131);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double p : {1.0, 50.0, 99.0, 99.9, 100.0}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
}

// kvbench's per-second counts: what Drain hands over is what was recorded
// since the last Drain, in the same buckets, and nothing twice.
TEST(IntervalHistogramTest, DrainHandsOverEachRecordOnce) {
  IntervalHistogram h;
  EXPECT_TRUE(h.Drain().empty());
  h.Record(100);
  h.Record(100);
  h.Record(5'000'000);
  auto first = h.Drain();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0], std::make_pair(LatencyHistogram::BucketOf(100), uint64_t{2}));
  EXPECT_EQ(first[1], std::make_pair(LatencyHistogram::BucketOf(5'000'000), uint64_t{1}));
  EXPECT_TRUE(h.Drain().empty());
  h.Record(7);
  auto second = h.Drain();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].second, 1u);
}

}  // namespace
}  // namespace rangekv::bench
