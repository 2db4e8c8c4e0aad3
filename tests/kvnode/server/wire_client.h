// tests/kvnode/server/wire_client.h — a blocking raw-socket client for server tests.
//
// Speaks the frame format of common/frame.h directly (no client library), so
// tests can send garbage, oversize lengths and pipelined requests and see
// exactly what the node answers. Every wait has a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/frame.h"
#include "common/protocol.h"
#include "rangekv/status.h"

namespace rangekv::testing {

class WireClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};

  // Connects to 127.0.0.1:port. UNAVAILABLE when the connect fails.
  static Result<WireClient> Connect(int port);
  // Connects to host (dotted IPv4):port, giving up after timeout.
  static Result<WireClient> Connect(const std::string& host, int port,
                                    std::chrono::milliseconds timeout = kDefaultTimeout);
  WireClient(WireClient&& o) noexcept;
  WireClient& operator=(WireClient&& o) noexcept;
  ~WireClient();

  // Sends one encoded request / raw bytes. IO_ERROR when the write fails.
  Status Send(const proto::Request& req);
  Status SendRaw(const std::string& bytes);
  // Half-closes the sending side (the node then sees EOF).
  void ShutdownWrite();

  // The next response; TIMEOUT, UNAVAILABLE (peer closed) or BAD_REQUEST.
  Result<proto::Response> Receive(std::chrono::milliseconds timeout = kDefaultTimeout);
  // Sends req and returns the next response (which must be req's: no other
  // request may be in flight).
  Result<proto::Response> Call(const proto::Request& req,
                               std::chrono::milliseconds timeout = kDefaultTimeout);
  // True when the peer closes the connection (EOF or reset) before timeout;
  // responses arriving meanwhile are discarded.
  bool WaitClosed(std::chrono::milliseconds timeout = kDefaultTimeout);

 private:
  explicit WireClient(int fd) : fd_(fd) {}
  // Reads what is available into reader_; false on EOF/error/timeout.
  Status Fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  FrameReader reader_;
};

// Request builders.
proto::Request PingRequest(uint64_t id);
proto::Request GetRequest(uint64_t id, std::string key);
proto::Request PutRequest(uint64_t id, std::string key, std::string value);
proto::Request DeleteRequest(uint64_t id, std::string key);
proto::Request CasRequest(uint64_t id, std::string key, uint64_t expected, std::string value);
proto::Request ScanRequest(uint64_t id, std::string start, std::optional<std::string> end,
                           uint32_t limit);
proto::Request BatchRequest(uint64_t id, std::vector<proto::WriteOp> ops);

}  // namespace rangekv::testing
