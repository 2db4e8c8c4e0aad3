#include "repl/command.h"

#include <gtest/gtest.h>

namespace rangekv::repl {
namespace {

Command Parse(std::string_view line) {
  auto tokens = Tokenize(line);
  EXPECT_TRUE(tokens.ok()) << line;
  auto cmd = ParseCommand(*tokens);
  EXPECT_TRUE(cmd.ok()) << line << ": " << cmd.status().ToString();
  return cmd.ok() ? *cmd : Command(QuitCommand{});
}

Status ParseError(std::string_view line) {
  auto tokens = Tokenize(line);
  EXPECT_TRUE(tokens.ok()) << line;
  auto cmd = ParseCommand(*tokens);
  EXPECT_FALSE(cmd.ok()) << line;
  return cmd.status();
}

template <typename T>
T As(const Command& c) {
  EXPECT_TRUE(std::holds_alternative<T>(c));
  return std::holds_alternative<T>(c) ? std::get<T>(c) : T{};
}

bool Mentions(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string::npos;
}

TEST(CommandTest, SplitTakesOneNonEmptyKey) {
  EXPECT_EQ(As<SplitCommand>(Parse("split user:5")).key, "user:5");
  EXPECT_EQ(As<SplitCommand>(Parse(R"(split "a b\x00")")).key, std::string("a b\0", 4));
  EXPECT_EQ(ParseError("split").code(), Code::kBadRequest);
  EXPECT_EQ(ParseError("split a b").code(), Code::kBadRequest);
  Status empty = ParseError(R"(split "")");
  EXPECT_EQ(empty.code(), Code::kBadRequest);
  EXPECT_TRUE(Mentions(empty, "empty key")) << empty.ToString();
}

TEST(CommandTest, MoveTakesARangeAndTwoDifferentNodes) {
  MoveCommand m = As<MoveCommand>(Parse("move 3 n1 n4"));
  EXPECT_EQ(m.range, 3u);
  EXPECT_EQ(m.from, "n1");
  EXPECT_EQ(m.to, "n4");
  EXPECT_EQ(ParseError("move 3 n1").code(), Code::kBadRequest);
  EXPECT_EQ(ParseError("move x n1 n4").code(), Code::kBadRequest);
  EXPECT_NE(ParseError("move 0 n1 n4").message().find("range ids start at 1"), std::string::npos);
  EXPECT_NE(ParseError("move 3 n1 n1").message().find("the same"), std::string::npos);
}

TEST(CommandTest, DecommissionAndRecommissionTakeOneNode) {
  DecommissionCommand d = As<DecommissionCommand>(Parse("decommission n3"));
  EXPECT_EQ(d.node, "n3");
  EXPECT_TRUE(d.on);
  EXPECT_FALSE(As<DecommissionCommand>(Parse("recommission n3")).on);
  EXPECT_EQ(ParseError("decommission").code(), Code::kBadRequest);
  EXPECT_EQ(ParseError("recommission n1 n2").code(), Code::kBadRequest);
}

TEST(CommandTest, PutGetDelGetv) {
  auto put = As<PutCommand>(Parse(R"(put "k 1" "")"));
  EXPECT_EQ(put.key, "k 1");
  EXPECT_EQ(put.value, "");
  EXPECT_EQ(As<GetCommand>(Parse("get k")).key, "k");
  EXPECT_EQ(As<DelCommand>(Parse("del k")).key, "k");
  EXPECT_EQ(As<GetvCommand>(Parse("getv k")).key, "k");
}

TEST(CommandTest, NamesAreCaseInsensitive) {
  EXPECT_EQ(As<PutCommand>(Parse("PUT a b")).value, "b");
  EXPECT_TRUE(std::holds_alternative<PingCommand>(Parse("Ping")));
}

TEST(CommandTest, Cas) {
  auto cas = As<CasCommand>(Parse("cas k 18446744073709551615 v"));
  EXPECT_EQ(cas.key, "k");
  EXPECT_EQ(cas.version, 18446744073709551615ull);
  EXPECT_EQ(cas.value, "v");
  EXPECT_EQ(As<CasCommand>(Parse("cas k 0 v")).version, 0u);
}

TEST(CommandTest, BadVersion) {
  for (const char* line : {"cas k x v", "cas k -1 v", "cas k +1 v", "cas k 1.5 v", "cas k \"\" v",
                           "cas k 18446744073709551616 v", "cas k \" 1\" v"}) {
    Status s = ParseError(line);
    EXPECT_EQ(s.code(), Code::kBadRequest) << line;
    EXPECT_TRUE(Mentions(s, "bad version")) << s.message();
  }
}

TEST(CommandTest, Scan) {
  auto scan = As<ScanCommand>(Parse("scan a z"));
  EXPECT_EQ(scan.start, "a");
  EXPECT_EQ(scan.end, std::optional<std::string>("z"));
  EXPECT_EQ(scan.limit, 0u);
  auto open = As<ScanCommand>(Parse(R"(scan "" "" 10)"));
  EXPECT_EQ(open.start, "");
  EXPECT_EQ(open.end, std::nullopt);
  EXPECT_EQ(open.limit, 10u);
  EXPECT_TRUE(Mentions(ParseError("scan a b x"), "bad limit"));
  EXPECT_TRUE(Mentions(ParseError("scan a b 4294967296"), "bad limit"));
}

TEST(CommandTest, PingHelpQuitExit) {
  EXPECT_TRUE(std::holds_alternative<PingCommand>(Parse("ping")));
  EXPECT_EQ(As<HelpCommand>(Parse("help")).topic, "");
  EXPECT_EQ(As<HelpCommand>(Parse("help CAS")).topic, "cas");
  EXPECT_TRUE(std::holds_alternative<QuitCommand>(Parse("quit")));
  EXPECT_TRUE(std::holds_alternative<QuitCommand>(Parse("exit")));
  EXPECT_TRUE(Mentions(ParseError("help nosuch"), "unknown command"));
}

TEST(CommandTest, WrongArityNamesUsage) {
  struct Case {
    const char* line;
    const char* usage;
  } cases[] = {
      {"put a", "put <key> <value>"},     {"put a b c", "put <key> <value>"},
      {"get", "get <key>"},               {"get a b", "get <key>"},
      {"del", "del <key>"},               {"getv", "getv <key>"},
      {"cas a 1", "cas <key> <version>"}, {"scan a", "scan <start> <end> [limit]"},
      {"scan a b 1 2", "scan <start>"},   {"ping x", "ping"},
      {"help a b", "help [command]"},     {"quit now", "quit"},
  };
  for (const Case& c : cases) {
    Status s = ParseError(c.line);
    EXPECT_EQ(s.code(), Code::kBadRequest) << c.line;
    EXPECT_TRUE(Mentions(s, "wrong number of arguments")) << s.message();
    EXPECT_TRUE(Mentions(s, c.usage)) << s.message();
  }
}

TEST(CommandTest, UnknownCommand) {
  Status s = ParseError("frobnicate a");
  EXPECT_EQ(s.code(), Code::kBadRequest);
  EXPECT_TRUE(Mentions(s, "unknown command 'frobnicate'")) << s.message();
  // Binary names are shown escaped so the error stays one line.
  Status b = ParseError(R"("a\nb" x)");
  EXPECT_TRUE(Mentions(b, R"("a\nb")")) << b.message();
}

TEST(CommandTest, BatchSplitsOnSeparators) {
  auto batch = As<BatchCommand>(Parse(R"(batch put a 1 ; del b;cas c 0 "x;y" ;)"));
  ASSERT_EQ(batch.ops.size(), 3u);
  EXPECT_EQ(batch.ops[0].kind, BatchOp::Kind::kPut);
  EXPECT_EQ(batch.ops[0].key, "a");
  EXPECT_EQ(batch.ops[0].value, "1");
  EXPECT_EQ(batch.ops[1].kind, BatchOp::Kind::kDelete);
  EXPECT_EQ(batch.ops[1].key, "b");
  EXPECT_EQ(batch.ops[2].kind, BatchOp::Kind::kCas);
  EXPECT_EQ(batch.ops[2].key, "c");
  EXPECT_EQ(batch.ops[2].expected_version, 0u);
  EXPECT_EQ(batch.ops[2].value, "x;y");  // ';' inside quotes is data
}

TEST(CommandTest, BatchOfOne) {
  auto batch = As<BatchCommand>(Parse("batch put a 1"));
  ASSERT_EQ(batch.ops.size(), 1u);
  EXPECT_EQ(batch.ops[0].kind, BatchOp::Kind::kPut);
}

TEST(CommandTest, BatchErrors) {
  EXPECT_TRUE(Mentions(ParseError("batch"), "at least one op"));
  EXPECT_TRUE(Mentions(ParseError("batch ;"), "at least one op"));
  EXPECT_TRUE(Mentions(ParseError("batch put a 1 ;; del b"), "empty op"));
  EXPECT_TRUE(Mentions(ParseError("batch ; put a 1"), "empty op"));
  EXPECT_TRUE(Mentions(ParseError("batch get a"), "unknown op 'get'"));
  EXPECT_TRUE(Mentions(ParseError("batch put a 1 ; put b"), "put <key> <value>"));
  EXPECT_TRUE(Mentions(ParseError("batch cas a x 1"), "bad version"));
  EXPECT_TRUE(Mentions(ParseError("batch del a b"), "del <key>"));
}

TEST(CommandTest, SeparatorOutsideBatch) {
  EXPECT_TRUE(Mentions(ParseError("put a 1 ; put b 2"), "only inside a batch"));
  EXPECT_TRUE(Mentions(ParseError("; get a"), "only inside a batch"));
}

TEST(CommandTest, Consistency) {
  EXPECT_FALSE(As<ConsistencyCommand>(Parse("consistency")).set.has_value());
  EXPECT_EQ(As<ConsistencyCommand>(Parse("consistency stale")).set, ReadConsistency::kStale);
  EXPECT_EQ(As<ConsistencyCommand>(Parse("CONSISTENCY Linearizable")).set,
            ReadConsistency::kLinearizable);
  Status bad = ParseError("consistency eventual");
  EXPECT_EQ(bad.code(), Code::kBadRequest);
  EXPECT_TRUE(Mentions(bad, "unknown level 'eventual' (use stale or linearizable)"))
      << bad.ToString();
  EXPECT_TRUE(Mentions(ParseError("consistency stale now"),
                       "usage: consistency [stale|linearizable]"));
  EXPECT_EQ(ConsistencyName(ReadConsistency::kStale), "stale");
  EXPECT_EQ(ConsistencyName(ReadConsistency::kLinearizable), "linearizable");
}

TEST(CommandTest, Completions) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Completions("", "co"), V{"consistency"});
  EXPECT_EQ(Completions("  ", "s"), (V{"scan", "status", "split"}));
  EXPECT_EQ(Completions("", "").size(), AllCommands().size());
  EXPECT_EQ(Completions("consistency ", ""), (V{"linearizable", "stale"}));
  EXPECT_EQ(Completions("Consistency  ", "st"), V{"stale"});
  EXPECT_EQ(Completions("consistency stale ", ""), V{});  // one argument only
  EXPECT_EQ(Completions("get ", "s"), V{});                // keys are not known
}

TEST(CommandTest, TableIsConsistent) {
  for (const CommandSpec& spec : AllCommands()) {
    EXPECT_EQ(FindCommand(spec.name), &spec);
    EXPECT_EQ(spec.usage.substr(0, spec.name.size()), spec.name);
    EXPECT_FALSE(spec.summary.empty());
  }
  EXPECT_EQ(FindCommand("nosuch"), nullptr);
}

}  // namespace
}  // namespace rangekv::repl
