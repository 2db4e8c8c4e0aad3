#include "tests/testutil/zk_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

namespace rangekv::testing {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on fd until the deadline; true when ready.
bool WaitFd(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

}  // namespace

std::string ZkFourLetter(int port, const std::string& command, std::chrono::milliseconds timeout) {
  return ZkFourLetter("127.0.0.1", port, command, timeout);
}

std::string ZkFourLetter(const std::string& host, int port, const std::string& command,
                         std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return "";
  }
  std::string out;
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  bool connected = rc == 0 || (errno == EINPROGRESS && WaitFd(fd, POLLOUT, deadline));
  int err = 0;
  socklen_t len = sizeof err;
  if (connected && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0 &&
      ::send(fd, command.data(), command.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(command.size())) {
    char buf[4096];
    while (WaitFd(fd, POLLIN, deadline)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

ZkServer::ZkServer(int tick_ms)
    : data_dir_(dir_.Sub("data")), port_(FreePort()), tick_ms_(tick_ms) {
  std::filesystem::create_directories(data_dir_);
  WriteConfig();
}

ZkServer::~ZkServer() { Stop(); }

void ZkServer::WriteConfig() const {
  std::ofstream cfg(dir_.Sub("zoo.cfg"));
  cfg << "tickTime=" << tick_ms_ << "\n"
      << "dataDir=" << data_dir_ << "\n"
      << "clientPort=" << port_ << "\n"
      << "clientPortAddress=127.0.0.1\n"
      << "minSessionTimeout=" << 2 * tick_ms_ << "\n"
      << "maxSessionTimeout=" << 40 * tick_ms_ << "\n"
      << "maxClientCnxns=0\n"
      << "admin.enableServer=false\n"
      << "4lw.commands.whitelist=ruok,srvr,stat,mntr,cons,wchs,wchc,wchp\n";
}

bool ZkServer::Start(std::chrono::milliseconds timeout) {
  if (running()) return true;
  process_ =
      Process::Start({"/usr/bin/java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                      "-Dzookeeper.jmx.log4j.disable=true", "-cp",
                      "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
                      "org.apache.zookeeper.server.ZooKeeperServerMain", dir_.Sub("zoo.cfg")},
                     dir_.Sub("zk.log"));
  bool ready =
      WaitFor([&] { return !running() || Ruok(); }, timeout, std::chrono::milliseconds(25));
  if (ready && running()) return true;
  Stop();
  return false;
}

void ZkServer::Stop() {
  if (process_.pid() > 0) process_.Stop(std::chrono::milliseconds(5000));
}

bool ZkServer::Restart(std::chrono::milliseconds timeout) {
  Stop();
  return Start(timeout);
}

bool ZkServer::running() { return process_.running(); }

bool ZkServer::Ruok() const { return ZkFourLetter(port_, "ruok") == "imok"; }

std::string ZkServer::connect_string() const { return "127.0.0.1:" + std::to_string(port_); }

std::string ZkServer::log() const { return ReadFile(dir_.Sub("zk.log")); }

}  // namespace rangekv::testing
