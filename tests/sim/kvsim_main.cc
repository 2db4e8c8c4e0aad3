// kvsim — runs the deterministic simulation (tests/sim/sim_run.h).
//
//   kvsim --seeds N [--first S]      seeds S .. S+N-1 (default S = 1)
//   kvsim --seed S [--verbose]       one seed; --verbose prints the
//                                    processes' logs with simulated time
//                                    (KVSIM_DEBUG=1: debug lines too)
//   kvsim --seed-file F              the seeds listed in F, one per line,
//                                    '#' comments (regression seeds)
//   options: --duration-ms D (client load under faults, default 8000),
//            --max-events E (watchdog per seed, default 3000000),
//            --no-faults, --no-transfers, --no-splits, --no-merges (the
//            nemesis asks for no ownership transfers, splits, merges: how seeds found
//            before they existed replay their old runs), --no-detector
//            (the coordinator waits for session expiry alone),
//            --failure-timeout-ms N (the detector's timeout instead of
//            the one drawn; 0 = off)
//
// Prints one line per seed that broke an invariant, with how to replay it,
// then a summary. Exit status: 0 when every seed held every invariant, 1
// when one did not, 2 for bad arguments.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "tests/sim/sim_run.h"

namespace {

using rangekv::sim::RunOptions;
using rangekv::sim::RunResult;

int Usage() {
  std::fprintf(stderr,
               "usage: kvsim --seeds N [--first S] | --seed S [--verbose] | --seed-file F\n"
               "             [--duration-ms D] [--max-events E] [--no-faults] [--no-transfers]\n"
               "             [--no-splits] [--no-merges] [--no-detector]\n"
               "             [--failure-timeout-ms N]\n");
  return 2;
}

bool ParseU64(const char* s, uint64_t* out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0') return false;
  *out = v;
  return true;
}

void Report(const RunResult& r, const RunOptions& o, bool always) {
  if (r.ok() && !always) return;
  std::printf("seed %llu: %s\n", static_cast<unsigned long long>(r.seed),
              r.ok() ? "held every invariant" : "FAILED");
  std::printf("  setup: %s\n", r.setup.c_str());
  for (const std::string& f : r.faults) std::printf("  fault at %s\n", f.c_str());
  for (const std::string& p : r.problems) std::printf("  %s\n", p.c_str());
  std::printf("  %llu events, %llu client ops, %llu records committed\n",
              static_cast<unsigned long long>(r.events), static_cast<unsigned long long>(r.ops),
              static_cast<unsigned long long>(r.committed));
  if (!r.ok()) {
    const std::string timeout =
        o.failure_timeout ? " --failure-timeout-ms " + std::to_string(o.failure_timeout->count())
                          : "";
    std::printf("  replay: scripts/simulate --seed %llu%s%s%s%s%s --verbose\n",
                static_cast<unsigned long long>(r.seed), o.transfers ? "" : " --no-transfers",
                o.splits ? "" : " --no-splits", o.merges ? "" : " --no-merges",
                o.detector ? "" : " --no-detector", timeout.c_str());
  }
  std::fflush(stdout);
}

// Seeds listed in a file, one per line; '#' starts a comment.
bool ReadSeedFile(const std::string& path, std::vector<uint64_t>* seeds) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "kvsim: cannot read %s\n", path.c_str());
    return false;
  }
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = line.substr(0, line.find('#'));
    line.erase(0, line.find_first_not_of(" \t"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) continue;
    uint64_t seed = 0;
    if (!ParseU64(line.c_str(), &seed)) {
      std::fprintf(stderr, "kvsim: %s:%d: not a seed: %s\n", path.c_str(), number, line.c_str());
      return false;
    }
    seeds->push_back(seed);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  RunOptions base;
  uint64_t first = 1, count = 0, one = 0;
  bool single = false;
  std::string seed_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](uint64_t* out) { return i + 1 < argc && ParseU64(argv[++i], out); };
    uint64_t v = 0;
    if (a == "--seeds" && value(&count)) continue;
    if (a == "--first" && value(&first)) continue;
    if (a == "--seed" && value(&one)) {
      single = true;
      continue;
    }
    if (a == "--seed-file" && i + 1 < argc) {
      seed_file = argv[++i];
      continue;
    }
    if (a == "--duration-ms" && value(&v)) {
      base.duration = static_cast<int64_t>(v) * rangekv::sim::kMilli;
      continue;
    }
    if (a == "--failure-timeout-ms" && value(&v)) {
      base.failure_timeout = std::chrono::milliseconds(v);
      continue;
    }
    if (a == "--max-events" && value(&v)) {
      base.max_events = v;
      continue;
    }
    if (a == "--verbose") {
      base.verbose = true;
      continue;
    }
    if (a == "--no-faults") {
      base.faults = false;
      continue;
    }
    if (a == "--no-transfers") {
      base.transfers = false;
      continue;
    }
    if (a == "--no-splits") {
      base.splits = false;
      continue;
    }
    if (a == "--no-merges") {
      base.merges = false;
      continue;
    }
    if (a == "--no-detector") {
      base.detector = false;
      continue;
    }
    return Usage();
  }
  if ((single ? 1 : 0) + (count != 0 ? 1 : 0) + (seed_file.empty() ? 0 : 1) != 1) return Usage();
  std::vector<uint64_t> seeds;
  if (single) {
    seeds.push_back(one);
  } else if (!seed_file.empty()) {
    if (!ReadSeedFile(seed_file, &seeds)) return 2;
  } else {
    for (uint64_t s = first; s < first + count; ++s) seeds.push_back(s);
  }
  const auto start = std::chrono::steady_clock::now();
  uint64_t failed = 0, events = 0, ops = 0;
  for (uint64_t s : seeds) {
    RunOptions o = base;
    o.seed = s;
    RunResult r = rangekv::sim::RunSeed(o);
    events += r.events;
    ops += r.ops;
    if (!r.ok()) ++failed;
    Report(r, o, single);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string which = seed_file.empty() ? std::to_string(seeds.front()) + ".." +
                                              std::to_string(seeds.back())
                                        : "from " + seed_file;
  std::printf("%zu seeds (%s), %llu failed; %llu events, %llu client ops, %.1f s\n",
              seeds.size(), which.c_str(), static_cast<unsigned long long>(failed),
              static_cast<unsigned long long>(events), static_cast<unsigned long long>(ops), secs);
  return failed == 0 ? 0 : 1;
}
