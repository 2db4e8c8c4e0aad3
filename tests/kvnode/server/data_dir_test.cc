#include "kvnode/server/data_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kvnode/server/node.h"
#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using testing::ReadFile;
using testing::TempDir;

const NodeId kDefault("standalone");

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

TEST(DataDirTest, NewDirGetsDefaultIdWithParents) {
  TempDir tmp;
  std::string dir = tmp.Sub("a/b/data");
  auto d = DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->node_id().str(), "standalone");
  EXPECT_EQ((*d)->incarnation().size(), 2 * kIncarnationBytes);
  EXPECT_EQ(ReadFile(dir + "/NODE"),
            "rangekv-node 1\nid standalone\nincarnation " + (*d)->incarnation() + "\n");
  EXPECT_EQ((*d)->RangeDir(RangeId(7)), dir + "/ranges/7");
}

TEST(DataDirTest, ExistingIdIsAdoptedOrEnforced) {
  TempDir tmp;
  std::string dir = tmp.Sub("data");
  ASSERT_TRUE(DataDir::Open(DefaultEnv(), dir, NodeId("n1"), kDefault).ok());
  auto adopted = DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault);
  ASSERT_TRUE(adopted.ok());
  EXPECT_EQ((*adopted)->node_id().str(), "n1");
  adopted->reset();
  auto same = DataDir::Open(DefaultEnv(), dir, NodeId("n1"), kDefault);
  EXPECT_TRUE(same.ok());
  same->reset();
  auto other = DataDir::Open(DefaultEnv(), dir, NodeId("n2"), kDefault);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kBadRequest);
  EXPECT_NE(other.status().message().find("'n1'"), std::string::npos);
  EXPECT_NE(other.status().message().find("'n2'"), std::string::npos);
}

TEST(DataDirTest, SecondOpenIsRefusedUntilTheFirstCloses) {
  TempDir tmp;
  std::string dir = tmp.Sub("data");
  auto first = DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault);
  ASSERT_TRUE(first.ok());
  auto second = DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find("in use by another kvnode (pid " +
                                           std::to_string(::getpid()) + ")"),
            std::string::npos)
      << second.status().message();
  first->reset();
  EXPECT_TRUE(DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault).ok());
}

TEST(DataDirTest, UnusablePathsAreIoErrors) {
  TempDir tmp;
  WriteText(tmp.Sub("file"), "x");
  for (std::string dir : {tmp.Sub("file"), tmp.Sub("file/data"), std::string("/proc/rangekv/x")}) {
    auto d = DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault);
    ASSERT_FALSE(d.ok()) << dir;
    EXPECT_EQ(d.status().code(), Code::kIoError) << d.status().ToString();
    EXPECT_NE(d.status().message().find(dir), std::string::npos) << d.status().message();
  }
}

TEST(DataDirTest, DamagedIdentityIsCorruption) {
  TempDir tmp;
  std::string dir = tmp.Sub("data");
  ASSERT_TRUE(DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault).ok());
  WriteText(dir + "/NODE", "rangekv-node 2\nid x\n");
  auto d = DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kCorruption);
  EXPECT_NE(d.status().message().find("version '2'"), std::string::npos);
}

TEST(DataDirTest, NodeFileParser) {
  auto ok = DataDir::ParseNodeFile(DataDir::FormatNodeFile(NodeId("a.b-c_1")));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->id.str(), "a.b-c_1");
  EXPECT_EQ(ok->incarnation, "");
  auto with = DataDir::ParseNodeFile(DataDir::FormatNodeFile(NodeId("n1"), "00ff"));
  ASSERT_TRUE(with.ok());
  EXPECT_EQ(*with, (NodeIdentity{NodeId("n1"), "00ff"}));
  // Lines after the known ones are reserved and ignored.
  auto later = DataDir::ParseNodeFile("rangekv-node 1\nid n1\nincarnation ab\nfuture x\n");
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->incarnation, "ab");
  for (std::string bad : std::vector<std::string>{
           "", "rangekv-node 1", "rangekv-node 1\n", "other 1\nid a\n", "rangekv-node 1\nname a\n",
        "rangekv-node 1\nid a b\n", "rangekv-node 1\nid a", "rangekv-node 1\nid a\nincarnation \n",
        "rangekv-node 1\nid a\nincarnation XY\n", "rangekv-node 1\nid a\nincarnation ab",
        "rangekv-node 1\nid a\nincarnation " + std::string(65, 'a') + "\n"}) {
    auto r = DataDir::ParseNodeFile(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kCorruption);
  }
}

TEST(DataDirTest, IncarnationIsKeptAcrossOpens) {
  TempDir tmp;
  std::string dir = tmp.Sub("data");
  std::string first;
  {
    auto d = DataDir::Open(DefaultEnv(), dir, NodeId("n1"), kDefault);
    ASSERT_TRUE(d.ok());
    first = (*d)->incarnation();
  }
  auto again = DataDir::Open(DefaultEnv(), dir, NodeId("n1"), kDefault);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->incarnation(), first);
  // Another directory gets another incarnation.
  auto other = DataDir::Open(DefaultEnv(), tmp.Sub("other"), NodeId("n1"), kDefault);
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->incarnation(), first);
}

TEST(DataDirTest, OldIdentityFileWithoutIncarnationLoadsAndIsUpgraded) {
  TempDir tmp;
  std::string dir = tmp.Sub("data");
  std::filesystem::create_directories(dir);
  WriteText(dir + "/NODE", "rangekv-node 1\nid n7\n");  // as written before incarnations
  std::string given;
  {
    auto d = DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ((*d)->node_id().str(), "n7");
    given = (*d)->incarnation();
    ASSERT_FALSE(given.empty());
  }
  EXPECT_EQ(ReadFile(dir + "/NODE"), "rangekv-node 1\nid n7\nincarnation " + given + "\n");
  auto again = DataDir::Open(DefaultEnv(), dir, NodeId("n7"), kDefault);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->incarnation(), given);
}

TEST(NodeTest, StandaloneRoutesEveryKeyToOneRange) {
  TempDir tmp;
  auto node = Node::OpenStandalone(NodeConfig{tmp.Sub("data"), std::nullopt});
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_EQ((*node)->id().str(), "standalone");
  EXPECT_EQ((*node)->range_count(), 1u);
  for (std::string key : {std::string(), std::string("a"), std::string(4096, '\xff')}) {
    Route r = (*node)->RouteKey(RangeId(0), Epoch(0), key);
    ASSERT_TRUE(r.ok()) << r.error.ToString();
    EXPECT_EQ(r.store->id(), kStandaloneRange);
  }
  EXPECT_TRUE((*node)->RouteKey(kStandaloneRange, Epoch(0), "k").ok());
  Route wrong = (*node)->RouteKey(RangeId(9), Epoch(0), "k");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error.code(), Code::kNotOwner);
  Route batch = (*node)->RouteBatch(
      RangeId(0), Epoch(0), {proto::WriteOp::Put("a", "1"), proto::WriteOp::Delete("z")});
  EXPECT_TRUE(batch.ok());
  // Apply is for cluster nodes; a standalone node keeps its one range.
  cluster::ClusterMap empty;
  EXPECT_EQ((*node)->Apply(empty).served, 1u);
  EXPECT_EQ((*node)->range_count(), 1u);
  EXPECT_TRUE((*node)->Close().ok());
  EXPECT_TRUE((*node)->Close().ok());  // idempotent
}

TEST(NodeTest, OpenFailsCleanlyWhenTheRangeDirIsBlocked) {
  TempDir tmp;
  std::string dir = tmp.Sub("data");
  ASSERT_TRUE(DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault).ok());
  std::filesystem::create_directories(dir + "/ranges");
  WriteText(dir + "/ranges/1", "not a directory");
  auto node = Node::OpenStandalone(NodeConfig{dir, std::nullopt});
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("range 1"), std::string::npos) << node.status().ToString();
  // The failed open released the lock.
  EXPECT_TRUE(DataDir::Open(DefaultEnv(), dir, std::nullopt, kDefault).ok());
}

}  // namespace
}  // namespace rangekv::kvnode
