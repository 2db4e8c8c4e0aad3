#include "common/zk/auth.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/log.h"

namespace rangekv::zk {
namespace {

constexpr size_t kMaxUser = 64;
constexpr size_t kMaxPassword = 256;
// Bigger than any sane file of two lines and comments; a bound before reading.
constexpr off_t kMaxFileBytes = 64 * 1024;

bool UserChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Why `line` is not "user:password", or "" when it is. Never quotes it.
std::string LineProblem(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return "is not user:password";
  std::string_view user = line.substr(0, colon);
  std::string_view password = line.substr(colon + 1);
  if (user.empty() || user.size() > kMaxUser) return "has a user name of 0 or over 64 characters";
  for (char c : user) {
    if (!UserChar(c)) return "has a user name with characters outside [A-Za-z0-9._-]";
  }
  if (password.empty() || password.size() > kMaxPassword) {
    return "has a password of 0 or over 256 bytes";
  }
  for (char c : password) {
    if (c <= ' ' || c > '~') return "has a password with spaces or non-printable bytes";
  }
  return "";
}

}  // namespace

const Acl* AclPolicy::For(std::string_view path) const {
  if (empty()) return nullptr;
  bool in = path == root || (path.size() > root.size() && path.substr(0, root.size()) == root &&
                             path[root.size()] == '/');
  return in ? &inside : &outside;
}

std::string DigestId(std::string_view user_password) {
  unsigned char sha[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(user_password.data()), user_password.size(), sha);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, sha, SHA_DIGEST_LENGTH);
  std::string_view user = user_password.substr(0, user_password.find(':'));
  return std::string(user) + ":" + std::string(reinterpret_cast<const char*>(b64), n);
}

Result<AuthFile> ParseAuthFile(std::string_view text, std::string_view path) {
  const std::string name = "ZooKeeper credentials file " + std::string(path);
  std::vector<std::string> creds;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::string problem = LineProblem(line);
    if (!problem.empty()) {
      return Status(Code::kBadRequest, name + ": line " + std::to_string(line_no) + " " + problem);
    }
    if (creds.size() == 2) {
      return Status(Code::kBadRequest,
                    name + ": line " + std::to_string(line_no) +
                        ": more than two user:password lines (this process's, then the reader's)");
    }
    creds.emplace_back(line);
  }
  if (creds.empty()) return Status(Code::kBadRequest, name + " holds no user:password line");
  AuthFile f;
  f.self.credential = creds[0];
  f.self.source = std::string(path);
  if (creds.size() == 2) f.reader_id = DigestId(creds[1]);
  return f;
}

Result<AuthFile> LoadAuthFile(const std::string& path, bool* loose_mode) {
  const std::string name = "ZooKeeper credentials file " + path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status(Code::kBadRequest, "cannot read the " + name + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return Status(Code::kBadRequest, name + " is not a regular file");
  if (st.st_size > kMaxFileBytes) return Status(Code::kBadRequest, name + " is too large");
  if (loose_mode != nullptr) *loose_mode = (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(Code::kBadRequest, "cannot read the " + name + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status(Code::kBadRequest, "cannot read the " + name);
  return ParseAuthFile(text.str(), path);
}

Result<std::optional<AuthFile>> LoadAuthFileFlag(const std::string& path) {
  if (path.empty()) return std::optional<AuthFile>();
  bool loose = false;
  RANGEKV_ASSIGN_OR_RETURN(AuthFile f, LoadAuthFile(path, &loose));
  if (loose) {
    LOG_WARN("ZooKeeper credentials file " << path
                                           << " is readable by group or others; chmod 600 it");
  }
  return std::optional<AuthFile>(std::move(f));
}

AclPolicy ClusterAcl(const std::string& root, const AuthFile& file) {
  AclPolicy p;
  p.root = root;
  const std::string writer = DigestId(file.self.credential);
  p.inside.push_back({kPermAll, "digest", writer});
  if (file.reader_id && *file.reader_id != writer) {
    p.inside.push_back({kPermRead, "digest", *file.reader_id});
  }
  p.outside.push_back({kPermAll, "digest", writer});
  p.outside.push_back({kPermRead, "world", "anyone"});
  return p;
}

}  // namespace rangekv::zk
