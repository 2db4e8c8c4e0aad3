#include "tests/repl/repl_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace rangekv::repl::testing {

using rangekv::testing::BuildPath;
using rangekv::testing::FreePort;
using rangekv::testing::Process;
using rangekv::testing::WaitFor;

bool PortAccepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

StandaloneNode::StandaloneNode() : port_(FreePort()) {}

bool StandaloneNode::Start(std::chrono::milliseconds timeout) {
  process_ = Process::Start({BuildPath("kvnode/kvnode"), "--standalone", "--listen", address(),
                             "--data", dir_.Sub("data"), "--log-level", "warn"},
                            dir_.Sub("kvnode.log"));
  return WaitFor([&] { return PortAccepts(port_) || !process_.running(); }, timeout) &&
         process_.running();
}

PipedRepl::PipedRepl(const std::vector<std::string>& argv, const std::string& stderr_path) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    if (err >= 0) ::dup2(err, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  in_fd_ = in[1];
  out_fd_ = out[0];
  ::signal(SIGPIPE, SIG_IGN);  // a child that died must fail the test, not kill it
}

PipedRepl::~PipedRepl() {
  CloseStdin();
  if (out_fd_ >= 0) ::close(out_fd_);
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void PipedRepl::Write(const std::string& data) {
  size_t off = 0;
  while (in_fd_ >= 0 && off < data.size()) {
    ssize_t n = ::write(in_fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

std::vector<std::string> PipedRepl::Command(const std::string& line, size_t n,
                                            std::chrono::milliseconds timeout) {
  Write(line + "\n");
  return ReadLines(n, timeout);
}

bool PipedRepl::Fill(std::chrono::steady_clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_fd_ < 0) return false;
    pollfd pfd{out_fd_, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t k = ::read(out_fd_, buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(k));
    return true;
  }
}

std::vector<std::string> PipedRepl::ReadLines(size_t n, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> lines;
  while (lines.size() < n) {
    size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      lines.push_back(buffer_.substr(0, nl));
      buffer_.erase(0, nl + 1);
      continue;
    }
    if (!Fill(deadline)) break;
  }
  return lines;
}

bool PipedRepl::ReadEof(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Fill(deadline)) {
  }
  if (!buffer_.empty()) return false;
  pollfd pfd{out_fd_, POLLIN, 0};
  char c;
  return ::poll(&pfd, 1, 0) == 1 && ::read(out_fd_, &c, 1) == 0;
}

void PipedRepl::CloseStdin() {
  if (in_fd_ >= 0) ::close(in_fd_);
  in_fd_ = -1;
}

int PipedRepl::Wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return *exit_code_;
  int st = 0;
  bool done = WaitFor([&] { return ::waitpid(pid_, &st, WNOHANG) == pid_; }, timeout, 5ms);
  if (!done) return -1;
  exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return *exit_code_;
}

}  // namespace rangekv::repl::testing
