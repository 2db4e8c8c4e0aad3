// Integration tests of ZooKeeper credentials and ACLs against a real
// standalone ZooKeeper: what the cluster's ACL (zk::ClusterAcl) lets a
// writer, a reader, a wrong password and an anonymous client do, through
// zk::Session and through the watch channel's own AuthPacket, including a
// refusal of the credentials themselves (AUTHFAILED) and auth sent again
// after a reconnect. Every wait is bounded; nothing sleeps to synchronise.
#include <gtest/gtest.h>

#include "common/zk/auth.h"
#include "common/zk/errors.h"
#include "common/zk/session.h"
#include "common/zk/watch_channel.h"
#include "tests/common/zk/zk_test_util.h"
#include "tests/testutil/testutil.h"
#include "tests/testutil/zk_server.h"

namespace rangekv::zk {
namespace {

using rangekv::testing::EventRecorder;
using rangekv::testing::IoThread;
using rangekv::testing::ZkServer;
using std::chrono::milliseconds;
using Type = WatchEventType;

constexpr char kRoot[] = "/rangekv/acl";
constexpr char kWriterFile[] = "# the writer, then the reader\nwriter:w-pass\nreader:r-pass\n";

AuthFile Parsed(const std::string& text) {
  auto f = ParseAuthFile(text, "test");
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : AuthFile{};
}

class ZkAuthTest : public rangekv::testing::ZkSuite<ZkAuthTest> {
 protected:
  // A connected session; `auth` "" for anonymous; `acl` for a writer.
  std::unique_ptr<Session> Open(const std::string& auth, bool writer = false,
                                const std::string& scheme = "digest") {
    SessionOptions o;
    o.connect_string = server_->connect_string();
    o.session_timeout = milliseconds(6000);
    o.blocking_timeout = milliseconds(10000);
    if (!auth.empty()) {
      AuthFile f = Parsed(auth);
      f.self.scheme = scheme;
      o.auth = f.self;
      if (writer) o.acl = ClusterAcl(kRoot, f);
    }
    o.on_refused = [this](const Status&) { ++refusals_; };
    auto s = Session::Open(o, io_.executor());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    last_wait_ = (*s)->WaitConnected(milliseconds(10000));
    return std::move(s).value();
  }

  // Makes the cluster's znodes as its writer (once per suite run).
  void SetUp() override {
    writer_ = Open(kWriterFile, /*writer=*/true);
    ASSERT_TRUE(last_wait_.ok()) << last_wait_.ToString();
    for (std::string p : {std::string("/rangekv"), std::string(kRoot), std::string(kRoot) + "/x"}) {
      auto c = writer_->Create(p, "v0");
      ASSERT_TRUE(c.ok() || ZkErrorOf(c.status()) == ZkError::kNodeExists) << c.status().ToString();
    }
  }

  WatchChannelOptions ChannelOptions(const std::string& auth,
                                     const std::string& scheme = "digest") {
    WatchChannelOptions o;
    o.connect_string = server_->connect_string();
    o.watch_paths = {"/rangekv"};
    o.session_timeout = milliseconds(4000);
    o.backoff_initial = milliseconds(50);
    o.backoff_max = milliseconds(500);
    if (!auth.empty()) {
      o.auth = Parsed(auth).self;
      o.auth->scheme = scheme;
    }
    return o;
  }

  IoThread io_;
  std::unique_ptr<Session> writer_;
  Status last_wait_;
  std::atomic<int> refusals_{0};
};

void ExpectRefused(const Status& st, const std::string& what) {
  EXPECT_EQ(st.code(), Code::kUnauthenticated) << st.ToString();
  EXPECT_EQ(ZkErrorOf(st), ZkError::kNoAuth) << st.ToString();
  EXPECT_NE(st.message().find("ZooKeeper refused: not authorized to " + what), std::string::npos)
      << st.ToString();
}

TEST_F(ZkAuthTest, TheClusterAclIsWriterAllReaderReadAndNothingForAnyoneElse) {
  const std::string x = std::string(kRoot) + "/x";
  // The writer may do everything, sequential and ephemeral znodes and a
  // multi included, and they carry the same ACL.
  auto seq = writer_->Create(std::string(kRoot) + "/s-", "", CreateMode::kEphemeralSequential);
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  auto multi = writer_->Multi({ZkOp::Create(std::string(kRoot) + "/m", "m")});
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  ASSERT_TRUE(writer_->Set(x, "v1").ok());

  auto reader = Open("reader:r-pass");
  ASSERT_TRUE(last_wait_.ok()) << last_wait_.ToString();
  for (const std::string& p : {x, *seq, std::string(kRoot) + "/m", std::string(kRoot)}) {
    auto got = reader->Get(p);
    ASSERT_TRUE(got.ok()) << p << ": " << got.status().ToString();
  }
  EXPECT_EQ((*reader->Get(x))->data, "v1");
  ExpectRefused(reader->Set(x, "evil").status(), "set " + x);
  ExpectRefused(reader->Create(std::string(kRoot) + "/y", "").status(),
                "create " + std::string(kRoot) + "/y");
  ExpectRefused(reader->Delete(x), "delete " + x);
  ExpectRefused(reader->Multi({ZkOp::SetData(x, "evil")}).status(), "set " + x);

  auto anonymous = Open("");
  ASSERT_TRUE(last_wait_.ok());
  ExpectRefused(anonymous->Get(x).status(), "get " + x);
  ExpectRefused(anonymous->Children(kRoot).status(), "children " + std::string(kRoot));
  ExpectRefused(anonymous->Set(x, "evil").status(), "set " + x);
  ExpectRefused(anonymous->Create(std::string(kRoot) + "/z", "").status(),
                "create " + std::string(kRoot) + "/z");
  // The shared parent: anyone may list the clusters, nobody but the
  // writer add one.
  auto names = anonymous->Children("/rangekv");
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  ExpectRefused(anonymous->Create("/rangekv/other", "").status(), "create /rangekv/other");

  // The digest scheme takes any password and derives another identity.
  auto wrong = Open("writer:not-the-password");
  ASSERT_TRUE(last_wait_.ok()) << last_wait_.ToString();
  ExpectRefused(wrong->Get(x).status(), "get " + x);
  ExpectRefused(wrong->Set(x, "evil").status(), "set " + x);

  EXPECT_GE(refusals_.load(), 11);
  EXPECT_EQ((*writer_->Get(x))->data, "v1");
}

TEST_F(ZkAuthTest, CredentialsTheServerRefusesEndTheSessionWithAClearStatus) {
  auto s = Open("someone:pw", false, "no-such-scheme");
  EXPECT_EQ(last_wait_.code(), Code::kUnauthenticated) << last_wait_.ToString();
  EXPECT_EQ(ZkErrorOf(last_wait_), ZkError::kAuthFailed) << last_wait_.ToString();
  EXPECT_NE(last_wait_.message().find("ZooKeeper refused the credentials"), std::string::npos)
      << last_wait_.ToString();
  EXPECT_EQ(last_wait_.message().find("pw"), std::string::npos) << last_wait_.ToString();
  EXPECT_EQ(s->state(), SessionState::kAuthFailed);
}

TEST_F(ZkAuthTest, TheWatchChannelSeesOnlyWhatItsIdentityMayRead) {
  const std::string x = std::string(kRoot) + "/x";
  EventRecorder reader_events, anon_events;
  auto reader = WatchChannel::Create(io_.executor(), ChannelOptions("reader:r-pass"),
                                     reader_events.Callback());
  auto anon = WatchChannel::Create(io_.executor(), ChannelOptions(""), anon_events.Callback());
  ASSERT_TRUE(reader.ok() && anon.ok());
  (*reader)->Start();
  (*anon)->Start();
  ASSERT_TRUE(reader_events.WaitCount(Type::kResynced, "", 1));
  ASSERT_TRUE(anon_events.WaitCount(Type::kResynced, "", 1));

  ASSERT_TRUE(writer_->Set(x, "v2").ok());
  // A change to an open znode made after it: once the anonymous channel has
  // that one, the server has decided about the first (same connection, in
  // order).
  auto open = writer_->Create("/rangekv/open-" + std::to_string(::getpid()), "");
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  ASSERT_TRUE(reader_events.WaitCount(Type::kNodeDataChanged, x, 1))
      << ::testing::PrintToString(reader_events.Lines());
  ASSERT_TRUE(anon_events.WaitCount(Type::kNodeCreated, *open, 1))
      << ::testing::PrintToString(anon_events.Lines());
  EXPECT_EQ(anon_events.Count(Type::kNodeDataChanged, x), 0u)
      << ::testing::PrintToString(anon_events.Lines());

  // Credentials belong to the connection: after a reconnect the channel
  // sends them again, or it would go deaf to the cluster.
  (*reader)->TestDropConnection();
  ASSERT_TRUE(reader_events.WaitCount(Type::kResynced, "", 2));
  ASSERT_TRUE(writer_->Set(x, "v3").ok());
  ASSERT_TRUE(reader_events.WaitCount(Type::kNodeDataChanged, x, 2))
      << ::testing::PrintToString(reader_events.Lines());
  EXPECT_FALSE((*reader)->stats().auth_failed);
  ASSERT_TRUE(writer_->Delete(*open).ok());
}

TEST_F(ZkAuthTest, TheWatchChannelStopsWhenItsCredentialsAreRefused) {
  EventRecorder events;
  auto ch = WatchChannel::Create(io_.executor(), ChannelOptions("someone:pw", "no-such-scheme"),
                                 events.Callback());
  ASSERT_TRUE(ch.ok());
  (*ch)->Start();
  ASSERT_TRUE(events.WaitCount(Type::kAuthFailed, "", 1))
      << ::testing::PrintToString(events.Lines());
  WatchChannelStats st = (*ch)->stats();
  EXPECT_TRUE(st.auth_failed);
  EXPECT_FALSE(st.live);
  EXPECT_NE(st.last_error.find("ZooKeeper refused the credentials of test (ZAUTHFAILED)"),
            std::string::npos)
      << st.last_error;
  EXPECT_EQ(events.Count(Type::kResynced), 0u);
  // Stopped for good: no new attempt follows.
  const uint64_t attempts = st.connect_attempts;
  io_.RunSync([] {});  // handlers queued meanwhile (a retry would be one) have run
  EXPECT_EQ((*ch)->stats().connect_attempts, attempts);
}

}  // namespace
}  // namespace rangekv::zk
