#include "tests/testutil/testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace rangekv::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/rangekv-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  // A test may have made parts read-only; restore write permission first.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
  }
  std::filesystem::remove_all(path_, ec);
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
             std::chrono::milliseconds every) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

std::string BuildPath(const std::string& relative) {
  const char* dir = std::getenv("RANGEKV_BUILD_DIR");
  return std::string(dir && *dir ? dir : ".") + "/" + relative;
}

std::string SourcePath(const std::string& relative) {
  const char* dir = std::getenv("RANGEKV_SOURCE_DIR");
  return std::string(dir && *dir ? dir : ".") + "/" + relative;
}

namespace {
std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}
}  // namespace

Process Process::Start(const std::vector<std::string>& argv, const std::string& log_path,
                       bool stdin_pipe) {
  int in_pipe[2] = {-1, -1};
  if (stdin_pipe && ::pipe2(in_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  auto args = Argv(argv);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
    }
    if (stdin_pipe) {
      ::dup2(in_pipe[0], STDIN_FILENO);
    } else {
      int devnull = ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, STDIN_FILENO);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  Process p;
  p.pid_ = pid;
  if (stdin_pipe) {
    ::close(in_pipe[0]);
    p.stdin_fd_ = in_pipe[1];
  }
  return p;
}

Process::Process(Process&& o) noexcept { *this = std::move(o); }

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) Kill();
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    pid_ = o.pid_;
    stdin_fd_ = o.stdin_fd_;
    status_ = o.status_;
    o.pid_ = -1;
    o.stdin_fd_ = -1;
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0) Kill();
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    pid_ = -1;
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

void Process::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  status_ = st;
  pid_ = -1;
}

namespace {
int ExitCode(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}
}  // namespace

int Process::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return status_ >= 0 ? ExitCode(status_) : -1;
  bool done = WaitFor([&] { return !running(); }, timeout, std::chrono::milliseconds(5));
  if (!done) return -1;
  return ExitCode(status_);
}

int Process::Stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return status_ >= 0 ? ExitCode(status_) : -1;
  ::kill(pid_, SIGTERM);
  int code = Wait(timeout);
  if (code == -1) {
    Kill();
    return -1;
  }
  return code;
}

bool Process::WaitStopped(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return false;
  const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
  return WaitFor(
      [&] {
        std::error_code ec;
        bool any = false;
        for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
          std::string stat = ReadFile(t.path().string() + "/stat");
          // The state is the field after the parenthesised command name.
          size_t paren = stat.rfind(')');
          if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
          char state = stat[paren + 2];
          if (state != 'T' && state != 't') return false;
          any = true;
        }
        return any && !ec;
      },
      timeout, std::chrono::milliseconds(2));
}

void Process::WriteStdin(const std::string& data) {
  size_t off = 0;
  while (stdin_fd_ >= 0 && off < data.size()) {
    ssize_t n = ::write(stdin_fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

void Process::CloseStdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

RunResult Run(const std::vector<std::string>& argv, const std::string& stdin_data,
              std::chrono::milliseconds timeout) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  auto args = Argv(argv);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  // Feed stdin from a thread so a child that writes before reading cannot
  // deadlock against us.
  std::thread feeder([fd = in[1], stdin_data] {
    size_t off = 0;
    ::signal(SIGPIPE, SIG_IGN);
    while (off < stdin_data.size()) {
      ssize_t n = ::write(fd, stdin_data.data() + off, stdin_data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
  });
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t k = ::read(fds[i].fd, buf, sizeof buf);
      if (k <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(k));
      }
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  feeder.join();
  r.exit_code = timed_out ? -1 : ExitCode(st);
  return r;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string OpensslUnavailable() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    if (::access((dir + "/openssl").c_str(), X_OK) == 0) return "";
  }
  return "the openssl command (needed by scripts/make-test-certs) is not on PATH";
}

std::string MakeTestCerts(const std::string& dir) {
  if (std::string why = OpensslUnavailable(); !why.empty()) return why;
  RunResult r = Run({SourcePath("scripts/make-test-certs"), dir}, "", std::chrono::seconds(60));
  if (r.exit_code == 0) return "";
  return "scripts/make-test-certs " + dir + " exited " + std::to_string(r.exit_code) + ": " +
         r.out + r.err;
}

}  // namespace rangekv::testing
