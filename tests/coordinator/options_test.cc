// Unit tests of the kvcoord command line (coordinator/coordinator_options.h).
#include <gtest/gtest.h>

#include "coordinator/coordinator_options.h"

namespace rangekv::coordinator {
namespace {

Result<ParsedCoordinatorArgs> Parse(const std::vector<std::string>& args) {
  return ParseCoordinatorArgs(args);
}

std::string Error(const std::vector<std::string>& args) {
  auto r = Parse(args);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kBadRequest);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  return r.status().message();
}

TEST(CoordinatorOptions, DefaultsNeedOnlyZk) {
  auto r = Parse({"--zk", "127.0.0.1:2181"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const CoordinatorOptions& o = r->options;
  EXPECT_EQ(r->action, ParseAction::kRun);
  EXPECT_EQ(o.zk, "127.0.0.1:2181");
  EXPECT_EQ(o.cluster, "default");
  EXPECT_EQ(o.config.rf, 3);
  EXPECT_EQ(o.config.min_insync, 2);
  EXPECT_EQ(o.config.initial_ranges, 1);
  EXPECT_EQ(o.id, "");
  EXPECT_EQ(o.session_timeout, std::chrono::milliseconds(6000));
  EXPECT_EQ(o.reconcile_period, std::chrono::milliseconds(5000));
  EXPECT_EQ(o.replace_after, std::chrono::milliseconds(30000));
  EXPECT_EQ(o.log_level, log::Level::kInfo);
}

TEST(CoordinatorOptions, EveryFlagInBothForms) {
  auto r =
      Parse({"--zk=a:1,b:2/chroot", "--cluster", "c1", "--rf=5", "--min-insync", "3", "--ranges=16",
             "--id", "coord-1", "--session-timeout-ms=2000", "--reconcile-period-ms", "250",
             "--log-level=debug", "--replace-after", "90", "--expect-nodes=4"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const CoordinatorOptions& o = r->options;
  EXPECT_EQ(o.zk, "a:1,b:2/chroot");
  EXPECT_EQ(o.cluster, "c1");
  EXPECT_EQ(o.config.rf, 5);
  EXPECT_EQ(o.config.min_insync, 3);
  EXPECT_EQ(o.config.initial_ranges, 16);
  EXPECT_EQ(o.id, "coord-1");
  EXPECT_EQ(o.session_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(o.reconcile_period, std::chrono::milliseconds(250));
  EXPECT_EQ(o.log_level, log::Level::kDebug);
  EXPECT_EQ(o.replace_after, std::chrono::milliseconds(90000));
  EXPECT_EQ(o.expect_nodes, 4);
}

TEST(CoordinatorOptions, ReplaceAfterTakesUnitsAndZeroMeansNever) {
  auto ms = [](const std::string& v) {
    auto r = ParseCoordinatorArgs({"--zk", "h:1", "--replace-after=" + v});
    EXPECT_TRUE(r.ok()) << v << ": " << r.status().ToString();
    return r.ok() ? r->options.replace_after.count() : -1;
  };
  EXPECT_EQ(ms("0"), 0);
  EXPECT_EQ(ms("45"), 45000);
  EXPECT_EQ(ms("45s"), 45000);
  EXPECT_EQ(ms("1500ms"), 1500);
  EXPECT_EQ(ms("2m"), 120000);
  EXPECT_EQ(ms("1440m"), 86400000);
  for (const char* bad : {"", "-1", "5h", "ms", "1.5s", "1441m", "86400001ms"}) {
    auto r = ParseCoordinatorArgs({"--zk", "h:1", "--replace-after", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("--replace-after"), std::string::npos) << bad;
  }
  EXPECT_NE(CoordinatorUsage().find("--replace-after"), std::string::npos);
}

TEST(CoordinatorOptions, MinInsyncDefaultFollowsASmallRf) {
  auto r = Parse({"--zk", "h:1", "--rf", "1"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->options.config.min_insync, 1);
}

TEST(CoordinatorOptions, ZkAuthFileNamesAFile) {
  auto r = Parse({"--zk", "h:1", "--zk-auth-file", "/run/writer"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->options.zk_auth_file, "/run/writer");
  EXPECT_FALSE(r->options.zk_auth.has_value());  // main() loads it
  EXPECT_NE(Error({"--zk", "h:1", "--zk-auth-file="}).find("--zk-auth-file: expected a file"),
            std::string::npos);
}

TEST(CoordinatorOptions, HelpWinsOverEverythingElse) {
  auto r = Parse({"--rf", "0", "--help"});
  // --rf 0 is checked as it is read, before --help is seen.
  EXPECT_FALSE(r.ok());
  r = Parse({"-h"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->action, ParseAction::kShowHelp);
  EXPECT_NE(CoordinatorUsage().find("--session-timeout-ms"), std::string::npos);
}

TEST(CoordinatorOptions, BadFlagsGiveOneLineNamingTheFlag) {
  EXPECT_EQ(Error({"--zk", "h:1", "--frob", "1"}), "unknown flag --frob");
  EXPECT_EQ(Error({}), "--zk is required");
  EXPECT_EQ(Error({"--zk"}), "--zk: missing value");
  EXPECT_NE(Error({"--zk", "h:99999"}).find("--zk"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--rf", "0"}).find("--rf"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--rf", "3x"}).find("--rf"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--ranges", "257"}).find("--ranges"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--rf", "2", "--min-insync", "3"}).find("--min-insync"),
            std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--cluster", "a/b"}).find("--cluster"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--id", ""}).find("--id"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--session-timeout-ms", "10"}).find("--session-timeout-ms"),
            std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--log-level", "loud"}).find("--log-level"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "stray"}).find("stray"), std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--expect-nodes", "0"}).find("--expect-nodes"),
            std::string::npos);
}

TEST(CoordinatorOptions, InitialSplitsAreSortedKeysWithEscapes) {
  auto r = Parse({"--zk", "h:1", "--initial-splits", "user:5,order\\,x,key:\\x07,a\\\\b"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const cluster::ClusterConfig& c = r->options.config;
  EXPECT_EQ(c.initial_splits,
            (std::vector<std::string>{"a\\b", std::string("key:\x07"), "order,x", "user:5"}));
  EXPECT_EQ(c.initial_ranges, 5);

  EXPECT_NE(Error({"--zk", "h:1", "--initial-splits", "a,,b"}).find("empty key"),
            std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--initial-splits", "b,a,b"}).find("given twice"),
            std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--initial-splits", "a\\q"}).find("bad escape"),
            std::string::npos);
  EXPECT_NE(Error({"--zk", "h:1", "--initial-splits", "a\\x0"}).find("bad escape"),
            std::string::npos);
  EXPECT_EQ(Error({"--zk", "h:1", "--ranges", "4", "--initial-splits", "m"}),
            "--initial-splits: not with --ranges");
  EXPECT_EQ(Error({"--zk", "h:1", "--initial-splits", "m", "--ranges", "4"}),
            "--ranges: not with --initial-splits");
  std::string many;
  for (int i = 0; i < 256; ++i) many += (i ? "," : "") + std::to_string(1000 + i);
  EXPECT_NE(Error({"--zk", "h:1", "--initial-splits", many}).find("at most 255"),
            std::string::npos);
}

TEST(CoordinatorOptions, DefaultIdUsesTheIdAlphabet) {
  std::string id = DefaultCoordinatorId();
  EXPECT_TRUE(cluster::IsValidNodeId(id)) << id;
  EXPECT_NE(id.find('-'), std::string::npos);
}

}  // namespace
}  // namespace rangekv::coordinator
