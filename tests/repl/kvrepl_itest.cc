// Drives the real kvrepl binary against a real standalone kvnode: through a
// pipe one command at a time, with -c, and with bad flags / no node.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "repl/format.h"
#include "tests/repl/repl_harness.h"
#include "tests/testutil/testutil.h"

namespace rangekv::repl::testing {
namespace {

using rangekv::testing::BuildPath;
using rangekv::testing::FreePort;
namespace tu = rangekv::testing;
using rangekv::testing::RunResult;
using rangekv::testing::TempDir;
using rangekv::testing::WaitFor;
using Lines = std::vector<std::string>;

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

class KvreplTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(node_.Start()) << node_.log(); }

  std::unique_ptr<PipedRepl> StartPiped() {
    return std::make_unique<PipedRepl>(
        std::vector<std::string>{BuildPath("repl/kvrepl"), "--node", node_.address(),
                                 "--timeout-ms", "2000"},
        dir_.Sub("kvrepl.err"));
  }

  RunResult RunC(const std::vector<std::string>& commands) {
    std::vector<std::string> argv{BuildPath("repl/kvrepl"), "--node", node_.address()};
    for (const auto& c : commands) {
      argv.push_back("-c");
      argv.push_back(c);
    }
    return tu::Run(argv);
  }

  // Reads the version printed by getv.
  static uint64_t VersionOf(const std::string& getv_line) {
    return std::stoull(getv_line.substr(0, getv_line.find(' ')));
  }

  TempDir dir_;
  StandaloneNode node_;
};

TEST_F(KvreplTest, PipeSingleKeyCommands) {
  auto repl = StartPiped();
  EXPECT_EQ(repl->Command("ping"), Lines{"PONG"});
  EXPECT_EQ(repl->Command("put a 1"), Lines{"OK"});
  EXPECT_EQ(repl->Command("get a"), Lines{"1"});
  Lines getv = repl->Command("getv a");
  ASSERT_EQ(getv.size(), 1u);
  EXPECT_TRUE(getv[0].ends_with(" 1")) << getv[0];
  uint64_t v = VersionOf(getv[0]);
  EXPECT_GT(v, 0u);

  EXPECT_EQ(repl->Command("cas a " + std::to_string(v) + " 2"), Lines{"OK"});
  Lines stale = repl->Command("cas a " + std::to_string(v) + " 3");
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_TRUE(StartsWith(stale[0], "(error) CAS_FAILED")) << stale[0];
  EXPECT_EQ(repl->Command("get a"), Lines{"2"});
  EXPECT_EQ(repl->Command("cas fresh 0 x"), Lines{"OK"});
  Lines again = repl->Command("cas fresh 0 y");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(StartsWith(again[0], "(error) CAS_FAILED")) << again[0];

  EXPECT_EQ(repl->Command("del a"), Lines{"OK"});
  EXPECT_EQ(repl->Command("get a"), Lines{"(nil)"});
  EXPECT_EQ(repl->Command("getv a"), Lines{"(nil)"});
  EXPECT_EQ(repl->Command("quit"), Lines{});
  EXPECT_TRUE(repl->ReadEof());
  EXPECT_EQ(repl->Wait(), 0);
}

TEST_F(KvreplTest, PipeBinaryKeysAndValuesRoundTrip) {
  auto repl = StartPiped();
  const std::string key = R"("k\x00\xff\n sp")";
  const std::string value = R"("v \"q\" \\ \x01\t;#")";
  EXPECT_EQ(repl->Command("put " + key + " " + value), Lines{"OK"});
  EXPECT_EQ(repl->Command("get " + key), Lines{value});
  EXPECT_EQ(repl->Command(R"(get "k\x00\xFF\x0a sp")"), Lines{value});  // other spelling
  EXPECT_EQ(repl->Command("scan " + key + " \"\"", 2), (Lines{key + " " + value, "(1 keys)"}));
  EXPECT_EQ(repl->Command(R"(put empty "")"), Lines{"OK"});
  EXPECT_EQ(repl->Command("get empty"), Lines{"\"\""});
  // Every byte value once, in one value.
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(repl->Command("put all " + FormatWord(all)), Lines{"OK"});
  EXPECT_EQ(repl->Command("get all"), Lines{FormatWord(all)});
}

TEST_F(KvreplTest, PipeScanAndCountLine) {
  auto repl = StartPiped();
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(repl->Command("put s" + std::to_string(i) + " v" + std::to_string(i)), Lines{"OK"});
  }
  EXPECT_EQ(repl->Command("scan s1 s4", 4), (Lines{"s1 v1", "s2 v2", "s3 v3", "(3 keys)"}));
  EXPECT_EQ(repl->Command(R"(scan s3 "")", 4), (Lines{"s3 v3", "s4 v4", "s5 v5", "(3 keys)"}));
  EXPECT_EQ(repl->Command(R"(scan s "" 2)", 3), (Lines{"s1 v1", "s2 v2", "(2 keys, more)"}));
  EXPECT_EQ(repl->Command("scan x z"), Lines{"(0 keys)"});
}

TEST_F(KvreplTest, PipeBatchIsAtomic) {
  auto repl = StartPiped();
  EXPECT_EQ(repl->Command("put keep 1"), Lines{"OK"});
  Lines failed = repl->Command("batch put b1 x ; del keep ; cas keep 999999 y");
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_TRUE(StartsWith(failed[0], "(error) CAS_FAILED")) << failed[0];
  EXPECT_EQ(repl->Command("get b1"), Lines{"(nil)"});  // nothing applied
  EXPECT_EQ(repl->Command("get keep"), Lines{"1"});

  EXPECT_EQ(repl->Command(R"(batch put b1 x;put "b;2" "y;z" ; del keep ; cas b3 0 w)"),
            Lines{"OK"});
  EXPECT_EQ(repl->Command("get b1"), Lines{"x"});
  EXPECT_EQ(repl->Command(R"(get "b;2")"), Lines{R"("y;z")"});
  EXPECT_EQ(repl->Command("get keep"), Lines{"(nil)"});
  EXPECT_EQ(repl->Command("get b3"), Lines{"w"});
}

TEST_F(KvreplTest, PipeErrorsKeepGoing) {
  auto repl = StartPiped();
  for (const char* bad : {"nosuch a", "put a", "cas a x 1", R"(put "a 1)", R"(put "\x4" 1)",
                          R"(put "a"b 1)", "put a 1 ; put b 2", "scan a b many"}) {
    Lines out = repl->Command(bad);
    ASSERT_EQ(out.size(), 1u) << bad;
    EXPECT_TRUE(StartsWith(out[0], "(error) BAD_REQUEST ")) << bad << " -> " << out[0];
    EXPECT_EQ(repl->Command("ping"), Lines{"PONG"}) << "after " << bad;
  }
  // Blank and comment lines print nothing: the next line read is the PONG.
  repl->Write("\n   \n# put c 1\n");
  EXPECT_EQ(repl->Command("ping"), Lines{"PONG"});
  EXPECT_EQ(repl->Command("get c"), Lines{"(nil)"});
}

TEST_F(KvreplTest, PipeTooLarge) {
  auto repl = StartPiped();
  Lines key = repl->Command("put " + std::string(5000, 'k') + " v");
  ASSERT_EQ(key.size(), 1u);
  EXPECT_TRUE(StartsWith(key[0], "(error) TOO_LARGE")) << key[0].substr(0, 200);
  Lines value = repl->Command("put k " + std::string((1 << 20) + 1, 'v'));
  ASSERT_EQ(value.size(), 1u);
  EXPECT_TRUE(StartsWith(value[0], "(error) TOO_LARGE")) << value[0].substr(0, 200);
  EXPECT_EQ(repl->Command("ping"), Lines{"PONG"});
}

TEST_F(KvreplTest, PipeHelpListsEveryCommand) {
  auto repl = StartPiped();
  std::string help = FormatHelp("");
  size_t n = static_cast<size_t>(std::count(help.begin(), help.end(), '\n'));
  Lines out = repl->Command("help", n);
  ASSERT_EQ(out.size(), n);
  for (const char* usage : {"put <key> <value>", "get <key>", "del <key>",
                            "cas <key> <version> <value>", "getv <key>",
                            "scan <start> <end> [limit]", "batch <op>", "ping", "help", "quit"}) {
    EXPECT_TRUE(std::any_of(out.begin(), out.end(),
                            [&](const std::string& l) { return StartsWith(l, usage); }))
        << usage;
  }
  EXPECT_EQ(repl->Command("ping"), Lines{"PONG"});
}

TEST_F(KvreplTest, PipeEofExitsZero) {
  auto repl = StartPiped();
  EXPECT_EQ(repl->Command("nosuch").size(), 1u);  // a failed command does not change it
  repl->CloseStdin();
  EXPECT_TRUE(repl->ReadEof());
  EXPECT_EQ(repl->Wait(), 0);
}

TEST_F(KvreplTest, CommandFlagResultsAndExitCodes) {
  RunResult ok = RunC({"put c1 hello", "get c1", R"(put c2 "a b")", "getv c2", "ping"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  Lines lines;
  for (size_t start = 0, nl; (nl = ok.out.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(ok.out.substr(start, nl - start));
  }
  ASSERT_EQ(lines.size(), 5u) << ok.out;
  EXPECT_EQ(lines[0], "OK");
  EXPECT_EQ(lines[1], "hello");
  EXPECT_EQ(lines[2], "OK");
  EXPECT_TRUE(lines[3].ends_with(" \"a b\"")) << lines[3];
  EXPECT_EQ(lines[4], "PONG");

  RunResult failed = RunC({"cas c1 0 x", "get c1"});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_TRUE(StartsWith(failed.out, "(error) CAS_FAILED")) << failed.out;
  EXPECT_TRUE(failed.out.ends_with("\nhello\n")) << failed.out;  // kept going

  RunResult unknown = RunC({"nosuch"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(StartsWith(unknown.out, "(error) BAD_REQUEST")) << unknown.out;

  RunResult quit = RunC({"get c1", "quit", "nosuch"});
  EXPECT_EQ(quit.exit_code, 0);
  EXPECT_EQ(quit.out, "hello\n");
}

TEST_F(KvreplTest, ConnectionLostAndBack) {
  auto repl = StartPiped();
  ASSERT_EQ(repl->Command("put durable yes"), Lines{"OK"});
  node_.Kill();
  Lines down = repl->Command("get durable");
  ASSERT_EQ(down.size(), 1u);
  EXPECT_TRUE(StartsWith(down[0], "(error) UNAVAILABLE")) << down[0];
  ASSERT_TRUE(node_.Start()) << node_.log();
  // The client reconnects by itself; poll until a ping gets through.
  bool back = WaitFor([&] { return repl->Command("ping") == Lines{"PONG"}; }, 20s, 50ms);
  ASSERT_TRUE(back);
  EXPECT_EQ(repl->Command("get durable"), Lines{"yes"});
}

TEST(KvreplStartTest, CannotConnectExitsTwo) {
  int port = FreePort();  // nothing listens there
  RunResult r = tu::Run(
      {BuildPath("repl/kvrepl"), "--node", "127.0.0.1:" + std::to_string(port), "-c", "ping"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(StartsWith(r.err, "(error) UNAVAILABLE")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(KvreplStartTest, BadFlagsExitTwoWithOneLine) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, {"--node"}, {"--node", "127.0.0.1:1", "--bogus"},
        {"--node", "127.0.0.1:1", "--timeout-ms", "soon"}}) {
    std::vector<std::string> argv{BuildPath("repl/kvrepl")};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = tu::Run(argv);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(StartsWith(r.err, "kvrepl: ")) << r.err;
  }
  RunResult help = tu::Run({BuildPath("repl/kvrepl"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(StartsWith(help.out, "usage: kvrepl --node HOST:PORT")) << help.out;
}

}  // namespace
}  // namespace rangekv::repl::testing
