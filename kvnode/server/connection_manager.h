// kvnode/server/connection_manager.h — the live connections of one I/O thread, and
// the server-wide count that shutdown waits on.
//
// Each I/O thread has its own ConnectionManager, touched only from that
// thread, so adding and removing connections takes no lock. The one shared
// piece is the ConnectionCount: the acceptor counts a connection before
// handing it to its thread, and the manager uncounts it when it closes, so
// Server::Stop can wait until every connection (including one still being
// handed over) is gone.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_set>

namespace rangekv::kvnode {

class Connection;

// Thread-safe counter with a wait for zero.
class ConnectionCount {
 public:
  void Add();
  void Done();
  size_t value() const;
  // True when the count reached zero before the deadline.
  bool WaitForZero(std::chrono::steady_clock::time_point deadline);

 private:
  mutable std::mutex mu_;
  std::condition_variable zero_;
  size_t n_ = 0;  // guarded by mu_
};

class ConnectionManager {
 public:
  // count must outlive the manager.
  explicit ConnectionManager(ConnectionCount& count) : count_(count) {}
  ConnectionManager(const ConnectionManager&) = delete;
  ConnectionManager& operator=(const ConnectionManager&) = delete;

  // Takes over a connection the acceptor already counted (ConnectionCount::Add)
  // and starts it; after DrainAll() it is closed at once instead.
  void Start(std::shared_ptr<Connection> c);
  // Called by a connection as it closes; uncounts it. Idempotent.
  void Remove(const std::shared_ptr<Connection>& c);
  // Drains every connection (Connection::Drain) and refuses new ones.
  void DrainAll();
  // Closes every connection now.
  void CloseAll();
  size_t size() const { return live_.size(); }

 private:
  ConnectionCount& count_;
  std::unordered_set<std::shared_ptr<Connection>> live_;
  bool draining_ = false;
};

}  // namespace rangekv::kvnode
