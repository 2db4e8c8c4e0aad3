#include "kvnode/server/node_options.h"

#include <gtest/gtest.h>

namespace rangekv::kvnode {
namespace {

Result<ParsedArgs> Parse(std::vector<std::string> args) { return ParseNodeArgs(args); }

TEST(NodeOptionsTest, FullStandaloneCommandLine) {
  auto p = Parse({"--standalone", "--listen", "127.0.0.1:7000", "--data", "/d", "--fsync", "always",
                  "--fsync-interval-ms", "25", "--id", "n-1", "--io-threads", "3", "--log-level",
                  "debug"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->action, ParseAction::kRun);
  const NodeOptions& o = p->options;
  EXPECT_EQ(o.mode, NodeMode::kStandalone);
  EXPECT_EQ(o.listen, (HostPort{"127.0.0.1", 7000}));
  EXPECT_EQ(o.data_dir, "/d");
  EXPECT_EQ(o.fsync, FsyncPolicy::kAlways);
  EXPECT_EQ(o.fsync_interval, std::chrono::milliseconds(25));
  ASSERT_TRUE(o.id.has_value());
  EXPECT_EQ(o.id->str(), "n-1");
  EXPECT_EQ(o.io_threads, 3);
  EXPECT_EQ(o.log_level, log::Level::kDebug);
}

TEST(NodeOptionsTest, DefaultsAndEqualsForm) {
  auto p = Parse({"--standalone", "--listen=localhost:0", "--data=rel/dir"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const NodeOptions& o = p->options;
  EXPECT_EQ(o.listen, (HostPort{"localhost", 0}));
  EXPECT_EQ(o.data_dir, "rel/dir");
  EXPECT_FALSE(o.id.has_value());
  EXPECT_EQ(o.fsync, FsyncPolicy::kBatch);
  EXPECT_EQ(o.fsync_interval, std::chrono::milliseconds(10));
  EXPECT_EQ(o.io_threads, 0);
  EXPECT_EQ(o.log_level, log::Level::kInfo);
}

TEST(NodeOptionsTest, TlsFilesGoTogether) {
  auto p = Parse({"--standalone", "--listen=h:1", "--data=d", "--tls-ca=ca.pem",
                  "--tls-cert=node.pem", "--tls-key=node.key"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->options.tls_ca, "ca.pem");
  EXPECT_EQ(p->options.tls_cert, "node.pem");
  EXPECT_EQ(p->options.tls_key, "node.key");
  auto half = Parse({"--standalone", "--listen=h:1", "--data=d", "--tls-ca=ca.pem"});
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("go together"), std::string::npos)
      << half.status().message();
}

TEST(NodeOptionsTest, ZkAuthFileIsForClusterMode) {
  auto p = Parse({"--zk=h:1", "--id=n1", "--listen=h:1", "--data=d", "--zk-auth-file=/run/w"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->options.zk_auth_file, "/run/w");
  auto solo = Parse({"--standalone", "--listen=h:1", "--data=d", "--zk-auth-file=/run/w"});
  ASSERT_FALSE(solo.ok());
  EXPECT_NE(solo.status().message().find("--standalone and --zk-auth-file"), std::string::npos)
      << solo.status().message();
}

TEST(NodeOptionsTest, HelpWinsOverEverything) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"--bogus", "--help"}, {"--standalone", "--listen", "-h"}}) {
    auto p = Parse(args);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->action, ParseAction::kShowHelp);
  }
  EXPECT_NE(NodeUsage().find("--standalone"), std::string::npos);
}

TEST(NodeOptionsTest, ErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  std::vector<Case> cases = {
      {{"--standalone", "--bogus"}, "unknown flag --bogus"},
      {{"--standalone", "stray"}, "unexpected argument stray"},
      {{"--standalone", "--data"}, "--data needs a value"},
      {{"--standalone", "--listen", "h:1", "--data", "d", "--fsync", "sometimes"}, "--fsync"},
      {{"--standalone", "--listen", "h:70000", "--data", "d"}, "port"},
      {{"--standalone", "--listen", "nocolon", "--data", "d"}, "HOST:PORT"},
      {{"--standalone", "--listen", "::1:80", "--data", "d"}, "bracket"},
      {{"--standalone", "--listen", "h:1", "--data", "d", "--io-threads", "0"}, "--io-threads"},
      {{"--standalone", "--listen", "h:1", "--data", "d", "--id", "a/b"}, "--id"},
      {{"--standalone", "--listen", "h:1", "--data", "d", "--log-level", "loud"}, "--log-level"},
      {{"--standalone", "--data", "d"}, "missing --listen"},
      {{"--standalone", "--listen", "h:1"}, "missing --data"},
      {{"--standalone", "--zk", "z:2181", "--listen", "h:1", "--data", "d"}, "--zk"},
  };
  for (const auto& c : cases) {
    auto p = Parse(c.args);
    ASSERT_FALSE(p.ok()) << c.want;
    EXPECT_EQ(p.status().code(), Code::kBadRequest);
    EXPECT_NE(p.status().message().find(c.want), std::string::npos) << p.status().message();
    EXPECT_EQ(p.status().message().find('\n'), std::string::npos);
  }
}

TEST(NodeOptionsTest, FullClusterCommandLine) {
  auto p = Parse({"--id", "n1", "--listen", "0.0.0.0:7001", "--zk", "z1:2181,z2:2182/chroot",
                  "--data", "/d", "--cluster", "prod-1", "--admin", "127.0.0.1:9101",
                  "--session-timeout-ms", "4000", "--fsync", "never"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const NodeOptions& o = p->options;
  EXPECT_EQ(o.mode, NodeMode::kCluster);
  EXPECT_EQ(o.zk, "z1:2181,z2:2182/chroot");
  EXPECT_EQ(o.cluster, "prod-1");
  ASSERT_TRUE(o.admin.has_value());
  EXPECT_EQ(*o.admin, (HostPort{"127.0.0.1", 9101}));
  EXPECT_EQ(o.session_timeout, std::chrono::milliseconds(4000));
  EXPECT_EQ(o.listen, (HostPort{"0.0.0.0", 7001}));
  ASSERT_TRUE(o.id.has_value());
  EXPECT_EQ(o.id->str(), "n1");
  EXPECT_EQ(o.fsync, FsyncPolicy::kNever);
}

TEST(NodeOptionsTest, ClusterDefaults) {
  auto p = Parse({"--id", "n1", "--listen", "h:1", "--zk", "z:2181", "--data", "d"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->options.mode, NodeMode::kCluster);
  EXPECT_EQ(p->options.cluster, "default");
  EXPECT_EQ(p->options.session_timeout, std::chrono::milliseconds(6000));
  EXPECT_FALSE(p->options.admin.has_value());
}

TEST(NodeOptionsTest, ClusterModeErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<std::string> base = {"--listen", "h:1", "--data", "d"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), base.begin(), base.end());
    return extra;
  };
  std::vector<Case> cases = {
      {with({}), "missing --zk"},
      {with({"--zk", "z:2181"}), "missing --id"},
      {with({"--id", "n1", "--zk", ""}), "--zk"},
      {with({"--id", "n1", "--zk", "z:99999"}), "--zk"},
      {with({"--id", "n1", "--zk", "z:2181/bad/"}), "--zk"},
      {with({"--id", "n1", "--zk", "z:1", "--cluster", "a/b"}), "--cluster"},
      {with({"--id", "n1", "--zk", "z:1", "--session-timeout-ms", "10"}), "--session-timeout-ms"},
      {with({"--id", "n1", "--zk", "z:1", "--admin", "nocolon"}), "--admin"},
      {with({"--standalone", "--cluster", "c"}), "--standalone and --cluster"},
      {with({"--standalone", "--session-timeout-ms", "5000"}),
       "--standalone and --session-timeout-ms"},
      {{"--id", "n1", "--zk", "z:1", "--data", "d"}, "missing --listen"},
      {with({"--id", "n1", "--zk", "z:1", "--advertise", "kv1"}), "--advertise"},
      {with({"--id", "n1", "--zk", "z:1", "--advertise", "kv1:0"}), "not 0"},
      {with({"--id", "n1", "--zk", "z:1", "--advertise", "0.0.0.0:7000"}), "wildcard"},
      {with({"--id", "n1", "--zk", "z:1", "--advertise", "[::]:7000"}), "wildcard"},
      {with({"--id", "n1", "--zk", "z:1", "--advertise-admin", "kv1:9000"}), "needs --admin"},
      {with({"--standalone", "--advertise", "kv1:7000"}), "--standalone and --advertise"},
  };
  for (const auto& c : cases) {
    auto p = Parse(c.args);
    ASSERT_FALSE(p.ok()) << c.want;
    EXPECT_EQ(p.status().code(), Code::kBadRequest);
    EXPECT_NE(p.status().message().find(c.want), std::string::npos) << p.status().message();
  }
  // --admin is fine in standalone mode too.
  auto standalone = Parse(with({"--standalone", "--admin", "[::1]:0"}));
  ASSERT_TRUE(standalone.ok()) << standalone.status().ToString();
  EXPECT_EQ(*standalone->options.admin, (HostPort{"::1", 0}));
}

TEST(NodeOptionsTest, AdvertisedAddresses) {
  auto p = Parse({"--id", "n1", "--zk", "z:1", "--data", "d", "--listen", "0.0.0.0:7000", "--admin",
                  "[::]:9000", "--advertise", "kv1.example:17000", "--advertise-admin",
                  "[2001:db8::1]:19000"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p->options.advertise, (HostPort{"kv1.example", 17000}));
  EXPECT_EQ(*p->options.advertise_admin, (HostPort{"2001:db8::1", 19000}));
  auto plain = Parse({"--id", "n1", "--zk", "z:1", "--data", "d", "--listen", "h:1"});
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->options.advertise.has_value());
  EXPECT_FALSE(plain->options.advertise_admin.has_value());
}

TEST(NodeOptionsTest, HostPortForms) {
  EXPECT_EQ(*ParseHostPort("[::1]:7000"), (HostPort{"::1", 7000}));
  EXPECT_EQ(FormatHostPort(HostPort{"::1", 7000}), "[::1]:7000");
  EXPECT_EQ(FormatHostPort(HostPort{"10.0.0.1", 1}), "10.0.0.1:1");
  EXPECT_FALSE(ParseHostPort(":80").ok());
  EXPECT_FALSE(ParseHostPort("h:").ok());
  EXPECT_FALSE(ParseHostPort("[::1:80").ok());
  EXPECT_FALSE(ParseHostPort("h:-1").ok());
}

TEST(NodeOptionsTest, NodeIdCharacters) {
  EXPECT_TRUE(IsValidNodeId("node-1.a_b"));
  EXPECT_TRUE(IsValidNodeId(std::string(64, 'x')));
  EXPECT_FALSE(IsValidNodeId(std::string(65, 'x')));
  EXPECT_FALSE(IsValidNodeId(""));
  EXPECT_FALSE(IsValidNodeId(".."));
  EXPECT_FALSE(IsValidNodeId("a b"));
}

TEST(NodeOptionsTest, ReplicationFlags) {
  auto p = Parse({"--id",
                  "n4",
                  "--zk",
                  "127.0.0.1:2181",
                  "--listen",
                  "127.0.0.1:0",
                  "--data",
                  "/d",
                  "--replace",
                  "n3",
                  "--lease-ms",
                  "800",
                  "--isr-lag-ms",
                  "1200",
                  "--segment-bytes",
                  "65536",
                  "--snapshot-after-bytes",
                  "262144",
                  "--keep-log-records",
                  "100",
                  "--move-rate",
                  "20"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->options.move_rate_bytes, uint64_t{20} << 20);
  EXPECT_EQ(p->options.replaces, NodeId("n3"));
  EXPECT_EQ(p->options.lease, std::chrono::milliseconds(800));
  EXPECT_EQ(p->options.isr_lag, std::chrono::milliseconds(1200));
  EXPECT_EQ(p->options.segment_bytes, 65536u);
  EXPECT_EQ(p->options.snapshot_after_bytes, 262144u);
  EXPECT_EQ(p->options.keep_log_records, 100u);
  auto self = Parse({"--id", "n4", "--zk", "h:1", "--listen", "h:0", "--data", "/d", "--replace",
                     "n4"});
  EXPECT_EQ(self.status().code(), Code::kBadRequest);
  auto bad = Parse({"--id", "n4", "--zk", "h:1", "--listen", "h:0", "--data", "/d", "--replace",
                    "no/slash"});
  EXPECT_EQ(bad.status().code(), Code::kBadRequest);
  auto standalone = Parse({"--standalone", "--listen", "h:0", "--data", "/d", "--replace", "n3"});
  EXPECT_EQ(standalone.status().code(), Code::kBadRequest);
  auto zero =
      Parse({"--id", "n4", "--zk", "h:1", "--listen", "h:0", "--data", "/d", "--move-rate", "0"});
  EXPECT_EQ(zero.status().code(), Code::kBadRequest);
  EXPECT_NE(zero.status().message().find("--move-rate"), std::string::npos);
}

}  // namespace
}  // namespace rangekv::kvnode
