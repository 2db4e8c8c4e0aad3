// common/zk/auth.h — ZooKeeper digest credentials and the ACLs rangekv puts
// on its znodes.
//
// ZooKeeper facts this relies on (server 3.8):
//   * The "digest" scheme authenticates a connection with the bytes
//     "user:password" (AuthPacket, sent once per connection: auth belongs to
//     the TCP connection, not to the session, so it is sent again after
//     every reconnect). The server never checks the password there: it
//     derives the identity `user:base64(sha1("user:password"))` and attaches
//     it to the connection. A wrong password is therefore not refused at
//     authentication but later, as ZNOAUTH on every znode whose ACL names
//     the right identity. AUTHFAILED (-115) comes only for a scheme the
//     server does not know (or a provider that throws).
//   * An ACL entry is (perms, scheme, id); perms are bits READ 1, WRITE 2,
//     CREATE 4, DELETE 8, ADMIN 16 (ALL 31). A digest id is the derived
//     identity above; `world:anyone` is everyone, authenticated or not.
//   * ACLs are checked per znode and are not inherited: create needs CREATE
//     on the parent, delete DELETE on the parent, get/children READ on the
//     znode itself, set WRITE. exists and sync check nothing. Persistent
//     watch notifications are delivered only for znodes the watcher may
//     READ (servers with the CVE-2024-23944 fix, such as Debian's 3.8.0).
//
// The credentials file (--zk-auth-file, ClientOptions::zk_auth_file):
//
//   # comments and blank lines are ignored
//   user:password          this process's identity (required)
//   reader:password        writers only: the identity given READ (optional)
//
// user: 1..64 of [A-Za-z0-9._-]; password: 1..256 printable ASCII bytes
// without spaces (':' allowed). The file must not be readable by group or
// others (a warning otherwise, like ssh). No message ever contains a byte of
// the file beyond its line numbers.
//
// Thread-safety: pure functions, plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/status.h"

namespace rangekv::zk {

// Credentials sent with AuthPacket. `source` says where they came from (a
// file name) for messages; `credential` is never printed.
struct ZkAuth {
  std::string scheme = "digest";
  std::string credential;  // "user:password" for digest
  std::string source;
};

inline constexpr int32_t kPermRead = 1;
inline constexpr int32_t kPermWrite = 2;
inline constexpr int32_t kPermCreate = 4;
inline constexpr int32_t kPermDelete = 8;
inline constexpr int32_t kPermAdmin = 16;
inline constexpr int32_t kPermAll = 31;

struct AclEntry {
  int32_t perms = 0;
  std::string scheme;
  std::string id;
};
using Acl = std::vector<AclEntry>;

// What a Session puts on the znodes it creates. Empty: world:anyone ALL (the
// behaviour without credentials).
struct AclPolicy {
  std::string root;  // "/rangekv/<cluster>": it and everything under it get `inside`
  Acl inside;
  Acl outside;  // shared parents above root (e.g. /rangekv)
  bool empty() const { return inside.empty() && outside.empty(); }
  // The ACL for a znode at `path` (a client path); nullptr when open.
  const Acl* For(std::string_view path) const;
};

// A parsed credentials file.
struct AuthFile {
  ZkAuth self;
  // The digest id ("reader:hash") of the second line, if any.
  std::optional<std::string> reader_id;
};

// `user:base64(sha1("user:password"))`, ZooKeeper's digest identity.
std::string DigestId(std::string_view user_password);

// Parses the text of a credentials file; `path` only names it in messages.
// kBadRequest naming the line (never its text) when it is malformed.
Result<AuthFile> ParseAuthFile(std::string_view text, std::string_view path);

// Reads and parses `path`. kBadRequest for a missing, unreadable or
// malformed file. Sets *loose_mode (if given) when group or others may read
// it; callers warn.
Result<AuthFile> LoadAuthFile(const std::string& path, bool* loose_mode = nullptr);

// Loads `path` and logs the warning for a loose mode. "" gives nullopt.
Result<std::optional<AuthFile>> LoadAuthFileFlag(const std::string& path);

// The ACLs of a cluster rooted at `root` for a writer with `file`: inside,
// the writer ALL and the reader (if named) READ; outside, the writer ALL and
// world:anyone READ (clients list the clusters that exist).
AclPolicy ClusterAcl(const std::string& root, const AuthFile& file);

}  // namespace rangekv::zk
