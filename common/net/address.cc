#include "common/net/address.h"

#include <cctype>

#include "common/asio.h"
#include "common/escape.h"

namespace rangekv::net {
namespace {

Status Malformed(std::string_view address, std::string_view why) {
  return Status(Code::kBadRequest, "malformed node address " + Quote(address) + ": " +
                                       std::string(why) + " (want host:port or [ipv6]:port)");
}

bool IsHostnameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
}

// Decimal 1..65535, digits only (no sign, no spaces).
bool ParsePort(std::string_view s, uint16_t& port) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

}  // namespace

std::string HostPort::ToString() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<HostPort> ParseHostPort(std::string_view address) {
  HostPort out;
  std::string_view port_part;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos) return Malformed(address, "missing ']'");
    if (close + 1 >= address.size() || address[close + 1] != ':') {
      return Malformed(address, "missing ':port' after ']'");
    }
    out.host = std::string(address.substr(1, close - 1));
    boost::system::error_code ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) return Malformed(address, "not an IPv6 address inside brackets");
    port_part = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return Malformed(address, "missing ':port'");
    std::string_view host = address.substr(0, colon);
    if (host.find(':') != std::string_view::npos) {
      return Malformed(address, "IPv6 addresses need brackets");
    }
    if (host.empty()) return Malformed(address, "empty host");
    for (char c : host) {
      if (!IsHostnameChar(c)) return Malformed(address, "invalid character in host");
    }
    out.host = std::string(host);
    port_part = address.substr(colon + 1);
  }
  if (!ParsePort(port_part, out.port)) return Malformed(address, "port must be 1..65535");
  return out;
}

}  // namespace rangekv::net
