// In-process tests of the serving path: Server + Connection + RequestHandler
// over real loopback sockets, driven by a raw-frame client.
#include "kvnode/server/server.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <thread>

#include "kvnode/server/connection.h"
#include "kvnode/server/node.h"
#include "tests/kvnode/server/wire_client.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using proto::Response;
using testing::WireClient;
using Kind = proto::Response::Kind;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void TearDown() override {
    Shutdown();
    StopHome();
  }

  void Open() {
    auto node = Node::OpenStandalone(NodeConfig{tmp_.Sub("data"), std::nullopt});
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    node_ = std::move(*node);
    handler_ = std::make_unique<RequestHandler>(*node_);
    ServerOptions opts;
    opts.listen = HostPort{"127.0.0.1", 0};
    opts.io_threads = 2;
    auto server = Server::Bind(opts);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    if (fetch_home_ != nullptr) server_->ServeFetchesOn(*fetch_home_);
    ASSERT_TRUE(server_->Start(*handler_).ok());
    port_ = server_->local_endpoint().port();
  }
  // The order main() uses: stop serving, close stores, free the server.
  void Shutdown() {
    if (server_) server_->Stop();
    if (node_) {
      EXPECT_TRUE(node_->Close().ok());
    }
    server_.reset();
    handler_.reset();
    node_.reset();
  }
  WireClient Connect() {
    auto c = WireClient::Connect(port_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }
  static bool Pings(WireClient& c, uint64_t id) {
    auto r = c.Call(testing::PingRequest(id));
    return r.ok() && r->kind == Kind::kPong && r->id == id;
  }

  // A follower's connection opens with the fetch-stream mark, then its
  // first request: a fetch (on this standalone node it is answered with an
  // error, which is all these tests need).
  static std::string MarkAndFetch(uint64_t id) {
    proto::Request r;
    r.id = id;
    r.kind = proto::OpKind::kFetch;
    r.range = RangeId{1};
    r.fetch.replica = "n2";
    r.fetch.from = Seq{1};
    std::string bytes(1, static_cast<char>(net::kFetchStreamMark));
    proto::EncodeRequest(r, bytes);
    return bytes;
  }

  // Sends MarkAndFetch(id) on a new connection's first bytes and reads
  // the answer: true when it is the fetch's.
  static bool MarkedFetchAnswered(WireClient& c, uint64_t id) {
    if (!c.SendRaw(MarkAndFetch(id)).ok()) return false;
    auto r = c.Receive();
    return r.ok() && r->id == id;
  }

  // Reopens the server with a fetch home that stands in for the replication
  // thread: an io_context the test runs when it chooses (RunHome), so where
  // a connection is served shows in when its answers come.
  void OpenWithFetchHome() {
    Shutdown();
    home_ = std::make_unique<asio::io_context>(1);
    home_work_.emplace(home_->get_executor());
    fetch_home_ = home_.get();
    Open();
  }
  void RunHome() {
    home_thread_ = std::thread([home = home_.get()] { home->run(); });
  }
  void StopHome() {
    if (home_) home_->stop();
    if (home_thread_.joinable()) home_thread_.join();
  }

  testing::TempDir tmp_;
  std::unique_ptr<asio::io_context> home_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> home_work_;
  std::thread home_thread_;
  asio::io_context* fetch_home_ = nullptr;  // set before Open: ServeFetchesOn
  std::unique_ptr<Node> node_;
  std::unique_ptr<RequestHandler> handler_;
  std::unique_ptr<Server> server_;
  int port_ = 0;
};

TEST_F(ServerTest, BindsAnyPortAndReportsIt) {
  EXPECT_GT(port_, 0);
  EXPECT_EQ(server_->local_address(), "127.0.0.1:" + std::to_string(port_));
  EXPECT_EQ(server_->io_threads(), 2);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredById) {
  WireClient c = Connect();
  constexpr int kN = 200;
  std::string burst;
  for (int i = 0; i < kN; ++i) {
    proto::EncodeRequest(
        testing::PutRequest(1000 + i, "k" + std::to_string(i), "v" + std::to_string(i)), burst);
  }
  ASSERT_TRUE(c.SendRaw(burst).ok());  // all in flight before any answer is read
  std::map<uint64_t, Response> got;
  for (int i = 0; i < kN; ++i) {
    auto r = c.Receive();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    got[r->id] = *r;
  }
  ASSERT_EQ(got.size(), size_t{kN});
  for (auto& [id, r] : got) {
    EXPECT_GE(id, 1000u);
    EXPECT_LT(id, 1000u + kN);
    EXPECT_EQ(r.kind, Kind::kWritten);
  }
  burst.clear();
  for (int i = 0; i < kN; ++i)
    proto::EncodeRequest(testing::GetRequest(i, "k" + std::to_string(i)), burst);
  ASSERT_TRUE(c.SendRaw(burst).ok());
  for (int i = 0; i < kN; ++i) {
    auto r = c.Receive();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->kind, Kind::kFound);
    EXPECT_EQ(r->found.key, "k" + std::to_string(r->id));
    EXPECT_EQ(r->found.value, "v" + std::to_string(r->id));
  }
}

TEST_F(ServerTest, GarbageClosesOnlyThatConnection) {
  WireClient bystander = Connect();
  ASSERT_TRUE(Pings(bystander, 1));
  WireClient bad = Connect();
  // A valid length with bytes that are no Cap'n Proto message (segment count 2^32).
  ASSERT_TRUE(bad.SendRaw(std::string("\0\0\0\x10", 4) + std::string(16, '\xff')).ok());
  EXPECT_TRUE(bad.WaitClosed());
  EXPECT_TRUE(Pings(bystander, 2));
  WireClient fresh = Connect();
  EXPECT_TRUE(Pings(fresh, 3));
}

TEST_F(ServerTest, OversizeAndMisalignedFramesClose) {
  WireClient bystander = Connect();
  WireClient big = Connect();
  ASSERT_TRUE(big.SendRaw(std::string("\x7f\xff\xff\xf8", 4)).ok());  // ~2 GiB announced
  EXPECT_TRUE(big.WaitClosed());
  WireClient odd = Connect();
  ASSERT_TRUE(odd.SendRaw(std::string("\0\0\0\x0b", 4) + std::string(11, 'x')).ok());
  EXPECT_TRUE(odd.WaitClosed());
  EXPECT_TRUE(Pings(bystander, 1));
}

TEST_F(ServerTest, TooLargeValueGetsAnErrorAndTheConnectionStays) {
  WireClient c = Connect();
  auto r = c.Call(testing::PutRequest(5, "k", std::string(proto::Limits::kMaxValueBytes + 1, 'v')));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, 5u);
  ASSERT_EQ(r->kind, Kind::kError);
  EXPECT_EQ(r->error.code(), Code::kTooLarge);
  EXPECT_TRUE(Pings(c, 6));
}

TEST_F(ServerTest, HalfClosedClientStillGetsItsAnswers) {
  WireClient c = Connect();
  std::string burst;
  for (int i = 0; i < 50; ++i)
    proto::EncodeRequest(testing::PutRequest(i, "h" + std::to_string(i), "v"), burst);
  ASSERT_TRUE(c.SendRaw(burst).ok());
  c.ShutdownWrite();
  for (int i = 0; i < 50; ++i) {
    auto r = c.Receive();
    ASSERT_TRUE(r.ok()) << "answer " << i << ": " << r.status().ToString();
    EXPECT_EQ(r->kind, Kind::kWritten);
  }
  EXPECT_TRUE(c.WaitClosed());
}

TEST_F(ServerTest, ClientVanishingWithWritesPendingHarmsNothing) {
  for (int round = 0; round < 5; ++round) {
    WireClient c = Connect();
    std::string burst;
    for (int i = 0; i < 300; ++i) {
      proto::EncodeRequest(testing::PutRequest(i, "gone" + std::to_string(i), "v"), burst);
    }
    ASSERT_TRUE(c.SendRaw(burst).ok());
  }  // each client closes with its writes still in flight
  WireClient c = Connect();
  EXPECT_TRUE(Pings(c, 1));
  auto r = c.Call(testing::PutRequest(2, "after", "v"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, Kind::kWritten);
}

TEST_F(ServerTest, ClientThatDoesNotReadIsThrottledNotDropped) {
  WireClient c = Connect();
  constexpr int kN = 3 * static_cast<int>(Connection::kMaxPendingWrites);
  std::string burst;
  for (int i = 0; i < kN; ++i) {
    proto::EncodeRequest(testing::PutRequest(i, "bp" + std::to_string(i % 100), "v"), burst);
  }
  ASSERT_TRUE(c.SendRaw(burst).ok());  // the kernel buffers what the node does not read yet
  int written = 0;
  for (int i = 0; i < kN; ++i) {
    auto r = c.Receive(std::chrono::seconds(30));
    ASSERT_TRUE(r.ok()) << "answer " << i << ": " << r.status().ToString();
    written += r->kind == Kind::kWritten;
  }
  EXPECT_EQ(written, kN);
}

TEST_F(ServerTest, StopClosesConnectionsAndDataSurvivesReopen) {
  WireClient c = Connect();
  auto w = c.Call(testing::PutRequest(1, "durable", "yes"));
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->kind, Kind::kWritten);
  server_->Stop();
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_FALSE(WireClient::Connect(port_).ok());  // the acceptor is closed
  Shutdown();
  Open();
  WireClient again = Connect();
  auto g = again.Call(testing::GetRequest(2, "durable"));
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->kind, Kind::kFound);
  EXPECT_EQ(g->found.value, "yes");
  EXPECT_EQ(g->found.version, w->written_version);
}

TEST_F(ServerTest, AConnectionOpenedWithTheFetchMarkIsServedOnTheFetchHome) {
  OpenWithFetchHome();
  WireClient stays = Connect();
  ASSERT_TRUE(Pings(stays, 1));
  WireClient moves = Connect();
  std::string burst = MarkAndFetch(2);
  proto::EncodeRequest(testing::PingRequest(3), burst);
  ASSERT_TRUE(moves.SendRaw(burst).ok());
  // Nobody runs the home yet: the marked connection hears nothing, not
  // even for its ping, while the unmarked one is served on.
  auto none = moves.Receive(std::chrono::milliseconds(300));
  EXPECT_EQ(none.status().code(), Code::kTimeout) << none.status().ToString();
  EXPECT_TRUE(Pings(stays, 4));
  RunHome();
  auto fetched = moves.Receive();
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->id, 2u);
  auto pong = moves.Receive();
  ASSERT_TRUE(pong.ok()) << pong.status().ToString();
  EXPECT_EQ(pong->id, 3u);
  EXPECT_EQ(pong->kind, Kind::kPong);
  EXPECT_TRUE(Pings(moves, 5));  // later reads are the home's too
  // Stop closes it there at once: no drain timeout waited out.
  const auto stop_began = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_began, std::chrono::seconds(5));
  EXPECT_TRUE(moves.WaitClosed());
  EXPECT_TRUE(stays.WaitClosed());
}

// After CloseFetches (main calls it before the Node's Close ends the
// replication thread) nothing moves any more: a new marked connection is
// answered by the I/O threads with nobody running the home.
TEST_F(ServerTest, AfterCloseFetchesMarkedConnectionsStayOnTheIoThreads) {
  OpenWithFetchHome();
  RunHome();
  WireClient moved = Connect();
  ASSERT_TRUE(MarkedFetchAnswered(moved, 1));
  server_->CloseFetches();
  EXPECT_TRUE(moved.WaitClosed());
  StopHome();
  WireClient later = Connect();
  ASSERT_TRUE(MarkedFetchAnswered(later, 2));
  EXPECT_TRUE(Pings(later, 3));
}

// Without a fetch home (a standalone node) the mark is read and dropped;
// a second mark is no mark but a bad frame.
TEST_F(ServerTest, TheFetchMarkIsReadAndDroppedWithoutAFetchHome) {
  WireClient c = Connect();
  ASSERT_TRUE(MarkedFetchAnswered(c, 1));
  EXPECT_TRUE(Pings(c, 2));
  WireClient twice = Connect();
  ASSERT_TRUE(
      twice.SendRaw(std::string(1, static_cast<char>(net::kFetchStreamMark)) + MarkAndFetch(3))
          .ok());
  EXPECT_TRUE(twice.WaitClosed());
}

TEST_F(ServerTest, PortInUseIsUnavailable) {
  ServerOptions opts;
  opts.listen = HostPort{"127.0.0.1", static_cast<uint16_t>(port_)};
  opts.io_threads = 1;
  auto second = Server::Bind(opts);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(port_)),
            std::string::npos);
}

}  // namespace
}  // namespace rangekv::kvnode
