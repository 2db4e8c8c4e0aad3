// Unit tests of ZooKeeper credentials and ACLs (common/zk/auth.h): the
// credentials file, ZooKeeper's digest identity, the ACL layout of a
// cluster, the AuthPacket encoding and the mapping of refusals.
#include "common/zk/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "common/zk/errors.h"
#include "common/zk/jute.h"

namespace rangekv::zk {
namespace {

// Reference values: base64(sha1("user:password")), as ZooKeeper's
// DigestAuthenticationProvider.generateDigest computes it (checked with
// Python's hashlib and base64).
TEST(DigestIdTest, IsUserThenBase64OfSha1OfUserColonPassword) {
  EXPECT_EQ(DigestId("super:secret"), "super:lK75jTNcA+U9vtVEw5vB51mj/w4=");
  EXPECT_EQ(DigestId("rangekv-reader:pw"), "rangekv-reader:lGV6KJXyzqznH/t/lz4o3C86axQ=");
  // The password may hold ':'; the user ends at the first one.
  EXPECT_EQ(DigestId("a:b:c").substr(0, 2), "a:");
  EXPECT_NE(DigestId("a:b:c"), DigestId("a:b"));
}

TEST(AuthFileTest, OneLineIsThisProcesssIdentityAndNoReader) {
  auto f = ParseAuthFile("alice:s3cret\n", "/etc/w");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->self.scheme, "digest");
  EXPECT_EQ(f->self.credential, "alice:s3cret");
  EXPECT_EQ(f->self.source, "/etc/w");
  EXPECT_FALSE(f->reader_id.has_value());
}

TEST(AuthFileTest, SecondLineGivesTheReadersDigestId) {
  auto f = ParseAuthFile("# writer\n\nw:pw1\r\n# reader\nsuper:secret", "f");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->self.credential, "w:pw1");
  ASSERT_TRUE(f->reader_id.has_value());
  EXPECT_EQ(*f->reader_id, "super:lK75jTNcA+U9vtVEw5vB51mj/w4=");
}

TEST(AuthFileTest, MalformedFilesAreRefusedNamingTheLineNeverItsText) {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"", "holds no user:password line"},
      {"# only a comment\n\n", "holds no user:password line"},
      {"nopasswordhere\n", "line 1 is not user:password"},
      {":hunter2\n", "line 1 has a user name of 0"},
      {"al ice:hunter2\n", "line 1 has a user name with characters"},
      {"alice:\n", "line 1 has a password of 0"},
      {"alice:hun ter2\n", "line 1 has a password with spaces"},
      {"a:hunter2\nb:hunter2\nc:hunter2\n", "line 3: more than two"},
  };
  for (const Case& c : cases) {
    auto f = ParseAuthFile(c.text, "/run/creds");
    ASSERT_FALSE(f.ok()) << c.text;
    EXPECT_EQ(f.status().code(), Code::kBadRequest);
    EXPECT_NE(f.status().message().find("/run/creds"), std::string::npos) << f.status().message();
    EXPECT_NE(f.status().message().find(c.says), std::string::npos) << f.status().message();
    EXPECT_EQ(f.status().message().find("hunter2"), std::string::npos) << f.status().message();
  }
}

class AuthFileOnDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rangekv-auth-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(AuthFileOnDiskTest, LoadsAndFlagsAFileOthersMayRead) {
  bool loose = true;
  auto tight = LoadAuthFile(Write("tight", "u:p\n", 0600), &loose);
  ASSERT_TRUE(tight.ok()) << tight.status().ToString();
  EXPECT_FALSE(loose);
  auto open = LoadAuthFile(Write("open", "u:p\n", 0644), &loose);
  ASSERT_TRUE(open.ok()) << open.status().ToString();
  EXPECT_TRUE(loose);
}

TEST_F(AuthFileOnDiskTest, AMissingFileOrADirectoryIsRefusedByName) {
  auto missing = LoadAuthFile(dir_ + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir_ + "/nope: No such file"), std::string::npos)
      << missing.status().message();
  auto d = LoadAuthFile(dir_);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("not a regular file"), std::string::npos);
  auto flag = LoadAuthFileFlag("");
  ASSERT_TRUE(flag.ok());
  EXPECT_FALSE(flag->has_value());
}

TEST(AclPolicyTest, TheClusterGetsWriterAllAndReaderReadAndParentsWorldRead) {
  auto f = ParseAuthFile("w:pw\nr:pr\n", "f");
  ASSERT_TRUE(f.ok());
  AclPolicy p = ClusterAcl("/rangekv/c1", *f);
  ASSERT_EQ(p.inside.size(), 2u);
  EXPECT_EQ(p.inside[0].perms, kPermAll);
  EXPECT_EQ(p.inside[0].scheme, "digest");
  EXPECT_EQ(p.inside[0].id, DigestId("w:pw"));
  EXPECT_EQ(p.inside[1].perms, kPermRead);
  EXPECT_EQ(p.inside[1].id, DigestId("r:pr"));
  for (const AclEntry& e : p.inside) EXPECT_NE(e.scheme, "world");
  ASSERT_EQ(p.outside.size(), 2u);
  EXPECT_EQ(p.outside[0].id, DigestId("w:pw"));
  EXPECT_EQ(p.outside[1].scheme, "world");
  EXPECT_EQ(p.outside[1].perms, kPermRead);

  EXPECT_EQ(p.For("/rangekv/c1"), &p.inside);
  EXPECT_EQ(p.For("/rangekv/c1/nodes/n1"), &p.inside);
  EXPECT_EQ(p.For("/rangekv"), &p.outside);
  EXPECT_EQ(p.For("/rangekv/c10"), &p.outside);  // a sibling, not a child
  EXPECT_EQ(AclPolicy{}.For("/rangekv/c1"), nullptr);
}

TEST(AclPolicyTest, AWriterWithoutAReaderLineGrantsNoReader) {
  auto f = ParseAuthFile("w:pw\n", "f");
  ASSERT_TRUE(f.ok());
  AclPolicy p = ClusterAcl("/rangekv/c1", *f);
  ASSERT_EQ(p.inside.size(), 1u);
  EXPECT_EQ(p.inside[0].perms, kPermAll);
}

TEST(AuthPacketTest, EncodesHeaderTypeSchemeAndCredential) {
  std::string frame = jute::EncodeAuth("digest", "u:p");
  // len | xid -4 | type 100 | int 0 | "digest" | "u:p"
  const std::string want = std::string("\x00\x00\x00\x1d", 4) + "\xff\xff\xff\xfc" +
                           std::string("\x00\x00\x00\x64", 4) + std::string("\x00\x00\x00\x00", 4) +
                           std::string("\x00\x00\x00\x06", 4) + "digest" +
                           std::string("\x00\x00\x00\x03", 4) + "u:p";
  EXPECT_EQ(frame, want);
}

TEST(RefusalTest, NoAuthAndAuthFailedAreUnauthenticatedAndSaySo) {
  Status noauth = ZkStatus(jute::kErrNoAuth, "create /rangekv/c1/nodes/n1");
  EXPECT_EQ(noauth.code(), Code::kUnauthenticated);
  EXPECT_EQ(ZkErrorOf(noauth), ZkError::kNoAuth);
  EXPECT_TRUE(IsZkRefusal(noauth));
  EXPECT_NE(
      noauth.message().find("ZooKeeper refused: not authorized to create /rangekv/c1/nodes/n1"),
      std::string::npos)
      << noauth.message();
  EXPECT_NE(noauth.message().find("check --zk-auth-file"), std::string::npos);
  Status failed = ZkStatus(jute::kErrAuthFailed, "credentials of f");
  EXPECT_EQ(failed.code(), Code::kUnauthenticated);
  EXPECT_EQ(ZkErrorOf(failed), ZkError::kAuthFailed);
  EXPECT_TRUE(IsZkRefusal(failed));
  EXPECT_FALSE(IsZkRefusal(ZkStatus(-101, "get /x")));  // ZNONODE
}

}  // namespace
}  // namespace rangekv::zk
