#include "tests/kvnode/server/wire_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>

namespace rangekv::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds until deadline for poll(), 0 once it has passed.
int MsLeft(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE when the
// peer is gone (a killed node); the test process must see the error
// instead. Blocks SIGPIPE in this thread while it lives and discards one
// raised meanwhile (SIGPIPE from a write is sent to the writing thread).
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

// OpenSSL's queued reasons, oldest first; empties the queue.
std::string SslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    out +=
        (out.empty() ? "" : "; ") + (reason ? std::string(reason) : "error " + std::to_string(e));
  }
  return out;
}

// After an OpenSSL call on ssl returned ret (not success): when it waits
// for the socket, polls until the socket is ready (OK: call again) or the
// deadline passes (TIMEOUT); otherwise UNAVAILABLE with the reason. errno
// must still be the call's.
Status AwaitSsl(SSL* ssl, int fd, int ret, Clock::time_point deadline, const std::string& what) {
  const int sys_errno = errno;
  short events = 0;
  switch (SSL_get_error(ssl, ret)) {
    case SSL_ERROR_WANT_READ:
      events = POLLIN;
      break;
    case SSL_ERROR_WANT_WRITE:
      events = POLLOUT;
      break;
    case SSL_ERROR_ZERO_RETURN:
      return Status(Code::kUnavailable, "connection closed by peer (TLS close_notify)");
    case SSL_ERROR_SYSCALL: {
      std::string reason = SslErrors();
      if (reason.empty()) {
        reason = sys_errno != 0 ? std::strerror(sys_errno) : "connection closed by peer";
      }
      return Status(Code::kUnavailable, what + ": " + reason);
    }
    default: {
      std::string reason = SslErrors();
      return Status(Code::kUnavailable, what + ": " + (reason.empty() ? "TLS error" : reason));
    }
  }
  while (true) {
    const int ms = MsLeft(deadline);
    if (ms <= 0) return Status(Code::kTimeout, what + ": no progress before the deadline");
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status(Code::kUnavailable, std::string("poll: ") + std::strerror(errno));
    if (r > 0) return Status::Ok();
  }
}

struct CtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};

}  // namespace

Result<WireClient> WireClient::Connect(int port) { return Connect("127.0.0.1", port); }

Result<WireClient> WireClient::Connect(const std::string& host, int port,
                                       std::chrono::milliseconds timeout, const WireTls* tls) {
  const Clock::time_point deadline = Clock::now() + timeout;
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
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (tls == nullptr) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return WireClient(fd);
  }
  // TLS keeps the socket non-blocking: OpenSSL then returns WANT_READ /
  // WANT_WRITE instead of blocking, and every wait is a poll with a deadline.
  WireClient c(fd);
  RANGEKV_RETURN_IF_ERROR(c.Handshake(host, *tls, deadline));
  return c;
}

Status WireClient::Handshake(const std::string& host, const WireTls& tls,
                             Clock::time_point deadline) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return Status(Code::kInternal, "TLS: no context: " + SslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), tls.ca.c_str(), nullptr) != 1) {
    return Status(Code::kBadRequest, "TLS: cannot read the CA file " + tls.ca + ": " + SslErrors());
  }
  if (!tls.cert.empty() && SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert.c_str()) != 1) {
    return Status(Code::kBadRequest,
                  "TLS: cannot read the certificate " + tls.cert + ": " + SslErrors());
  }
  if (!tls.key.empty() &&
      SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status(Code::kBadRequest, "TLS: cannot use the key " + tls.key + ": " + SslErrors());
  }
  // The node's certificate must chain to the CA and name the address dialled.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  ssl_ = SSL_new(ctx.get());  // holds its own reference to the context
  if (ssl_ == nullptr) return Status(Code::kInternal, "TLS: no connection: " + SslErrors());
  if (SSL_set_fd(ssl_, fd_) != 1 ||
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str()) != 1) {
    return Status(Code::kInternal, "TLS: cannot set up the connection: " + SslErrors());
  }
  const std::string what = "TLS handshake with " + host;
  SigpipeBlocked no_sigpipe;
  while (true) {
    ERR_clear_error();
    const int r = SSL_connect(ssl_);
    if (r == 1) return Status::Ok();
    Status st = AwaitSsl(ssl_, fd_, r, deadline, what);
    if (!st.ok()) {
      const long verify = SSL_get_verify_result(ssl_);
      if (verify == X509_V_OK) return st;
      return Status(st.code(), st.message() + " (" + X509_verify_cert_error_string(verify) + ")");
    }
  }
}

Status WireClient::TlsRead(Clock::time_point deadline) {
  SigpipeBlocked no_sigpipe;
  while (true) {
    char* at = reader_.PrepareWrite(64 * 1024);
    size_t n = 0;
    ERR_clear_error();
    const int r = SSL_read_ex(ssl_, at, 64 * 1024, &n);
    if (r == 1) {
      reader_.Commit(n);
      return Status::Ok();
    }
    RANGEKV_RETURN_IF_ERROR(AwaitSsl(ssl_, fd_, r, deadline, "TLS read"));
  }
}

Status WireClient::TlsWrite(const std::string& bytes, Clock::time_point deadline) {
  SigpipeBlocked no_sigpipe;
  size_t off = 0;
  while (off < bytes.size()) {
    size_t n = 0;
    ERR_clear_error();
    // After WANT_WRITE the same bytes are offered again, as OpenSSL requires.
    const int r = SSL_write_ex(ssl_, bytes.data() + off, bytes.size() - off, &n);
    if (r == 1) {
      off += n;
      continue;
    }
    Status st = AwaitSsl(ssl_, fd_, r, deadline, "TLS write");
    if (!st.ok()) return st.code() == Code::kTimeout ? st : Status(Code::kIoError, st.message());
  }
  return Status::Ok();
}

void WireClient::Close() {
  if (ssl_ != nullptr) SSL_free(std::exchange(ssl_, nullptr));
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

WireClient::WireClient(WireClient&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      ssl_(std::exchange(o.ssl_, nullptr)),
      reader_(std::move(o.reader_)) {}

WireClient& WireClient::operator=(WireClient&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = std::exchange(o.fd_, -1);
    ssl_ = std::exchange(o.ssl_, nullptr);
    reader_ = std::move(o.reader_);
  }
  return *this;
}

WireClient::~WireClient() { Close(); }

Status WireClient::Send(const proto::Request& req) {
  std::string frame;
  proto::EncodeRequest(req, frame);
  return SendRaw(frame);
}

Status WireClient::SendRaw(const std::string& bytes) {
  if (ssl_ != nullptr) return TlsWrite(bytes, Clock::now() + kDefaultTimeout);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status(Code::kIoError, std::string("send: ") + std::strerror(errno));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void WireClient::ShutdownWrite() {
  if (ssl_ != nullptr) {
    SigpipeBlocked no_sigpipe;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // sends close_notify; the node's answer is not awaited
    ERR_clear_error();
  }
  ::shutdown(fd_, SHUT_WR);
}

Status WireClient::Fill(std::chrono::steady_clock::time_point deadline) {
  if (ssl_ != nullptr) return TlsRead(deadline);
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
