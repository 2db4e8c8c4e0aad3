// RangeStore's turns (range_store.h "Turns"): under `batch` and `never` a
// replica's append, a commit and the turn an owner's writes asked for run
// on the caller's thread when no turn runs, waking no log thread; under
// `always` the log thread writes. The store's log thread is held here (it
// steps only when the store closes), so "nothing woke it" and "the caller
// did it" are facts, not timings.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>

#include "common/exec.h"
#include "kvnode/storage/range_store.h"
#include "tests/kvnode/storage/replication_test_util.h"

namespace rangekv::kvnode {
namespace {

using namespace rangekv::kvnode::testing;
using rangekv::testing::TempDir;

// A log worker that never steps on its own: it counts the wake-ups asked
// of it, and runs its steps on the closing thread (Join) until it exits.
class HeldWorker : public exec::Worker {
 public:
  HeldWorker(exec::Step step, std::atomic<int>& notified)
      : step_(std::move(step)), notified_(notified) {}
  void Notify() override { notified_.fetch_add(1); }
  void Join() override {
    while (step_().kind() != exec::NextStep::Kind::kExit) {
    }
  }

 private:
  exec::Step step_;
  std::atomic<int>& notified_;
};

// The default environment, with every store's log thread held.
class HeldLogEnv : public Env {
 public:
  fs::FileSystem& fs() override { return DefaultEnv().fs(); }
  std::unique_ptr<exec::Worker> StartWorker(std::string name, exec::Step step) override {
    if (name.ends_with("-log")) return std::make_unique<HeldWorker>(std::move(step), notified);
    return DefaultEnv().StartWorker(std::move(name), std::move(step));
  }
  std::unique_ptr<exec::Executor> NewExecutor(std::string name) override {
    return DefaultEnv().NewExecutor(std::move(name));
  }
  uint64_t RandomU64() override { return DefaultEnv().RandomU64(); }
  std::string BootId() override { return DefaultEnv().BootId(); }

  std::atomic<int> notified{0};  // wake-ups asked of the log threads
};

// Three records written by an ordinary owner store.
std::vector<LogRecord> OwnersRecords(const std::string& dir) {
  auto owner = MustOpen(ReplOpts(dir));
  for (const char* k : {"a", "b", "c"}) EXPECT_TRUE(Put(*owner, k, "v").ok());
  return AllFrom(*owner, Seq(1));
}

// What a write's or an append's callback got, and on which thread.
struct Outcome {
  std::optional<Result<Seq>> result;
  std::thread::id thread;
};
RangeStore::WriteCallback Into(Outcome& out) {
  return [&out](Result<Seq> r) { out = Outcome{std::move(r), std::this_thread::get_id()}; };
}

// A replicated store (a replica's, or an owner's with the gate off) with
// its log thread held, counting from no wake-up.
struct HeldStore {
  HeldStore(FsyncPolicy policy, bool gate) {
    StoreOptions o = ReplOpts(tmp.Sub("replica"), policy);
    o.env = &env;
    store = MustOpen(o);
    if (gate) store->SetCommitGate(true);
    env.notified = 0;
  }
  // Appends the owner's three records (seqs 1-3).
  void Append(RangeStore::WriteCallback cb) {
    store->AppendReplicated(OwnersRecords(tmp.Sub("owner")), std::move(cb));
  }

  TempDir tmp;
  HeldLogEnv env;
  std::unique_ptr<RangeStore> store;
};

class CallerTurns : public ::testing::TestWithParam<FsyncPolicy> {};
INSTANTIATE_TEST_SUITE_P(NotAlways, CallerTurns,
                         ::testing::Values(FsyncPolicy::kBatch, FsyncPolicy::kNever),
                         [](const auto& info) { return std::string(FsyncPolicyName(info.param)); });

TEST_P(CallerTurns, AReplicaAppendsAndCommitsOnItsOwnThread) {
  HeldStore r(GetParam(), /*gate=*/true);
  Outcome appended;
  r.Append(Into(appended));
  ASSERT_TRUE(appended.result.has_value()) << "the append waited for the log thread";
  EXPECT_EQ(appended.thread, std::this_thread::get_id());
  EXPECT_EQ(**appended.result, Seq(3));
  EXPECT_EQ(r.store->durable(), Seq(3));
  EXPECT_EQ(r.store->committed(), Seq(0));

  r.store->CommitHere(Seq(2));
  EXPECT_EQ(r.store->committed(), Seq(2));
  EXPECT_TRUE(r.store->Get("b").has_value());
  EXPECT_FALSE(r.store->Get("c").has_value());
  EXPECT_EQ(r.env.notified.load(), 0);

  // Commit leaves the apply to the log thread, as before.
  r.store->Commit(Seq(3));
  EXPECT_EQ(r.store->committed(), Seq(2));
  EXPECT_GE(r.env.notified.load(), 1);
  ASSERT_TRUE(r.store->Close().ok());
}

// A callback that writes to its own store (inside a turn) does not take
// the turn again: its write waits for the log thread.
TEST_P(CallerTurns, ACallbackWritingToItsStoreLeavesThatToTheLogThread) {
  HeldStore r(GetParam(), /*gate=*/false);
  std::optional<Result<Seq>> appended;
  std::optional<Result<Seq>> written;
  RangeStore& store = *r.store;
  r.Append([&](Result<Seq> a) {
    appended = std::move(a);
    store.Write({proto::WriteOp::Put("d", "v")}, [&written](Result<Seq> w) { written = w; });
  });
  ASSERT_TRUE(appended.has_value());
  EXPECT_FALSE(written.has_value());
  EXPECT_EQ(r.env.notified.load(), 1);
  ASSERT_TRUE(store.Close().ok());  // the log thread's steps run now
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(**written, Seq(4));
}

// An owner's writes (SetWriteTurns): the first write asks for a turn, the
// ones queued before it runs ask nothing more, and WriteTurn writes and
// applies them all on the calling thread, waking no log thread.
TEST_P(CallerTurns, AnOwnersWritesTakeTheTurnTheyAskFor) {
  HeldStore r(GetParam(), /*gate=*/false);
  int asked = 0;
  r.store->SetWriteTurns([&asked] { ++asked; });
  r.env.notified = 0;
  Outcome first;
  Outcome second;
  r.store->Write({proto::WriteOp::Put("a", "1")}, Into(first));
  r.store->Write({proto::WriteOp::Put("b", "2")}, Into(second));
  EXPECT_EQ(asked, 1);
  EXPECT_FALSE(first.result.has_value());

  r.store->WriteTurn();
  ASSERT_TRUE(first.result.has_value() && second.result.has_value());
  EXPECT_EQ(**first.result, Seq(1));
  EXPECT_EQ(**second.result, Seq(2));
  EXPECT_EQ(second.thread, std::this_thread::get_id());
  EXPECT_EQ(r.env.notified.load(), 0);

  Outcome third;
  r.store->Write({proto::WriteOp::Put("c", "3")}, Into(third));
  EXPECT_EQ(asked, 2);
  ASSERT_TRUE(r.store->Close().ok());
  ASSERT_TRUE(third.result.has_value());
  EXPECT_EQ(**third.result, Seq(3));
}

// A turn asked of a hook that is then replaced may never run: the
// replacement wakes the log thread for what is queued, and later writes
// wake it too.
TEST_P(CallerTurns, ReplacingTheTurnsLeavesTheQueueToTheLogThread) {
  HeldStore r(GetParam(), /*gate=*/false);
  int asked = 0;
  r.store->SetWriteTurns([&asked] { ++asked; });
  Outcome first;
  r.store->Write({proto::WriteOp::Put("a", "1")}, Into(first));
  r.env.notified = 0;
  r.store->SetWriteTurns(nullptr);
  EXPECT_EQ(r.env.notified.load(), 1);
  Outcome second;
  r.store->Write({proto::WriteOp::Put("b", "2")}, Into(second));
  EXPECT_EQ(asked, 1);
  EXPECT_EQ(r.env.notified.load(), 2);
  EXPECT_FALSE(first.result.has_value());
  ASSERT_TRUE(r.store->Close().ok());
  ASSERT_TRUE(first.result.has_value() && second.result.has_value());
  EXPECT_EQ(**second.result, Seq(2));
}

TEST(Turns, UnderAlwaysAnOwnersWritesAskNoTurn) {
  HeldStore r(FsyncPolicy::kAlways, /*gate=*/false);
  int asked = 0;
  r.store->SetWriteTurns([&asked] { ++asked; });
  r.env.notified = 0;
  Outcome written;
  r.store->Write({proto::WriteOp::Put("a", "1")}, Into(written));
  EXPECT_EQ(asked, 0);
  EXPECT_EQ(r.env.notified.load(), 1);
  ASSERT_TRUE(r.store->Close().ok());
  ASSERT_TRUE(written.result.has_value());
  EXPECT_EQ(**written.result, Seq(1));
}

TEST(Turns, UnderAlwaysTheLogThreadWritesAReplicasRecords) {
  HeldStore r(FsyncPolicy::kAlways, /*gate=*/true);
  Outcome appended;
  r.Append(Into(appended));
  EXPECT_FALSE(appended.result.has_value()) << "the caller wrote and fsynced";
  EXPECT_EQ(r.store->durable(), Seq(0));
  EXPECT_GE(r.env.notified.load(), 1);
  ASSERT_TRUE(r.store->Close().ok());
  ASSERT_TRUE(appended.result.has_value());
  EXPECT_EQ(**appended.result, Seq(3));
}

}  // namespace
}  // namespace rangekv::kvnode
