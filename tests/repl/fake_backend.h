// tests/repl/fake_backend.h — an in-memory repl::Backend for unit tests.
//
// Behaves like a single node: ordered map key -> (value, version), versions
// from one counter, batches applied all or none, cas with version 0 meaning
// "must not exist", TOO_LARGE for keys over kMaxKey bytes. `down` makes
// every call fail with UNAVAILABLE, like a node that went away. Every call
// is recorded in `calls` (its method name) so tests can see what ran, and
// the read consistency of each get/scan in `reads`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "repl/backend.h"

namespace rangekv::repl::testing {

class FakeBackend : public Backend {
 public:
  static constexpr size_t kMaxKey = 4096;
  static constexpr uint32_t kDefaultLimit = 100;

  struct Entry {
    std::string value;
    uint64_t version = 0;
  };

  std::map<std::string, Entry> data;
  uint64_t last_version = 0;
  bool down = false;
  bool refuses = false;  // as a TLS node refusing this client: UNAUTHENTICATED
  std::vector<std::string> calls;
  std::vector<ReadConsistency> reads;

  Result<std::optional<VersionedValue>> Get(std::string_view key) override {
    calls.push_back("get");
    reads.push_back(consistency_);
    if (down) return Unavailable();
    if (refuses) return Status(Code::kUnauthenticated, "this node requires TLS");
    auto it = data.find(std::string(key));
    if (it == data.end()) return std::optional<VersionedValue>();
    return std::optional<VersionedValue>(VersionedValue{it->second.value, it->second.version});
  }

  Result<uint64_t> Put(std::string_view key, std::string_view value) override {
    calls.push_back("put");
    return Apply({BatchOp::Put(std::string(key), std::string(value))});
  }

  Result<uint64_t> Delete(std::string_view key) override {
    calls.push_back("delete");
    return Apply({BatchOp::Delete(std::string(key))});
  }

  Result<uint64_t> Cas(std::string_view key, uint64_t expected_version,
                       std::string_view value) override {
    calls.push_back("cas");
    return Apply({BatchOp::Cas(std::string(key), expected_version, std::string(value))});
  }

  Result<ScanResult> Scan(std::string_view start, std::optional<std::string_view> end,
                          uint32_t limit) override {
    calls.push_back("scan");
    reads.push_back(consistency_);
    if (down) return Unavailable();
    if (limit == 0) limit = kDefaultLimit;
    ScanResult out;
    for (auto it = data.lower_bound(std::string(start)); it != data.end(); ++it) {
      if (end && it->first >= *end) break;
      if (out.entries.size() == limit) {
        out.more = true;
        break;
      }
      out.entries.push_back(KeyValue{it->first, it->second.value, it->second.version});
    }
    return out;
  }

  Result<uint64_t> Batch(std::vector<BatchOp> ops) override {
    calls.push_back("batch");
    return Apply(ops);
  }

  Status Ping() override {
    calls.push_back("ping");
    return down ? Unavailable() : Status::Ok();
  }

  std::string Describe() const override { return "fake:0"; }

 private:
  static Status Unavailable() { return Status(Code::kUnavailable, "fake node is down"); }

  Result<uint64_t> Apply(const std::vector<BatchOp>& ops) {
    if (down) return Unavailable();
    for (const BatchOp& op : ops) {  // check everything before applying anything
      if (op.key.size() > kMaxKey) return Status(Code::kTooLarge, "key too large");
      if (op.kind != BatchOp::Kind::kCas) continue;
      auto it = data.find(op.key);
      uint64_t have = it == data.end() ? 0 : it->second.version;
      if (have != op.expected_version) {
        return Status(Code::kCasFailed, "key " + op.key + " is at version " +
                                            std::to_string(have));
      }
    }
    ++last_version;
    for (const BatchOp& op : ops) {
      if (op.kind == BatchOp::Kind::kDelete) {
        data.erase(op.key);
      } else {
        data[op.key] = Entry{op.value, last_version};
      }
    }
    return last_version;
  }
};

}  // namespace rangekv::repl::testing
