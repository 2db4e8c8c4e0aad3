// repl/options.h — kvrepl's command line (I/O-free).
//
// | flag              | meaning                                                  |
// | ----------------- | -------------------------------------------------------- |
// | --node HOST:PORT  | the node to talk to (this or --zk is required)           |
// | --zk CONNECT      | a cluster through ZooKeeper ("host:port[,...]"); routes  |
// |                   | each request to its range's owner; enables nodes,        |
// |                   | ranges, locate, status                                   |
// | --cluster NAME    | the cluster under /rangekv/ (default "default"; --zk)    |
// | -c "<command>"    | run this command; repeatable; runs in order, then exits  |
// | --command "<cmd>" | same as -c                                               |
// | --timeout-ms N    | per-request deadline in ms (default 5000); the connect   |
// |                   | deadline is min(N, 2000)                                 |
// | -h, --help        | print usage and exit 0                                   |
//
// Long flags also accept the --flag=value form. Anything else (an unknown
// flag, a missing value, a positional argument, a bad number) is an error
// with a one-line message; kvrepl prints it and exits 2.
//
// Exit status of kvrepl:
//   0  every command succeeded, or stdin ended (pipe/TTY mode, see below)
//   1  with -c: at least one command printed an "(error)" line
//   2  bad flags, or the node (or ZooKeeper) could not be reached at start
// In pipe and TTY mode errors are reported inline and the exit status at
// EOF or quit is 0: a driving program reads the "(error)" lines themselves.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "rangekv/cluster_info.h"
#include "rangekv/status.h"

namespace rangekv::repl {

// Process exit statuses (see the table above).
inline constexpr int kExitOk = 0;
inline constexpr int kExitCommandFailed = 1;
inline constexpr int kExitUsageOrConnect = 2;

enum class Action { kRun, kShowHelp };

struct Options {
  Action action = Action::kRun;
  std::string node;                   // HOST:PORT; empty in cluster mode
  std::string zk;                     // ZooKeeper connect string; empty in node mode
  std::string cluster = kDefaultCluster; // with zk
  std::vector<std::string> commands;  // from -c, in order; empty = read stdin
  std::chrono::milliseconds timeout{5000};
  std::string tls_ca, tls_cert, tls_key;  // TLS files: all three or none
  std::string zk_auth_file;               // ZooKeeper credentials; with zk
};

// Parses argv[1..] (without the program name). BAD_REQUEST with a one-line
// message on any error.
Result<Options> ParseOptions(const std::vector<std::string>& args);

// The text printed by --help (several lines, ends in '\n').
std::string UsageText();

}  // namespace rangekv::repl
