// Integration tests of zk::WatchChannel against a real standalone ZooKeeper:
// subtree events, reconnect with SetWatches2, server restart, session expiry,
// unreachable servers. Prints the latencies it measures.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "common/zk/session.h"
#include "common/zk/watch_channel.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_server.h"
#include "tests/common/zk/zk_test_util.h"

namespace rangekv::zk {
namespace {

using rangekv::testing::EventRecorder;
using rangekv::testing::IoThread;
using rangekv::testing::WaitFor;
using rangekv::testing::ZkServer;
using std::chrono::milliseconds;
using Type = WatchEventType;

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string HexId(int64_t id) {
  std::ostringstream os;
  os << "0x" << std::hex << static_cast<uint64_t>(id);
  return os.str();
}

class WatchChannelTest : public rangekv::testing::ZkSuite<WatchChannelTest> {
 protected:
  std::unique_ptr<Session> Writer(const std::string& connect) {
    SessionOptions opts;
    opts.connect_string = connect;
    opts.session_timeout = milliseconds(6000);
    auto s = Session::Open(opts, io_.executor());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    EXPECT_TRUE((*s)->WaitConnected(milliseconds(10000)).ok());
    return std::move(s).value();
  }

  WatchChannelOptions Options(const std::string& connect, std::vector<std::string> paths) {
    WatchChannelOptions o;
    o.connect_string = connect;
    o.watch_paths = std::move(paths);
    o.session_timeout = milliseconds(4000);
    o.backoff_initial = milliseconds(50);
    o.backoff_max = milliseconds(500);
    return o;
  }

  // Creates and starts a channel and waits for its first kResynced.
  std::unique_ptr<WatchChannel> Live(WatchChannelOptions o) {
    auto ch = WatchChannel::Create(io_.executor(), std::move(o), rec_.Callback());
    EXPECT_TRUE(ch.ok()) << ch.status().ToString();
    if (!ch.ok()) return nullptr;
    (*ch)->Start();
    EXPECT_TRUE(rec_.WaitCount(Type::kResynced, "", 1)) << ::testing::PrintToString(rec_.Lines());
    return std::move(ch).value();
  }

  IoThread io_;
  EventRecorder rec_;
};


TEST_F(WatchChannelTest, SubtreeChangesArriveAndPrefixSiblingsDoNot) {
  auto w = Writer(server_->connect_string());
  auto ch = Live(Options(server_->connect_string(), {"/w1"}));
  ASSERT_TRUE(w && ch);
  size_t start = rec_.Events().size();
  ASSERT_TRUE(w->Create("/w1", "").ok());
  ASSERT_TRUE(w->Create("/w1/a", "").ok());
  ASSERT_TRUE(w->Create("/w1/a/b", "").ok());
  ASSERT_TRUE(w->Set("/w1/a/b", "x").ok());
  ASSERT_TRUE(w->Create("/w12", "").ok());  // shares the string prefix only
  ASSERT_TRUE(w->Create("/w12/x", "").ok());
  ASSERT_TRUE(w->Set("/w12", "z").ok());
  ASSERT_TRUE(w->Delete("/w1/a/b").ok());
  ASSERT_TRUE(w->Create("/w1/end", "").ok());
  // One connection sees changes in zxid order: once /w1/end is in, every
  // event before it is too, so the list below is complete.
  ASSERT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/w1/end", 1));
  std::vector<std::string> expected = {"NodeCreated /w1",     "NodeCreated /w1/a",
                                       "NodeCreated /w1/a/b", "NodeDataChanged /w1/a/b",
                                       "NodeDeleted /w1/a/b", "NodeCreated /w1/end"};
  EXPECT_EQ(rec_.Lines(start), expected);

  // Latency from issuing a write to its notification.
  std::vector<double> lat;
  for (int i = 0; i < 20; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(w->Set("/w1/a", std::to_string(i)).ok());
    ASSERT_TRUE(rec_.WaitCount(Type::kNodeDataChanged, "/w1/a", i + 1));
    auto evs = rec_.Events();
    lat.push_back(Ms(evs.back().at - t0));
  }
  std::sort(lat.begin(), lat.end());
  std::cout << "[measure] write->notification ms: median " << lat[lat.size() / 2] << " max "
            << lat.back() << "\n";
  EXPECT_EQ(ch->stats().handshakes, 1u);

  // Stop sends closeSession: the server forgets the session at once instead
  // of after its timeout.
  std::string sid = "sid=" + HexId(ch->stats().session_id);
  ASSERT_NE(rangekv::testing::ZkFourLetter(server_->port(), "cons").find(sid), std::string::npos);
  auto stop_at = std::chrono::steady_clock::now();
  ch->Stop();
  EXPECT_TRUE(WaitFor(
      [&] {
        return rangekv::testing::ZkFourLetter(server_->port(), "cons").find(sid) ==
               std::string::npos;
      },
      milliseconds(3000)));
  std::cout << "[measure] Stop->session gone ms: " << Ms(std::chrono::steady_clock::now() - stop_at)
            << "\n";
}

TEST_F(WatchChannelTest, EphemeralOfAClosedSessionArrivesAsDelete) {
  auto w = Writer(server_->connect_string());
  auto owner = Writer(server_->connect_string());
  ASSERT_TRUE(w && owner);
  ASSERT_TRUE(w->Create("/w2", "").ok());
  auto ch = Live(Options(server_->connect_string(), {"/w2"}));
  ASSERT_TRUE(ch);
  ASSERT_TRUE(owner->Create("/w2/eph", "", CreateMode::kEphemeral).ok());
  ASSERT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/w2/eph", 1));
  owner.reset();
  EXPECT_TRUE(rec_.WaitCount(Type::kNodeDeleted, "/w2/eph", 1))
      << ::testing::PrintToString(rec_.Lines());
}

TEST_F(WatchChannelTest, DroppedConnectionResumesTheSessionAndRestoresTheWatch) {
  auto w = Writer(server_->connect_string());
  auto ch = Live(Options(server_->connect_string(), {"/w3"}));
  ASSERT_TRUE(w && ch);
  int64_t session = ch->stats().session_id;
  ASSERT_NE(session, 0);
  auto t0 = std::chrono::steady_clock::now();
  ch->TestDropConnection();
  ASSERT_TRUE(rec_.WaitCount(Type::kResynced, "", 2)) << ::testing::PrintToString(rec_.Lines());
  auto evs = rec_.Events();
  std::cout << "[measure] drop->resynced ms: " << Ms(evs.back().at - t0) << "\n";
  EXPECT_EQ(rec_.Count(Type::kDisconnected), 1u);
  EXPECT_EQ(rec_.Count(Type::kSessionExpired), 0u);
  WatchChannelStats st = ch->stats();
  EXPECT_EQ(st.session_id, session);  // same session, watches put back by SetWatches2
  EXPECT_EQ(st.handshakes, 2u);
  EXPECT_GT(st.last_zxid, 0);
  ASSERT_TRUE(w->Create("/w3", "").ok());
  EXPECT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/w3", 1));
}

TEST_F(WatchChannelTest, AddWatchWhileLiveAndPathValidation) {
  auto w = Writer(server_->connect_string());
  auto ch = Live(Options(server_->connect_string(), {}));
  ASSERT_TRUE(w && ch);
  for (const char* bad : {"w8", "/w8/", "//w8", ""}) {
    EXPECT_EQ(ch->AddWatch(bad).code(), Code::kBadRequest) << bad;
  }
  ASSERT_TRUE(ch->AddWatch("/w8").ok());
  ASSERT_TRUE(rec_.WaitCount(Type::kResynced, "/w8", 1));
  ASSERT_TRUE(w->Create("/w8", "").ok());
  ASSERT_TRUE(w->Create("/w8/x", "").ok());
  EXPECT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/w8/x", 1));
  EXPECT_EQ(rec_.Count(Type::kNodeCreated, "/w8"), 1u);

  auto bad = WatchChannel::Create(io_.executor(), Options(server_->connect_string(), {"nope"}), {});
  EXPECT_EQ(bad.status().code(), Code::kBadRequest);
  for (const char* cs : {"", "h:0", "127.0.0.1:2181/bad/"}) {
    auto c = WatchChannel::Create(io_.executor(), Options(cs, {"/x"}), {});
    EXPECT_EQ(c.status().code(), Code::kBadRequest) << cs;
  }
}

TEST_F(WatchChannelTest, ChrootPathsAreRelative) {
  auto w = Writer(server_->connect_string());
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->Create("/chroot", "").ok());
  auto ch = Live(Options(server_->connect_string() + "/chroot", {"/app"}));
  ASSERT_TRUE(ch);
  ASSERT_TRUE(w->Create("/app", "").ok());  // outside the chroot: not watched
  ASSERT_TRUE(w->Create("/chroot/app", "").ok());
  ASSERT_TRUE(w->Create("/chroot/app/k", "").ok());
  ASSERT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/app/k", 1));
  EXPECT_EQ(rec_.Lines(1), (std::vector<std::string>{"NodeCreated /app", "NodeCreated /app/k"}));
}

TEST_F(WatchChannelTest, SessionExpiryWhilePausedOpensANewSessionAndRewatches) {
  auto w = Writer(server_->connect_string());
  auto o = Options(server_->connect_string(), {"/w6"});
  o.session_timeout = milliseconds(1000);  // the server's minimum (2 ticks)
  auto ch = Live(o);
  ASSERT_TRUE(w && ch);
  int64_t old_session = ch->stats().session_id;
  EXPECT_EQ(ch->stats().negotiated_timeout_ms, 1000);
  ch->TestPause();
  // The server expires the silent session and drops its connection.
  std::string sid = "sid=" + HexId(old_session);
  ASSERT_TRUE(rangekv::testing::ZkFourLetter(server_->port(), "cons").find(sid) !=
              std::string::npos);
  auto paused_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor(
      [&] {
        return rangekv::testing::ZkFourLetter(server_->port(), "cons").find(sid) ==
               std::string::npos;
      },
      milliseconds(10000), milliseconds(20)));
  std::cout << "[measure] pause->server dropped session ms: "
            << Ms(std::chrono::steady_clock::now() - paused_at) << "\n";
  ASSERT_TRUE(w->Create("/w6", "while-expired").ok());  // missed: the consumer re-reads
  auto t0 = std::chrono::steady_clock::now();
  ch->TestResume();
  ASSERT_TRUE(rec_.WaitCount(Type::kResynced, "", 2)) << ::testing::PrintToString(rec_.Lines());
  std::cout << "[measure] resume->resynced (new session) ms: " << Ms(rec_.Events().back().at - t0)
            << "\n";
  int expired = rec_.Find(Type::kSessionExpired, "");
  ASSERT_GE(expired, 0) << ::testing::PrintToString(rec_.Lines());
  EXPECT_GT(rec_.Find(Type::kResynced, "", static_cast<size_t>(expired)), expired);
  WatchChannelStats st = ch->stats();
  EXPECT_NE(st.session_id, old_session);
  EXPECT_NE(st.session_id, 0);
  EXPECT_EQ(st.session_expiries, 1u);
  ASSERT_TRUE(w->Create("/w6/after", "").ok());
  EXPECT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/w6/after", 1));
}

TEST_F(WatchChannelTest, UnreachableServerRetriesWithBackoffUntilStopped) {
  int closed = rangekv::testing::FreePort();
  auto o = Options("127.0.0.1:" + std::to_string(closed), {"/x"});
  auto ch = WatchChannel::Create(io_.executor(), o, rec_.Callback());
  ASSERT_TRUE(ch.ok());
  (*ch)->Start();
  ASSERT_TRUE(WaitFor([&] { return (*ch)->stats().connect_failures >= 4; }, milliseconds(10000)));
  WatchChannelStats st = (*ch)->stats();
  EXPECT_FALSE(st.live);
  EXPECT_NE(st.last_error.find("refused"), std::string::npos) << st.last_error;
  EXPECT_NE(st.last_error.find(std::to_string(closed)), std::string::npos) << st.last_error;
  // The delay doubles towards backoff_max instead of spinning.
  EXPECT_TRUE(
      WaitFor([&] { return (*ch)->stats().backoff >= milliseconds(200); }, milliseconds(10000)));
  EXPECT_LT((*ch)->stats().connect_attempts, 40u);
  EXPECT_TRUE(rec_.Lines().empty());
  (*ch)->Stop();
  ch->reset();
}

TEST_F(WatchChannelTest, SkipsADeadServerOfTheConnectString) {
  int closed = rangekv::testing::FreePort();
  auto w = Writer(server_->connect_string());
  auto ch = Live(
      Options("127.0.0.1:" + std::to_string(closed) + "," + server_->connect_string(), {"/w9"}));
  ASSERT_TRUE(w && ch);
  EXPECT_EQ(ch->stats().server, server_->connect_string());
  ASSERT_TRUE(w->Create("/w9", "").ok());
  EXPECT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/w9", 1));
}

// A server restart on the same port and data dir: the channel reconnects by
// itself and the watch works again.
TEST_F(WatchChannelTest, ServerRestartOnTheSamePort) {
  ZkServer own;
  ASSERT_TRUE(own.Start()) << own.log();
  auto w = Writer(own.connect_string());
  auto ch = Live(Options(own.connect_string(), {"/r"}));
  ASSERT_TRUE(w && ch);
  own.Stop();
  ASSERT_TRUE(rec_.WaitCount(Type::kDisconnected, "", 1));
  ASSERT_TRUE(own.Start()) << own.log();
  auto up = std::chrono::steady_clock::now();
  ASSERT_TRUE(rec_.WaitCount(Type::kResynced, "", 2, milliseconds(15000)))
      << ::testing::PrintToString(rec_.Lines());
  std::cout << "[measure] server ready->resynced ms: " << Ms(rec_.Events().back().at - up)
            << " (session kept: " << (rec_.Count(Type::kSessionExpired) == 0 ? "yes" : "no")
            << ")\n";
  ASSERT_TRUE(w->WaitConnected(milliseconds(10000)).ok());
  ASSERT_TRUE(w->Create("/r", "").ok());
  EXPECT_TRUE(rec_.WaitCount(Type::kNodeCreated, "/r", 1));
  ch.reset();
  w.reset();
}

}  // namespace
}  // namespace rangekv::zk
