// Unit tests of the cluster commands of kvrepl (nodes, ranges, locate,
// status): parsing, output formats, and their refusal without --zk.
#include <gtest/gtest.h>

#include "repl/command.h"
#include "repl/executor.h"
#include "repl/format.h"
#include "repl/options.h"
#include "repl/tokenizer.h"
#include "tests/repl/fake_backend.h"

namespace rangekv::repl {
namespace {

Result<Command> Parse(std::string_view line) {
  auto tokens = Tokenize(line);
  EXPECT_TRUE(tokens.ok());
  return ParseCommand(*tokens);
}

RangeStatus Range(uint64_t id, std::string start, std::optional<std::string> end,
                  std::optional<std::string> owner) {
  RangeStatus r;
  r.id = id;
  r.start = std::move(start);
  r.end = std::move(end);
  r.epoch = 4;
  r.owner = owner;
  if (owner) {
    r.owner_address = "127.0.0.1:7001";
    r.replicas = {*owner, "n9"};
    r.isr = {*owner};
  }
  return r;
}

TEST(ClusterCommandsTest, Parse) {
  EXPECT_TRUE(std::holds_alternative<NodesCommand>(*Parse("nodes")));
  EXPECT_TRUE(std::holds_alternative<RangesCommand>(*Parse("RANGES")));
  EXPECT_TRUE(std::holds_alternative<StatusCommand>(*Parse("status")));
  auto locate = Parse("locate \"a b\"");
  ASSERT_TRUE(locate.ok());
  EXPECT_EQ(std::get<LocateCommand>(*locate).key, "a b");
  EXPECT_EQ(Parse("locate").status().code(), Code::kBadRequest);
  EXPECT_EQ(Parse("nodes x").status().code(), Code::kBadRequest);
}

TEST(ClusterCommandsTest, FormatNodes) {
  EXPECT_EQ(FormatNodes({{"n1", "127.0.0.1:7001", true}, {"n2", "", false}}),
            "n1 127.0.0.1:7001 up owned - held - bytes - req/s -\n"
            "n2 - down owned - held - bytes - req/s -\n");
  EXPECT_EQ(FormatNodes({}), "(no nodes)\n");
  EXPECT_EQ(FormatNodes({{"n3", "127.0.0.1:7003", true, true}}),
            "n3 127.0.0.1:7003 draining owned - held - bytes - req/s -\n");
  // With the map and the owners' reports: per node the ranges it owns and
  // holds, their bytes and requests; "-" where an owner did not answer.
  auto r1 = Range(1, "", "m", "n1");  // replicas n1,n9
  auto r2 = Range(2, "m", std::nullopt, "n9");
  r2.replicas = {"n9"};
  std::map<uint64_t, RangeProgress> progress;
  progress[1] = RangeProgress{812, {}, 40, 5120, 1500};
  const std::vector<RangeStatus> ranges = {r1, r2};
  EXPECT_EQ(FormatNodes({{"n1", "a:1", true}, {"n9", "b:1", true}}, &ranges, progress),
            "n1 a:1 up owned 1 held 1 bytes 5120 req/s 1500\n"
            "n9 b:1 up owned 1 held 2 bytes - req/s -\n");
}

TEST(ClusterCommandsTest, FormatRangesAndLocate) {
  auto r1 = Range(1, "", "m", "n1");
  auto r2 = Range(2, "m", std::nullopt, std::nullopt);
  r2.state = RangeHealth::kUnavailable;
  EXPECT_EQ(FormatRanges({r1, r2}),
            "range  bounds     epoch  owner  isr  replicas  state        hwm  lag  keys  bytes  req/s\n"
            "1      [\"\", m)    4      n1     n1   n1,n9     active       -    -    -     -      -\n"
            "2      [m, +inf)  4      -      -    -         unavailable  -    -    -     -      -\n");
  EXPECT_EQ(FormatRanges({}), "(no ranges)\n");
  // A real bound "+inf" never looks like the unbounded end.
  EXPECT_EQ(FormatLocate(Range(3, "a", "+inf", "n1")),
            "range 3 [a, \"+inf\") owner n1 127.0.0.1:7001\n");
  auto down = Range(4, "\x01", std::nullopt, "n2");
  down.owner_address.clear();
  EXPECT_EQ(FormatLocate(down), "range 4 [\"\\x01\", +inf) owner n2 (down)\n");
  EXPECT_EQ(FormatLocate(r2), "range 2 [m, +inf) owner -\n");
}

TEST(ClusterCommandsTest, FormatRangesWithProgress) {
  auto r2 = Range(2, "m", "x", "n2");
  r2.replicas = {"n2"};
  auto r3 = Range(3, "x", std::nullopt, "n3");
  r3.replicas = {"n3", "n4"};
  std::map<uint64_t, RangeProgress> progress;
  progress[1] = RangeProgress{812, {{"n9", 17}}, 40, 5120, 1500};
  progress[2] = RangeProgress{5, {}};  // no replica besides the owner
  EXPECT_EQ(FormatRanges({Range(1, "", "m", "n1"), r2, r3}, progress),
            "range  bounds     epoch  owner  isr  replicas  state   hwm  lag    keys  bytes  req/s\n"
            "1      [\"\", m)    4      n1     n1   n1,n9     active  812  n9:17  40    5120   1500\n"
            "2      [m, x)     4      n2     n2   n2        active  5    -      0     0      0\n"
            "3      [x, +inf)  4      n3     n3   n3,n4     active  -    -      -     -      -\n");
}

// A cluster backend whose map and owner answers are given by the test.
class FakeClusterBackend : public testing::FakeBackend {
 public:
  std::vector<RangeStatus> ranges;
  std::map<uint64_t, RangeProgress> progress;
  int progress_calls = 0;

  Result<std::vector<RangeStatus>> Ranges() override { return ranges; }
  std::map<uint64_t, RangeProgress> Progress(const std::vector<RangeStatus>& asked) override {
    ++progress_calls;
    EXPECT_EQ(asked.size(), ranges.size());
    return progress;
  }
};

TEST(ClusterCommandsTest, RangesAsksForProgressAndPrintsIt) {
  FakeClusterBackend backend;
  backend.ranges = {Range(1, "", std::nullopt, "n1")};
  backend.progress[1] = RangeProgress{3, {{"n9", 0}}};
  Reply r = RunLine("ranges", backend);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.text;
  EXPECT_EQ(backend.progress_calls, 1);
  EXPECT_NE(r.text.find("  3    n9:0  0     0      0\n"), std::string::npos) << r.text;
  // The node-mode default knows no progress, and is never reached there.
  testing::FakeBackend plain;
  EXPECT_TRUE(plain.Progress({Range(1, "", std::nullopt, "n1")}).empty());
}

TEST(ClusterCommandsTest, FormatHistoryInWords) {
  RangeStatus r = Range(9, "m", std::nullopt, "n2");
  EXPECT_EQ(FormatHistory(r), "created with the cluster (no split or move recorded)\n");
  r.history = {
      "split-from:3:6d:1542",          "split:7a:12:1900", "handed:n1>n2:6", "promoted:->n3:7",
      "merged-from:9@2000:12@1950:7a", "something-new:1"};
  EXPECT_EQ(FormatHistory(r),
            "created by a split of range 3 at m (at seq 1542)\n"
            "split at z: the right part became range 12 (at seq 1900)\n"
            "handed over by its owner from n1 to n2 (epoch 6)\n"
            "owner changed by the coordinator from no owner to n3 (epoch 7)\n"
            "created by merging range 9 (at seq 2000) and range 12 (at seq 1950), which met at "
            "z\n"
            "something-new:1\n");
}

TEST(ClusterCommandsTest, FormatStatus) {
  auto r3 = Range(3, "x", std::nullopt, std::nullopt);
  r3.state = RangeHealth::kUnavailable;
  EXPECT_EQ(FormatStatus("local", "127.0.0.1:2181",
                         {{"n1", "a:1", true}, {"n2", "", false}, {"n3", "b:1", true}},
                         {Range(1, "", "m", "n1"), Range(2, "m", "x", "n2"), r3}),
            "cluster: local\n"
            "zookeeper: 127.0.0.1:2181\n"
            "nodes: 2 up, 1 down\n"
            "ranges: 3 total, 2 active, 1 unavailable, 1 without owner\n"
            "owned: n1 1 n2 1 n3 0\n");
  // With the owners' reports: each node's requests a second and share.
  std::map<uint64_t, RangeProgress> progress;
  progress[1].requests_per_sec = 300;
  progress[2].requests_per_sec = 100;
  const std::string with = FormatStatus(
      "local", "127.0.0.1:2181", {{"n1", "a:1", true}, {"n2", "", false}, {"n3", "b:1", true}},
      {Range(1, "", "m", "n1"), Range(2, "m", "x", "n2"), r3}, progress);
  EXPECT_NE(with.find("owned: n1 1 n2 1 n3 0\n"
                      "load: n1 300 req/s (75%) n2 100 req/s (25%) n3 0 req/s (0%)\n"),
            std::string::npos)
      << with;
  // A replica move under way: copying until the owner reports the target's
  // lag, then how far behind it is.
  auto moving = Range(4, "", "m", "n1");
  moving.replicas = {"n1", "n9", "n3"};
  moving.move = RangeStatus::Move{"n9", "n3"};
  EXPECT_NE(FormatStatus("local", "zk", {{"n1", "a:1", true}}, {moving})
                .find("moving: range 4 n9 -> n3 (n3 copying)\n"),
            std::string::npos);
  progress[4] = RangeProgress{900, {{"n9", 0}, {"n3", 120}}, 10, 2048, 5};
  EXPECT_NE(FormatStatus("local", "zk", {{"n1", "a:1", true}}, {moving}, progress)
                .find("moving: range 4 n9 -> n3 (n3 120 records behind, 2048 bytes)\n"),
            std::string::npos);
}

TEST(ClusterCommandsTest, NodeModeBackendRefusesThemNamingZk) {
  testing::FakeBackend backend;
  for (const char* line : {"nodes", "ranges", "locate k", "status"}) {
    Reply r = RunLine(line, backend);
    EXPECT_EQ(r.outcome, Outcome::kFailed) << line;
    EXPECT_EQ(r.text.rfind("(error) BAD_REQUEST '", 0), 0u) << r.text;
    EXPECT_NE(r.text.find("needs --zk"), std::string::npos) << r.text;
  }
}

TEST(ClusterCommandsTest, Options) {
  auto o = ParseOptions({"--zk", "127.0.0.1:2181", "--cluster", "c1", "-c", "status"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->zk, "127.0.0.1:2181");
  EXPECT_EQ(o->cluster, "c1");
  EXPECT_TRUE(o->node.empty());
  auto d = ParseOptions({"--zk=h:1"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cluster, "default");
  EXPECT_FALSE(ParseOptions({"--zk", "h:1", "--node", "h:2"}).ok());
  EXPECT_FALSE(ParseOptions({"--node", "h:2", "--cluster", "x"}).ok());
  EXPECT_FALSE(ParseOptions({}).ok());
}

TEST(ClusterCommandsTest, ZkAuthFileIsAFileAndNeedsZk) {
  auto o = ParseOptions({"--zk", "h:1", "--zk-auth-file", "/run/reader"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->zk_auth_file, "/run/reader");
  auto node = ParseOptions({"--node", "h:2", "--zk-auth-file", "/run/reader"});
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("--zk-auth-file needs --zk"), std::string::npos)
      << node.status().message();
  EXPECT_FALSE(ParseOptions({"--zk", "h:1", "--zk-auth-file="}).ok());
}

}  // namespace
}  // namespace rangekv::repl
