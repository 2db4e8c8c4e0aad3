#include "common/zk/connect_string.h"

#include <charconv>

namespace rangekv::zk {
namespace {

Status Bad(std::string_view text, const std::string& why) {
  return Status(Code::kBadRequest,
                "bad zookeeper connect string \"" + std::string(text) + "\": " + why);
}

Result<uint16_t> ParsePort(std::string_view s) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535) {
    return Status(Code::kBadRequest, "bad port \"" + std::string(s) + "\"");
  }
  return static_cast<uint16_t>(v);
}

Result<ZkServerAddress> ParseServer(std::string_view s) {
  ZkServerAddress a;
  std::string_view rest;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return Status(Code::kBadRequest, "unclosed '['");
    a.host = std::string(s.substr(1, close - 1));
    rest = s.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return Status(Code::kBadRequest, "junk after ']'");
    }
  } else {
    size_t colon = s.find(':');
    a.host = std::string(s.substr(0, colon));
    if (colon != std::string_view::npos) rest = s.substr(colon);
  }
  if (a.host.empty()) return Status(Code::kBadRequest, "empty host");
  if (!rest.empty()) {
    RANGEKV_ASSIGN_OR_RETURN(a.port, ParsePort(rest.substr(1)));
  }
  return a;
}

}  // namespace

std::string ZkServerAddress::ToString() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<ConnectString> ParseConnectString(std::string_view text) {
  ConnectString cs;
  std::string_view servers = text;
  // The chroot starts at the first '/'; host names and ports never hold one.
  size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    servers = text.substr(0, slash);
    std::string_view chroot = text.substr(slash);
    Status st = ValidateZnodePath(chroot);
    if (!st.ok()) return Bad(text, "chroot: " + st.message());
    if (chroot != "/") cs.chroot = std::string(chroot);
  }
  while (true) {
    size_t comma = servers.find(',');
    std::string_view one = servers.substr(0, comma);
    auto server = ParseServer(one);
    if (!server.ok()) return Bad(text, server.status().message());
    cs.servers.push_back(std::move(server).value());
    if (comma == std::string_view::npos) break;
    servers = servers.substr(comma + 1);
  }
  return cs;
}

Status ValidateZnodePath(std::string_view path) {
  auto bad = [&](const char* why) {
    return Status(Code::kBadRequest, "invalid znode path \"" + std::string(path) + "\": " + why);
  };
  if (path.empty() || path.front() != '/') return bad("must start with '/'");
  if (path == "/") return Status::Ok();
  if (path.back() == '/') return bad("must not end with '/'");
  if (path.find('\0') != std::string_view::npos) return bad("must not contain NUL");
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty()) return bad("empty component (\"//\")");
    if (part == "." || part == "..") return bad("relative component");
    start = end + 1;
  }
  return Status::Ok();
}

std::string ToServerPath(std::string_view chroot, std::string_view path) {
  if (chroot.empty()) return std::string(path);
  if (path == "/") return std::string(chroot);
  return std::string(chroot) + std::string(path);
}

std::optional<std::string> FromServerPath(std::string_view chroot, std::string_view server_path) {
  if (chroot.empty()) return std::string(server_path);
  if (server_path.substr(0, chroot.size()) != chroot) return std::nullopt;
  std::string_view rest = server_path.substr(chroot.size());
  if (rest.empty()) return std::string("/");
  if (rest.front() != '/') return std::nullopt;  // "/ab" is not under "/a"
  return std::string(rest);
}

}  // namespace rangekv::zk
