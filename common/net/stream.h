// common/net/stream.h — one TCP connection, in plaintext or TLS, behind one
// interface, so the client's and the node's connection code is written once.
//
// Life: construct around a socket; UseTls() before the handshake when TLS
// is on; Handshake() once; then reads and writes. A Stream belongs to one
// I/O thread (as its socket does). The TLS context it uses is held by the
// Stream, so a reload (tls.h) never pulls it from under a connection.
#pragma once

#include <algorithm>
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
    // Asio turns on SSL_MODE_RELEASE_BUFFERS, which frees OpenSSL's record
    // buffers (about 17 KiB each way) whenever they empty and allocates
    // them again for the next record: a large malloc and free per record
    // read or written, the biggest share of TLS's cost to small requests.
    // A connection keeps them instead, 34 KiB for as long as it is open.
    SSL_clear_mode(ssl_->native_handle(), SSL_MODE_RELEASE_BUFFERS);
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

  // A TLS read takes, besides the record Asio's read decrypts, every
  // further whole record already received (DrainBuffered): Asio's SSL
  // stream returns one record per read, so a peer's burst of small records
  // was read, handled and answered one record at a time, and answers
  // shrank to a few requests each (3 per send under pipelined GETs,
  // against hundreds in plaintext).
  template <class Handler>
  void ReadSome(asio::mutable_buffer buf, Handler&& done) {
    if (ssl_) {
      ssl_->async_read_some(buf, [this, buf, done = std::forward<Handler>(done)](
                                     const boost::system::error_code& ec, size_t n) mutable {
        if (!ec) n += DrainBuffered(buf + n);
        done(ec, n);
      });
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

  // Decrypts into buf what the TLS session already holds (bytes of a
  // record begun, whole records received), without reading the socket.
  // Anything short of a whole record, or an error, is left to the next
  // read, which reports it.
  size_t DrainBuffered(asio::mutable_buffer buf) {
    SSL* ssl = ssl_->native_handle();
    auto* at = static_cast<char*>(buf.data());
    size_t got = 0;
    while (got < buf.size() && (SSL_pending(ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0)) {
      ERR_clear_error();
      const int room = static_cast<int>(std::min<size_t>(buf.size() - got, 1 << 30));
      const int n = SSL_read(ssl, at + got, room);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    ERR_clear_error();
    return got;
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
