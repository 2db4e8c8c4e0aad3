// The client against an in-process FakeNode: matching, deadlines, lost
// connections and retries, without a real kvnode.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "rangekv/client.h"
#include "tests/client/fake_node.h"
#include "tests/testutil/testutil.h"

namespace rangekv {
namespace {

using std::chrono::milliseconds;
using testing::FakeNode;
using testing::WaitFor;

std::unique_ptr<Client> Connect(const std::string& address, ClientOptions o = {}) {
  auto c = Client::ConnectNode(address, o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(c).value() : nullptr;
}

TEST(ClientFakeTest, BlockingOpsRoundTrip) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->Ping().ok());
  auto v1 = c->Put("a", "1");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  auto got = c->Get("a");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "1");
  EXPECT_EQ((*got)->version, *v1);
  auto missing = c->Get("zz");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto cas_bad = c->Cas("a", *v1 + 100, "2");
  ASSERT_FALSE(cas_bad.ok());
  EXPECT_EQ(cas_bad.status().code(), Code::kCasFailed);
  EXPECT_EQ(cas_bad.status().message(), "version is " + std::to_string(*v1));
  EXPECT_TRUE(c->Cas("a", *v1, "2").ok());

  ASSERT_TRUE(c->Batch({BatchOp::Put("b", "x"), BatchOp::Put("c", "y")}).ok());
  auto scan = c->Scan("a", std::string_view("c"), 0);
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->entries.size(), 2u);
  EXPECT_EQ(scan->entries[0].value, "2");
  EXPECT_EQ(scan->entries[1].key, "b");
  EXPECT_FALSE(scan->more);
  auto limited = c->Scan("", std::nullopt, 1);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->entries.size(), 1u);
  EXPECT_TRUE(limited->more);

  ASSERT_TRUE(c->Delete("a").ok());
  auto gone = c->Get("a");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST(ClientFakeTest, PipelinedCallbacksRunExactlyOnce) {
  FakeNode node;
  ClientOptions o;
  o.connections_per_node = 4;
  o.io_threads = 2;
  auto c = Connect(node.address(), o);
  ASSERT_TRUE(c);
  constexpr int kOps = 4000;
  std::vector<std::atomic<int>> calls(kOps);
  std::atomic<int> ok{0};
  for (int i = 0; i < kOps; ++i) {
    auto cb = [&, i](auto r) {
      calls[i].fetch_add(1);
      if (r.ok()) ok.fetch_add(1);
    };
    if (i % 2 == 0) {
      c->PutAsync("k" + std::to_string(i), "v", cb);
    } else {
      c->GetAsync("k" + std::to_string(i - 1), cb);
    }
  }
  ASSERT_TRUE(WaitFor([&] { return ok.load() == kOps; }, milliseconds(20000)));
  for (int i = 0; i < kOps; ++i) EXPECT_EQ(calls[i].load(), 1) << i;
  EXPECT_EQ(node.accepted(), 4);
}

// Requests that time out on a connection that read nothing since they were
// sent fail once with TIMEOUT, and the connection is dropped: the next
// request connects anew instead of queueing behind a link that may be cut
// (where TCP would wait out its retransmission backoff after the heal).
TEST(ClientFakeTest, TimeoutOnASilentConnectionReconnects) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Ping().ok());
  ASSERT_EQ(node.accepted(), 1);
  node.SetMode(FakeNode::Mode::kHold);
  std::atomic<int> calls{0};
  std::atomic<int> code{-1};
  CallOptions quick;
  quick.timeout = milliseconds(100);
  const auto start = std::chrono::steady_clock::now();
  c->GetAsync("k", [&](Result<std::optional<VersionedValue>> r) {
    code = static_cast<int>(r.status().code());
    calls.fetch_add(1);
  }, quick);
  auto blocking = c->Put("k", "v", quick);
  ASSERT_FALSE(blocking.ok());
  EXPECT_EQ(blocking.status().code(), Code::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return calls.load() == 1; }, milliseconds(5000)));
  EXPECT_EQ(code.load(), static_cast<int>(Code::kTimeout));

  node.SetMode(FakeNode::Mode::kServe);
  node.ReleaseHeld();  // the held requests' connection is gone: nothing comes back
  EXPECT_TRUE(c->Ping().ok());
  EXPECT_EQ(node.accepted(), 2);
  EXPECT_EQ(calls.load(), 1);
}

// Answered requests leave their deadlines behind in the connection's heap
// (taken out lazily, or by a rebuild once they outnumber the pending ones):
// after thousands of them, a request with a short timeout sent after one
// with a long timeout still fails at its own deadline, once.
TEST(ClientFakeTest, DeadlinesHoldAfterManyAnsweredRequests) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  constexpr int kOps = 3000;
  std::atomic<int> answered{0};
  for (int i = 0; i < kOps; ++i) {
    c->GetAsync("k" + std::to_string(i), [&](auto r) {
      if (r.ok()) answered.fetch_add(1);
    });
  }
  ASSERT_TRUE(WaitFor([&] { return answered.load() == kOps; }, milliseconds(20000)));

  node.SetMode(FakeNode::Mode::kHold);
  std::atomic<int> slow_calls{0}, quick_calls{0}, quick_code{-1};
  CallOptions slow, quick;
  slow.timeout = milliseconds(60000);
  quick.timeout = milliseconds(150);
  const auto start = std::chrono::steady_clock::now();
  c->GetAsync(
      "slow", [&](auto) { slow_calls.fetch_add(1); }, slow);
  c->GetAsync(
      "quick",
      [&](Result<std::optional<VersionedValue>> r) {
        quick_code = static_cast<int>(r.status().code());
        quick_calls.fetch_add(1);
      },
      quick);
  ASSERT_TRUE(WaitFor([&] { return quick_calls.load() == 1; }, milliseconds(5000)));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(quick_code.load(), static_cast<int>(Code::kTimeout));
  EXPECT_GE(waited, milliseconds(150));
  EXPECT_LT(waited, milliseconds(3000));
  EXPECT_EQ(slow_calls.load(), 0);
  node.SetMode(FakeNode::Mode::kServe);
  node.ReleaseHeld();
}

// What a timed-out request's callback sends next goes out on a new link:
// the silent one is dropped before the callbacks run, so it cannot take the
// new request down with it.
TEST(ClientFakeTest, RequestSentOnTimeoutUsesTheNewConnection) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Ping().ok());
  node.SetMode(FakeNode::Mode::kHold);
  std::atomic<int> next{-1};
  CallOptions quick;
  quick.timeout = milliseconds(100);
  c->GetAsync(
      "k",
      [&](Result<std::optional<VersionedValue>> r) {
        EXPECT_EQ(r.status().code(), Code::kTimeout);
        node.SetMode(FakeNode::Mode::kServe);
        c->PutAsync("k", "v",
                    [&](Result<uint64_t> put) { next = static_cast<int>(put.status().code()); });
      },
      quick);
  ASSERT_TRUE(WaitFor([&] { return next.load() >= 0; }, milliseconds(5000)));
  EXPECT_EQ(next.load(), static_cast<int>(Code::kOk));
  EXPECT_EQ(node.accepted(), 2);
}

TEST(ClientFakeTest, ReadIsRetriedOnAFreshConnection) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Put("k", "v").ok());
  node.SetMode(FakeNode::Mode::kCloseOnRequest);
  auto got = c->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value, "v");
  EXPECT_EQ(node.accepted(), 2);
}

TEST(ClientFakeTest, WriteIsNotRetriedAfterLostConnection) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  node.SetMode(FakeNode::Mode::kCloseOnRequest);
  auto put = c->Put("k", "v");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kUnavailable);
  EXPECT_NE(put.status().message().find(node.address()), std::string::npos)
      << put.status().message();
  EXPECT_EQ(node.requests(), 1);
  // The next write reconnects lazily.
  EXPECT_TRUE(c->Put("k", "v2").ok());
  EXPECT_EQ(node.accepted(), 2);
}

TEST(ClientFakeTest, TooLargeIsRejectedWithoutARoundTrip) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  auto big_value = c->Put("k", std::string(proto::Limits::kMaxValueBytes + 1, 'v'));
  ASSERT_FALSE(big_value.ok());
  EXPECT_EQ(big_value.status().code(), Code::kTooLarge);
  auto big_key = c->Get(std::string(proto::Limits::kMaxKeyBytes + 1, 'k'));
  ASSERT_FALSE(big_key.ok());
  EXPECT_EQ(big_key.status().code(), Code::kTooLarge);
  auto empty_batch = c->Batch({});
  ASSERT_FALSE(empty_batch.ok());
  EXPECT_EQ(empty_batch.status().code(), Code::kBadRequest);
  EXPECT_EQ(node.requests(), 0);
  EXPECT_TRUE(c->Put("k", std::string(proto::Limits::kMaxValueBytes, 'v')).ok());
}

TEST(ClientFakeTest, DestructorFailsPendingOnce) {
  FakeNode node;
  auto c = Connect(node.address());
  ASSERT_TRUE(c);
  node.SetMode(FakeNode::Mode::kHold);
  std::atomic<int> calls{0};
  std::atomic<int> code{-1};
  CallOptions slow;
  slow.timeout = milliseconds(60000);
  c->PutAsync("k", "v", [&](Result<uint64_t> r) {
    code = static_cast<int>(r.status().code());
    calls.fetch_add(1);
  }, slow);
  ASSERT_TRUE(WaitFor([&] { return node.requests() == 1; }, milliseconds(5000)));
  const auto start = std::chrono::steady_clock::now();
  c.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(2000));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(code.load(), static_cast<int>(Code::kUnavailable));
}

TEST(ClientFakeTest, ConnectToClosedPortFailsQuickly) {
  const int port = testing::FreePort();
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  const auto start = std::chrono::steady_clock::now();
  auto c = Client::ConnectNode(addr);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable);
  EXPECT_NE(c.status().message().find(addr), std::string::npos) << c.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000));
}

TEST(ClientFakeTest, MalformedAddressIsBadRequest) {
  auto c = Client::ConnectNode("no-port-here");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kBadRequest);
  ClientOptions zero;
  zero.connections_per_node = 0;
  auto z = Client::ConnectNode("127.0.0.1:1", zero);
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.status().code(), Code::kBadRequest);
}

TEST(ClientFakeTest, ManyThreadsUseTheBlockingApi) {
  FakeNode node;
  ClientOptions o;
  o.connections_per_node = 3;
  auto c = Connect(node.address(), o);
  ASSERT_TRUE(c);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!c->Put(key, key).ok()) ++failures;
        auto g = c->Get(key);
        if (!g.ok() || !g->has_value() || (*g)->value != key) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace rangekv
