// kvcoord — the rangekv coordinator. Flags: coordinator/coordinator_options.h.
//
// Exit codes: 0 after SIGTERM/SIGINT (session closed, so a standby takes
// over at once); 2 for bad flags or files, with one line on stderr, and when
// ZooKeeper refuses the coordinator before its first reconcile succeeded
// (credentials without the rights). ZooKeeper being unreachable is not an
// exit: kvcoord retries and logs.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "common/asio.h"
#include "common/log.h"
#include "common/net/tls.h"
#include "common/zk/auth.h"
#include "coordinator/coordinator.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/metrics_export.h"

namespace rangekv::coordinator {
namespace {

constexpr int kExitStopped = 0;
constexpr int kExitBadStart = 2;
// Raised by the coordinator's fatal callback to wake the sigwait in Run().
constexpr int kFatalSignal = SIGUSR1;

// Blocks SIGTERM, SIGINT and kFatalSignal here and in every thread started
// later, so only the sigwait in Run() receives them.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, kFatalSignal);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// Runs the io_context until stopped; a handler that throws is a bug, but it
// must not take the coordinator down silently.
void RunLoop(asio::io_context& io) {
  while (true) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      LOG_ERROR("event loop: unexpected exception: " << e.what());
    }
  }
}

int Run(CoordinatorOptions options) {
  sigset_t stop_signals = BlockStopSignals();  // before any thread exists
  if (!options.tls_ca.empty()) {
    auto tls = net::TlsContext::Load({options.tls_ca, options.tls_cert, options.tls_key},
                                     net::TlsContext::Role::kClient);
    if (!tls.ok()) {
      LOG_ERROR("cannot start: " << tls.status().ToString());
      return kExitBadStart;
    }
    options.tls = *tls;
  }
  auto zk_auth = zk::LoadAuthFileFlag(options.zk_auth_file);
  if (!zk_auth.ok()) {
    LOG_ERROR("cannot start: " << zk_auth.status().message());
    return kExitBadStart;
  }
  options.zk_auth = std::move(*zk_auth);
  options.on_fatal = [](const Status&) { ::kill(::getpid(), kFatalSignal); };
  asio::io_context io;
  const std::string admin_host = options.admin_host;
  const uint16_t admin_port = options.admin_port;
  auto coordinator = Coordinator::Create(io.get_executor(), std::move(options));
  if (!coordinator.ok()) {
    LOG_ERROR("cannot start: " << coordinator.status().ToString());
    return kExitBadStart;
  }
  std::unique_ptr<MetricsExporter> exporter;
  if (!admin_host.empty()) {
    auto started = MetricsExporter::Start(io.get_executor(), **coordinator, admin_host,
                                          admin_port, std::chrono::seconds(1));
    if (!started.ok()) {
      LOG_ERROR("cannot start: --admin: " << started.status().ToString());
      return kExitBadStart;
    }
    exporter = std::move(started).value();
    LOG_INFO("metrics on http://" << exporter->address() << "/metrics");
  }
  auto work = asio::make_work_guard(io);
  std::thread loop([&io] { RunLoop(io); });
  (*coordinator)->Start();

  int sig = SIGTERM;
  (void)sigwait(&stop_signals, &sig);
  if (sig == kFatalSignal) {
    LOG_ERROR("stopping: ZooKeeper refused this coordinator (see above)");
  } else {
    LOG_INFO("received " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << "; shutting down");
  }
  if (exporter) exporter->Stop();
  (*coordinator)->Stop();  // closes the session while the loop still runs
  io.stop();
  loop.join();
  exporter.reset();
  coordinator->reset();  // before io: its Session posts onto io's executor
  LOG_INFO("stopped");
  return sig == kFatalSignal ? kExitBadStart : kExitStopped;
}

int Main(int argc, char** argv) {
  log::SetProgram("kvcoord");
  auto parsed = ParseCoordinatorArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    std::fprintf(stderr, "kvcoord: %s (see kvcoord --help)\n", parsed.status().message().c_str());
    return kExitBadStart;
  }
  if (parsed->action == ParseAction::kShowHelp) {
    std::fputs(CoordinatorUsage().c_str(), stdout);
    return kExitStopped;
  }
  CoordinatorOptions options = parsed->options;
  if (options.id.empty()) options.id = DefaultCoordinatorId();
  log::SetLevel(options.log_level);
  return Run(std::move(options));
}

}  // namespace
}  // namespace rangekv::coordinator

int main(int argc, char** argv) { return rangekv::coordinator::Main(argc, argv); }
