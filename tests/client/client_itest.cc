// The client against a real kvnode process on loopback.
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "common/protocol.h"
#include "rangekv/client.h"
#include "tests/testutil/testutil.h"

namespace rangekv {
namespace {

using std::chrono::milliseconds;
using testing::WaitFor;

// True when every thread of pid is in state T (stopped), per /proc.
bool AllThreadsStopped(pid_t pid) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int threads = 0;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos || close + 2 >= stat.size()) return false;
    if (stat[close + 2] != 'T') return false;
    ++threads;
  }
  return !ec && threads > 0;
}

class ClientITest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = testing::FreePort();
    address_ = "127.0.0.1:" + std::to_string(port_);
    StartNode();
    client_ = ConnectWhenUp();
    ASSERT_TRUE(client_) << "kvnode did not come up; log:\n" << testing::ReadFile(Log());
  }

  std::string Log() const { return dir_.Sub("kvnode.log"); }

  void StartNode() {
    node_ = testing::Process::Start({testing::BuildPath("kvnode/kvnode"), "--standalone",
                                     "--listen", address_, "--data", dir_.Sub("data")},
                                    Log());
  }

  std::unique_ptr<Client> ConnectWhenUp(ClientOptions o = {}) {
    std::unique_ptr<Client> c;
    WaitFor(
        [&] {
          auto r = Client::ConnectNode(address_, o);
          if (r.ok()) c = std::move(r).value();
          return c != nullptr;
        },
        milliseconds(15000), milliseconds(50));
    return c;
  }

  testing::TempDir dir_;
  int port_ = 0;
  std::string address_;
  testing::Process node_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientITest, EveryOpThroughTheBlockingApi) {
  Client& c = *client_;
  EXPECT_TRUE(c.Ping().ok());
  auto missing = c.Get("a");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value());

  auto v1 = c.Put("a", "1");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  auto got = c.Get("a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, "1");
  EXPECT_EQ((*got)->version, *v1);

  auto cas_bad = c.Cas("a", *v1 + 1000, "x");
  ASSERT_FALSE(cas_bad.ok());
  EXPECT_EQ(cas_bad.status().code(), Code::kCasFailed);
  auto cas_new = c.Cas("fresh", 0, "n");
  ASSERT_TRUE(cas_new.ok()) << cas_new.status().ToString();
  auto v2 = c.Cas("a", *v1, "2");
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_GT(*v2, *v1);

  auto vb = c.Batch({BatchOp::Put("b", "B"), BatchOp::Put("c", "C"), BatchOp::Delete("fresh")});
  ASSERT_TRUE(vb.ok()) << vb.status().ToString();
  auto scan = c.Scan("a", std::string_view("c"), 0);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->entries.size(), 2u);
  EXPECT_EQ(scan->entries[0].key, "a");
  EXPECT_EQ(scan->entries[0].value, "2");
  EXPECT_EQ(scan->entries[1].key, "b");
  auto limited = c.Scan("", std::nullopt, 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->entries.size(), 2u);
  EXPECT_TRUE(limited->more);

  ASSERT_TRUE(c.Delete("a").ok());
  auto gone = c.Get("a");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto gone_fresh = c.Get("fresh");
  ASSERT_TRUE(gone_fresh.ok());
  EXPECT_FALSE(gone_fresh->has_value());
}

TEST_F(ClientITest, EveryOpThroughTheAsyncApi) {
  Client& c = *client_;
  std::atomic<int> done{0};
  std::atomic<uint64_t> put_version{0};
  c.PutAsync("k", "v", [&](Result<uint64_t> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) put_version = *r;
    ++done;
  });
  ASSERT_TRUE(WaitFor([&] { return done == 1; }, milliseconds(5000)));
  c.GetAsync("k", [&](Result<std::optional<VersionedValue>> r) {
    EXPECT_TRUE(r.ok() && r->has_value() && (*r)->value == "v");
    ++done;
  });
  c.CasAsync("k", put_version, "w", [&](Result<uint64_t> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ++done;
  });
  ASSERT_TRUE(WaitFor([&] { return done == 3; }, milliseconds(5000)));
  c.BatchAsync({BatchOp::Put("k2", "x"), BatchOp::Put("k3", "y")}, [&](Result<uint64_t> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ++done;
  });
  ASSERT_TRUE(WaitFor([&] { return done == 4; }, milliseconds(5000)));
  c.ScanAsync("k", std::nullopt, 0, [&](Result<ScanResult> r) {
    EXPECT_TRUE(r.ok() && r->entries.size() == 3 && r->entries[0].value == "w");
    ++done;
  });
  c.DeleteAsync("k2", [&](Result<uint64_t> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    ++done;
  });
  ASSERT_TRUE(WaitFor([&] { return done == 6; }, milliseconds(5000)));
}

TEST_F(ClientITest, ManyPipelinedAsyncOpsCompleteExactlyOnce) {
  ClientOptions o;
  o.connections_per_node = 4;
  o.io_threads = 2;
  auto c = ConnectWhenUp(o);
  ASSERT_TRUE(c);
  constexpr int kOps = 10000;
  std::vector<std::atomic<int>> calls(kOps);
  std::atomic<int> ok{0};
  for (int i = 0; i < kOps; ++i) {
    auto count = [&, i](bool success) {
      calls[i].fetch_add(1);
      if (success) ok.fetch_add(1);
    };
    if (i % 2 == 0) {
      c->PutAsync("key" + std::to_string(i), std::string(100, 'v'),
                  [count](Result<uint64_t> r) { count(r.ok()); });
    } else {
      c->GetAsync("key" + std::to_string(i),
                  [count](Result<std::optional<VersionedValue>> r) { count(r.ok()); });
    }
  }
  ASSERT_TRUE(WaitFor([&] { return ok.load() == kOps; }, milliseconds(60000)))
      << ok.load() << " of " << kOps;
  for (int i = 0; i < kOps; ++i) ASSERT_EQ(calls[i].load(), 1) << i;
}

TEST_F(ClientITest, TimeoutWhilePausedThenRecovers) {
  ASSERT_TRUE(client_->Put("k", "v").ok());
  node_.Signal(SIGSTOP);
  // kill() returns before every thread of the node has stopped.
  ASSERT_TRUE(WaitFor([&] { return AllThreadsStopped(node_.pid()); }, milliseconds(5000)));
  CallOptions quick;
  quick.timeout = milliseconds(200);
  auto got = client_->Get("k", quick);
  auto put = client_->Put("k", "v2", quick);
  node_.Signal(SIGCONT);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kTimeout);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kTimeout);
  ASSERT_TRUE(WaitFor([&] { return client_->Ping().ok(); }, milliseconds(5000)));
  // The timed-out put sat in the socket and is applied after SIGCONT; its
  // outcome was unknown to the client, so it may become visible a bit later.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto after = client_->Get("k");
        return after.ok() && after->has_value() && (*after)->value == "v2";
      },
      milliseconds(5000)));
}

TEST_F(ClientITest, UnavailableWhenKilledThenWorksAfterRestart) {
  ASSERT_TRUE(client_->Put("k", "before").ok());
  node_.Kill();
  auto put = client_->Put("k", "lost");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kUnavailable) << put.status().ToString();
  auto get = client_->Get("k");
  ASSERT_FALSE(get.ok());
  EXPECT_EQ(get.status().code(), Code::kUnavailable) << get.status().ToString();

  StartNode();
  ASSERT_TRUE(WaitFor([&] { return client_->Put("k2", "after").ok(); }, milliseconds(15000)))
      << testing::ReadFile(Log());
  auto kept = client_->Get("k");
  ASSERT_TRUE(kept.ok() && kept->has_value()) << kept.status().ToString();
  EXPECT_EQ((*kept)->value, "before");
}

TEST_F(ClientITest, TooLargeWithoutRoundTrip) {
  auto r = client_->Put("k", std::string(proto::Limits::kMaxValueBytes + 1, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTooLarge);
  EXPECT_TRUE(client_->Ping().ok());
}

TEST(ClientConnectTest, ClosedPortIsUnavailableQuickly) {
  const std::string addr = "127.0.0.1:" + std::to_string(testing::FreePort());
  const auto start = std::chrono::steady_clock::now();
  auto c = Client::ConnectNode(addr);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable);
  EXPECT_NE(c.status().message().find(addr), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
}

}  // namespace
}  // namespace rangekv
