// kvcounter — a tiny counter service on rangekv: named counters kept as
// decimal strings, incremented with compare-and-set so that concurrent
// increments from many processes never lose an update.
//
//   kvcounter (--zk CONNECT [--cluster NAME] | --node HOST:PORT) incr NAME [BY]
//   kvcounter (--zk CONNECT [--cluster NAME] | --node HOST:PORT) get NAME
//   kvcounter (--zk CONNECT [--cluster NAME] | --node HOST:PORT) reset NAME
//
// Prints the counter's value after the operation. Exit status: 0 success,
// 1 a request failed (the error is printed), 2 bad arguments.
#include <charconv>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "rangekv/client.h"

namespace {

constexpr int kMaxCasAttempts = 100;

int Usage(std::ostream& out, int code) {
  out << "usage: kvcounter (--zk CONNECT [--cluster NAME] | --node HOST:PORT) "
         "incr NAME [BY] | get NAME | reset NAME\n";
  return code;
}

std::string Key(const std::string& name) { return "counter/" + name; }

bool ParseInt(const std::string& s, int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

// The counter's value and the version to CAS against (0: absent).
rangekv::Result<std::pair<int64_t, uint64_t>> Read(rangekv::Client& c, const std::string& key) {
  auto got = c.Get(key);
  if (!got.ok()) return got.status();
  if (!got->has_value()) return std::pair<int64_t, uint64_t>{0, 0};
  int64_t v = 0;
  if (!ParseInt((*got)->value, v)) {
    return rangekv::Status(rangekv::Code::kBadRequest, key + " does not hold a number");
  }
  return std::pair<int64_t, uint64_t>{v, (*got)->version};
}

// Read, add, CAS; on CAS_FAILED someone else won: read again. Any other
// error is returned (a TIMEOUT/UNAVAILABLE write may or may not have
// applied, so it is not retried blindly).
rangekv::Result<int64_t> Increment(rangekv::Client& c, const std::string& key, int64_t by) {
  for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
    auto cur = Read(c, key);
    if (!cur.ok()) return cur.status();
    const int64_t next = cur->first + by;
    auto cas = c.Cas(key, cur->second, std::to_string(next));
    if (cas.ok()) return next;
    if (cas.status().code() != rangekv::Code::kCasFailed) return cas.status();
  }
  return rangekv::Status(rangekv::Code::kTimeout, "too much contention on " + key);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string zk, node, cluster = rangekv::kDefaultCluster;
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) return Usage(std::cout, 0);
  size_t i = 0;
  for (; i + 1 < args.size() && args[i].rfind("--", 0) == 0; i += 2) {
    if (args[i] == "--zk") zk = args[i + 1];
    else if (args[i] == "--cluster") cluster = args[i + 1];
    else if (args[i] == "--node") node = args[i + 1];
    else return Usage(std::cerr, 2);
  }
  if (zk.empty() == node.empty() || i + 2 > args.size()) return Usage(std::cerr, 2);
  const std::string op = args[i], key = Key(args[i + 1]);

  auto client = zk.empty() ? rangekv::Client::ConnectNode(node)
                           : rangekv::Client::Connect(zk, cluster);
  if (!client.ok()) {
    std::cerr << "kvcounter: " << client.status().ToString() << "\n";
    return 1;
  }
  rangekv::Client& c = **client;

  if (op == "get" && i + 2 == args.size()) {
    auto cur = Read(c, key);
    if (!cur.ok()) return std::cerr << "kvcounter: " << cur.status().ToString() << "\n", 1;
    std::cout << cur->first << "\n";
    return 0;
  }
  if (op == "reset" && i + 2 == args.size()) {
    auto put = c.Put(key, "0");
    if (!put.ok()) return std::cerr << "kvcounter: " << put.status().ToString() << "\n", 1;
    std::cout << 0 << "\n";
    return 0;
  }
  if (op == "incr" && i + 2 <= args.size() && i + 3 >= args.size()) {
    int64_t by = 1;
    if (i + 3 == args.size() && !ParseInt(args[i + 2], by)) return Usage(std::cerr, 2);
    auto v = Increment(c, key, by);
    if (!v.ok()) return std::cerr << "kvcounter: " << v.status().ToString() << "\n", 1;
    std::cout << *v << "\n";
    return 0;
  }
  return Usage(std::cerr, 2);
}
