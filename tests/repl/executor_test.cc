#include "repl/executor.h"

#include <gtest/gtest.h>

#include <sstream>

#include "repl/options.h"
#include "repl/shell.h"
#include "tests/repl/fake_backend.h"

namespace rangekv::repl {
namespace {

using testing::FakeBackend;

class ExecutorTest : public ::testing::Test {
 protected:
  // Runs a line and returns what would be printed.
  std::string Run(std::string_view line) { return RunLine(line, backend_).text; }
  Outcome OutcomeOf(std::string_view line) { return RunLine(line, backend_).outcome; }

  FakeBackend backend_;
};

TEST_F(ExecutorTest, PutGetDel) {
  EXPECT_EQ(Run("put k v"), "OK\n");
  EXPECT_EQ(Run("get k"), "v\n");
  EXPECT_EQ(Run("del k"), "OK\n");
  EXPECT_EQ(Run("get k"), "(nil)\n");
  EXPECT_EQ(OutcomeOf("get k"), Outcome::kOk);
}

// A node that refuses this client (TLS): nothing later can work, so the
// shell stops at once with exit 2, in -c and pipe modes alike.
TEST_F(ExecutorTest, ARefusedClientStopsTheShellWithExit2) {
  backend_.refuses = true;
  EXPECT_EQ(OutcomeOf("get k"), Outcome::kRefused);
  EXPECT_EQ(Run("get k"), "(error) UNAUTHENTICATED this node requires TLS\n");
  std::ostringstream out;
  backend_.calls.clear();
  EXPECT_EQ(RunCommands({"get a", "get b"}, backend_, out), kExitUsageOrConnect);
  EXPECT_EQ(backend_.calls.size(), 1u) << "the second command ran";
  std::istringstream in("get a\nget b\n");
  std::ostringstream piped;
  EXPECT_EQ(RunStream(in, piped, backend_), kExitUsageOrConnect);
  EXPECT_EQ(piped.str(), "(error) UNAUTHENTICATED this node requires TLS\n");
}

TEST_F(ExecutorTest, BinaryValuesRoundTrip) {
  EXPECT_EQ(Run(R"(put "k\x00\n" "a b\x01\xff")"), "OK\n");
  EXPECT_EQ(backend_.data.count(std::string("k\0\n", 3)), 1u);
  EXPECT_EQ(Run(R"(get "k\x00\n")"), "\"a b\\x01\\xff\"\n");
  EXPECT_EQ(Run(R"(put e "")"), "OK\n");
  EXPECT_EQ(Run("get e"), "\"\"\n");
}

TEST_F(ExecutorTest, GetvAndCas) {
  EXPECT_EQ(Run("getv k"), "(nil)\n");
  EXPECT_EQ(Run("cas k 0 first"), "OK\n");
  EXPECT_EQ(Run("getv k"), "1 first\n");
  std::string failed = Run("cas k 0 again");
  EXPECT_EQ(failed.rfind("(error) CAS_FAILED ", 0), 0u) << failed;
  EXPECT_EQ(OutcomeOf("cas k 0 again"), Outcome::kFailed);
  EXPECT_EQ(Run("cas k 1 second"), "OK\n");
  EXPECT_EQ(Run("getv k"), "2 second\n");
}

TEST_F(ExecutorTest, ScanPrintsPairsAndCount) {
  for (const char* k : {"a", "b", "c", "d"}) {
    ASSERT_EQ(Run(std::string("put ") + k + " v" + k), "OK\n");
  }
  EXPECT_EQ(Run("scan b d"), "b vb\nc vc\n(2 keys)\n");
  EXPECT_EQ(Run(R"(scan b "")"), "b vb\nc vc\nd vd\n(3 keys)\n");
  EXPECT_EQ(Run(R"(scan "" "" 2)"), "a va\nb vb\n(2 keys, more)\n");
  EXPECT_EQ(Run("scan x z"), "(0 keys)\n");
}

TEST_F(ExecutorTest, BatchIsAllOrNothing) {
  ASSERT_EQ(Run("put c 1"), "OK\n");
  std::string failed = Run("batch put a 1 ; del c ; cas c 9 x");
  EXPECT_EQ(failed.rfind("(error) CAS_FAILED ", 0), 0u) << failed;
  EXPECT_EQ(failed.find('\n'), failed.size() - 1);  // one error for the whole batch
  EXPECT_EQ(Run("get a"), "(nil)\n");
  EXPECT_EQ(Run("get c"), "1\n");
  EXPECT_EQ(Run(R"(batch put a 1 ; del c ; cas "x;y" 0 "v;w")"), "OK\n");
  EXPECT_EQ(Run("get a"), "1\n");
  EXPECT_EQ(Run("get c"), "(nil)\n");
  EXPECT_EQ(Run(R"(get "x;y")"), "\"v;w\"\n");
}

TEST_F(ExecutorTest, PingHelpQuit) {
  EXPECT_EQ(Run("ping"), "PONG\n");
  EXPECT_NE(Run("help").find("scan <start> <end> [limit]"), std::string::npos);
  EXPECT_EQ(RunLine("quit", backend_).outcome, Outcome::kQuit);
  EXPECT_EQ(RunLine("EXIT", backend_).outcome, Outcome::kQuit);
  backend_.calls.clear();
  (void)Run("help put");
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(ExecutorTest, ConsistencyAppliesToLaterReadsOnly) {
  EXPECT_EQ(Run("consistency"), "linearizable\n");
  EXPECT_EQ(Run("put k v"), "OK\n");
  EXPECT_EQ(Run("get k"), "v\n");
  EXPECT_EQ(Run("consistency stale"), "OK\n");
  EXPECT_EQ(backend_.consistency(), ReadConsistency::kStale);
  EXPECT_EQ(Run("consistency"), "stale\n");
  EXPECT_EQ(Run("get k"), "v\n");
  EXPECT_EQ(Run("getv k"), "1 v\n");
  EXPECT_EQ(Run("scan \"\" \"\""), "k v\n(1 keys)\n");
  EXPECT_EQ(Run("put k w"), "OK\n");  // writes still work, whatever the level
  EXPECT_EQ(Run("consistency LINEARIZABLE"), "OK\n");
  EXPECT_EQ(Run("get k"), "w\n");
  using C = ReadConsistency;
  EXPECT_EQ(backend_.reads, (std::vector<C>{C::kLinearizable, C::kStale, C::kStale, C::kStale,
                                            C::kLinearizable}));
  // A bad level changes nothing.
  EXPECT_EQ(OutcomeOf("consistency eventual"), Outcome::kFailed);
  EXPECT_EQ(Run("consistency"), "linearizable\n");
  EXPECT_NE(Run("help").find("consistency [stale|linearizable]"), std::string::npos);
}

TEST_F(ExecutorTest, BlankAndCommentLinesPrintNothing) {
  for (const char* line : {"", "   ", "# put a 1", "\t# x"}) {
    Reply r = RunLine(line, backend_);
    EXPECT_EQ(r.outcome, Outcome::kNothing) << line;
    EXPECT_EQ(r.text, "") << line;
  }
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(ExecutorTest, ParseErrorsAreOneBadRequestLine) {
  for (const char* line : {"nosuch", "put a", "cas a x b", R"(put "a)", R"(put "\x1" b)",
                           R"(put "a"b c)", "put a 1 ; put b 2"}) {
    Reply r = RunLine(line, backend_);
    EXPECT_EQ(r.outcome, Outcome::kFailed) << line;
    EXPECT_EQ(r.text.rfind("(error) BAD_REQUEST ", 0), 0u) << r.text;
    EXPECT_EQ(r.text.find('\n'), r.text.size() - 1) << r.text;
  }
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(ExecutorTest, BackendErrorsPassThrough) {
  std::string big(FakeBackend::kMaxKey + 1, 'k');
  EXPECT_EQ(Run("put " + big + " v").rfind("(error) TOO_LARGE ", 0), 0u);
  backend_.down = true;
  for (const char* line : {"get a", "put a 1", "scan a b", "ping", "batch del a"}) {
    EXPECT_EQ(Run(line).rfind("(error) UNAVAILABLE ", 0), 0u) << line;
  }
  backend_.down = false;
  EXPECT_EQ(Run("ping"), "PONG\n");
}

TEST(ShellTest, RunStreamAnswersEachLineAndStopsAtQuit) {
  FakeBackend backend;
  std::istringstream in("put a 1\r\n\n# note\nget a\nnosuch\nquit\nget a\n");
  std::ostringstream out;
  EXPECT_EQ(RunStream(in, out, backend), kExitOk);
  EXPECT_EQ(out.str(),
            "OK\n1\n(error) BAD_REQUEST unknown command 'nosuch' (type help for a list)\n");
}

TEST(ShellTest, RunStreamWithoutTrailingNewline) {
  FakeBackend backend;
  std::istringstream in("ping");
  std::ostringstream out;
  EXPECT_EQ(RunStream(in, out, backend), kExitOk);
  EXPECT_EQ(out.str(), "PONG\n");
}

TEST(ShellTest, RunCommandsExitStatus) {
  FakeBackend backend;
  std::ostringstream out;
  EXPECT_EQ(RunCommands({"put a 1", "get a"}, backend, out), kExitOk);
  EXPECT_EQ(out.str(), "OK\n1\n");
  std::ostringstream out2;
  EXPECT_EQ(RunCommands({"cas a 0 x", "get a"}, backend, out2), kExitCommandFailed);
  EXPECT_EQ(out2.str().rfind("(error) CAS_FAILED", 0), 0u);
  EXPECT_NE(out2.str().find("\n1\n"), std::string::npos);  // kept going
  std::ostringstream out3;
  EXPECT_EQ(RunCommands({"get a", "quit", "nosuch"}, backend, out3), kExitOk);
  EXPECT_EQ(out3.str(), "1\n");
}

TEST(OptionsTest, ParsesEveryFlag) {
  auto o = ParseOptions({"--node", "127.0.0.1:7000", "-c", "get a", "--command=put a 1",
                         "--timeout-ms=250"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->action, Action::kRun);
  EXPECT_EQ(o->node, "127.0.0.1:7000");
  EXPECT_EQ(o->commands, (std::vector<std::string>{"get a", "put a 1"}));
  EXPECT_EQ(o->timeout, std::chrono::milliseconds(250));
  auto eq = ParseOptions({"--node=h:1", "--timeout-ms", "9"});
  ASSERT_TRUE(eq.ok());
  EXPECT_EQ(eq->node, "h:1");
  EXPECT_EQ(eq->timeout, std::chrono::milliseconds(9));
}

TEST(OptionsTest, Help) {
  auto o = ParseOptions({"--help"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->action, Action::kShowHelp);
  EXPECT_EQ(ParseOptions({"-h"})->action, Action::kShowHelp);
  EXPECT_NE(UsageText().find("Exit status"), std::string::npos);
}

TEST(OptionsTest, BadFlagsAreOneLineErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"--node"},
      {"--node", "h:1", "--bogus"},
      {"--node", "h:1", "extra"},
      {"--node", "h:1", "-c"},
      {"--node", "h:1", "--timeout-ms", "0"},
      {"--node", "h:1", "--timeout-ms", "x"},
      {"--node", "h:1", "--timeout-ms=-5"},
  };
  for (const auto& args : bad) {
    auto o = ParseOptions(args);
    ASSERT_FALSE(o.ok());
    EXPECT_EQ(o.status().code(), Code::kBadRequest);
    EXPECT_EQ(o.status().message().find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace rangekv::repl
