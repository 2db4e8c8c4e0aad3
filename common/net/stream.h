// common/net/stream.h — one TCP connection, in plaintext or TLS, behind one
// interface, so the client's and the node's connection code is written once.
//
// Life: construct around a socket; UseTls() before the handshake when TLS
// is on; Handshake() once; then reads and writes. A Stream belongs to one
// I/O thread (as its socket does). The TLS context it uses is held by the
// Stream, so a reload (tls.h) never pulls it from under a connection.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "common/net/tls.h"

namespace rangekv::net {

class Stream {
 public:
  explicit Stream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  explicit Stream(asio::io_context& io) : socket_(io) {}
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  asio::ip::tcp::socket& socket() { return socket_; }
  const asio::ip::tcp::socket& socket() const { return socket_; }
  bool tls() const { return ssl_ != nullptr; }

  // Wraps the socket in TLS with ctx. A client names the host it dialled,
  // which the node's certificate must carry (tls.h).
  void UseTls(std::shared_ptr<asio::ssl::context> ctx, const std::string* verify_host) {
    ctx_ = std::move(ctx);
    ssl_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *ctx_);
    if (verify_host != nullptr) {
      ssl_->set_verify_callback(asio::ssl::host_name_verification(*verify_host));
    }
  }

  // done(error_code); plaintext streams complete at once (posted).
  template <class Handler>
  void Handshake(bool server, Handler&& done) {
    if (!ssl_) {
      asio::post(socket_.get_executor(),
                 [done = std::forward<Handler>(done)]() mutable { done({}); });
      return;
    }
    ssl_->async_handshake(server ? asio::ssl::stream_base::server : asio::ssl::stream_base::client,
                          std::forward<Handler>(done));
  }

  template <class Handler>
  void ReadSome(asio::mutable_buffer buf, Handler&& done) {
    if (ssl_) {
      ssl_->async_read_some(buf, std::forward<Handler>(done));
    } else {
      socket_.async_read_some(buf, std::forward<Handler>(done));
    }
  }

  template <class Handler>
  void Write(asio::const_buffer buf, Handler&& done) {
    if (ssl_) {
      asio::async_write(*ssl_, buf, std::forward<Handler>(done));
    } else {
      asio::async_write(socket_, buf, std::forward<Handler>(done));
    }
  }

  // Why the peer's certificate failed verification on this side ("", when
  // it did not or there was none to check): OpenSSL's verify result.
  std::string VerifyFailure() const {
    if (!ssl_) return "";
    const long r = SSL_get_verify_result(ssl_->native_handle());
    if (r == X509_V_OK) return "";
    return X509_verify_cert_error_string(r);
  }

  void Close() {
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  asio::ip::tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> ctx_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> ssl_;
};

}  // namespace rangekv::net
