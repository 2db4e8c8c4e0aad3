#include "common/metrics/metrics.h"

#include <netdb.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>

#include <cmath>
#include <exception>

#include "common/log.h"

namespace rangekv::metrics {
namespace {

// prometheus-cpp reports bad names, label sets and bucket lists by throwing;
// none of that may escape into the caller, so each entry point runs here.
template <typename F, typename T>
T Guarded(const char* what, const std::string& name, F&& f, T fallback) {
  try {
    return f();
  } catch (const std::exception& e) {
    LOG_ERROR("metrics: " << what << " '" << name << "': " << e.what());
  }
  return fallback;
}

std::string LabelText(const Labels& labels) {
  std::string s = "{";
  for (const auto& [k, v] : labels) s += (s.size() > 1 ? "," : "") + k + "=" + v;
  return s + "}";
}

// Numeric address for host (civetweb only takes literal IPs). IPv4 first:
// "localhost" should not end up on ::1 when the caller meant 127.0.0.1.
// "localhost" itself is loopback without asking the resolver (RFC 6761), so
// it works on a machine with no /etc/hosts.
Result<std::string> ResolveNumeric(const std::string& host) {
  if (host == "localhost") return std::string("127.0.0.1");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return Status(Code::kUnavailable,
                  "cannot resolve metrics host '" + host + "': " + ::gai_strerror(rc));
  }
  std::string v4, v6;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[NI_MAXHOST];
    if (::getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST)) {
      continue;
    }
    if (a->ai_family == AF_INET && v4.empty()) v4 = buf;
    if (a->ai_family == AF_INET6 && v6.empty()) v6 = std::string("[") + buf + "]";
  }
  ::freeaddrinfo(res);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return v6;
  return Status(Code::kUnavailable, "metrics host '" + host + "' has no IP address");
}

}  // namespace

void Counter::Inc(double by) const {
  if (c_ != nullptr && by >= 0) c_->Increment(by);
}
double Counter::Value() const { return c_ != nullptr ? c_->Value() : 0; }

void Gauge::Set(double v) const {
  if (g_ != nullptr) g_->Set(v);
}
void Gauge::Inc(double by) const {
  if (g_ != nullptr) g_->Increment(by);
}
void Gauge::Dec(double by) const {
  if (g_ != nullptr) g_->Decrement(by);
}
double Gauge::Value() const { return g_ != nullptr ? g_->Value() : 0; }

void Histogram::Observe(double v) const {
  if (h_ != nullptr) h_->Observe(v);
}

Counter CounterFamily::WithLabels(const Labels& labels) const {
  if (f_ == nullptr) return Counter();
  return Guarded(
      "counter labels", LabelText(labels), [&] { return Counter(&f_->Add(labels)); }, Counter());
}

Gauge GaugeFamily::WithLabels(const Labels& labels) const {
  if (f_ == nullptr) return Gauge();
  return Guarded(
      "gauge labels", LabelText(labels), [&] { return Gauge(&f_->Add(labels)); }, Gauge());
}

void GaugeFamily::Remove(Gauge& g) const {
  if (f_ != nullptr && g.g_ != nullptr) f_->Remove(g.g_);
  g.g_ = nullptr;
}

Histogram HistogramFamily::WithLabels(const Labels& labels) const {
  if (f_ == nullptr) return Histogram();
  return Guarded(
      "histogram labels", LabelText(labels), [&] { return Histogram(&f_->Add(labels, buckets_)); },
      Histogram());
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  if (!(start > 0) || !(factor > 1) || count < 1) return out;
  for (int i = 0; i < count; ++i) out.push_back(start * std::pow(factor, i));
  return out;
}

Registry::Registry() : registry_(std::make_shared<prometheus::Registry>()) {}
Registry::~Registry() = default;

CounterFamily Registry::AddCounterFamily(const std::string& name, const std::string& help) {
  return Guarded(
      "counter", name,
      [&] {
        return CounterFamily(
            &prometheus::BuildCounter().Name(name).Help(help).Register(*registry_));
      },
      CounterFamily());
}

GaugeFamily Registry::AddGaugeFamily(const std::string& name, const std::string& help) {
  return Guarded(
      "gauge", name,
      [&] {
        return GaugeFamily(&prometheus::BuildGauge().Name(name).Help(help).Register(*registry_));
      },
      GaugeFamily());
}

HistogramFamily Registry::AddHistogramFamily(const std::string& name, const std::string& help,
                                             std::vector<double> buckets) {
  // prometheus-cpp only checks the order when a series is added; check here
  // so a bad list fails once, at registration.
  for (size_t i = 1; i < buckets.size(); ++i) {
    if (!(buckets[i - 1] < buckets[i])) {
      LOG_ERROR("metrics: histogram '" << name << "': buckets are not increasing");
      return HistogramFamily();
    }
  }
  return Guarded(
      "histogram", name,
      [&] {
        auto& f = prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
        return HistogramFamily(&f, std::move(buckets));
      },
      HistogramFamily());
}

std::string Registry::TextFormat() const {
  return Guarded(
      "serialize", "registry",
      [&] { return prometheus::TextSerializer().Serialize(registry_->Collect()); }, std::string());
}

HttpEndpoint::HttpEndpoint(std::unique_ptr<prometheus::Exposer> exposer, uint16_t port,
                           std::string address)
    : exposer_(std::move(exposer)), port_(port), address_(std::move(address)) {}

HttpEndpoint::~HttpEndpoint() = default;

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& host, uint16_t port,
                                                          const Registry& registry) {
  RANGEKV_ASSIGN_OR_RETURN(std::string ip, ResolveNumeric(host));
  std::string bind = ip + ":" + std::to_string(port);
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(bind);
    exposer->RegisterCollectable(registry.registry_);
    std::vector<int> ports = exposer->GetListeningPorts();
    if (ports.empty() || ports.front() <= 0 || ports.front() > 65535) {
      return Status(Code::kUnavailable, "metrics endpoint " + bind + " reports no port");
    }
    auto real = static_cast<uint16_t>(ports.front());
    std::string address = ip + ":" + std::to_string(real);
    return std::unique_ptr<HttpEndpoint>(new HttpEndpoint(std::move(exposer), real, address));
  } catch (const std::exception& e) {
    // civetweb's message is generic ("null context ... binding to port").
    return Status(Code::kUnavailable, "cannot serve metrics on " + bind +
                                          ": the address cannot be bound (in use, or not an "
                                          "address of this host)");
  }
}

}  // namespace rangekv::metrics
