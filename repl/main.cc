// kvrepl — the interactive shell of rangekv. See repl/options.h for the
// command line and exit statuses, repl/command.h for the commands.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "common/log.h"
#include "repl/client_backend.h"
#include "repl/cluster_backend.h"
#include "repl/format.h"
#include "repl/options.h"
#include "repl/shell.h"
#include "repl/terminal.h"

namespace rangekv::repl {
namespace {

ClientOptions ClientOptionsFor(const Options& opts) {
  ClientOptions co;
  co.request_timeout = opts.timeout;
  co.connect_timeout = std::min(opts.timeout, co.connect_timeout);
  co.tls_ca = opts.tls_ca;
  co.tls_cert = opts.tls_cert;
  co.tls_key = opts.tls_key;
  co.zk_auth_file = opts.zk_auth_file;
  return co;
}

int Main(const std::vector<std::string>& args) {
  auto opts = ParseOptions(args);
  if (!opts.ok()) {
    std::cerr << "kvrepl: " << opts.status().message() << "\n";
    return kExitUsageOrConnect;
  }
  if (opts->action == Action::kShowHelp) {
    std::cout << UsageText();
    return kExitOk;
  }
  // The shell reports every failure as an "(error)" line; the client's own
  // notes (reconnect attempts) would only interleave with the prompt.
  log::SetProgram("kvrepl");
  log::SetLevel(log::Level::kError);

  Result<std::unique_ptr<Backend>> backend = Status(Code::kInternal, "no backend");
  if (!opts->zk.empty()) {
    auto b = ClusterBackend::Connect(opts->zk, opts->cluster, ClientOptionsFor(*opts));
    if (b.ok()) backend = std::unique_ptr<Backend>(std::move(*b)); else backend = b.status();
  } else {
    auto b = ClientBackend::Connect(opts->node, ClientOptionsFor(*opts));
    if (b.ok()) backend = std::unique_ptr<Backend>(std::move(*b)); else backend = b.status();
  }
  if (!backend.ok()) {
    std::cerr << FormatError(backend.status());
    return kExitUsageOrConnect;
  }
  if (!opts->commands.empty()) return RunCommands(opts->commands, **backend, std::cout);
  if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) return RunTerminal(**backend);
  return RunStream(std::cin, std::cout, **backend);
}

}  // namespace
}  // namespace rangekv::repl

int main(int argc, char** argv) {
  return rangekv::repl::Main(std::vector<std::string>(argv + 1, argv + argc));
}
