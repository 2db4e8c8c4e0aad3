// common/zk/connect_string.h — ZooKeeper connect strings and znode paths.
//
// Connect string grammar (the same as the ZooKeeper clients accept):
//
//   connect := server ("," server)* [chroot]
//   server  := host [":" port]          port 1..65535, default 2181
//            | "[" ipv6 "]" [":" port]
//   chroot  := path                      e.g. "/rangekv"; "/" means none
//
// Example: "10.0.0.1:2181,10.0.0.2:2181/rangekv" -> two servers, chroot
// "/rangekv". The ZooKeeper server does not check paths, so
// ValidateZnodePath is the only guard against paths that would be accepted
// and never match anything ("probe", "/probe/", "//x").
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/status.h"

namespace rangekv::zk {

inline constexpr uint16_t kDefaultZkPort = 2181;

struct ZkServerAddress {
  std::string host;  // name or address, without IPv6 brackets
  uint16_t port = kDefaultZkPort;
  std::string ToString() const;
};

struct ConnectString {
  std::vector<ZkServerAddress> servers;  // at least one
  std::string chroot;                    // "" or a valid path other than "/"
};

// kBadRequest with the reason on a malformed string (no server, empty host,
// bad port, invalid chroot).
Result<ConnectString> ParseConnectString(std::string_view text);

// OK for "/" and for "/a/b": starts with '/', no empty component ("//"), no
// trailing '/', no NUL, no "." or ".." component. kBadRequest otherwise.
Status ValidateZnodePath(std::string_view path);

// Client path -> server path under a chroot ("" = none).
std::string ToServerPath(std::string_view chroot, std::string_view path);
// Server path -> client path; nullopt when it lies outside the chroot.
std::optional<std::string> FromServerPath(std::string_view chroot, std::string_view server_path);

}  // namespace rangekv::zk
