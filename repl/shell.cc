#include "repl/shell.h"

#include "repl/executor.h"
#include "repl/options.h"

namespace rangekv::repl {

int RunCommands(const std::vector<std::string>& commands, Backend& backend, std::ostream& out) {
  int status = kExitOk;
  for (const std::string& line : commands) {
    Reply reply = RunLine(line, backend);
    if (reply.outcome == Outcome::kQuit) break;
    if (reply.outcome == Outcome::kFailed) status = kExitCommandFailed;
    out << reply.text << std::flush;
    if (reply.outcome == Outcome::kRefused) return kExitUsageOrConnect;
  }
  return status;
}

int RunStream(std::istream& in, std::ostream& out, Backend& backend) {
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    Reply reply = RunLine(line, backend);
    if (reply.outcome == Outcome::kQuit) break;
    out << reply.text << std::flush;
    if (reply.outcome == Outcome::kRefused) return kExitUsageOrConnect;
  }
  return kExitOk;
}

}  // namespace rangekv::repl
