#include "repl/options.h"

#include <charconv>
#include <optional>
#include <utility>

namespace rangekv::repl {
namespace {

Status Bad(std::string message) {
  return Status(Code::kBadRequest, message + " (see kvrepl --help)");
}

// Walks argv, handing out flag values from "--flag value" or "--flag=value".
class ArgReader {
 public:
  explicit ArgReader(const std::vector<std::string>& args) : args_(args) {}

  bool Done() const { return i_ >= args_.size(); }

  // Next flag name; an inline "=value" is kept for Value().
  std::string NextFlag() {
    std::string arg = args_[i_++];
    inline_value_.reset();
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value_ = arg.substr(eq + 1);
      arg.resize(eq);
    }
    return arg;
  }

  Result<std::string> Value(const std::string& flag) {
    if (inline_value_) return *std::exchange(inline_value_, std::nullopt);
    if (Done()) return Bad("flag " + flag + " needs a value");
    return args_[i_++];
  }

  bool HasInlineValue() const { return inline_value_.has_value(); }

 private:
  const std::vector<std::string>& args_;
  size_t i_ = 0;
  std::optional<std::string> inline_value_;
};

Result<std::chrono::milliseconds> ParseTimeout(const std::string& text) {
  int64_t ms = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, ms);
  if (text.empty() || ec != std::errc() || ptr != end || ms <= 0) {
    return Bad("--timeout-ms wants a positive number of milliseconds, got '" + text + "'");
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace

Result<Options> ParseOptions(const std::vector<std::string>& args) {
  Options opts;
  bool saw_cluster = false;
  ArgReader reader(args);
  while (!reader.Done()) {
    std::string flag = reader.NextFlag();
    if (flag == "-h" || flag == "--help") {
      if (reader.HasInlineValue()) return Bad("flag --help takes no value");
      opts.action = Action::kShowHelp;
      return opts;
    }
    if (flag == "--node") {
      RANGEKV_ASSIGN_OR_RETURN(opts.node, reader.Value(flag));
    } else if (flag == "--zk") {
      RANGEKV_ASSIGN_OR_RETURN(opts.zk, reader.Value(flag));
      if (opts.zk.empty()) return Bad("--zk wants a connect string host:port[,host:port...]");
    } else if (flag == "--cluster") {
      RANGEKV_ASSIGN_OR_RETURN(opts.cluster, reader.Value(flag));
      saw_cluster = true;
    } else if (flag == "-c" || flag == "--command") {
      RANGEKV_ASSIGN_OR_RETURN(std::string cmd, reader.Value(flag));
      opts.commands.push_back(std::move(cmd));
    } else if (flag == "--tls-ca") {
      RANGEKV_ASSIGN_OR_RETURN(opts.tls_ca, reader.Value(flag));
    } else if (flag == "--tls-cert") {
      RANGEKV_ASSIGN_OR_RETURN(opts.tls_cert, reader.Value(flag));
    } else if (flag == "--tls-key") {
      RANGEKV_ASSIGN_OR_RETURN(opts.tls_key, reader.Value(flag));
    } else if (flag == "--zk-auth-file") {
      RANGEKV_ASSIGN_OR_RETURN(opts.zk_auth_file, reader.Value(flag));
      if (opts.zk_auth_file.empty()) return Bad("--zk-auth-file wants a file");
    } else if (flag == "--timeout-ms") {
      RANGEKV_ASSIGN_OR_RETURN(std::string text, reader.Value(flag));
      RANGEKV_ASSIGN_OR_RETURN(opts.timeout, ParseTimeout(text));
    } else if (!flag.empty() && flag[0] == '-') {
      return Bad("unknown flag '" + flag + "'");
    } else {
      return Bad("unexpected argument '" + flag + "'");
    }
  }
  if (!opts.node.empty() && !opts.zk.empty()) return Bad("--node and --zk cannot be combined");
  if (opts.node.empty() && opts.zk.empty()) return Bad("missing --node HOST:PORT or --zk CONNECT");
  if (saw_cluster && opts.zk.empty()) return Bad("--cluster needs --zk");
  if (!opts.zk_auth_file.empty() && opts.zk.empty()) return Bad("--zk-auth-file needs --zk");
  if (opts.cluster.empty()) return Bad("--cluster wants a name");
  const int tls_given = !opts.tls_ca.empty() + !opts.tls_cert.empty() + !opts.tls_key.empty();
  if (tls_given != 0 && tls_given != 3) {
    return Bad("--tls-ca, --tls-cert and --tls-key go together");
  }
  return opts;
}

std::string UsageText() {
  return R"(usage: kvrepl --node HOST:PORT [-c "<command>"]... [--timeout-ms N] [TLS]
       kvrepl --zk CONNECT [--cluster NAME] [--zk-auth-file FILE] [-c "<command>"]...
              [--timeout-ms N] [TLS]
       TLS: --tls-ca FILE --tls-cert FILE --tls-key FILE

An interactive shell for a rangekv node or cluster.

  --node HOST:PORT   node to connect to
  --zk CONNECT       cluster to connect to, through ZooKeeper (host:port[,...]);
                     requests go to the owner of each key's range (after
                     "consistency stale", reads to any live replica); adds
                     the commands nodes, ranges, locate and status
  --cluster NAME     cluster name under /rangekv/ (default "default"; with --zk)
  --zk-auth-file FILE  ZooKeeper credentials (a line user:password; mode 600)
                     for a cluster with ACLs: a reader's to read the map, a
                     writer's for move, decommission, recommission
  -c "<command>"     run the command, print its result; repeatable (in order);
                     exits after the last one (also --command)
  --timeout-ms N     deadline of each request in ms (default 5000)
  --tls-ca FILE      TLS with mutual certificates (a cluster started with
  --tls-cert FILE      them): the cluster CA, this client's certificate and
  --tls-key FILE       its key, PEM files; all three or none
  -h, --help         print this help

Modes:
  terminal (stdin and stdout a TTY): banner, prompt "rangekv> ", line editing,
    history in $KVREPL_HISTORY or else $HOME/.kvrepl_history, tab completion.
  pipe (otherwise): no banner or prompt; one result per input line, flushed
    after each, so a program can write a command and read its answer.

Output: results on stdout; every error is one line "(error) CODE message".
Type "help" inside the shell for the commands.

Exit status:
  0  all -c commands succeeded; or end of input / quit in pipe and terminal
     mode (errors there are reported inline only)
  1  with -c: at least one command failed
  2  bad flags, or the node (or ZooKeeper) could not be reached at start,
     or a node refused this client (UNAUTHENTICATED: no, a wrong or an
     expired certificate, or plaintext to a TLS node), or ZooKeeper did
     (UNAUTHENTICATED: no, wrong or too weak --zk-auth-file credentials)
)";
}

}  // namespace rangekv::repl
