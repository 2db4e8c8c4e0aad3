#include "tests/kvnode/server/wire_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace rangekv::testing {

Result<WireClient> WireClient::Connect(int port) { return Connect("127.0.0.1", port); }

Result<WireClient> WireClient::Connect(const std::string& host, int port,
                                       std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Status(Code::kBadRequest, "not an IPv4 address: " + host);
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status(Code::kUnavailable, std::strerror(errno));
  // Non-blocking, so a host behind a cut (SYNs dropped) fails at the
  // deadline instead of after the kernel's minutes of SYN retries.
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = rc == 0 ? 0 : errno;
  if (err == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    socklen_t len = sizeof err;
    if (n <= 0) {
      err = ETIMEDOUT;
    } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
  }
  if (err != 0) {
    Status st(Code::kUnavailable,
              "connect " + host + ":" + std::to_string(port) + ": " + std::strerror(err));
    ::close(fd);
    return st;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return WireClient(fd);
}

WireClient::WireClient(WireClient&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), reader_(std::move(o.reader_)) {}

WireClient& WireClient::operator=(WireClient&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    reader_ = std::move(o.reader_);
  }
  return *this;
}

WireClient::~WireClient() {
  if (fd_ >= 0) ::close(fd_);
}

Status WireClient::Send(const proto::Request& req) {
  std::string frame;
  proto::EncodeRequest(req, frame);
  return SendRaw(frame);
}

Status WireClient::SendRaw(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status(Code::kIoError, std::string("send: ") + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void WireClient::ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

Status WireClient::Fill(std::chrono::steady_clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status(Code::kTimeout, "no data before the deadline");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char* at = reader_.PrepareWrite(64 * 1024);
    ssize_t n = ::recv(fd_, at, 64 * 1024, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Status(Code::kUnavailable, "connection closed by peer");
    if (n < 0) return Status(Code::kUnavailable, std::string("recv: ") + std::strerror(errno));
    reader_.Commit(static_cast<size_t>(n));
    return Status::Ok();
  }
}

Result<proto::Response> WireClient::Receive(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    Result<std::string_view> frame = reader_.Next();
    if (!frame.ok()) return frame.status();
    if (!frame->empty()) return proto::DecodeResponse(*frame);
    RANGEKV_RETURN_IF_ERROR(Fill(deadline));
  }
}

Result<proto::Response> WireClient::Call(const proto::Request& req,
                                         std::chrono::milliseconds timeout) {
  RANGEKV_RETURN_IF_ERROR(Send(req));
  return Receive(timeout);
}

bool WireClient::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    Status st = Fill(deadline);
    if (st.code() == Code::kUnavailable) return true;
    if (st.code() == Code::kTimeout) return false;
    // Data arrived: drop whole frames and keep waiting for the close.
    while (true) {
      auto f = reader_.Next();
      if (!f.ok() || f->empty()) break;
    }
  }
}

namespace {
proto::Request Make(uint64_t id, proto::OpKind kind, std::vector<proto::WriteOp> ops) {
  proto::Request r;
  r.id = id;
  r.kind = kind;
  r.ops = std::move(ops);
  return r;
}
}  // namespace

proto::Request PingRequest(uint64_t id) { return Make(id, proto::OpKind::kPing, {}); }
proto::Request GetRequest(uint64_t id, std::string key) {
  return Make(id, proto::OpKind::kGet, {proto::WriteOp::Delete(std::move(key))});
}
proto::Request PutRequest(uint64_t id, std::string key, std::string value) {
  return Make(id, proto::OpKind::kPut, {proto::WriteOp::Put(std::move(key), std::move(value))});
}
proto::Request DeleteRequest(uint64_t id, std::string key) {
  return Make(id, proto::OpKind::kDelete, {proto::WriteOp::Delete(std::move(key))});
}
proto::Request CasRequest(uint64_t id, std::string key, uint64_t expected, std::string value) {
  return Make(id, proto::OpKind::kCas,
              {proto::WriteOp::Cas(std::move(key), expected, std::move(value))});
}
proto::Request ScanRequest(uint64_t id, std::string start, std::optional<std::string> end,
                           uint32_t limit) {
  proto::Request r = Make(id, proto::OpKind::kScan, {});
  r.scan_start = std::move(start);
  r.scan_end = std::move(end);
  r.scan_limit = limit;
  return r;
}
proto::Request BatchRequest(uint64_t id, std::vector<proto::WriteOp> ops) {
  return Make(id, proto::OpKind::kBatch, std::move(ops));
}

}  // namespace rangekv::testing
