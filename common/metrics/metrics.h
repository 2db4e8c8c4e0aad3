// common/metrics/metrics.h — Prometheus metrics for rangekv programs: a registry of
// counters, gauges and histograms, and an HTTP endpoint serving them.
//
// A thin facade over prometheus-cpp (core + pull): programs never include
// prometheus headers, and no exception of that library escapes (an invalid
// name or label is logged and yields a detached, do-nothing handle).
//
// Usage:
//
//   metrics::Registry registry;
//   metrics::CounterFamily requests =
//       registry.AddCounterFamily("rangekv_kvnode_requests_total", "Requests handled.");
//   metrics::Counter gets_ok = requests.WithLabels({{"op", "get"}, {"result", "OK"}});
//   gets_ok.Inc();
//   auto http = metrics::HttpEndpoint::Start("127.0.0.1", 9100, registry);  // keep it alive
//
// Endpoint protocol: HTTP/1.1, GET /metrics answers 200 with the Prometheus
// text exposition format (version 0.0.4, "Content-Type: text/plain;
// version=0.0.4"); every other path answers 404. The server is civetweb,
// run by prometheus-cpp's Exposer on its own threads (2).
//
// Naming (Prometheus conventions): snake_case, prefixed "rangekv_<program>_",
// counters end in "_total", durations are in seconds ("_seconds").
//
// Handles (Counter, Gauge, Histogram, *Family) are small values that point
// into the Registry: copy them freely; they stay valid for the Registry's
// lifetime. A default-constructed handle is detached: updates do nothing and
// reads return 0.
//
// Thread-safety: every method of every class here is safe from any thread.
// Counter/Gauge updates are lock-free (an atomic add); Histogram::Observe
// takes a short per-series mutex; WithLabels takes the family's mutex (look
// series up once, keep the handle, do not call it per request).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rangekv/status.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
class Exposer;
template <typename T>
class Family;
}  // namespace prometheus

namespace rangekv::metrics {

// Label name -> value. Names follow [a-zA-Z_][a-zA-Z0-9_]*.
using Labels = std::map<std::string, std::string>;

class Counter {
 public:
  Counter() = default;
  explicit Counter(prometheus::Counter* c) : c_(c) {}
  // Adds `by` (must be >= 0; negative values are ignored).
  void Inc(double by = 1) const;
  double Value() const;
  bool attached() const { return c_ != nullptr; }

 private:
  prometheus::Counter* c_ = nullptr;
};

class Gauge {
 public:
  Gauge() = default;
  explicit Gauge(prometheus::Gauge* g) : g_(g) {}
  void Set(double v) const;
  void Inc(double by = 1) const;
  void Dec(double by = 1) const;
  double Value() const;
  bool attached() const { return g_ != nullptr; }

 private:
  friend class GaugeFamily;
  prometheus::Gauge* g_ = nullptr;
};

class Histogram {
 public:
  Histogram() = default;
  explicit Histogram(prometheus::Histogram* h) : h_(h) {}
  void Observe(double v) const;
  bool attached() const { return h_ != nullptr; }

 private:
  prometheus::Histogram* h_ = nullptr;
};

// A metric name with its help text; one series per distinct label set.
// WithLabels returns the same series for the same labels every time.
class CounterFamily {
 public:
  CounterFamily() = default;
  explicit CounterFamily(prometheus::Family<prometheus::Counter>* f) : f_(f) {}
  Counter WithLabels(const Labels& labels = {}) const;

 private:
  prometheus::Family<prometheus::Counter>* f_ = nullptr;
};

class GaugeFamily {
 public:
  GaugeFamily() = default;
  explicit GaugeFamily(prometheus::Family<prometheus::Gauge>* f) : f_(f) {}
  Gauge WithLabels(const Labels& labels = {}) const;
  // Drops the series (a range this node no longer owns); g is detached
  // and must not be used again.
  void Remove(Gauge& g) const;

 private:
  prometheus::Family<prometheus::Gauge>* f_ = nullptr;
};

class HistogramFamily {
 public:
  HistogramFamily() = default;
  HistogramFamily(prometheus::Family<prometheus::Histogram>* f, std::vector<double> buckets)
      : f_(f), buckets_(std::move(buckets)) {}
  Histogram WithLabels(const Labels& labels = {}) const;

 private:
  prometheus::Family<prometheus::Histogram>* f_ = nullptr;
  std::vector<double> buckets_;
};

// count upper bounds start, start*factor, start*factor^2, ... (the +Inf
// bucket is implicit). Empty unless start > 0, factor > 1, count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// Owns every metric registered in it. Adding a family whose name exists
// with the same type returns the existing family; with another type (or an
// invalid name) it logs an error and returns a detached family.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  CounterFamily AddCounterFamily(const std::string& name, const std::string& help);
  GaugeFamily AddGaugeFamily(const std::string& name, const std::string& help);
  // buckets: strictly increasing upper bounds.
  HistogramFamily AddHistogramFamily(const std::string& name, const std::string& help,
                                     std::vector<double> buckets);

  // Every series in the text exposition format, as GET /metrics serves it.
  std::string TextFormat() const;

 private:
  friend class HttpEndpoint;
  std::shared_ptr<prometheus::Registry> registry_;
};

// Serves a Registry over HTTP (see the protocol above) until destroyed.
class HttpEndpoint {
 public:
  // Resolves host (a name, IPv4 or IPv6 address; blocking DNS: call at start
  // up) and listens on it; port 0 picks a free port. UNAVAILABLE with a
  // one-line message when the host does not resolve or the address cannot be
  // bound. The registry must outlive the endpoint.
  static Result<std::unique_ptr<HttpEndpoint>> Start(const std::string& host, uint16_t port,
                                                     const Registry& registry);
  ~HttpEndpoint();  // stops the server threads
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The bound port (the real one when 0 was asked for).
  uint16_t port() const { return port_; }
  // "IP:PORT" (IPv6 bracketed) actually listened on.
  const std::string& address() const { return address_; }

 private:
  HttpEndpoint(std::unique_ptr<prometheus::Exposer> exposer, uint16_t port, std::string address);
  std::unique_ptr<prometheus::Exposer> exposer_;
  uint16_t port_;
  std::string address_;
};

}  // namespace rangekv::metrics
