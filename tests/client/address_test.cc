#include "common/net/address.h"

#include <gtest/gtest.h>

namespace rangekv::net {
namespace {

TEST(ParseHostPortTest, AcceptsIpv4) {
  auto r = ParseHostPort("127.0.0.1:7000");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->host, "127.0.0.1");
  EXPECT_EQ(r->port, 7000);
  EXPECT_EQ(r->ToString(), "127.0.0.1:7000");
}

TEST(ParseHostPortTest, AcceptsBracketedIpv6) {
  auto r = ParseHostPort("[::1]:65535");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->host, "::1");
  EXPECT_EQ(r->port, 65535);
  EXPECT_EQ(r->ToString(), "[::1]:65535");
  auto full = ParseHostPort("[fe80::1:2]:1");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->host, "fe80::1:2");
}

TEST(ParseHostPortTest, AcceptsHostname) {
  auto r = ParseHostPort("node-1.example_a.org:80");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->host, "node-1.example_a.org");
  EXPECT_EQ(r->port, 80);
  EXPECT_TRUE(ParseHostPort("localhost:1").ok());
}

TEST(ParseHostPortTest, RejectsMalformedWithBadRequest) {
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", ":7000", "host:0", "host:65536", "host:99999999",
        "host:-1", "host:+80", "host:80 ", " host:80", "ho st:80", "::1:7000", "[::1]",
        "[::1]7000", "[::1:7000", "[nothost]:80", "[]:80", "host:8o", "a/b:80"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << "accepted '" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Code::kBadRequest) << bad;
      EXPECT_NE(r.status().message().find("malformed node address"), std::string::npos);
    }
  }
}

TEST(ParseHostPortTest, MessageQuotesTheInput) {
  auto r = ParseHostPort("nohost");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"nohost\""), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace rangekv::net
