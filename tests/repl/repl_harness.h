// tests/repl/repl_harness.h — processes for the kvrepl integration tests.
//
// StandaloneNode: a real kvnode (--standalone) on a FreePort() of 127.0.0.1
// with its data in a TempDir; Start() polls until the port accepts.
// PipedRepl: a real kvrepl whose stdin and stdout are pipes held by the
// test, so a test can write one command and read exactly its answer; every
// read has a deadline. Both end only their own child, by PID.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/testutil/testutil.h"

namespace rangekv::repl::testing {

using namespace std::chrono_literals;

// True when something accepts TCP connections on 127.0.0.1:port.
bool PortAccepts(int port);

class StandaloneNode {
 public:
  StandaloneNode();
  // Starts (or restarts, same port and data) the node; false if it did not
  // accept connections within the timeout.
  bool Start(std::chrono::milliseconds timeout = 20s);
  void Kill() { process_.Kill(); }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return rangekv::testing::ReadFile(dir_.Sub("kvnode.log")); }

 private:
  rangekv::testing::TempDir dir_;
  int port_;
  rangekv::testing::Process process_;
};

class PipedRepl {
 public:
  // Starts argv (argv[0] is the program) with piped stdin/stdout; stderr
  // goes to stderr_path.
  PipedRepl(const std::vector<std::string>& argv, const std::string& stderr_path);
  ~PipedRepl();
  PipedRepl(const PipedRepl&) = delete;
  PipedRepl& operator=(const PipedRepl&) = delete;

  void Write(const std::string& data);
  // Writes one line (adds '\n') and reads n answer lines.
  std::vector<std::string> Command(const std::string& line, size_t n = 1,
                                   std::chrono::milliseconds timeout = 10s);
  // Reads n '\n'-terminated lines (returned without '\n'); fewer when the
  // deadline passes or stdout closes first.
  std::vector<std::string> ReadLines(size_t n, std::chrono::milliseconds timeout = 10s);
  // True when stdout reaches EOF before the deadline with nothing unread.
  bool ReadEof(std::chrono::milliseconds timeout = 10s);
  void CloseStdin();
  // Exit code, or -1 if it did not exit in time.
  int Wait(std::chrono::milliseconds timeout = 10s);

 private:
  // Appends whatever arrives before the deadline; false on EOF or timeout.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
  std::optional<int> exit_code_;
};

}  // namespace rangekv::repl::testing
