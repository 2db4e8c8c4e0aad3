// wal_bench — RangeStore write throughput per fsync policy and writer count.
//
// Each writer is a thread with one put in flight at a time (it waits for the
// callback before the next), as a client connection without pipelining
// would. With one writer every put pays a whole write() (and, under
// `always`, an fsync); with many, the log thread's group commit lets puts
// share them. The counters show how much: puts per write() and per fsync,
// counted through the storage layer's fault hook (which injects nothing).
//
//   wal_bench [--benchmark_filter=...]      numbers are for people to read
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.h"
#include "common/mutex.h"
#include "kvnode/storage/range_store.h"

namespace rangekv::kvnode {
namespace {

constexpr int kPutsPerWriter = 200;
constexpr size_t kValueBytes = 100;

std::string MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "wal_bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return {};
  return tmpl;
}

// Waits for one write's callback.
class Waiter {
 public:
  void Done(bool ok) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    done_ = true;
    ok_ = ok;
    cv_.NotifyOne();
  }
  bool Wait() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    cv_.Wait(lock, [&] {
      mu_.AssertHeld();  // Wait calls the predicate with the lock held
      return done_;
    });
    done_ = false;
    return ok_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool done_ GUARDED_BY(mu_) = false;
  bool ok_ GUARDED_BY(mu_) = false;
};

void BM_Put(benchmark::State& state) {
  const auto policy = static_cast<FsyncPolicy>(state.range(0));
  const int writers = static_cast<int>(state.range(1));
  const std::string dir = MakeTempDir();
  StoreOptions opts;
  opts.dir = dir;
  opts.fsync = policy;
  opts.batch_interval = std::chrono::milliseconds(10);
  opts.snapshot_after_bytes = size_t{1} << 40;  // measure the log alone
  auto opened = RangeStore::Open(RangeId(1), KeyRange(), opts);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  std::unique_ptr<RangeStore> store = std::move(opened).value();

  std::atomic<uint64_t> write_calls{0}, sync_calls{0}, failures{0};
  fs::SetFaultHookForTesting([&](fs::FaultPoint p, const std::string&) {
    if (p == fs::FaultPoint::kWrite) ++write_calls;
    if (p == fs::FaultPoint::kSync) ++sync_calls;
    return 0;
  });
  const std::string value(kValueBytes, 'v');
  uint64_t round = 0;
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        Waiter waiter;
        for (int i = 0; i < kPutsPerWriter; ++i) {
          std::string key = "w" + std::to_string(w) + "-" + std::to_string(i % 1000) + "-" +
                            std::to_string(round % 7);
          store->Write({proto::WriteOp::Put(std::move(key), value)},
                       [&waiter](Result<Seq> r) { waiter.Done(r.ok()); });
          if (!waiter.Wait()) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    ++round;
  }
  fs::SetFaultHookForTesting(nullptr);
  const double puts = double(state.iterations()) * writers * kPutsPerWriter;
  state.SetItemsProcessed(static_cast<int64_t>(puts));
  state.counters["puts_per_write"] = puts / double(std::max<uint64_t>(1, write_calls));
  state.counters["puts_per_fsync"] = sync_calls == 0 ? 0.0 : puts / double(sync_calls.load());
  if (failures > 0) state.SkipWithError("some puts failed");
  (void)store->Close();
  store.reset();
  std::filesystem::remove_all(dir);
}

// One submitting thread keeps up to `inflight` puts outstanding, the way a
// server's I/O thread issues writes for many connections and gets the
// callbacks back asynchronously: no thread per writer, no wakeup per put.
void BM_PutPipelined(benchmark::State& state) {
  const auto policy = static_cast<FsyncPolicy>(state.range(0));
  const int64_t inflight = state.range(1);
  const std::string dir = MakeTempDir();
  StoreOptions opts;
  opts.dir = dir;
  opts.fsync = policy;
  opts.snapshot_after_bytes = size_t{1} << 40;
  auto opened = RangeStore::Open(RangeId(1), KeyRange(), opts);
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  std::unique_ptr<RangeStore> store = std::move(opened).value();
  std::atomic<uint64_t> write_calls{0}, sync_calls{0};
  fs::SetFaultHookForTesting([&](fs::FaultPoint p, const std::string&) {
    if (p == fs::FaultPoint::kWrite) ++write_calls;
    if (p == fs::FaultPoint::kSync) ++sync_calls;
    return 0;
  });
  // outstanding, waiting and failures are under mu (locals cannot be GUARDED_BY).
  Mutex mu;
  CondVar cv;
  int64_t outstanding = 0;
  bool waiting = false;
  uint64_t failures = 0;
  const std::string value(kValueBytes, 'v');
  int64_t puts = 0;
  for (auto _ : state) {
    for (int i = 0; i < 1000; ++i, ++puts) {
      {
        MutexLock lock(mu);
        waiting = outstanding >= inflight;
        cv.Wait(lock, [&] { return outstanding < inflight; });
        waiting = false;
        ++outstanding;
      }
      std::vector<proto::WriteOp> ops;
      ops.push_back(proto::WriteOp::Put("key" + std::to_string(puts % 100000), value));
      store->Write(std::move(ops), [&](Result<Seq> r) {
        MutexLock lock(mu);
        failures += !r.ok();
        --outstanding;
        if (waiting) cv.NotifyOne();
      });
    }
  }
  {
    MutexLock lock(mu);
    waiting = true;
    cv.Wait(lock, [&] { return outstanding == 0; });
  }
  fs::SetFaultHookForTesting(nullptr);
  state.SetItemsProcessed(puts);
  state.counters["puts_per_write"] = double(puts) / double(std::max<uint64_t>(1, write_calls));
  state.counters["puts_per_fsync"] = sync_calls == 0 ? 0.0 : double(puts) / double(sync_calls);
  if (failures > 0) state.SkipWithError("some puts failed");
  (void)store->Close();
  store.reset();
  std::filesystem::remove_all(dir);
}

void Args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"fsync", "writers"});
  for (FsyncPolicy p : {FsyncPolicy::kNever, FsyncPolicy::kBatch, FsyncPolicy::kAlways}) {
    for (int writers : {1, 8, 50}) b->Args({static_cast<int64_t>(p), writers});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
}
// fsync: 0 = always, 1 = batch, 2 = never (FsyncPolicy's values).
BENCHMARK(BM_Put)->Apply(Args);

void PipelinedArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"fsync", "inflight"});
  for (FsyncPolicy p : {FsyncPolicy::kNever, FsyncPolicy::kBatch, FsyncPolicy::kAlways}) {
    for (int inflight : {1, 50}) b->Args({static_cast<int64_t>(p), inflight});
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
}
BENCHMARK(BM_PutPipelined)->Apply(PipelinedArgs);

}  // namespace
}  // namespace rangekv::kvnode

BENCHMARK_MAIN();
