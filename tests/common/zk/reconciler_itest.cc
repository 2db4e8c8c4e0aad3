// Integration tests of zk::Reconciler: a consumer that re-reads a znode's
// children converges after a network cut during which it missed changes; the
// timer alone drives it; triggers coalesce.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>

#include "common/zk/reconciler.h"
#include "common/zk/session.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_server.h"
#include "tests/common/zk/zk_test_util.h"

namespace rangekv::zk {
namespace {

using rangekv::testing::EventRecorder;
using rangekv::testing::IoThread;
using rangekv::testing::TcpProxy;
using rangekv::testing::WaitFor;
using rangekv::testing::ZkServer;
using std::chrono::milliseconds;

class ReconcilerTest : public rangekv::testing::ZkSuite<ReconcilerTest> {
 protected:
  std::unique_ptr<Session> Connect() {
    SessionOptions opts;
    opts.connect_string = server_->connect_string();
    opts.session_timeout = milliseconds(6000);
    auto s = Session::Open(opts, io_.executor());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    EXPECT_TRUE((*s)->WaitConnected(milliseconds(10000)).ok());
    return std::move(s).value();
  }

  IoThread io_;
};


// The consumer's view of /rc's children, rebuilt by every Reconcile.
class ChildrenView {
 public:
  explicit ChildrenView(Session* reader) : reader_(reader) {}

  // Sync first (the reader's server must have caught up with what the
  // channel's server reported), then re-read; never blocks the executor.
  void Reconcile(const std::string& path, Reconciler::Done done) {
    reader_->AsyncSync(path, [this, path, done](Status st) {
      if (!st.ok()) return done();
      reader_->AsyncChildren(path, [this, done](Result<std::vector<std::string>> r) {
        if (r.ok() || ZkErrorOf(r.status()) == ZkError::kNoNode) {
          std::lock_guard lock(mu_);
          view_ = r.ok() ? std::set<std::string>(r->begin(), r->end()) : std::set<std::string>();
        }
        done();
      });
    });
  }

  std::set<std::string> view() const {
    std::lock_guard lock(mu_);
    return view_;
  }

 private:
  Session* reader_;
  mutable std::mutex mu_;
  std::set<std::string> view_;
};

TEST_F(ReconcilerTest, ViewConvergesAfterChangesMadeWhileTheChannelWasCut) {
  auto writer = Connect();
  auto reader = Connect();
  ASSERT_TRUE(writer && reader);
  TcpProxy proxy(server_->port());  // only the channel goes through it
  ChildrenView consumer(reader.get());
  EventRecorder seen;
  ReconcilerOptions opts;
  opts.channel.connect_string = "127.0.0.1:" + std::to_string(proxy.port());
  opts.channel.watch_paths = {"/rc"};
  opts.channel.session_timeout = milliseconds(10000);
  opts.channel.backoff_initial = milliseconds(50);
  opts.channel.backoff_max = milliseconds(300);
  opts.period = milliseconds(60000);  // the timer must not be what converges it
  auto rec = Reconciler::Create(
      io_.executor(), opts,
      [&](const ReconcileTriggers&, Reconciler::Done done) {
        consumer.Reconcile("/rc", std::move(done));
      },
      [&](const WatchEvent& ev) { seen.Record(ev); });
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  (*rec)->Start();
  ASSERT_TRUE(seen.WaitCount(WatchEventType::kResynced, "", 1));

  ASSERT_TRUE(writer->Create("/rc", "").ok());
  ASSERT_TRUE(writer->Create("/rc/a", "").ok());
  ASSERT_TRUE(writer->Create("/rc/b", "").ok());
  const std::set<std::string> before = {"a", "b"};
  ASSERT_TRUE(WaitFor([&] { return consumer.view() == before; }, milliseconds(10000)));

  proxy.Disable();  // cut: the live connection drops and reconnects are refused
  ASSERT_TRUE(seen.WaitCount(WatchEventType::kDisconnected, "", 1));
  ASSERT_TRUE(writer->Create("/rc/c", "").ok());
  ASSERT_TRUE(writer->Delete("/rc/a").ok());
  auto healed = std::chrono::steady_clock::now();
  proxy.Enable();

  const std::set<std::string> after = {"b", "c"};
  ASSERT_TRUE(WaitFor([&] { return consumer.view() == after; }, milliseconds(10000)))
      << ::testing::PrintToString(seen.Lines());
  std::cout << "[measure] heal->consumer converged ms: "
            << std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - healed)
                   .count()
            << " (events replayed for the missed changes: "
            << seen.Count(WatchEventType::kNodeCreated, "/rc/c") << ")\n";
  // The view may converge before the channel resumes (a reconcile under
  // way at the cut, or started by it, reads through the consumer's own
  // session, which the proxy does not carry): wait for the resync itself.
  EXPECT_TRUE(seen.WaitCount(WatchEventType::kResynced, "", 2));
  EXPECT_EQ(seen.Count(WatchEventType::kResynced, ""), 2u);
  EXPECT_EQ((*rec)->channel().stats().session_expiries, 0u);

  // And it keeps following live changes.
  ASSERT_TRUE(writer->Create("/rc/d", "").ok());
  const std::set<std::string> last = {"b", "c", "d"};
  EXPECT_TRUE(WaitFor([&] { return consumer.view() == last; }, milliseconds(10000)));
  (*rec)->Stop();
}

TEST_F(ReconcilerTest, TimerAloneDrivesReconcileWhenZooKeeperIsUnreachable) {
  ReconcilerOptions opts;
  opts.channel.connect_string = "127.0.0.1:" + std::to_string(rangekv::testing::FreePort());
  opts.channel.watch_paths = {"/x"};
  opts.period = milliseconds(50);
  std::mutex mu;
  uint64_t ticks = 0;
  auto rec = Reconciler::Create(io_.executor(), opts,
                                [&](const ReconcileTriggers& t, Reconciler::Done done) {
                                  {
                                    std::lock_guard lock(mu);
                                    ticks += t.timer_ticks;
                                    EXPECT_EQ(t.events + t.resyncs, 0u);
                                  }
                                  done();
                                });
  ASSERT_TRUE(rec.ok());
  (*rec)->Start();
  EXPECT_TRUE(WaitFor([&] { return (*rec)->runs() >= 3; }, milliseconds(10000)));
  (*rec)->Stop();
  std::lock_guard lock(mu);
  EXPECT_GE(ticks, 3u);
}

TEST_F(ReconcilerTest, TriggersCoalesceIntoOneRunningAndOnePending) {
  ReconcilerOptions opts;
  opts.channel.connect_string = "127.0.0.1:" + std::to_string(rangekv::testing::FreePort());
  opts.period = milliseconds(60000);
  std::mutex mu;
  int active = 0;
  int max_active = 0;
  std::vector<uint64_t> explicit_per_run;
  std::optional<Reconciler::Done> held;
  auto rec = Reconciler::Create(io_.executor(), opts,
                                [&](const ReconcileTriggers& t, Reconciler::Done done) {
                                  std::lock_guard lock(mu);
                                  max_active = std::max(max_active, ++active);
                                  explicit_per_run.push_back(t.explicit_requests);
                                  held = [&active, &mu, done] {
                                    {
                                      std::lock_guard l(mu);
                                      --active;
                                    }
                                    done();
                                  };
                                });
  ASSERT_TRUE(rec.ok());
  (*rec)->Start();
  auto release = [&] {
    std::optional<Reconciler::Done> d;
    {
      std::lock_guard lock(mu);
      d.swap(held);
    }
    if (d) (*d)();
    return d.has_value();
  };
  auto calls = [&] {
    std::lock_guard lock(mu);
    return explicit_per_run.size();
  };
  (*rec)->TriggerNow();
  ASSERT_TRUE(WaitFor([&] { return calls() == 1; }, milliseconds(5000)));
  for (int i = 0; i < 9; ++i) (*rec)->TriggerNow();
  // The nine requests queue behind the running one; releasing it starts
  // exactly one more run.
  ASSERT_TRUE(WaitFor([&] { return release(); }, milliseconds(5000)));
  ASSERT_TRUE(WaitFor([&] { return calls() == 2; }, milliseconds(5000)));
  ASSERT_TRUE(release());
  ASSERT_TRUE(WaitFor([&] { return (*rec)->runs() == 2; }, milliseconds(5000)));
  (*rec)->TriggerNow();
  ASSERT_TRUE(WaitFor([&] { return calls() == 3; }, milliseconds(5000)));
  ASSERT_TRUE(WaitFor([&] { return release(); }, milliseconds(5000)));
  ASSERT_TRUE(WaitFor([&] { return (*rec)->runs() == 3; }, milliseconds(5000)));
  (*rec)->Stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(max_active, 1);
  EXPECT_EQ(explicit_per_run, (std::vector<uint64_t>{1, 9, 1}));
}

}  // namespace
}  // namespace rangekv::zk
