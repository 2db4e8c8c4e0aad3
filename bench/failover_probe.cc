// failover_probe — writes one key per range over and over through the smart
// client and logs every write, so a script can tell how long writes to a
// range stopped after a fault (scripts/bench-failover).
//
//   failover_probe --zk CONNECT [--cluster NAME] --key K [--key K ...]
//                  [--interval-ms 10] [--timeout-ms 10000] --duration S
//                  --log FILE
//
// One thread per key, each with one write in flight at a time (a blocking
// Put with --timeout-ms; the client retries within it while a range has no
// owner), then a pause to the next multiple of --interval-ms since its
// previous write began. Each write is one line of FILE:
//
//   <start ms> <end ms> <key> <OK | CODE>
//
// with milliseconds of the system clock (UTC epoch), so they line up with
// the times the script records its faults at. Exit status: 0, or 2 on bad
// usage, when the cluster cannot be reached, or when FILE cannot be
// written.
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.h"
#include "common/mutex.h"
#include "rangekv/client.h"

namespace rangekv::bench {
namespace {

struct Options {
  std::string zk;
  std::string cluster = kDefaultCluster;
  std::vector<std::string> keys;
  int interval_ms = 10;
  int timeout_ms = 10000;
  double duration_s = 0;
  std::string log;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    bool ok = true;
    if (a == "--zk")
      o.zk = v;
    else if (a == "--cluster")
      o.cluster = v;
    else if (a == "--key")
      o.keys.emplace_back(v);
    else if (a == "--interval-ms")
      ok = ParsePositive(v, o.interval_ms);
    else if (a == "--timeout-ms")
      ok = ParsePositive(v, o.timeout_ms);
    else if (a == "--duration")
      ok = ParsePositive(v, o.duration_s);
    else if (a == "--log")
      o.log = v;
    else
      ok = false;
    if (!ok) return false;
  }
  return argc % 2 == 1 && !o.zk.empty() && !o.keys.empty() && o.duration_s > 0 && !o.log.empty();
}

class Probe {
 public:
  Probe(const Options& o, Client& client, std::FILE* log) : o_(o), client_(client), log_(log) {}

  void Run() {
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(o_.duration_s));
    std::vector<std::thread> threads;
    for (const std::string& key : o_.keys) {
      threads.emplace_back([this, key, end] { Loop(key, end); });
    }
    for (auto& t : threads) t.join();
  }

 private:
  void Loop(const std::string& key, std::chrono::steady_clock::time_point end) {
    const auto interval = std::chrono::milliseconds(o_.interval_ms);
    CallOptions call;
    call.timeout = std::chrono::milliseconds(o_.timeout_ms);
    uint64_t n = 0;
    while (std::chrono::steady_clock::now() < end) {
      const auto began = std::chrono::steady_clock::now();
      const int64_t start = NowMs();
      auto r = client_.Put(key, "probe-" + std::to_string(++n), call);
      const int64_t done = NowMs();
      {
        MutexLock lock(mu_);
        std::fprintf(log_, "%" PRId64 " %" PRId64 " %s %s\n", start, done, key.c_str(),
                     r.ok() ? "OK" : CodeName(r.status().code()));
      }
      std::this_thread::sleep_until(began + interval);
    }
  }

  const Options& o_;
  Client& client_;
  std::FILE* log_;
  Mutex mu_;
};

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: failover_probe --zk CONNECT [--cluster NAME] --key K [--key K ...]\n"
                 "                      [--interval-ms 10] [--timeout-ms 10000] --duration S\n"
                 "                      --log FILE\n");
    return 2;
  }
  ClientOptions copts;
  copts.request_timeout = std::chrono::milliseconds(o.timeout_ms);
  auto client = Client::Connect(o.zk, o.cluster, copts);
  if (!client.ok()) {
    std::fprintf(stderr, "failover_probe: %s\n", client.status().ToString().c_str());
    return 2;
  }
  std::FILE* log = std::fopen(o.log.c_str(), "w");
  if (log == nullptr) {
    std::fprintf(stderr, "failover_probe: cannot write %s: %s\n", o.log.c_str(),
                 std::strerror(errno));
    return 2;
  }
  setvbuf(log, nullptr, _IOLBF, 0);  // a line per write, readable while it runs
  Probe(o, **client, log).Run();
  return std::fclose(log) == 0 ? 0 : 2;
}

}  // namespace
}  // namespace rangekv::bench

int main(int argc, char** argv) { return rangekv::bench::Main(argc, argv); }
