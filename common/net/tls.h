// common/net/tls.h — TLS for every rangekv connection (client <-> node and
// node <-> node), with mutual authentication by certificates of one
// cluster CA.
//
// Files (PEM), named by flags or options, never by their contents:
//
//   | file | what                                   | used by               |
//   |------|----------------------------------------|-----------------------|
//   | ca   | the cluster CA's certificate(s)        | both sides: verifies  |
//   |      |                                        | the peer's chain      |
//   | cert | this party's certificate (chain)       | both sides: presented |
//   | key  | its private key (kept mode 0600)       | both sides            |
//
// Invariants:
//   - TLS is all or nothing per party: ca, cert and key are given together
//     (TlsFiles::Check), so a node never serves half its connections in
//     plaintext.
//   - Both sides present a certificate and verify the other's against ca
//     alone (not the system store); TLS 1.2 is the floor.
//   - A client also checks that the node's certificate names the host it
//     dialled (its subjectAltName: an IP literal or a DNS name).
//   - Reload() reads the files again; connections made afterwards use the
//     new context, those already up keep theirs (a handshake is only ever
//     checked once). A failed reload keeps the old context.
//
// Telling TLS from plaintext on one port: a TLS connection opens with a
// handshake record, whose first byte is 0x16; a rangekv frame opens with
// its 4-byte big-endian length, at most 64 MiB (common/frame.h), so its
// first byte is at most 0x04. LooksLikeTls looks at that byte only.
//
// The fetch-stream mark: a node's replication connection to another node
// (its fetches and snapshot reads) sends one byte, kFetchStreamMark (0x46,
// neither of the above), before anything else: before the TLS handshake,
// or before the first frame in plaintext. A node serves such a connection
// on its replication thread, from the handshake on (kvnode/server/
// connection.h, "Fetch connections move"); the mark carries no trust, it
// only says where the connection is served. A node that predates the mark
// reads it as an oversized frame and closes the connection: nodes of one
// cluster must all know it.
#pragma once

#include <memory>
#include <string>

// clang-format off
#include "common/asio.h"  // before any Boost.Asio header: it fixes them up
#include <boost/asio/ssl.hpp>
// clang-format on

#include "common/mutex.h"
#include "rangekv/status.h"

namespace rangekv::net {

struct TlsFiles {
  std::string ca;
  std::string cert;
  std::string key;

  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
  // OK when all three are given or none; BAD_REQUEST naming what is missing.
  Status Check() const;
};

// True when the first byte a peer sent opens a TLS handshake.
inline bool LooksLikeTls(unsigned char first_byte) { return first_byte == 0x16; }

inline constexpr unsigned char kFetchStreamMark = 0x46;

class TlsContext {
 public:
  enum class Role { kClient, kServer };

  // Reads the files now; BAD_REQUEST (with the file and OpenSSL's reason)
  // when one cannot be read or the key does not match the certificate.
  static Result<std::shared_ptr<TlsContext>> Load(const TlsFiles& files, Role role);

  // The context for a new connection; the connection keeps it alive.
  std::shared_ptr<asio::ssl::context> current() const EXCLUDES(mu_);
  // Reads the files again (certificate rotation). Thread-safe.
  Status Reload() EXCLUDES(mu_);

  const TlsFiles& files() const { return files_; }
  Role role() const { return role_; }

 private:
  TlsContext(TlsFiles files, Role role) : files_(std::move(files)), role_(role) {}
  static Result<std::shared_ptr<asio::ssl::context>> Build(const TlsFiles& files, Role role);

  const TlsFiles files_;
  const Role role_;
  mutable Mutex mu_;
  std::shared_ptr<asio::ssl::context> ctx_ GUARDED_BY(mu_);
};

// The reason of a failed handshake, in words a user can act on (OpenSSL's
// own: "certificate verify failed (certificate has expired)", ...).
std::string TlsErrorText(const boost::system::error_code& ec);

}  // namespace rangekv::net
