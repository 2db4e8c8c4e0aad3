// Crash test with real processes: a standalone kvnode takes puts from the
// client while the test SIGKILLs it at a random point; after a restart on
// the same data directory every acknowledged put must be there with its value.
//
// Unique keys check "nothing acknowledged is lost"; a few hot keys written
// concurrently check that what survives is the newest acknowledged version
// (or a newer write whose outcome was unknown), never an older one.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>

#include "rangekv/client.h"
#include "tests/testutil/testutil.h"

namespace rangekv {
namespace {

using namespace std::chrono_literals;
using testing::Process;
using testing::TempDir;

struct Write {
  std::string key;
  std::string value;
  enum class Outcome { kPending, kAcked, kUnknown } outcome = Outcome::kPending;
  uint64_t version = 0;
};

class CrashTest : public ::testing::Test {
 protected:
  Process StartNode(int port, const std::string& fsync) {
    return Process::Start({testing::BuildPath("kvnode/kvnode"), "--standalone", "--listen",
                           "127.0.0.1:" + std::to_string(port), "--data", dir_.Sub("data"),
                           "--fsync", fsync},
                          dir_.Sub("kvnode.log"));
  }

  std::unique_ptr<Client> Connect(int port) {
    std::unique_ptr<Client> client;
    ClientOptions opts;
    opts.request_timeout = 3000ms;
    opts.connect_timeout = 500ms;
    opts.connections_per_node = 4;
    bool up = testing::WaitFor(
        [&] {
          auto c = Client::ConnectNode("127.0.0.1:" + std::to_string(port), opts);
          if (!c.ok()) return false;
          client = std::move(c).value();
          return client->Ping().ok();
        },
        20s, 20ms);
    EXPECT_TRUE(up) << "kvnode did not come up; log:\n" << testing::ReadFile(dir_.Sub("kvnode.log"));
    return client;
  }

  // Issues puts (kInFlight at a time) until the node dies or max_writes are
  // done; the node is SIGKILLed once kill_after puts were acknowledged.
  void WriteUntilKilled(Client& client, Process& node, int round, int kill_after, int max_writes,
                        std::mt19937_64& rng) {
    constexpr int kInFlight = 32;
    std::mutex mu;
    std::condition_variable cv;
    int in_flight = 0;
    int acked = 0;
    bool failed = false;
    for (int i = 0; i < max_writes; ++i) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < kInFlight || failed; });
      if (failed) break;
      if (acked >= kill_after && node.running()) node.Kill();
      size_t idx = writes_.size();
      Write w;
      w.key = (i % 5 == 0) ? "hot-" + std::to_string(rng() % 4)
                           : "r" + std::to_string(round) + "-k" + std::to_string(i);
      w.value = "v" + std::to_string(round) + "-" + std::to_string(i) + "-" +
                std::string(static_cast<size_t>(rng() % 200), 'x');
      writes_.push_back(w);
      ++in_flight;
      lock.unlock();
      client.PutAsync(w.key, w.value, [&, idx](Result<uint64_t> r) {
        std::lock_guard g(mu);
        if (r.ok()) {
          writes_[idx].outcome = Write::Outcome::kAcked;
          writes_[idx].version = *r;
          ++acked;
        } else {
          writes_[idx].outcome = Write::Outcome::kUnknown;
          failed = true;
        }
        --in_flight;
        cv.notify_all();
      });
    }
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return in_flight == 0; }))
        << "callbacks did not all run";
    if (node.running()) {
      lock.unlock();
      node.Kill();
    }
  }

  void VerifyAll(Client& client) {
    std::map<std::string, std::vector<const Write*>> by_key;
    for (const auto& w : writes_) by_key[w.key].push_back(&w);
    size_t checked = 0;
    for (const auto& [key, ws] : by_key) {
      const Write* newest_acked = nullptr;
      for (const Write* w : ws) {
        if (w->outcome == Write::Outcome::kAcked &&
            (!newest_acked || w->version > newest_acked->version)) {
          newest_acked = w;
        }
      }
      if (!newest_acked) continue;
      auto got = client.Get(key);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(got->has_value()) << "acknowledged key lost: " << key;
      const VersionedValue& v = **got;
      ASSERT_GE(v.version, newest_acked->version) << "older version survived for " << key;
      if (v.version == newest_acked->version) {
        EXPECT_EQ(v.value, newest_acked->value) << key;
      } else {
        // A newer write whose acknowledgement was lost with the process.
        bool known = false;
        for (const Write* w : ws) {
          known |= w->value == v.value &&
                   (w->outcome != Write::Outcome::kAcked || w->version == v.version);
        }
        EXPECT_TRUE(known) << "value of " << key << " was never written";
      }
      ++checked;
    }
    EXPECT_GT(checked, 0u);
    std::cout << "verified " << checked << " keys after restart\n";
  }

  TempDir dir_;
  std::vector<Write> writes_;
};

TEST_F(CrashTest, AcknowledgedPutsSurviveSigkill) {
  uint64_t seed = std::random_device{}();
  std::cout << "seed " << seed << "\n";
  std::mt19937_64 rng(seed);
  const std::vector<std::string> policies = {"never", "batch", "always", "batch", "never", "always"};
  size_t acked_total = 0;
  for (int round = 0; round < static_cast<int>(policies.size()); ++round) {
    int port = testing::FreePort();
    Process node = StartNode(port, policies[round]);
    auto client = Connect(port);
    ASSERT_TRUE(client);
    if (round > 0) VerifyAll(*client);  // everything from earlier rounds
    int kill_after = 300 + static_cast<int>(rng() % 2500);
    WriteUntilKilled(*client, node, round, kill_after, 4000, rng);
    EXPECT_FALSE(node.running());
  }
  for (const auto& w : writes_) acked_total += w.outcome == Write::Outcome::kAcked;
  EXPECT_GE(acked_total, 1800u);
  std::cout << "writes issued " << writes_.size() << ", acknowledged " << acked_total << "\n";
  int port = testing::FreePort();
  Process node = StartNode(port, "batch");
  auto client = Connect(port);
  ASSERT_TRUE(client);
  VerifyAll(*client);
  EXPECT_EQ(node.Stop(), 0) << "kvnode should exit 0 on SIGTERM";
}

}  // namespace
}  // namespace rangekv
