// Integration tests of `kvrepl --zk` (cluster mode) against a real
// ZooKeeper and real kvnode processes (tests/client/smart_cluster.h: the
// test writes the map; each node's data shows where a request went).
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "rangekv/client.h"
#include "tests/client/smart_cluster.h"
#include "tests/repl/repl_harness.h"

namespace rangekv::repl {
namespace {

using rangekv::testing::BuildPath;
using rangekv::testing::RunResult;
using rangekv::testing::TempDir;
using rangekv::testing::WaitFor;
using namespace std::chrono_literals;

class KvreplClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Start()) << cluster_.error();
    ASSERT_TRUE(cluster_.StartNode("n1")) << cluster_.error();
    ASSERT_TRUE(cluster_.StartNode("n2")) << cluster_.error();
    ASSERT_TRUE(cluster_.WriteTwoRanges("n1", "n2")) << cluster_.error();
  }

  std::vector<std::string> Base() {
    return {BuildPath("repl/kvrepl"), "--zk", cluster_.zk_connect(), "--cluster",
            cluster_.name()};
  }

  RunResult RunCommands(const std::vector<std::string>& commands) {
    auto argv = Base();
    for (const auto& c : commands) {
      argv.push_back("-c");
      argv.push_back(c);
    }
    return rangekv::testing::Run(argv);
  }

  std::optional<std::string> ReadDirect(const std::string& id, const std::string& key) {
    auto c = Client::ConnectNode(cluster_.address(id));
    if (!c.ok()) return std::nullopt;
    auto r = (*c)->Get(key);
    if (!r.ok() || !r->has_value()) return std::nullopt;
    return (*r)->value;
  }

  rangekv::testing::SmartCluster cluster_;
  TempDir dir_;
};

TEST_F(KvreplClusterTest, StatusPrintsTheSummaryLines) {
  auto r = RunCommands({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("cluster: " + cluster_.name() + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("zookeeper: " + cluster_.zk_connect() + "\n"), std::string::npos);
  EXPECT_NE(r.out.find("nodes: 2 up, 0 down\n"), std::string::npos) << r.out;
  // The exact form scripts/kvcluster waits for.
  std::regex line(R"(^ranges: 2 total, 2 active, 0 unavailable, 0 without owner$)",
                  std::regex::multiline);
  EXPECT_TRUE(std::regex_search(r.out, line)) << r.out;
}

TEST_F(KvreplClusterTest, NodesRangesAndLocate) {
  auto r = RunCommands({"nodes", "ranges", "locate a", "locate zz"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string expected =
      "n1 " + cluster_.address("n1") + " up\n" + "n2 " + cluster_.address("n2") + " up\n" +
      "range  bounds     epoch  owner  isr  replicas  state   hwm  lag\n" +
      "1      [\"\", m)    1      n1     n1   n1        active  -    -\n" +
      "2      [m, +inf)  1      n2     n2   n2        active  -    -\n" +
      "range 1 [\"\", m) owner n1 " + cluster_.address("n1") + "\n" +
      "range 2 [m, +inf) owner n2 " + cluster_.address("n2") + "\n";
  EXPECT_EQ(r.out, expected);
}

TEST_F(KvreplClusterTest, NodeDownShowsInNodesAndStatus) {
  ASSERT_TRUE(cluster_.UnpublishNode("n2"));
  auto r = RunCommands({"nodes", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("n2 - down\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nodes: 1 up, 1 down\n"), std::string::npos) << r.out;
}

TEST_F(KvreplClusterTest, PutGetGoThroughTheOwners) {
  auto r = RunCommands({"put apple 1", "put zebra 2", "get apple", "get zebra",
                        "scan \"\" \"\"", "batch put a 1 ; put z 2"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;  // the cross-range batch fails
  EXPECT_EQ(r.out.substr(0, r.out.find("(error)")),
            "OK\nOK\n1\n2\napple 1\nzebra 2\n(2 keys)\n");
  EXPECT_NE(r.out.find("(error) CROSS_RANGE batch keys span more than one range"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(ReadDirect("n1", "apple"), "1");
  EXPECT_EQ(ReadDirect("n2", "zebra"), "2");
  EXPECT_EQ(ReadDirect("n1", "zebra"), std::nullopt);
}

TEST_F(KvreplClusterTest, NodeModeRefusesClusterCommands) {
  auto r = rangekv::testing::Run({BuildPath("repl/kvrepl"), "--node", cluster_.address("n1"),
                                  "-c", "nodes", "-c", "status", "-c", "locate a"});
  EXPECT_EQ(r.exit_code, 1);
  std::regex err(R"(^\(error\) BAD_REQUEST '(nodes|status|locate)' needs --zk)",
                 std::regex::multiline);
  auto begin = std::sregex_iterator(r.out.begin(), r.out.end(), err);
  EXPECT_EQ(std::distance(begin, std::sregex_iterator()), 3) << r.out;
}

TEST_F(KvreplClusterTest, UnreachableZooKeeperExitsWithStatus2) {
  const std::string nobody = "127.0.0.1:" + std::to_string(rangekv::testing::FreePort());
  auto r = rangekv::testing::Run(
      {BuildPath("repl/kvrepl"), "--zk", nobody, "--timeout-ms", "500", "-c", "status"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("(error) UNAVAILABLE"), std::string::npos) << r.err;
}

TEST_F(KvreplClusterTest, PipedSessionSurvivesANodeRestartAtANewAddress) {
  testing::PipedRepl repl(Base(), dir_.Sub("repl.err"));
  ASSERT_EQ(repl.Command("put c before"), std::vector<std::string>{"OK"});
  cluster_.StopNode("n1");
  ASSERT_TRUE(cluster_.UnpublishNode("n1"));
  ASSERT_TRUE(cluster_.StartNode("n1")) << cluster_.error();  // same data, new port
  ASSERT_EQ(repl.Command("get c"), std::vector<std::string>{"before"});
  ASSERT_EQ(repl.Command("put c after"), std::vector<std::string>{"OK"});
  EXPECT_EQ(ReadDirect("n1", "c"), "after");
  EXPECT_EQ(repl.Command("locate c"),
            std::vector<std::string>{"range 1 [\"\", m) owner n1 " + cluster_.address("n1")});
  repl.CloseStdin();
  EXPECT_EQ(repl.Wait(), 0);
}

}  // namespace
}  // namespace rangekv::repl
