// Runs the real kvrepl on a pseudo-terminal: banner, prompt, a command,
// Tab completion of a command name, history written, Ctrl-D leaves.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "tests/repl/repl_harness.h"
#include "tests/testutil/testutil.h"

namespace rangekv::repl::testing {
namespace {

using rangekv::testing::BuildPath;
using rangekv::testing::ReadFile;
using rangekv::testing::TempDir;
using rangekv::testing::WaitFor;

// kvrepl on the slave side of a pty; the test holds the master.
class PtyRepl {
 public:
  PtyRepl(const std::string& node, const TempDir& home) {
    std::string program = BuildPath("repl/kvrepl");
    std::string history = home.Sub("history");
    pid_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      ::setenv("HOME", home.path().c_str(), 1);
      ::setenv("KVREPL_HISTORY", history.c_str(), 1);
      ::setenv("TERM", "dumb", 1);
      ::execl(program.c_str(), program.c_str(), "--node", node.c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~PtyRepl() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }

  bool started() const { return pid_ > 0 && master_ >= 0; }

  void Type(const std::string& keys) {
    ASSERT_EQ(::write(master_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }

  // Reads until `needle` appears in the output after position `from`;
  // returns its end offset, or npos on timeout.
  size_t Expect(const std::string& needle, size_t from, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      size_t at = out_.find(needle, from);
      if (at != std::string::npos) return at + needle.size();
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::string::npos;
      pollfd pfd{master_, POLLIN, 0};
      int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (r <= 0) continue;
      char buf[1024];
      ssize_t k = ::read(master_, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) return std::string::npos;  // EIO: the child closed the pty
      out_.append(buf, static_cast<size_t>(k));
    }
  }

  int Wait(std::chrono::milliseconds timeout) {
    int st = 0;
    if (!WaitFor([&] { return ::waitpid(pid_, &st, WNOHANG) == pid_; }, timeout, 5ms)) return -1;
    exited_ = true;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

  const std::string& output() const { return out_; }

 private:
  pid_t pid_ = -1;
  int master_ = -1;
  bool exited_ = false;
  std::string out_;
};

TEST(KvreplTtyTest, BannerPromptCommandsHistory) {
  StandaloneNode node;
  ASSERT_TRUE(node.Start()) << node.log();
  TempDir home;
  PtyRepl repl(node.address(), home);
  ASSERT_TRUE(repl.started());

  size_t pos = repl.Expect("kvrepl connected to " + node.address() + "; type help", 0, 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();
  pos = repl.Expect("rangekv> ", pos, 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();

  repl.Type("put ttykey \"a b\"\r");
  pos = repl.Expect("OK", pos, 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();
  pos = repl.Expect("rangekv> ", pos, 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();

  repl.Type("get ttykey\r");
  pos = repl.Expect("\"a b\"", pos + std::string("get ttykey").size(), 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();

  // "pi" + Tab completes to "ping".
  pos = repl.Expect("rangekv> ", pos, 10s);
  repl.Type("pi\t\r");
  pos = repl.Expect("PONG", pos, 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();

  repl.Type("nosuch\r");
  pos = repl.Expect("(error) BAD_REQUEST", pos, 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();
  pos = repl.Expect("rangekv> ", pos, 10s);
  ASSERT_NE(pos, std::string::npos) << repl.output();

  // One Ctrl-D at an empty prompt leaves, even typed right as the prompt
  // appears: libedit switches the terminal to raw mode only after printing
  // the prompt, and a Ctrl-D that arrives before reaches it as a NUL byte,
  // which kvrepl turns back into Ctrl-D (repl/terminal.cc, ReadKey).
  repl.Type("\x04");
  EXPECT_EQ(repl.Wait(10s), 0) << repl.output();

  std::string history = ReadFile(home.Sub("history"));
  EXPECT_NE(history.find("ttykey"), std::string::npos) << history;
  EXPECT_NE(history.find("nosuch"), std::string::npos) << history;
}

TEST(KvreplTtyTest, HistoryIsLoadedAgainAndQuitLeaves) {
  StandaloneNode node;
  ASSERT_TRUE(node.Start()) << node.log();
  TempDir home;
  {
    PtyRepl first(node.address(), home);
    ASSERT_NE(first.Expect("rangekv> ", 0, 10s), std::string::npos) << first.output();
    first.Type("put hist 42\r");
    ASSERT_NE(first.Expect("OK", 0, 10s), std::string::npos) << first.output();
    first.Type("quit\r");
    EXPECT_EQ(first.Wait(10s), 0) << first.output();
  }
  PtyRepl second(node.address(), home);
  size_t pos = second.Expect("rangekv> ", 0, 10s);
  ASSERT_NE(pos, std::string::npos) << second.output();
  // Ctrl-P (previous history line, emacs mode) twice recalls "put hist 42"
  // (the line before "quit") from the file the first shell wrote; running
  // it again proves the history was loaded.
  second.Type("\x10\x10\r");
  pos = second.Expect("OK", pos, 10s);
  ASSERT_NE(pos, std::string::npos) << second.output();
  second.Type("exit\r");
  EXPECT_EQ(second.Wait(10s), 0) << second.output();
}

}  // namespace
}  // namespace rangekv::repl::testing
