// The metrics facade (common/metrics/metrics.h): series in the text format, handles
// that never throw, and the HTTP endpoint.
#include "common/metrics/metrics.h"

#include <gtest/gtest.h>

#include "tests/kvnode/cluster/cluster_harness.h"

namespace rangekv::metrics {
namespace {

using testing::HttpGet;
using testing::MetricValue;

TEST(MetricsTest, CountersGaugesHistogramsAppearInTheTextFormat) {
  Registry r;
  CounterFamily requests = r.AddCounterFamily("t_requests_total", "Requests.");
  Counter gets = requests.WithLabels({{"op", "get"}});
  gets.Inc();
  gets.Inc(2);
  requests.WithLabels({{"op", "get"}}).Inc();  // same series
  EXPECT_EQ(gets.Value(), 4);
  Gauge g = r.AddGaugeFamily("t_ranges", "Ranges.").WithLabels();
  g.Set(7);
  g.Dec();
  Histogram h = r.AddHistogramFamily("t_seconds", "Latency.", ExponentialBuckets(0.001, 10, 3))
                    .WithLabels({{"op", "put"}});
  h.Observe(0.005);
  h.Observe(5);
  std::string text = r.TextFormat();
  EXPECT_EQ(MetricValue(text, "t_requests_total{op=\"get\"}"), 4.0) << text;
  EXPECT_EQ(MetricValue(text, "t_ranges"), 6.0) << text;
  EXPECT_EQ(MetricValue(text, "t_seconds_bucket{op=\"put\",le=\"0.01\"}"), 1.0) << text;
  EXPECT_EQ(MetricValue(text, "t_seconds_count{op=\"put\"}"), 2.0) << text;
  EXPECT_NE(text.find("# HELP t_requests_total Requests."), std::string::npos);
}

TEST(MetricsTest, BadNamesGiveDetachedHandlesNotExceptions) {
  Registry r;
  Counter bad = r.AddCounterFamily("1 not a name", "x").WithLabels();
  EXPECT_FALSE(bad.attached());
  bad.Inc();
  EXPECT_EQ(bad.Value(), 0);
  Counter bad_label = r.AddCounterFamily("ok_total", "x").WithLabels({{"bad label", "v"}});
  EXPECT_FALSE(bad_label.attached());
  // The same name with another type is refused too.
  EXPECT_FALSE(r.AddGaugeFamily("ok_total", "x").WithLabels().attached());
  EXPECT_FALSE(r.AddHistogramFamily("h", "x", {2, 1}).WithLabels().attached());
  Counter detached;
  detached.Inc();
  EXPECT_EQ(detached.Value(), 0);
  EXPECT_TRUE(ExponentialBuckets(0, 2, 3).empty());
  EXPECT_EQ(ExponentialBuckets(1, 2, 3), (std::vector<double>{1, 2, 4}));
}

TEST(MetricsTest, EndpointServesMetricsAndRefusesATakenPort) {
  Registry r;
  Counter c = r.AddCounterFamily("t_total", "x").WithLabels();
  auto ep = HttpEndpoint::Start("127.0.0.1", 0, r);  // port 0 picks a free one
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  ASSERT_NE((*ep)->port(), 0);
  EXPECT_EQ((*ep)->address(), "127.0.0.1:" + std::to_string((*ep)->port()));
  c.Inc(3);
  auto reply = HttpGet((*ep)->port(), "/metrics");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(MetricValue(reply->body, "t_total"), 3.0) << reply->body;
  auto other = HttpGet((*ep)->port(), "/");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->status, 404);

  auto taken = HttpEndpoint::Start("127.0.0.1", (*ep)->port(), r);
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), Code::kUnavailable);
  EXPECT_NE(taken.status().message().find("cannot serve metrics on 127.0.0.1:"), std::string::npos);
  auto unresolvable = HttpEndpoint::Start("no-such-host.invalid", 0, r);
  ASSERT_FALSE(unresolvable.ok());
  EXPECT_EQ(unresolvable.status().code(), Code::kUnavailable);
}

// "localhost" is loopback without the resolver, so --admin localhost:PORT
// works on a machine without /etc/hosts.
TEST(MetricsTest, LocalhostIsLoopbackWithoutTheResolver) {
  Registry r;
  auto ep = HttpEndpoint::Start("localhost", 0, r);
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  EXPECT_EQ((*ep)->address(), "127.0.0.1:" + std::to_string((*ep)->port()));
}

}  // namespace
}  // namespace rangekv::metrics
