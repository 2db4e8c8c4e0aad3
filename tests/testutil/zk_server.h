// tests/testutil/zk_server.h — a throwaway standalone ZooKeeper server for
// integration tests (Debian's zookeeper package, /usr/share/java).
//
// It listens on 127.0.0.1:<FreePort()> only (clientPortAddress), keeps its
// data in a TempDir, ticks every 500 ms by default (sessions 1000..20000 ms)
// and has the admin server off. Start() polls the "ruok" four-letter command
// until "imok" with a deadline. Stop() ends only the process it started (by
// PID). Restart() brings it back on the same port and data directory, so
// sessions that have not expired survive it.
//
// Thread-safety: none; use from the test thread.
#pragma once

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace rangekv::testing {

class ZkServer {
 public:
  explicit ZkServer(int tick_ms = 500);
  ~ZkServer();  // stops the server if running
  ZkServer(const ZkServer&) = delete;
  ZkServer& operator=(const ZkServer&) = delete;

  // Starts the server and waits until it answers "imok". Returns false (and
  // stops it) if it did not within `timeout`; see log() for why.
  bool Start(std::chrono::milliseconds timeout = std::chrono::milliseconds(15000));
  // SIGTERM, then SIGKILL after 5 s. The port is free when this returns.
  void Stop();
  bool Restart(std::chrono::milliseconds timeout = std::chrono::milliseconds(15000));
  bool running();

  // One "ruok" round trip; true on "imok".
  bool Ruok() const;

  int port() const { return port_; }
  // "127.0.0.1:<port>"
  std::string connect_string() const;
  std::string log() const;
  const std::string& data_dir() const { return data_dir_; }

 private:
  void WriteConfig() const;

  TempDir dir_;
  std::string data_dir_;
  int port_;
  int tick_ms_;
  Process process_;
};

// Sends a four-letter command ("ruok", "stat", ...) to 127.0.0.1:port and
// returns the reply ("" on any error). Bounded by `timeout`.
std::string ZkFourLetter(int port, const std::string& command,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));
// The same to host:port (a dotted IPv4 address).
std::string ZkFourLetter(const std::string& host, int port, const std::string& command,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

// A test fixture whose suite shares one ZooKeeper server (starting one takes
// about a second). Derived is the fixture itself, so each suite gets its own
// server: class MyTest : public ZkSuite<MyTest> { ... }; use server().
template <typename Derived>
class ZkSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ZkServer();
    ASSERT_TRUE(server_->Start()) << server_->log();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static inline ZkServer* server_ = nullptr;
};

}  // namespace rangekv::testing
