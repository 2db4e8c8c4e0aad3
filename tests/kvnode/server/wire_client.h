// tests/kvnode/server/wire_client.h — a blocking raw-socket client for server tests.
//
// Speaks the frame format of common/frame.h directly (no client library), so
// tests can send garbage, oversize lengths and pipelined requests and see
// exactly what the node answers. Every wait has a deadline.
//
// With WireTls files it speaks TLS with a client certificate over the same
// socket (OpenSSL directly, the fd non-blocking, every wait a poll with a
// deadline): the node's certificate must chain to the CA and name the host
// dialled. Without them the bytes go over the socket as they are.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/frame.h"
#include "common/protocol.h"
#include "rangekv/status.h"

struct ssl_st;  // OpenSSL's SSL, kept out of this header

namespace rangekv::testing {

// PEM files of a TLS client: the CA that signs the nodes' certificates,
// this client's certificate and its key. cert and key may be empty (no
// certificate presented: a TLS node refuses such a client).
struct WireTls {
  std::string ca;
  std::string cert;
  std::string key;
};

class WireClient {
 public:
  static constexpr std::chrono::milliseconds kDefaultTimeout{5000};

  // Connects to 127.0.0.1:port. UNAVAILABLE when the connect fails.
  static Result<WireClient> Connect(int port);
  // Connects to host (dotted IPv4):port, giving up after timeout.
  // With tls: the TLS handshake too, within the same timeout; UNAVAILABLE
  // with OpenSSL's reason when it fails (e.g. the node's certificate does
  // not verify). TLS 1.3 checks the client's certificate after the
  // client's side of the handshake is done, so a refused certificate
  // shows as the first Receive failing.
  static Result<WireClient> Connect(const std::string& host, int port,
                                    std::chrono::milliseconds timeout = kDefaultTimeout,
                                    const WireTls* tls = nullptr);
  WireClient(WireClient&& o) noexcept;
  WireClient& operator=(WireClient&& o) noexcept;
  ~WireClient();

  // Sends one encoded request / raw bytes. IO_ERROR when the write fails.
  Status Send(const proto::Request& req);
  Status SendRaw(const std::string& bytes);
  // Half-closes the sending side (the node then sees EOF; over TLS after a
  // close_notify).
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
  // TLS: the handshake, and one read / all of one write.
  Status Handshake(const std::string& host, const WireTls& tls,
                   std::chrono::steady_clock::time_point deadline);
  Status TlsRead(std::chrono::steady_clock::time_point deadline);
  Status TlsWrite(const std::string& bytes, std::chrono::steady_clock::time_point deadline);
  void Close();
  int fd_ = -1;
  ssl_st* ssl_ = nullptr;  // OpenSSL's SSL; null: plaintext
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
