// tests/testutil/testutil.h — helpers shared by all tests.
//
// TempDir: a fresh directory under $TMPDIR removed at destruction.
// FreePort: a loopback TCP port that was free a moment ago (bind to 0).
// WaitFor: polls a condition until a deadline — tests never sleep to sync.
// Process: a child started with fork/exec, ended only by its own PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace rangekv::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that the kernel handed out and that was released
// again; good enough for a child to bind right after.
int FreePort();

// Polls cond every `every` until it returns true or timeout passes.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
             std::chrono::milliseconds every = std::chrono::milliseconds(10));

// Path of a built program (from $RANGEKV_BUILD_DIR, set by CTest), e.g.
// BuildPath("kvnode/kvnode").
std::string BuildPath(const std::string& relative);
std::string SourcePath(const std::string& relative);

class Process {
 public:
  Process() = default;
  // Starts argv[0] with argv; stdout and stderr go to log_path (appended).
  // stdin is /dev/null unless stdin_pipe is true (then WriteStdin works).
  static Process Start(const std::vector<std::string>& argv, const std::string& log_path,
                       bool stdin_pipe = false);
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  ~Process();  // SIGKILLs and reaps a child still running

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // SIGKILL and reap.
  void Kill();
  // SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status
  // (as from waitpid), or -1.
  int Stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // Waits for exit up to timeout; returns the exit code (0..255), 128+signal,
  // or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  // After Signal(SIGSTOP): waits until every thread of the process is
  // stopped (kill() returns before the kernel has stopped them all).
  bool WaitStopped(std::chrono::milliseconds timeout);
  void WriteStdin(const std::string& data);
  void CloseStdin();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int status_ = -1;
};

// Runs a command to completion with the given stdin, capturing stdout
// (stderr goes to the test's stderr). Returns exit code and output.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult Run(const std::vector<std::string>& argv, const std::string& stdin_data = "",
              std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

std::string ReadFile(const std::string& path);

// TLS test PKI. OpensslUnavailable: why scripts/make-test-certs cannot run
// here ("" when the openssl command it needs is on PATH). MakeTestCerts:
// runs it for dir (ca.crt, node.crt/key, client.crt/key, ...: see the
// script); "" when done, else what went wrong.
std::string OpensslUnavailable();
std::string MakeTestCerts(const std::string& dir);

}  // namespace rangekv::testing
