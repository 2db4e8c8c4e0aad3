// common/net/address.h — parsing of node addresses ("host:port").
//
// Accepted forms (the port is decimal, 1..65535, and always present):
//
//   | form              | example             | host passed to the resolver |
//   |-------------------|---------------------|-----------------------------|
//   | IPv4:port         | 127.0.0.1:7000      | 127.0.0.1                   |
//   | [IPv6]:port       | [::1]:7000          | ::1                         |
//   | hostname:port     | node-1.example:7000 | node-1.example              |
//
// A bare IPv6 address without brackets ("::1:7000") is ambiguous and is
// rejected. Hostnames are letters, digits, '-', '_' and '.'.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rangekv/status.h"

namespace rangekv::net {

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
  // "host:port", with brackets around an IPv6 host; for messages.
  std::string ToString() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// The parsed address, or BAD_REQUEST with a message quoting the input.
Result<HostPort> ParseHostPort(std::string_view address);

}  // namespace rangekv::net
