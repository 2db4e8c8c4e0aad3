#include "repl/tokenizer.h"

#include <gtest/gtest.h>

namespace rangekv::repl {
namespace {

Token W(std::string text) { return Token{TokenKind::kWord, std::move(text)}; }
Token Sep() { return Token{TokenKind::kSeparator, {}}; }

std::vector<Token> Ok(std::string_view line) {
  auto r = Tokenize(line);
  EXPECT_TRUE(r.ok()) << line << ": " << r.status().ToString();
  return r.ok() ? *r : std::vector<Token>{};
}

Status Err(std::string_view line) {
  auto r = Tokenize(line);
  EXPECT_FALSE(r.ok()) << line;
  return r.status();
}

TEST(TokenizerTest, BareWordsSplitOnAnyWhitespace) {
  EXPECT_EQ(Ok("put a 1"), (std::vector<Token>{W("put"), W("a"), W("1")}));
  EXPECT_EQ(Ok("  get\t\tkey \r\v\f "), (std::vector<Token>{W("get"), W("key")}));
  EXPECT_EQ(Ok("get a\nb"), (std::vector<Token>{W("get"), W("a"), W("b")}));
}

TEST(TokenizerTest, BlankAndCommentLinesHaveNoTokens) {
  EXPECT_TRUE(Ok("").empty());
  EXPECT_TRUE(Ok("   \t").empty());
  EXPECT_TRUE(Ok("# put a 1").empty());
  EXPECT_TRUE(Ok("   #comment \"unterminated").empty());
  EXPECT_TRUE(IsBlankOrComment("  # x"));
  EXPECT_FALSE(IsBlankOrComment("get #x"));
  // '#' later in the line is data.
  EXPECT_EQ(Ok("get a#b"), (std::vector<Token>{W("get"), W("a#b")}));
}

TEST(TokenizerTest, BackslashIsLiteralInBareWords) {
  EXPECT_EQ(Ok(R"(get a\nb)"), (std::vector<Token>{W("get"), W("a\\nb")}));
}

TEST(TokenizerTest, QuotedWordsKeepSpacesAndSemicolons) {
  EXPECT_EQ(Ok(R"(put "a b" "x;y")"), (std::vector<Token>{W("put"), W("a b"), W("x;y")}));
  EXPECT_EQ(Ok(R"(scan a "")"), (std::vector<Token>{W("scan"), W("a"), W("")}));
  EXPECT_EQ(Ok(R"("it's")"), (std::vector<Token>{W("it's")}));
}

TEST(TokenizerTest, EveryEscape) {
  EXPECT_EQ(Ok(R"("\n\t\r\\\"\0\a\b\f\v")"), (std::vector<Token>{W(std::string(
                                                 "\n\t\r\\\"\0\a\b\f\v", 10))}));
  EXPECT_EQ(Ok(R"("\x00\x7f\xff\xAb")"),
            (std::vector<Token>{W(std::string("\x00\x7f\xff\xab", 4))}));
}

TEST(TokenizerTest, SeparatorsOutsideQuotes) {
  EXPECT_EQ(Ok("batch put a 1 ; del b"),
            (std::vector<Token>{W("batch"), W("put"), W("a"), W("1"), Sep(), W("del"), W("b")}));
  EXPECT_EQ(Ok("put a 1;del b;"),
            (std::vector<Token>{W("put"), W("a"), W("1"), Sep(), W("del"), W("b"), Sep()}));
  EXPECT_EQ(Ok(R"(put "a";del b)"),
            (std::vector<Token>{W("put"), W("a"), Sep(), W("del"), W("b")}));
}

TEST(TokenizerTest, UnterminatedQuote) {
  Status s = Err(R"(put "abc)");
  EXPECT_EQ(s.code(), Code::kBadRequest);
  EXPECT_NE(s.message().find("unterminated"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("column 5"), std::string::npos) << s.message();
  EXPECT_EQ(Err(R"(put "abc\)").code(), Code::kBadRequest);
}

TEST(TokenizerTest, BadHexEscape) {
  for (const char* line : {R"("\x")", R"("\x1")", R"("\xg0")", R"("\x0g")", R"("\x)"}) {
    Status s = Err(line);
    EXPECT_EQ(s.code(), Code::kBadRequest);
    EXPECT_NE(s.message().find("\\x"), std::string::npos) << s.message();
  }
}

TEST(TokenizerTest, UnknownEscape) {
  Status s = Err(R"("a\qb")");
  EXPECT_EQ(s.code(), Code::kBadRequest);
  EXPECT_NE(s.message().find("unknown escape"), std::string::npos) << s.message();
}

TEST(TokenizerTest, JunkAfterClosingQuote) {
  Status s = Err(R"(put "a"b 1)");
  EXPECT_EQ(s.code(), Code::kBadRequest);
  EXPECT_NE(s.message().find("closing quote"), std::string::npos) << s.message();
  EXPECT_EQ(Err(R"(put "a""b" 1)").code(), Code::kBadRequest);
}

TEST(TokenizerTest, QuoteInsideBareWord) {
  Status s = Err(R"(put ab"cd" 1)");
  EXPECT_EQ(s.code(), Code::kBadRequest);
  EXPECT_NE(s.message().find("bare word"), std::string::npos) << s.message();
}

TEST(TokenizerTest, ErrorMessagesStayOneLine) {
  EXPECT_EQ(Ok("put \"a\"\n"), (std::vector<Token>{W("put"), W("a")}));
  Status t = Err(std::string("put \"a\"\x01", 8));
  EXPECT_EQ(t.message().find('\x01'), std::string::npos) << t.message();
  EXPECT_NE(t.message().find("\\x01"), std::string::npos) << t.message();
}

}  // namespace
}  // namespace rangekv::repl
