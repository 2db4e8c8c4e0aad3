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
#include <cstddef>
#include <memory>
#include <unordered_set>

#include "common/mutex.h"

namespace rangekv::kvnode {

class Connection;

// Thread-safe counter with a wait for zero.
class ConnectionCount {
 public:
  void Add() EXCLUDES(mu_);
  void Done() EXCLUDES(mu_);
  size_t value() const EXCLUDES(mu_);
  // True when the count reached zero before the deadline.
  bool WaitForZero(std::chrono::steady_clock::time_point deadline) EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  CondVar zero_;
  size_t n_ GUARDED_BY(mu_) = 0;
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
  // A connection moving to another manager (connection.h, "Fetch
  // connections move"), which Starts it: dropped here, still counted.
  void Forget(const std::shared_ptr<Connection>& c);
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
