// Integration tests of zk::Session against a real standalone ZooKeeper.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>

#include "common/zk/session.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_server.h"
#include "tests/common/zk/zk_test_util.h"

namespace rangekv::zk {
namespace {

using rangekv::testing::IoThread;
using rangekv::testing::WaitFor;
using rangekv::testing::ZkServer;
using std::chrono::milliseconds;

class SessionTest : public rangekv::testing::ZkSuite<SessionTest> {
 protected:
  std::unique_ptr<Session> Connect(Session::StateCallback on_state = {}) {
    SessionOptions opts;
    opts.connect_string = server_->connect_string();
    opts.session_timeout = milliseconds(4000);
    auto s = Session::Open(opts, io_.executor(), std::move(on_state));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    Status st = (*s)->WaitConnected(milliseconds(10000));
    EXPECT_TRUE(st.ok()) << st.ToString();
    return std::move(s).value();
  }

  IoThread io_;
};


TEST_F(SessionTest, CreateGetSetWithCasAndDelete) {
  auto s = Connect();
  ASSERT_TRUE(s);
  EXPECT_NE(s->session_id(), 0);
  auto created = s->Create("/cas", "v1");
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(*created, "/cas");

  auto got = s->Get("/cas");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->data, "v1");
  EXPECT_EQ((*got)->stat.version, ZnodeVersion(0));

  auto set = s->Set("/cas", "v2", ZnodeVersion(0));
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->version, ZnodeVersion(1));

  // A second writer with the old version loses.
  auto stale = s->Set("/cas", "v3", ZnodeVersion(0));
  EXPECT_EQ(stale.status().code(), Code::kCasFailed);
  EXPECT_EQ(ZkErrorOf(stale.status()), ZkError::kBadVersion);
  EXPECT_NE(stale.status().message().find("ZBADVERSION"), std::string::npos);
  EXPECT_EQ((*s->Get("/cas"))->data, "v2");

  auto again = s->Create("/cas", "x");
  EXPECT_EQ(again.status().code(), Code::kCasFailed);
  EXPECT_EQ(ZkErrorOf(again.status()), ZkError::kNodeExists);

  EXPECT_EQ(ZkErrorOf(s->Delete("/cas", ZnodeVersion(0))), ZkError::kBadVersion);
  EXPECT_TRUE(s->Delete("/cas", ZnodeVersion(1)).ok());
  auto gone = s->Get("/cas");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto exists = s->Exists("/cas");
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(exists->has_value());
  Status missing = s->Delete("/cas");
  EXPECT_EQ(missing.code(), Code::kBadRequest);
  EXPECT_EQ(ZkErrorOf(missing), ZkError::kNoNode);
  EXPECT_EQ(ZkErrorOf(s->Set("/cas", "x").status()), ZkError::kNoNode);
  EXPECT_EQ(ZkErrorOf(s->Create("/no/parent", "").status()), ZkError::kNoNode);
}

TEST_F(SessionTest, ChildrenSequentialAndNotEmpty) {
  auto s = Connect();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Create("/kids", "").ok());
  for (const char* c : {"a", "b", "c"}) ASSERT_TRUE(s->Create(std::string("/kids/") + c, c).ok());
  auto seq1 = s->Create("/kids/n-", "", CreateMode::kPersistentSequential);
  auto seq2 = s->Create("/kids/n-", "", CreateMode::kPersistentSequential);
  ASSERT_TRUE(seq1.ok() && seq2.ok());
  EXPECT_EQ(seq1->size(), std::string("/kids/n-").size() + 10);
  EXPECT_LT(*seq1, *seq2);

  auto kids = s->Children("/kids");
  ASSERT_TRUE(kids.ok());
  std::vector<std::string> names = *kids;
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), 5u);
  EXPECT_EQ(names[0], "a");
  EXPECT_EQ(names[2], "c");
  EXPECT_EQ("/kids/" + names[3], *seq1);

  EXPECT_EQ(ZkErrorOf(s->Delete("/kids")), ZkError::kNotEmpty);
  EXPECT_EQ(ZkErrorOf(s->Children("/nothing").status()), ZkError::kNoNode);
  auto stat = s->Exists("/kids");
  ASSERT_TRUE(stat.ok() && stat->has_value());
  EXPECT_EQ((*stat)->num_children, 5);
  EXPECT_TRUE(s->Sync("/kids").ok());
}

TEST_F(SessionTest, MultiIsAllOrNothing) {
  auto s = Connect();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Create("/m", "0").ok());
  auto ok = s->Multi({ZkOp::Check("/m", ZnodeVersion(0)), ZkOp::Create("/m/x", "x"),
                      ZkOp::SetData("/m", "1", ZnodeVersion(0))});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  ASSERT_EQ(ok->size(), 3u);
  EXPECT_EQ((*ok)[1].created_path, "/m/x");
  ASSERT_TRUE((*ok)[2].stat.has_value());
  EXPECT_EQ((*ok)[2].stat->version, ZnodeVersion(1));

  // The check fails (version is 1 now): nothing of the batch happens.
  auto bad = s->Multi(
      {ZkOp::Create("/m/y", "y"), ZkOp::Check("/m", ZnodeVersion(0)), ZkOp::Delete("/m/x")});
  EXPECT_EQ(bad.status().code(), Code::kCasFailed) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("multi op #1"), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(s->Exists("/m/y")->has_value());
  EXPECT_TRUE(s->Exists("/m/x")->has_value());
  auto empty = s->Multi({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(SessionTest, EphemeralDisappearsWhenItsSessionCloses) {
  auto watcher = Connect();
  auto owner = Connect();
  ASSERT_TRUE(watcher && owner);
  auto eph = owner->Create("/eph", "me", CreateMode::kEphemeral);
  ASSERT_TRUE(eph.ok()) << eph.status().ToString();
  auto seq = owner->Create("/eph-seq-", "", CreateMode::kEphemeralSequential);
  ASSERT_TRUE(seq.ok());
  auto stat = watcher->Exists("/eph");
  ASSERT_TRUE(stat.ok() && stat->has_value());
  EXPECT_EQ((*stat)->ephemeral_owner, owner->session_id());
  owner.reset();  // closeSession: the server deletes its ephemerals now
  EXPECT_TRUE(WaitFor(
      [&] {
        auto e = watcher->Exists("/eph");
        return e.ok() && !e->has_value();
      },
      milliseconds(5000)));
  EXPECT_FALSE(watcher->Exists(*seq)->has_value());
}

TEST_F(SessionTest, AsyncCallsCompleteOnTheExecutor) {
  std::atomic<int> connected_events{0};
  auto s = Connect([&](SessionState st) {
    if (st == SessionState::kConnected) ++connected_events;
  });
  ASSERT_TRUE(s);
  EXPECT_TRUE(WaitFor([&] { return connected_events.load() == 1; }, milliseconds(5000)));

  std::promise<std::thread::id> created_on;
  std::promise<Result<std::optional<ZnodeData>>> got;
  std::promise<Status> cas_failed;
  s->AsyncCreate("/async", "a", CreateMode::kPersistent, [&](Result<std::string> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    created_on.set_value(std::this_thread::get_id());
    s->AsyncGet("/async", [&](Result<std::optional<ZnodeData>> g) { got.set_value(g); });
  });
  s->AsyncSet("/nonexistent", "x", ZnodeVersion(3),
              [&](Result<ZnodeStat> r) { cas_failed.set_value(r.status()); });
  auto f1 = created_on.get_future();
  ASSERT_EQ(f1.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f1.get(), io_.thread_id());
  auto f2 = got.get_future();
  ASSERT_EQ(f2.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto g = f2.get();
  ASSERT_TRUE(g.ok() && g->has_value());
  EXPECT_EQ((*g)->data, "a");
  auto f3 = cas_failed.get_future();
  ASSERT_EQ(f3.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(ZkErrorOf(f3.get()), ZkError::kNoNode);

  std::promise<Result<std::vector<ZkOpResult>>> multi;
  s->AsyncMulti({ZkOp::Delete("/async", ZnodeVersion(0))},
                [&](Result<std::vector<ZkOpResult>> r) { multi.set_value(r); });
  auto f4 = multi.get_future();
  ASSERT_EQ(f4.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(f4.get().ok());
}

// The owner pattern of session.h: a session cut off for longer than its
// timeout comes back as kExpired; its ephemerals are gone; the owner opens a
// new Session and re-creates them.
TEST_F(SessionTest, ExpiredSessionIsReportedAndReplaced) {
  auto observer = Connect();
  ASSERT_TRUE(observer);
  rangekv::testing::TcpProxy proxy(server_->port());
  std::mutex mu;
  std::vector<SessionState> states;
  SessionOptions opts;
  opts.connect_string = "127.0.0.1:" + std::to_string(proxy.port());
  opts.session_timeout = milliseconds(1000);
  auto opened = Session::Open(opts, io_.executor(), [&](SessionState st) {
    std::lock_guard lock(mu);
    states.push_back(st);
  });
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<Session> s = std::move(opened).value();
  ASSERT_TRUE(s->WaitConnected(milliseconds(10000)).ok());
  EXPECT_EQ(s->negotiated_timeout(), milliseconds(1000));
  ASSERT_TRUE(s->Create("/lease", "a", CreateMode::kEphemeral).ok());

  proxy.Disable();  // the server hears nothing more from this session
  ASSERT_TRUE(
      WaitFor([&] { return !observer->Exists("/lease")->has_value(); }, milliseconds(10000)));
  proxy.Enable();
  ASSERT_TRUE(WaitFor([&] { return s->state() == SessionState::kExpired; }, milliseconds(15000)));
  EXPECT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !states.empty() && states.back() == SessionState::kExpired;
      },
      milliseconds(5000)));
  Status after = s->Create("/lease", "a", CreateMode::kEphemeral).status();
  EXPECT_EQ(after.code(), Code::kUnavailable) << after.ToString();
  EXPECT_EQ(ZkErrorOf(after), ZkError::kSessionExpired) << after.ToString();
  EXPECT_EQ(s->WaitConnected(milliseconds(10)).code(), Code::kUnavailable);

  s = Connect();  // replace the Session, re-create the ephemeral
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Create("/lease", "b", CreateMode::kEphemeral).ok());
}

TEST_F(SessionTest, BlockingCallOnTheExecutorThreadIsRefused) {
  auto s = Connect();
  ASSERT_TRUE(s);
  Status st;
  io_.RunSync([&] { st = s->Get("/").status(); });
  EXPECT_EQ(st.code(), Code::kInternal) << st.ToString();
  EXPECT_TRUE(s->Get("/").ok());  // fine from the test thread
}

TEST_F(SessionTest, UnreachableServerGivesClearErrorsWithoutHanging) {
  SessionOptions opts;
  opts.connect_string = "127.0.0.1:" + std::to_string(rangekv::testing::FreePort());
  opts.session_timeout = milliseconds(2000);
  opts.blocking_timeout = milliseconds(3000);
  auto s = Session::Open(opts, io_.executor());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->state(), SessionState::kConnecting);
  Status wait = (*s)->WaitConnected(milliseconds(300));
  EXPECT_EQ(wait.code(), Code::kTimeout);
  EXPECT_NE(wait.message().find(opts.connect_string), std::string::npos) << wait.message();
  auto start = std::chrono::steady_clock::now();
  auto got = (*s)->Get("/x");
  EXPECT_FALSE(got.ok());
  EXPECT_TRUE(got.status().code() == Code::kUnavailable || got.status().code() == Code::kTimeout)
      << got.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(SessionTest, BadConnectStringIsRefused) {
  SessionOptions opts;
  auto empty = Session::Open(opts, io_.executor());
  EXPECT_EQ(empty.status().code(), Code::kBadRequest);
  opts.connect_string = "not a host name:notaport";
  auto bad = Session::Open(opts, io_.executor());
  EXPECT_FALSE(bad.ok());
  if (!bad.ok()) {
    EXPECT_EQ(bad.status().code(), Code::kBadRequest) << bad.status().ToString();
  }
}

}  // namespace
}  // namespace rangekv::zk
