#include "kvnode/server/connection_manager.h"

#include <vector>

#include "kvnode/server/connection.h"

namespace rangekv::kvnode {

void ConnectionCount::Add() {
  MutexLock lock(mu_);
  ++n_;
}

void ConnectionCount::Done() {
  MutexLock lock(mu_);
  if (n_ > 0 && --n_ == 0) zero_.NotifyAll();
}

size_t ConnectionCount::value() const {
  MutexLock lock(mu_);
  return n_;
}

bool ConnectionCount::WaitForZero(std::chrono::steady_clock::time_point deadline) {
  MutexLock lock(mu_);
  return zero_.WaitUntil(lock, deadline, [this] {
    mu_.AssertHeld();  // WaitUntil calls the predicate with the lock held
    return n_ == 0;
  });
}

void ConnectionManager::Start(std::shared_ptr<Connection> c) {
  live_.insert(c);
  if (draining_) {
    // Accepted before the acceptor closed, arrived after the drain: refuse it.
    c->Close();
    return;
  }
  c->Start();
}

void ConnectionManager::Remove(const std::shared_ptr<Connection>& c) {
  if (live_.erase(c) > 0) count_.Done();
}

void ConnectionManager::Forget(const std::shared_ptr<Connection>& c) { live_.erase(c); }

void ConnectionManager::DrainAll() {
  draining_ = true;
  // Drain may close a connection, which removes it from live_: iterate a copy.
  std::vector<std::shared_ptr<Connection>> all(live_.begin(), live_.end());
  for (auto& c : all) c->Drain();
}

void ConnectionManager::CloseAll() {
  draining_ = true;
  std::vector<std::shared_ptr<Connection>> all(live_.begin(), live_.end());
  for (auto& c : all) c->Close();
}

}  // namespace rangekv::kvnode
