// kvbench — closed-loop load generator against one rangekv node or a cluster.
//
//   kvbench (--node HOST:PORT | --zk CONNECT [--cluster NAME])
//           [--clients 50] [--connections 1] [--pipeline 1]
//           [--ratio GET:PUT | --workload W]
//           [--keys 100000] [--dist uniform|zipfian] [--value-size 100]
//           [--duration 10] [--warmup 1] [--preload] [--io-threads 1]
//           [--timeout-ms 5000] [--interval-log FILE [--interval-ms 1000]]
//           [--json FILE] [--histogram]
//
// Each of `clients` logical clients keeps `pipeline` requests in flight: a
// request is issued again as soon as the previous one completes. Keys are
// "key:" plus 12 decimal digits, drawn from [0, keys) — the form
// redis-benchmark -r uses, so both work on the same key space — uniformly
// or zipfian (bench/key_chooser.h). The logical clients share one Client,
// as the threads of a service do, through its async API: the smart client
// routes each key to its range's owner and multiplexes every request to a
// node over --connections connections (default 1, the library's default).
// Many connections per node split the same requests into smaller writes:
// with 50, a pipelined GET load carried about 2.5 requests per send and ran
// at a third of the speed of one connection.
//
// Workloads in the manner of YCSB (the mix of reads and writes; the key
// distribution is --dist): a = 50/50 GET/PUT, b = 95/5, c = GET only,
// w = PUT only. --workload and --ratio exclude each other.
//
// Output: a progress line each second (with the p99 of that second's
// puts), then a summary and a last line
//   RESULT ops_per_sec=... p50_us=... p99_us=... p999_us=... errors=...
// --histogram prints, before it, the latency at fixed percentiles (all
// requests, GETs, PUTs). --json FILE writes the run as one JSON object:
//   {"workload", "ratio", "dist", "clients", "pipeline", "keys",
//    "value_size", "seconds", "ops", "ops_per_sec",
//    "errors": {CODE: count},
//    "latency_us": {"all"|"get"|"put": {"count", "mean", "max",
//                   "percentiles": [[p, us], ...]}}}
// with the percentiles of kPercentiles (below), each a bucket's high bound.
// --interval-log FILE: every second (or every --interval-ms, 10 to 60000;
// warmup included) two lines, so a script can take percentiles or rates
// over any stretch of the run (sum the counts):
//   <ms since start> put <bucket high ns>:<count> ...
//   <ms since start> get <bucket high ns>:<count> ...
// the non-empty buckets of bench/latency_histogram.h (under 0.8 % wide).
// Exit status: 0 when no request failed, 1 when any did, 2 on bad usage,
// when the node cannot be reached, or when the --json file cannot be
// written.
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.h"
#include "bench/key_chooser.h"
#include "bench/latency_histogram.h"
#include "common/mutex.h"
#include "rangekv/client.h"

namespace rangekv::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kCodes = static_cast<size_t>(Code::kLastCode) + 1;

struct Options {
  std::string node;
  std::string zk;
  std::string cluster = rangekv::kDefaultCluster;
  std::string tls_ca, tls_cert, tls_key;  // TLS files: all three or none
  std::string zk_auth_file;               // ZooKeeper credentials (with --zk)
  int clients = 50;
  int connections = 1;  // per node
  int pipeline = 1;
  uint32_t get_weight = 1;
  uint32_t put_weight = 0;
  uint64_t keys = 100000;
  size_t value_size = 100;
  double duration_s = 10;
  double warmup_s = 1;
  bool preload = false;
  int io_threads = 1;
  int timeout_ms = 5000;
  std::string interval_log;
  int interval_ms = 1000;
  std::string workload;  // "a", "b", "c", "w" or empty (--ratio)
  bool ratio_given = false;
  KeyDistribution dist = KeyDistribution::kUniform;
  std::string json;
  bool histogram = false;
};

// The percentiles --histogram prints and --json writes: dense at the tail.
constexpr double kPercentiles[] = {0,  1,  5,    10,   25,    50,    75,     90,
                                   95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100};

// GET:PUT weights of a YCSB-like workload letter; false when unknown.
bool WorkloadWeights(const std::string& w, uint32_t& get, uint32_t& put) {
  struct Mix {
    const char* name;
    uint32_t get, put;
  };
  static constexpr Mix kMixes[] = {{"a", 1, 1}, {"b", 95, 5}, {"c", 1, 0}, {"w", 0, 1}};
  for (const Mix& m : kMixes) {
    if (w == m.name) {
      get = m.get;
      put = m.put;
      return true;
    }
  }
  return false;
}

void Usage() {
  std::fprintf(stderr,
               "usage: kvbench (--node HOST:PORT | --zk CONNECT [--cluster NAME])\n"
               "               [--clients 50] [--connections 1] [--pipeline 1]\n"
               "               [--ratio GET:PUT | --workload a|b|c|w]\n"
               "               [--keys 100000] [--dist uniform|zipfian] [--value-size 100]\n"
               "               [--duration 10] [--warmup 1] [--preload] [--io-threads 1]\n"
               "               [--timeout-ms 5000] [--interval-log FILE [--interval-ms 1000]]\n"
               "               [--json FILE] [--histogram]\n"
               "               [--tls-ca FILE --tls-cert FILE --tls-key FILE] [--zk-auth-file FILE]\n"
               "workloads: a 50/50 GET/PUT, b 95/5, c GET only, w PUT only\n");
}

bool ParseRatio(const std::string& s, uint32_t& get, uint32_t& put) {
  size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  std::string g = s.substr(0, colon), p = s.substr(colon + 1);
  return ParseNumber(g.c_str(), get) && ParseNumber(p.c_str(), put) && get + put > 0;
}

// Returns false (after printing why) on bad usage.
bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return Usage(), false;
    if (a == "--preload" || a == "--histogram") {
      if (a == "--preload") o.preload = true;
      if (a == "--histogram") o.histogram = true;
      continue;
    }
    static const char* const kValueFlags[] = {
        "--node",        "--zk",          "--cluster",      "--clients",  "--pipeline",
        "--ratio",       "--keys",        "--value-size",   "--duration", "--warmup",
        "--io-threads",  "--timeout-ms",  "--interval-log", "--workload", "--dist",
        "--json",        "--interval-ms", "--tls-ca",       "--tls-cert", "--tls-key",
        "--zk-auth-file", "--connections"};
    if (std::find(std::begin(kValueFlags), std::end(kValueFlags), a) == std::end(kValueFlags)) {
      std::fprintf(stderr, "kvbench: unknown option %s\n", a.c_str());
      return Usage(), false;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "kvbench: %s needs a value\n", a.c_str());
      return false;
    }
    const char* v = argv[++i];
    bool ok = true;
    if (a == "--node") o.node = v;
    else if (a == "--zk") o.zk = v;
    else if (a == "--cluster") o.cluster = v;
    else if (a == "--tls-ca")
      o.tls_ca = v;
    else if (a == "--tls-cert")
      o.tls_cert = v;
    else if (a == "--tls-key")
      o.tls_key = v;
    else if (a == "--zk-auth-file")
      o.zk_auth_file = v;
    else if (a == "--clients") ok = ParseNumber(v, o.clients) && o.clients > 0;
    else if (a == "--connections")
      ok = ParseNumber(v, o.connections) && o.connections > 0;
    else if (a == "--pipeline") ok = ParseNumber(v, o.pipeline) && o.pipeline > 0;
    else if (a == "--ratio")
      ok = o.ratio_given = ParseRatio(v, o.get_weight, o.put_weight);
    else if (a == "--workload")
      ok = WorkloadWeights(o.workload = v, o.get_weight, o.put_weight);
    else if (a == "--dist") {
      auto d = ParseKeyDistribution(v);
      if ((ok = d.has_value())) o.dist = *d;
    } else if (a == "--json")
      ok = !(o.json = v).empty();
    else if (a == "--keys") ok = ParseNumber(v, o.keys) && o.keys > 0;
    else if (a == "--value-size") ok = ParseNumber(v, o.value_size);
    else if (a == "--duration") ok = ParseNumber(v, o.duration_s) && o.duration_s > 0;
    else if (a == "--warmup") ok = ParseNumber(v, o.warmup_s) && o.warmup_s >= 0;
    else if (a == "--io-threads") ok = ParseNumber(v, o.io_threads) && o.io_threads > 0;
    else if (a == "--timeout-ms") ok = ParseNumber(v, o.timeout_ms) && o.timeout_ms > 0;
    else if (a == "--interval-log")
      ok = !(o.interval_log = v).empty();
    else if (a == "--interval-ms")
      ok = ParseNumber(v, o.interval_ms) && o.interval_ms >= 10 && o.interval_ms <= 60000;
    if (!ok) {
      std::fprintf(stderr, "kvbench: bad value for %s: %s\n", a.c_str(), v);
      return false;
    }
  }
  if (o.ratio_given && !o.workload.empty()) {
    std::fprintf(stderr, "kvbench: give --ratio or --workload, not both\n");
    return false;
  }
  if (o.node.empty() == o.zk.empty()) {
    std::fprintf(stderr, "kvbench: give exactly one of --node and --zk\n");
    return Usage(), false;
  }
  return true;
}

// Counters of one I/O thread. Only that thread writes; the main thread reads
// the atomics for progress and the rest after the run has drained.
struct alignas(64) ThreadStats {
  LatencyHistogram gets;  // measured phase only
  LatencyHistogram puts;
  std::atomic<uint64_t> measured_ops{0};
  std::atomic<uint64_t> all_ops{0};
  std::array<std::atomic<uint64_t>, kCodes> errors{};
};

enum class Phase { kPreload, kWarmup, kMeasure, kStop };

class Bench {
 public:
  Bench(const Options& o, Client& client)
      : o_(o), client_(client), value_(o.value_size, 'x'), chooser_(o.dist, o.keys) {}

  // Puts every key once with clients*pipeline requests in flight.
  void Preload() {
    phase_ = Phase::kPreload;
    next_preload_key_ = 0;
    StartChains();
    WaitDrained();
  }

  void StartLoad() {
    phase_ = Phase::kWarmup;
    StartChains();
  }
  void BeginMeasure() {
    measure_start_ = Clock::now();
    phase_ = Phase::kMeasure;
  }
  // Stops issuing and waits for every request in flight.
  void Stop() {
    phase_ = Phase::kStop;
    measure_end_ = Clock::now();
    WaitDrained();
  }

  uint64_t MeasuredOps() const { return Sum(&ThreadStats::measured_ops); }
  Clock::time_point MeasureStart() const { return measure_start_; }
  uint64_t AllOps() const { return Sum(&ThreadStats::all_ops); }
  double MeasuredSeconds() const {
    return std::chrono::duration<double>(measure_end_ - measure_start_).count();
  }
  // The measured latencies of one kind of request, or of both.
  LatencyHistogram MergedHistogram(LatencyHistogram ThreadStats::*which) const EXCLUDES(mu_) {
    LatencyHistogram h;
    MutexLock lock(mu_);
    for (auto& s : stats_) h.Merge((*s).*which);
    return h;
  }
  LatencyHistogram MergedHistogram() const {
    LatencyHistogram h = MergedHistogram(&ThreadStats::gets);
    h.Merge(MergedHistogram(&ThreadStats::puts));
    return h;
  }
  IntervalHistogram& interval(bool put) { return put ? interval_puts_ : interval_gets_; }
  std::array<uint64_t, kCodes> Errors() const EXCLUDES(mu_) {
    std::array<uint64_t, kCodes> out{};
    MutexLock lock(mu_);
    for (auto& s : stats_) {
      for (size_t c = 0; c < kCodes; ++c) out[c] += s->errors[c].load();
    }
    return out;
  }

 private:
  struct Chain {
    uint64_t rng;
    // When its request in flight began. Kept here, not in the callback, so
    // the callback ([this, &chain]) fits std::function without a malloc.
    Clock::time_point start;
  };

  uint64_t Sum(std::atomic<uint64_t> ThreadStats::*field) const EXCLUDES(mu_) {
    MutexLock lock(mu_);
    uint64_t n = 0;
    for (auto& s : stats_) n += ((*s).*field).load(std::memory_order_relaxed);
    return n;
  }

  ThreadStats& Local() EXCLUDES(mu_) {
    thread_local ThreadStats* local = nullptr;
    if (local == nullptr) {
      MutexLock lock(mu_);
      stats_.push_back(std::make_unique<ThreadStats>());
      local = stats_.back().get();
    }
    return *local;
  }

  void StartChains() {
    const size_t n = static_cast<size_t>(o_.clients) * o_.pipeline;
    chains_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      chains_[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1) ^ 0x2545f4914f6cdd1dULL;
      in_flight_.fetch_add(1);
      Issue(chains_[i]);
    }
  }

  void WaitDrained() {
    while (in_flight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  // "key:" + n in 12 zero-padded digits (n < 10^12).
  static std::string Key(uint64_t n) {
    std::string key = "key:000000000000";
    for (size_t i = key.size(); n != 0 && i > 4; n /= 10) {
      key[--i] = static_cast<char>('0' + n % 10);
    }
    return key;
  }

  void Issue(Chain& chain) {
    const Phase phase = phase_.load(std::memory_order_relaxed);
    if (phase == Phase::kStop) return Finish();
    bool is_get;
    uint64_t key;
    if (phase == Phase::kPreload) {
      key = next_preload_key_.fetch_add(1);
      if (key >= o_.keys) return Finish();
      is_get = false;
    } else {
      key = chooser_.Next(&chain.rng);
      uint64_t r = KeyChooser::Random(&chain.rng);
      is_get = (r >> 40) % (o_.get_weight + o_.put_weight) < o_.get_weight;
    }
    chain.start = Clock::now();
    CallOptions call;
    call.timeout = std::chrono::milliseconds(o_.timeout_ms);
    if (is_get) {
      client_.GetAsync(
          Key(key),
          [this, &chain](Result<std::optional<VersionedValue>> r) {
            Complete(chain, r.ok() ? Code::kOk : r.status().code(), false);
          },
          call);
    } else {
      client_.PutAsync(
          Key(key), value_,
          [this, &chain](Result<uint64_t> r) {
            Complete(chain, r.ok() ? Code::kOk : r.status().code(), true);
          },
          call);
    }
  }

  void Complete(Chain& chain, Code code, bool put) {
    const Clock::time_point start = chain.start;
    ThreadStats& s = Local();
    if (code != Code::kOk) {
      s.errors[static_cast<size_t>(code)].fetch_add(1, std::memory_order_relaxed);
    } else {
      s.all_ops.fetch_add(1, std::memory_order_relaxed);
      const Phase phase = phase_.load(std::memory_order_relaxed);
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start);
      if (phase != Phase::kPreload) interval(put).Record(static_cast<uint64_t>(ns.count()));
      if (phase == Phase::kMeasure) {
        (put ? s.puts : s.gets).Record(static_cast<uint64_t>(ns.count()));
        s.measured_ops.fetch_add(1, std::memory_order_relaxed);
      }
    }
    Issue(chain);
  }

  void Finish() { in_flight_.fetch_sub(1); }

  const Options& o_;
  Client& client_;
  const std::string value_;
  const KeyChooser chooser_;
  std::vector<Chain> chains_;
  std::atomic<Phase> phase_{Phase::kWarmup};
  IntervalHistogram interval_puts_;
  IntervalHistogram interval_gets_;
  std::atomic<uint64_t> next_preload_key_{0};
  std::atomic<int64_t> in_flight_{0};
  Clock::time_point measure_start_{};
  Clock::time_point measure_end_{};
  mutable Mutex mu_;
  std::vector<std::unique_ptr<ThreadStats>> stats_ GUARDED_BY(mu_);  // the vector only
};

double Micros(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

using Buckets = std::vector<std::pair<size_t, uint64_t>>;

// The p-th percentile of drained interval counts (a bucket's high bound);
// 0 when empty.
uint64_t Percentile(const Buckets& b, double p) {
  uint64_t total = 0;
  for (const auto& [i, n] : b) total += n;
  if (total == 0) return 0;
  const double want = p / 100.0 * static_cast<double>(total);
  uint64_t seen = 0;
  for (const auto& [i, n] : b) {
    seen += n;
    if (static_cast<double>(seen) >= want) return LatencyHistogram::BucketHigh(i);
  }
  return LatencyHistogram::BucketHigh(b.back().first);
}

void LogInterval(std::FILE* log, int64_t ms, const char* kind, const Buckets& b) {
  std::fprintf(log, "%" PRId64 " %s", ms, kind);
  for (const auto& [i, n] : b) {
    std::fprintf(log, " %" PRIu64 ":%" PRIu64, LatencyHistogram::BucketHigh(i), n);
  }
  std::fprintf(log, "\n");
}

// Runs warmup then the measured phase, printing progress once a second.
// Adds the counts of `b` into `into` (both sorted by bucket).
void AddBuckets(Buckets& into, const Buckets& b) {
  Buckets out;
  out.reserve(into.size() + b.size());
  size_t i = 0, j = 0;
  while (i < into.size() || j < b.size()) {
    if (j == b.size() || (i < into.size() && into[i].first < b[j].first)) {
      out.push_back(into[i++]);
    } else if (i == into.size() || b[j].first < into[i].first) {
      out.push_back(b[j++]);
    } else {
      out.emplace_back(into[i].first, into[i].second + b[j].second);
      ++i, ++j;
    }
  }
  into = std::move(out);
}

// Runs warmup then the measured phase. Every --interval-ms it drains the
// interval histograms (and logs them); once a second, and at the end of
// each phase, it prints a progress line.
void RunTimed(Bench& bench, const Options& o, std::FILE* interval_log) {
  bench.StartLoad();
  const auto t0 = Clock::now();
  const auto warm_end =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
  const auto end = warm_end + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(o.duration_s));
  const auto period = std::chrono::milliseconds(o.interval_ms);
  bool measuring = o.warmup_s <= 0;
  if (measuring) bench.BeginMeasure();
  uint64_t printed_ops = bench.AllOps();  // preload excluded
  auto last_t = t0, printed_t = t0;
  Buckets second_puts;  // since the last progress line
  int line = 0;
  while (true) {
    auto next = std::min(last_t + period, measuring ? end : warm_end);
    std::this_thread::sleep_until(next);
    auto now = Clock::now();
    const bool phase_ends = now >= (measuring ? end : warm_end);
    if (now - last_t > period / 20) {
      const Buckets puts = bench.interval(true).Drain();
      const Buckets gets = bench.interval(false).Drain();
      AddBuckets(second_puts, puts);
      if (interval_log != nullptr) {
        const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - t0).count();
        LogInterval(interval_log, ms, "put", puts);
        LogInterval(interval_log, ms, "get", gets);
        std::fflush(interval_log);
      }
    }
    last_t = now;
    double dt = std::chrono::duration<double>(now - printed_t).count();
    if ((dt >= 0.999 || phase_ends) && dt > 0.05) {
      uint64_t ops = bench.AllOps();
      std::printf("[%3ds] %s %10.0f ops/s", ++line, measuring ? "run   " : "warmup",
                  static_cast<double>(ops - printed_ops) / dt);
      if (!second_puts.empty()) {
        std::printf("  put p99 %.1f ms", Micros(Percentile(second_puts, 99)) / 1000.0);
      }
      double measured_s = std::chrono::duration<double>(now - bench.MeasureStart()).count();
      if (measuring && measured_s > 0.05) {
        std::printf("  (so far %.0f ops/s)", static_cast<double>(bench.MeasuredOps()) / measured_s);
      }
      std::printf("\n");
      std::fflush(stdout);
      printed_ops = ops;
      printed_t = now;
      second_puts.clear();
    }
    if (!measuring && phase_ends) {
      bench.BeginMeasure();
      measuring = true;
    } else if (measuring && phase_ends) {
      break;
    }
  }
  bench.Stop();
}

void PrintPercentiles(const char* name, const LatencyHistogram& h) {
  if (h.count() == 0) return;
  std::printf("%s latency, %" PRIu64 " requests (us):\n", name, h.count());
  for (double p : kPercentiles) std::printf("  p%-8g %12.1f\n", p, Micros(h.Percentile(p)));
}

std::string JsonNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string JsonLatency(const LatencyHistogram& h) {
  std::string out = "{\"count\": " + std::to_string(h.count()) +
                    ", \"mean\": " + JsonNumber(h.mean() / 1000.0) +
                    ", \"max\": " + JsonNumber(Micros(h.max())) + ", \"percentiles\": [";
  bool first = true;
  for (double p : kPercentiles) {
    char pct[32];
    std::snprintf(pct, sizeof pct, "%g", p);
    out += std::string(first ? "" : ", ") + "[" + pct + ", " + JsonNumber(Micros(h.Percentile(p))) +
           "]";
    first = false;
  }
  return out + "]}";
}

// Keys and codes are fixed ASCII words: nothing needs escaping but the
// workload letter and the distribution name, which are also plain words.
bool WriteJson(Bench& bench, const Options& o, double rate, const std::string& errors_json) {
  std::FILE* f = std::fopen(o.json.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "kvbench: cannot write %s: %s\n", o.json.c_str(), std::strerror(errno));
    return false;
  }
  std::fprintf(f,
               "{\"workload\": \"%s\", \"ratio\": \"%u:%u\", \"dist\": \"%s\", \"clients\": %d, "
               "\"pipeline\": %d, \"keys\": %" PRIu64
               ", \"value_size\": %zu, \"seconds\": %.3f, "
               "\"ops\": %" PRIu64
               ", \"ops_per_sec\": %.0f, \"errors\": {%s}, \"latency_us\": "
               "{\"all\": %s, \"get\": %s, \"put\": %s}}\n",
               o.workload.c_str(), o.get_weight, o.put_weight, KeyDistributionName(o.dist),
               o.clients, o.pipeline, o.keys, o.value_size, bench.MeasuredSeconds(),
               bench.MeasuredOps(), rate, errors_json.c_str(),
               JsonLatency(bench.MergedHistogram()).c_str(),
               JsonLatency(bench.MergedHistogram(&ThreadStats::gets)).c_str(),
               JsonLatency(bench.MergedHistogram(&ThreadStats::puts)).c_str());
  const bool ok = std::fclose(f) == 0;
  if (!ok) std::fprintf(stderr, "kvbench: writing %s failed\n", o.json.c_str());
  return ok;
}

int PrintSummary(Bench& bench, const Options& o) {
  const uint64_t ops = bench.MeasuredOps();
  const double secs = bench.MeasuredSeconds();
  const double rate = secs > 0 ? static_cast<double>(ops) / secs : 0;
  const LatencyHistogram h = bench.MergedHistogram();
  const auto errors = bench.Errors();
  uint64_t total_errors = 0;
  std::string by_code, errors_json;
  for (size_t c = 0; c < kCodes; ++c) {
    if (errors[c] == 0) continue;
    total_errors += errors[c];
    by_code += std::string(by_code.empty() ? "" : " ") + CodeName(static_cast<Code>(c)) + "=" +
               std::to_string(errors[c]);
    errors_json += std::string(errors_json.empty() ? "" : ", ") + "\"" +
                   CodeName(static_cast<Code>(c)) + "\": " + std::to_string(errors[c]);
  }
  std::printf("%s %s: %d clients x %d pipeline, ratio %u:%u, %" PRIu64
              " %s keys, %zu-byte values\n",
              o.node.empty() ? "cluster" : "node", o.node.empty() ? o.zk.c_str() : o.node.c_str(),
              o.clients, o.pipeline, o.get_weight, o.put_weight, o.keys,
              KeyDistributionName(o.dist), o.value_size);
  std::printf("total ops: %" PRIu64 " in %.2f s\n", ops, secs);
  std::printf("ops/s:     %.0f\n", rate);
  std::printf("errors:    %s\n", by_code.empty() ? "none" : by_code.c_str());
  std::printf("latency:   p50 %.1f us  p99 %.1f us  p999 %.1f us  max %.1f us  mean %.1f us\n",
              Micros(h.Percentile(50)), Micros(h.Percentile(99)), Micros(h.Percentile(99.9)),
              Micros(h.max()), h.mean() / 1000.0);
  if (o.histogram) {
    PrintPercentiles("all", h);
    PrintPercentiles("get", bench.MergedHistogram(&ThreadStats::gets));
    PrintPercentiles("put", bench.MergedHistogram(&ThreadStats::puts));
  }
  const bool json_ok = o.json.empty() || WriteJson(bench, o, rate, errors_json);
  std::printf("RESULT ops_per_sec=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%" PRIu64 "\n",
              rate, Micros(h.Percentile(50)), Micros(h.Percentile(99)),
              Micros(h.Percentile(99.9)), total_errors);
  std::fflush(stdout);
  if (!json_ok) return 2;
  return total_errors == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) return 2;
  ClientOptions copts;
  copts.connections_per_node = o.connections;
  copts.io_threads = o.io_threads;
  copts.request_timeout = std::chrono::milliseconds(o.timeout_ms);
  copts.tls_ca = o.tls_ca;
  copts.tls_cert = o.tls_cert;
  copts.tls_key = o.tls_key;
  copts.zk_auth_file = o.zk_auth_file;
  auto client = o.zk.empty() ? Client::ConnectNode(o.node, copts)
                             : Client::Connect(o.zk, o.cluster, copts);
  if (!client.ok()) {
    std::fprintf(stderr, "kvbench: %s\n", client.status().ToString().c_str());
    return 2;
  }
  std::FILE* interval_log = nullptr;
  if (!o.interval_log.empty()) {
    interval_log = std::fopen(o.interval_log.c_str(), "w");
    if (interval_log == nullptr) {
      std::fprintf(stderr, "kvbench: cannot write %s: %s\n", o.interval_log.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }
  Bench bench(o, **client);
  if (o.preload) {
    auto t0 = Clock::now();
    bench.Preload();
    std::printf("preloaded %" PRIu64 " keys in %.2f s\n", o.keys,
                std::chrono::duration<double>(Clock::now() - t0).count());
  }
  RunTimed(bench, o, interval_log);
  if (interval_log != nullptr) std::fclose(interval_log);
  return PrintSummary(bench, o);
}

}  // namespace
}  // namespace rangekv::bench

int main(int argc, char** argv) { return rangekv::bench::Main(argc, argv); }
