#include "rangekv/status.h"

#include <gtest/gtest.h>

namespace rangekv {
namespace {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ToStringHasCodeAndMessage) {
  Status s(Code::kCasFailed, "version 3 != 4");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "CAS_FAILED version 3 != 4");
  EXPECT_EQ(s.WithContext("put k").message(), "put k: version 3 != 4");
}

TEST(StatusTest, CodeNamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(Code::kLastCode); ++i) {
    auto c = static_cast<Code>(i);
    auto back = CodeFromName(CodeName(c));
    ASSERT_TRUE(back.has_value()) << CodeName(c);
    EXPECT_EQ(*back, c);
  }
  EXPECT_FALSE(CodeFromName("NOPE").has_value());
  EXPECT_STREQ(CodeName(static_cast<Code>(999)), "UNKNOWN");
}

Result<int> Half(int x) {
  if (x % 2) return Status(Code::kBadRequest, "odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  RANGEKV_ASSIGN_OR_RETURN(int h, Half(x));
  RANGEKV_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(ResultTest, ValueAndErrorPropagate) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kBadRequest);
}

}  // namespace
}  // namespace rangekv
