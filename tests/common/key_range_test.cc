#include "common/key_range.h"

#include <gtest/gtest.h>

namespace rangekv {
namespace {

TEST(KeyRangeTest, WholeSpaceContainsEverything) {
  KeyRange all;
  EXPECT_TRUE(all.Contains(""));
  EXPECT_TRUE(all.Contains(std::string("\xff\xff", 2)));
  EXPECT_TRUE(all.unbounded());
}

TEST(KeyRangeTest, HalfOpen) {
  KeyRange r("b", "d");
  EXPECT_FALSE(r.Contains("a"));
  EXPECT_TRUE(r.Contains("b"));
  EXPECT_TRUE(r.Contains("c\xff"));
  EXPECT_FALSE(r.Contains("d"));
  EXPECT_FALSE(r.Contains("da"));
}

TEST(KeyRangeTest, BytesCompareUnsigned) {
  // 0x80 must sort after 0x7f: std::string compares as unsigned char.
  KeyRange r(std::string("\x7f"), std::string("\x81"));
  EXPECT_TRUE(r.Contains(std::string("\x80")));
  EXPECT_FALSE(r.Contains(std::string("\x01")));
}

TEST(KeyRangeTest, Overlaps) {
  KeyRange ab("a", "b"), bc("b", "c"), ac("a", "c"), from_b("b", std::nullopt);
  EXPECT_FALSE(ab.Overlaps(bc));
  EXPECT_TRUE(ac.Overlaps(bc));
  EXPECT_TRUE(from_b.Overlaps(bc));
  EXPECT_FALSE(from_b.Overlaps(ab));
  EXPECT_TRUE(KeyRange().Overlaps(ab));
}

TEST(KeyRangeTest, ContainsSpan) {
  KeyRange r("b", "d");
  EXPECT_TRUE(r.ContainsSpan("b", std::string_view("d")));
  EXPECT_FALSE(r.ContainsSpan("b", std::nullopt));
  EXPECT_FALSE(r.ContainsSpan("a", std::string_view("c")));
  EXPECT_TRUE(KeyRange().ContainsSpan("", std::nullopt));
}

TEST(KeyRangeTest, OrderAndPrint) {
  EXPECT_TRUE(KeyRange("a", "b") < KeyRange("b", "c"));
  EXPECT_TRUE(KeyRange("a", "b") < KeyRange("a", std::nullopt));
  EXPECT_FALSE(KeyRange("a", std::nullopt) < KeyRange("a", "b"));
  EXPECT_EQ(KeyRange("a", std::nullopt).ToString(), "[a, +inf)");
  EXPECT_EQ(KeyRange().ToString(), "[\"\", +inf)");
}

}  // namespace
}  // namespace rangekv
