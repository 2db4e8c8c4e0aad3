// Integration tests of Coordinator::Stop in process, against a real
// standalone ZooKeeper behind a StallProxy: Stop while a reconcile waits on
// ZooKeeper must end that reconcile (no coroutine frame left suspended, and
// so none leaked: under the sanitizers LeakSanitizer checks this binary at
// exit) and must not wait for the server for longer than kStopDrain.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "coordinator/coordinator.h"
#include "tests/coordinator/stall_proxy.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_server.h"
#include "tests/common/zk/zk_test_util.h"

namespace rangekv::coordinator {
namespace {

using rangekv::testing::IoThread;
using rangekv::testing::StallProxy;
using rangekv::testing::WaitFor;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kLong{20000};

class CoordinatorStopITest : public rangekv::testing::ZkSuite<CoordinatorStopITest> {
 protected:
  void SetUp() override { proxy_ = std::make_unique<StallProxy>(server_->port()); }

  void TearDown() override {
    if (coord_) {
      if (!stopped_) coord_->Stop();
      coord_.reset();
    }
    proxy_.reset();
  }

  // A leader through the proxy. The session timeout is long (the C client
  // gives up on a silent server after 2/3 of it, about 6.7 s), so a stalled
  // request stays in flight well past kStopDrain.
  void StartLeader(const std::string& name) {
    CoordinatorOptions o;
    o.zk = "127.0.0.1:" + std::to_string(proxy_->port());
    o.cluster = name;
    o.id = "c1";
    o.session_timeout = milliseconds(10000);
    o.reconcile_period = milliseconds(100);
    auto c = Coordinator::Create(io_.executor(), o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    coord_ = std::move(c).value();
    coord_->Start();
    ASSERT_TRUE(WaitFor([&] { return coord_->role() == Role::kLeader; }, kLong));
  }

  // Stalls ZooKeeper, then waits until a reconcile has started and not
  // ended while the proxy holds a read back (its request or the answer).
  // With a reconcile every 100 ms one soon runs, and once stalled it
  // cannot end. Running alone is not enough: a run that had every answer
  // before the stall can be seen running just as it ends, leaving Stop
  // nothing to wait for; only a ping held just then could fool the check
  // below, a far smaller window.
  void StallUntilAReconcileWaits() {
    proxy_->Stall();
    ASSERT_TRUE(WaitFor(
        [&] {
          CoordinatorStats s = coord_->stats();
          return s.reconciles < s.reconciles_started && proxy_->parked() > 0;
        },
        kLong, milliseconds(2)));
  }

  IoThread io_;
  std::unique_ptr<StallProxy> proxy_;
  std::unique_ptr<Coordinator> coord_;
  bool stopped_ = false;
};

TEST_F(CoordinatorStopITest, StopEndsAReconcileWaitingOnZooKeeperThenClosesTheSession) {
  StartLeader("stop_ends_reconcile");
  StallUntilAReconcileWaits();
  const uint64_t failures = coord_->stats().reconcile_failures;

  auto t0 = Clock::now();
  std::future<void> stop = std::async(std::launch::async, [&] { coord_->Stop(); });
  // The server still says nothing, and the C client would not give up for
  // seconds: only Stop can end the run, and it must do so at once.
  EXPECT_TRUE(WaitFor(
      [&] {
        CoordinatorStats s = coord_->stats();
        return s.reconciles == s.reconciles_started;
      },
      milliseconds(1500), milliseconds(2)));
  // Stop is now waiting for the request in flight; let the server answer it,
  // so the session closes with nothing of ours left in the C client.
  EXPECT_NE(stop.wait_for(milliseconds(0)), std::future_status::ready);
  proxy_->Resume();
  ASSERT_EQ(stop.wait_for(kLong), std::future_status::ready);
  stopped_ = true;
  const double stop_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::cout << "[measure] Stop with a reconcile waiting on ZooKeeper: " << stop_ms << " ms\n";
  EXPECT_LT(stop_ms, static_cast<double>(Coordinator::kStopDrain.count()));

  CoordinatorStats s = coord_->stats();
  EXPECT_EQ(s.reconciles, s.reconciles_started);
  EXPECT_EQ(s.reconcile_failures, failures) << "an ended run is not a failure";
  EXPECT_EQ(coord_->role(), Role::kNone);
  // Nothing may touch the coordinator once Stop returned: free it while the
  // executor still runs (ASan reports any late completion).
  coord_.reset();
  io_.RunSync([] {});
}

TEST_F(CoordinatorStopITest, StopGivesUpOnASilentZooKeeperAfterTheDrainBound) {
  StartLeader("stop_bounded");
  StallUntilAReconcileWaits();
  auto t0 = Clock::now();
  coord_->Stop();
  stopped_ = true;
  const double stop_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::cout << "[measure] Stop with ZooKeeper silent: " << stop_ms << " ms\n";
  // The drain bound, then the close (which does not wait for the server's
  // answer to the close request).
  EXPECT_GE(stop_ms, static_cast<double>(Coordinator::kStopDrain.count()) - 50);
  EXPECT_LT(stop_ms, static_cast<double>(Coordinator::kStopDrain.count()) + 4000);
  CoordinatorStats s = coord_->stats();
  EXPECT_EQ(s.reconciles, s.reconciles_started);
  EXPECT_EQ(coord_->role(), Role::kNone);
  coord_.reset();
  io_.RunSync([] {});
}

}  // namespace
}  // namespace rangekv::coordinator
