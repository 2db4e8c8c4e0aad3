// tests/kvnode/storage/replication_test_util.h — helpers for the RangeStore
// replication tests: callbacks collected for later checks, synchronous
// AppendReplicated, and an owner -> replica shipping loop.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvnode/storage/range_store.h"
#include "tests/kvnode/storage/store_test_util.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode::testing {

inline constexpr std::chrono::seconds kWait{10};

inline StoreOptions ReplOpts(const std::string& dir, FsyncPolicy p = FsyncPolicy::kNever) {
  StoreOptions o;
  o.dir = dir;
  o.fsync = p;
  o.snapshot_after_bytes = 1u << 30;
  return o;
}

// Write callbacks by name, for tests that write without waiting.
class Outcomes {
 public:
  RangeStore::WriteCallback Cb(const std::string& name) {
    return [this, name](Result<Seq> r) {
      std::lock_guard lock(mu_);
      results_.emplace(name, std::move(r));
      order_.push_back(name);
    };
  }
  bool Done(const std::string& name) const {
    std::lock_guard lock(mu_);
    return results_.count(name) > 0;
  }
  Result<Seq> Get(const std::string& name) const {
    std::lock_guard lock(mu_);
    return results_.at(name);
  }
  bool WaitDone(const std::string& name) const {
    return rangekv::testing::WaitFor([&] { return Done(name); }, kWait);
  }
  std::vector<std::string> order() const {
    std::lock_guard lock(mu_);
    return order_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Result<Seq>> results_;
  std::vector<std::string> order_;
};

inline void WriteAsync(RangeStore& s, Outcomes& out, const std::string& name,
                       std::vector<proto::WriteOp> ops) {
  s.Write(std::move(ops), out.Cb(name));
}
inline void PutAsync(RangeStore& s, Outcomes& out, const std::string& name, std::string k,
                     std::string v) {
  WriteAsync(s, out, name, {proto::WriteOp::Put(std::move(k), std::move(v))});
}

inline Result<Seq> AppendSync(RangeStore& s, std::vector<LogRecord> records) {
  std::promise<Result<Seq>> done;
  auto fut = done.get_future();
  s.AppendReplicated(std::move(records), [&done](Result<Seq> r) { done.set_value(std::move(r)); });
  return fut.get();
}

inline bool WaitCommitted(const RangeStore& s, Seq seq) {
  return rangekv::testing::WaitFor([&] { return s.committed() >= seq; }, kWait);
}

// Ships everything `owner` has written to `replica` (as a follower would:
// read from last + 1, append, wait durable) and commits the replica
// through min(commit, its durable seq). Returns the replica's last seq.
inline Result<Seq> Ship(RangeStore& owner, RangeStore& replica, Seq commit,
                        size_t max_bytes = 1u << 20) {
  for (;;) {
    auto read = owner.ReadLog(replica.last().seq.Next(), max_bytes);
    if (!read.ok()) return read.status();
    if (read->below_log_start) return Status(Code::kRangeUnavailable, "below log start");
    if (read->records.empty()) break;
    auto durable = AppendSync(replica, std::move(read->records));
    if (!durable.ok()) return durable.status();
  }
  replica.Commit(std::min(commit, replica.durable()));
  const Seq want = std::min(commit, replica.durable());
  if (!WaitCommitted(replica, want)) return Status(Code::kTimeout, "replica did not commit");
  return replica.last().seq;
}

// The records of `owner` from `from` on, all of them.
inline std::vector<LogRecord> AllFrom(const RangeStore& owner, Seq from) {
  auto read = owner.ReadLog(from, 1u << 30);
  EXPECT_TRUE(read.ok()) << read.status().ToString();
  return read.ok() ? std::move(read->records) : std::vector<LogRecord>{};
}

}  // namespace rangekv::kvnode::testing
