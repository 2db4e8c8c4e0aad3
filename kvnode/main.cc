// kvnode — the rangekv storage node. Flags: kvnode/node_options.h.
//
// Exit codes: 0 after SIGTERM/SIGINT with stores closed cleanly; 1 when
// closing the stores failed; 2 for bad flags or a data directory, store or
// address that cannot be used. Every error is one line on stderr.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"
#include "kvnode/node.h"
#include "kvnode/node_options.h"
#include "kvnode/request_handler.h"
#include "kvnode/server.h"

namespace rangekv::kvnode {
namespace {

constexpr int kExitStopped = 0;
constexpr int kExitCloseFailed = 1;
constexpr int kExitBadStart = 2;

// Blocks SIGTERM and SIGINT in this thread and every thread started later
// (they inherit the mask), so only the sigwait in Serve() receives them.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // Peers that vanish must not kill the process; Asio reports EPIPE instead.
  signal(SIGPIPE, SIG_IGN);
  return set;
}

int CannotStart(const Status& st) {
  LOG_ERROR("cannot start: " << st.ToString());
  return kExitBadStart;
}

int Serve(const NodeOptions& o) {
  sigset_t stop_signals = BlockStopSignals();  // before any thread exists
  // Cheap checks first: a bad address fails before the stores are recovered.
  auto server = Server::Bind(ServerOptions{o.listen, o.io_threads, kDefaultMaxFrame});
  if (!server.ok()) return CannotStart(server.status());
  NodeConfig config{o.data_dir, o.id, o.fsync, o.fsync_interval};
  auto node = Node::OpenStandalone(config);
  if (!node.ok()) return CannotStart(node.status());
  RequestHandler handler(**node);
  if (Status st = (*server)->Start(handler); !st.ok()) {
    (*server)->Stop();  // threads that did start must end before the handler goes
    return CannotStart(st);
  }
  LOG_INFO("node " << (*node)->id().str() << ": data " << o.data_dir << ", fsync "
                   << FsyncPolicyName(o.fsync) << ", " << (*server)->io_threads()
                   << " I/O threads, standalone range " << kStandaloneRange.value());
  LOG_INFO("serving on " << (*server)->local_address());

  int sig = SIGTERM;
  (void)sigwait(&stop_signals, &sig);  // fails only for an invalid set
  LOG_INFO("received " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << "; shutting down");
  (*server)->Stop();
  Status closed = (*node)->Close();  // joins the store threads: no completion outlives the server
  server->reset();
  if (!closed.ok()) {
    LOG_ERROR("closing stores: " << closed.ToString());
    return kExitCloseFailed;
  }
  LOG_INFO("stopped");
  return kExitStopped;
}

int Main(int argc, char** argv) {
  log::SetProgram("kvnode");
  auto parsed = ParseNodeArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    std::fprintf(stderr, "kvnode: %s (see kvnode --help)\n", parsed.status().message().c_str());
    return kExitBadStart;
  }
  if (parsed->action == ParseAction::kShowHelp) {
    std::fputs(NodeUsage().c_str(), stdout);
    return kExitStopped;
  }
  if (parsed->options.mode == NodeMode::kCluster) {
    std::fprintf(stderr, "kvnode: cluster mode (--zk) is not available yet; use --standalone\n");
    return kExitBadStart;
  }
  log::SetLevel(parsed->options.log_level);
  return Serve(parsed->options);
}

}  // namespace
}  // namespace rangekv::kvnode

int main(int argc, char** argv) { return rangekv::kvnode::Main(argc, argv); }
