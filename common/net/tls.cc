#include "common/net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace rangekv::net {
namespace {

// OpenSSL says only "system lib" for a missing file: check first.
Status Readable(const char* what, const std::string& path) {
  if (::access(path.c_str(), R_OK) == 0) return Status::Ok();
  return Status(Code::kBadRequest, std::string("TLS: cannot read the ") + what + " " + path + ": " +
                                       std::strerror(errno));
}

Status Bad(std::string msg) { return Status(Code::kBadRequest, std::move(msg)); }

// OpenSSL's reason for the last failure, e.g. "no such file" or "key values
// mismatch"; asio's message alone often says only "error".
std::string LastSslError(const boost::system::error_code& ec) {
  const char* reason = ERR_reason_error_string(ERR_peek_last_error());
  ERR_clear_error();
  return reason != nullptr ? reason : ec.message();
}

}  // namespace

Status TlsFiles::Check() const {
  if (!enabled()) return Status::Ok();
  std::string missing;
  if (ca.empty()) missing += " --tls-ca";
  if (cert.empty()) missing += " --tls-cert";
  if (key.empty()) missing += " --tls-key";
  if (missing.empty()) return Status::Ok();
  return Bad("TLS needs the CA, a certificate and its key together; missing:" + missing);
}

Result<std::shared_ptr<TlsContext>> TlsContext::Load(const TlsFiles& files, Role role) {
  RANGEKV_RETURN_IF_ERROR(files.Check());
  if (!files.enabled()) return Bad("TLS files not given");
  RANGEKV_ASSIGN_OR_RETURN(std::shared_ptr<asio::ssl::context> ctx, Build(files, role));
  std::shared_ptr<TlsContext> t(new TlsContext(files, role));
  MutexLock lock(t->mu_);
  t->ctx_ = std::move(ctx);
  return t;
}

Result<std::shared_ptr<asio::ssl::context>> TlsContext::Build(const TlsFiles& files, Role role) {
  RANGEKV_RETURN_IF_ERROR(Readable("CA file", files.ca));
  RANGEKV_RETURN_IF_ERROR(Readable("certificate", files.cert));
  RANGEKV_RETURN_IF_ERROR(Readable("key", files.key));
  auto ctx = std::make_shared<asio::ssl::context>(
      role == Role::kServer ? asio::ssl::context::tls_server : asio::ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  if (ec) return Bad("TLS: cannot set options: " + LastSslError(ec));
  if (ctx->load_verify_file(files.ca, ec); ec) {
    return Bad("TLS: cannot read the CA file " + files.ca + ": " + LastSslError(ec));
  }
  if (ctx->use_certificate_chain_file(files.cert, ec); ec) {
    return Bad("TLS: cannot read the certificate " + files.cert + ": " + LastSslError(ec));
  }
  if (ctx->use_private_key_file(files.key, asio::ssl::context::pem, ec); ec) {
    // The key's own bytes are never echoed: only its file and the reason.
    return Bad("TLS: cannot use the key " + files.key + ": " + LastSslError(ec));
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    ERR_clear_error();
    return Bad("TLS: the key " + files.key + " does not match the certificate " + files.cert);
  }
  // Both sides insist on a certificate from the peer.
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
  if (ec) return Bad("TLS: cannot set the verify mode: " + LastSslError(ec));
  return ctx;
}

std::shared_ptr<asio::ssl::context> TlsContext::current() const {
  MutexLock lock(mu_);
  return ctx_;
}

Status TlsContext::Reload() {
  RANGEKV_ASSIGN_OR_RETURN(std::shared_ptr<asio::ssl::context> ctx, Build(files_, role_));
  MutexLock lock(mu_);
  ctx_ = std::move(ctx);
  return Status::Ok();
}

std::string TlsErrorText(const boost::system::error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    return reason != nullptr ? reason : ec.message();
  }
  if (ec == asio::ssl::error::stream_truncated)
    return "the peer closed the connection mid-handshake";
  if (ec == asio::error::eof) return "the peer closed the connection";
  return ec.message();
}

}  // namespace rangekv::net
