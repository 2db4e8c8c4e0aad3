// tests/client/fake_node.h — an in-process stand-in for a kvnode, for the
// client's unit tests.
//
// It listens on 127.0.0.1 (a kernel-chosen port), speaks the real frame and
// message codec, and keeps a tiny in-memory map. Within one read it answers
// in reverse order, so the client's matching by id is exercised. Modes:
//
//   | mode            | on each request                                      |
//   |-----------------|------------------------------------------------------|
//   | kServe          | answer it                                            |
//   | kHold           | keep it unanswered until ReleaseHeld()               |
//   | kCloseOnRequest | close that connection without answering, then switch |
//   |                 | to kServe (one lost connection)                      |
//   | kRefuse         | answer NOT_OWNER without a hint                      |
//
// Thread-safety: its own I/O thread serves; the public methods may be called
// from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.h"
#include "common/frame.h"
#include "common/protocol.h"

namespace rangekv::testing {

class FakeNode {
 public:
  enum class Mode { kServe, kHold, kCloseOnRequest, kRefuse };

  FakeNode();
  ~FakeNode();
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void SetMode(Mode m) { mode_ = m; }
  // kRefuse answers carry this hint from now on.
  void SetRefusalHint(proto::OwnerHint h) {
    std::lock_guard<std::mutex> lock(hint_mu_);
    hint_ = std::move(h);
  }
  // Answers every held request whose connection is still open.
  void ReleaseHeld();

  int accepted() const { return accepted_; }
  int requests() const { return requests_; }
  int responses_sent() const { return responses_sent_; }
  // Requests that asked for a stale read.
  int stale_requests() const { return stale_requests_; }

 private:
  std::optional<proto::OwnerHint> RefusalHint() {
    std::lock_guard<std::mutex> lock(hint_mu_);
    return hint_;
  }
  std::mutex hint_mu_;
  std::optional<proto::OwnerHint> hint_;
  struct Session;
  void Accept();
  void Read(std::shared_ptr<Session> s);
  void Send(const std::shared_ptr<Session>& s, const proto::Response& resp);
  void Write(std::shared_ptr<Session> s);
  proto::Response Handle(const proto::Request& req);

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<Mode> mode_{Mode::kServe};
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::atomic<int> responses_sent_{0};
  std::atomic<int> stale_requests_{0};
  // I/O thread only:
  std::map<std::string, proto::Entry> data_;
  uint64_t seq_ = 0;
  std::vector<std::pair<std::weak_ptr<Session>, proto::Request>> held_;
};

}  // namespace rangekv::testing
