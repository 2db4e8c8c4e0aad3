#include "repl/format.h"

#include <gtest/gtest.h>

#include <random>

#include "common/escape.h"
#include "repl/command.h"
#include "repl/tokenizer.h"

namespace rangekv::repl {
namespace {

// Parses one printed word back as the argument of a command, the way a
// user pastes it: the word must come back as exactly one token.
std::string ParseBack(const std::string& printed) {
  auto tokens = Tokenize("get " + printed);
  EXPECT_TRUE(tokens.ok()) << printed << ": " << tokens.status().ToString();
  if (!tokens.ok() || tokens->size() != 2) {
    ADD_FAILURE() << "expected one word from " << printed;
    return "<none>";
  }
  EXPECT_EQ((*tokens)[1].kind, TokenKind::kWord);
  return (*tokens)[1].text;
}

std::string RandomBytes(std::mt19937& rng, size_t max_len) {
  std::uniform_int_distribution<size_t> len(0, max_len);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> pick(0, 3);
  std::string s(len(rng), '\0');
  // Bias towards the bytes the quoting rules care about.
  static constexpr char kTricky[] = " \"\\;#\n\t\r\x7f";
  for (char& c : s) {
    c = pick(rng) == 0 ? kTricky[byte(rng) % (sizeof(kTricky) - 1)]
                       : static_cast<char>(byte(rng));
  }
  return s;
}

TEST(FormatTest, QuotedOutputParsesBackToSameBytes) {
  std::mt19937 rng(20240601);
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = RandomBytes(rng, i % 2 ? 8 : 64);
    std::string printed = FormatWord(bytes);
    ASSERT_EQ(ParseBack(printed), bytes) << printed;
    if (bytes.find(';') == std::string::npos) {
      ASSERT_EQ(printed, QuoteIfNeeded(bytes));
    }
    // FormatValue is the same text plus a newline; it never spans lines.
    std::string line = FormatValue(bytes);
    ASSERT_EQ(line, printed + "\n");
    ASSERT_EQ(line.find('\n'), line.size() - 1);
  }
}

TEST(FormatTest, BareWhenSafe) {
  EXPECT_EQ(FormatValue("hello"), "hello\n");
  EXPECT_EQ(FormatValue(""), "\"\"\n");
  EXPECT_EQ(FormatValue("a b"), "\"a b\"\n");
  EXPECT_EQ(FormatValue(std::string("\0\xff", 2)), "\"\\x00\\xff\"\n");
  // '#' after the command name is data; so is a quoted ';'.
  EXPECT_EQ(ParseBack(FormatWord("#x")), "#x");
  // A bare ';' separates batch ops, so words holding one are quoted.
  EXPECT_EQ(FormatWord("a;b"), "\"a;b\"");
  EXPECT_EQ(FormatWord(";"), "\";\"");
  EXPECT_EQ(ParseBack(FormatWord(";")), ";");
}

TEST(FormatTest, Versioned) {
  EXPECT_EQ(FormatVersioned(VersionedValue{"v 1", 42}), "42 \"v 1\"\n");
}

TEST(FormatTest, ScanListsPairsThenCount) {
  ScanResult r;
  r.entries = {{"a", "1", 1}, {"b c", "", 2}};
  EXPECT_EQ(FormatScan(r), "a 1\n\"b c\" \"\"\n(2 keys)\n");
  r.more = true;
  EXPECT_EQ(FormatScan(r), "a 1\n\"b c\" \"\"\n(2 keys, more)\n");
  EXPECT_EQ(FormatScan(ScanResult{}), "(0 keys)\n");
}

TEST(FormatTest, ErrorIsOneLine) {
  EXPECT_EQ(FormatError(Status(Code::kCasFailed, "version 3")), "(error) CAS_FAILED version 3\n");
  std::string line = FormatError(Status(Code::kInternal, "two\nlines\r"));
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_EQ(line.rfind("(error) INTERNAL ", 0), 0u);
}

TEST(FormatTest, HelpListsEveryCommand) {
  std::string all = FormatHelp("");
  for (const CommandSpec& spec : AllCommands()) {
    EXPECT_NE(all.find(spec.usage), std::string::npos) << spec.name;
  }
  std::string one = FormatHelp("scan");
  EXPECT_EQ(one.rfind("scan <start> <end> [limit]", 0), 0u) << one;
  EXPECT_EQ(one.find("put"), std::string::npos) << one;
}

}  // namespace
}  // namespace rangekv::repl
