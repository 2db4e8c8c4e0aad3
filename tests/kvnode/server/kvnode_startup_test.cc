// kvnode's answers to bad start-up input: exit code 2 and one line on stderr.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "kvnode/server/data_dir.h"
#include "tests/testutil/testutil.h"

namespace rangekv::testing {
namespace {

RunResult Kvnode(std::vector<std::string> args) {
  args.insert(args.begin(), BuildPath("kvnode/kvnode"));
  return Run(args, "", std::chrono::seconds(20));
}

std::string Listen() { return "127.0.0.1:" + std::to_string(FreePort()); }

// Exit 2 and exactly one line on stderr that is not an info log line (the
// store may log its recovery before failing), containing `want`.
void ExpectOneLineError(const RunResult& r, const std::string& want) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  static const std::regex kInfo("^[0-9T:.-]+Z I kvnode: .*");
  std::vector<std::string> errors;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    if (!std::regex_match(line, kInfo)) errors.push_back(line);
  }
  ASSERT_EQ(errors.size(), 1u) << r.err;
  EXPECT_NE(errors[0].find(want), std::string::npos) << r.err;
}

// Waits for "serving on" in a started kvnode's log.
bool Serving(const std::string& log) {
  return WaitFor([&] { return ReadFile(log).find("serving on") != std::string::npos; },
                 std::chrono::seconds(20));
}

TEST(KvnodeStartupTest, HelpExitsZero) {
  RunResult r = Kvnode({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("usage: kvnode"), std::string::npos) << r.out;
}

TEST(KvnodeStartupTest, UnknownFlagAndMissingValue) {
  ExpectOneLineError(Kvnode({"--standalone", "--bogus"}), "unknown flag --bogus");
  ExpectOneLineError(Kvnode({"--standalone", "--listen"}), "--listen needs a value");
  ExpectOneLineError(Kvnode({"--standalone", "--listen", Listen()}), "missing --data");
}

TEST(KvnodeStartupTest, ClusterModeNeedsZkAndId) {
  TempDir tmp;
  ExpectOneLineError(Kvnode({"--listen", Listen(), "--data", tmp.Sub("d")}), "missing --zk");
  ExpectOneLineError(Kvnode({"--zk", "127.0.0.1:1", "--listen", Listen(), "--data", tmp.Sub("d")}),
                     "missing --id");
  ExpectOneLineError(Kvnode({"--id", "n1", "--zk", "127.0.0.1:1/bad/", "--listen", Listen(),
                             "--data", tmp.Sub("d")}),
                     "--zk");
}

TEST(KvnodeStartupTest, AdminAddressInUse) {
  TempDir tmp;
  int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string admin = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  ExpectOneLineError(Kvnode({"--standalone", "--listen", Listen(), "--data", tmp.Sub("d"),
                             "--admin", admin}),
                     "cannot serve metrics on " + admin);
  ::close(taken);
}

TEST(KvnodeStartupTest, DataDirOfAnotherNode) {
  TempDir tmp;
  std::string dir = tmp.Sub("d");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/NODE") << kvnode::DataDir::FormatNodeFile(NodeId("other"));
  ExpectOneLineError(Kvnode({"--standalone", "--listen", Listen(), "--data", dir, "--id", "me"}),
                     "belongs to node 'other'");
}

TEST(KvnodeStartupTest, UnusableDataDir) {
  TempDir tmp;
  std::ofstream(tmp.Sub("file")) << "x";
  ExpectOneLineError(Kvnode({"--standalone", "--listen", Listen(), "--data", tmp.Sub("file/d")}),
                     "cannot create data dir");
  ExpectOneLineError(Kvnode({"--standalone", "--listen", Listen(), "--data", "/proc/rangekv/d"}),
                     "cannot create data dir");
}

TEST(KvnodeStartupTest, BlockedRangeDirIsAStoreError) {
  TempDir tmp;
  std::string dir = tmp.Sub("d");
  std::filesystem::create_directories(dir + "/ranges");
  std::ofstream(dir + "/ranges/1") << "not a directory";
  ExpectOneLineError(Kvnode({"--standalone", "--listen", Listen(), "--data", dir}), "range 1");
}

TEST(KvnodeStartupTest, PortInUse) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  TempDir tmp;
  ExpectOneLineError(Kvnode({"--standalone", "--listen", taken, "--data", tmp.Sub("d")}),
                     "cannot listen on " + taken);
  ::close(fd);
}

TEST(KvnodeStartupTest, UnresolvableHost) {
  TempDir tmp;
  ExpectOneLineError(
      Kvnode({"--standalone", "--listen", "no-such-host.invalid:7000", "--data", tmp.Sub("d")}),
      "cannot resolve host 'no-such-host.invalid'");
}

TEST(KvnodeStartupTest, SecondKvnodeOnTheSameDataDir) {
  TempDir tmp;
  std::string dir = tmp.Sub("d");
  std::string log = tmp.Sub("first.log");
  Process first = Process::Start(
      {BuildPath("kvnode/kvnode"), "--standalone", "--listen", Listen(), "--data", dir}, log);
  ASSERT_TRUE(Serving(log)) << ReadFile(log);
  ExpectOneLineError(Kvnode({"--standalone", "--listen", Listen(), "--data", dir}),
                     "is in use by another kvnode (pid " + std::to_string(first.pid()) + ")");
  EXPECT_EQ(first.Stop(), 0);
  // Once the first is gone the directory is free again, and its id is kept.
  std::string log2 = tmp.Sub("second.log");
  Process second = Process::Start(
      {BuildPath("kvnode/kvnode"), "--standalone", "--listen", Listen(), "--data", dir}, log2);
  ASSERT_TRUE(Serving(log2)) << ReadFile(log2);
  EXPECT_NE(ReadFile(log2).find("node standalone"), std::string::npos);
  EXPECT_EQ(second.Stop(), 0);
}

}  // namespace
}  // namespace rangekv::testing
