#include "common/escape.h"

#include <gtest/gtest.h>

namespace rangekv {
namespace {

TEST(EscapeTest, BareWhenSafe) {
  EXPECT_EQ(QuoteIfNeeded("abc-1.2_x:y"), "abc-1.2_x:y");
  EXPECT_EQ(QuoteIfNeeded(""), "\"\"");
  EXPECT_EQ(QuoteIfNeeded("a b"), "\"a b\"");
  EXPECT_EQ(QuoteIfNeeded("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(QuoteIfNeeded("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(QuoteIfNeeded(std::string("\x00\n\xff", 3)), "\"\\x00\\n\\xff\"");
  // ';' separates batch ops in the REPL, so a word holding one is quoted.
  EXPECT_EQ(QuoteIfNeeded("a;b"), "\"a;b\"");
  EXPECT_EQ(QuoteIfNeeded("it's"), "\"it's\"");
}

}  // namespace
}  // namespace rangekv
