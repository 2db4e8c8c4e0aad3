// tests/common/zk/zk_test_util.h — helpers for the ZooKeeper tests.
//
// IoThread: an io_context run by one background thread (the "executor" the
// code under test posts onto); joined at destruction.
// EventRecorder: collects WatchEvents with their arrival time, thread-safe.
// TcpProxy: a loopback TCP proxy in front of a server; Disable() closes every
// proxied connection and then each new one right after accepting it (a
// network cut: the server seems to vanish), Enable() proxies again. The
// listener stays bound throughout, so the port cannot be lost to another
// socket in between.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.h"
#include "common/zk/watch_channel.h"

namespace rangekv::testing {

class IoThread {
 public:
  IoThread();
  ~IoThread();
  asio::any_io_executor executor() { return io_.get_executor(); }
  asio::io_context& io() { return io_; }
  std::thread::id thread_id() const { return thread_.get_id(); }
  // Runs f on the io thread and waits for it.
  void RunSync(const std::function<void()>& f);

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

struct TimedEvent {
  zk::WatchEvent event;
  std::chrono::steady_clock::time_point at;
};

class EventRecorder {
 public:
  // The callback to hand to WatchChannel::Create.
  zk::WatchChannel::EventCallback Callback();
  void Record(const zk::WatchEvent& ev);
  std::vector<TimedEvent> Events() const;
  size_t Count(zk::WatchEventType type, const std::string& path = "") const;
  // Waits until Count(type, path) >= n.
  bool WaitCount(zk::WatchEventType type, const std::string& path, size_t n,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) const;
  // Index of the first event at or after `from` with this type and path; -1.
  int Find(zk::WatchEventType type, const std::string& path, size_t from = 0) const;
  // "NodeCreated /a" lines, for readable assertion messages.
  std::vector<std::string> Lines(size_t from = 0) const;
  void Clear();

 private:
  mutable std::mutex mu_;
  std::vector<TimedEvent> events_;
};

class TcpProxy {
 public:
  explicit TcpProxy(int upstream_port);
  ~TcpProxy();
  int port() const { return port_; }
  void Enable();
  // Closes every connection and refuses new ones until Enable.
  void Disable();
  // Connections, open and new, stay up but what clients send is dropped
  // (a cut link that no reset reveals); the server's bytes still arrive.
  // For good: the test ends with it.
  void Stall();

  class Impl;

 private:
  IoThread io_;
  std::shared_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace rangekv::testing
