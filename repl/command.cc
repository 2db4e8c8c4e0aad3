#include "repl/command.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include "common/escape.h"

namespace rangekv::repl {
namespace {

constexpr std::array<CommandSpec, 23> kCommands{{
    {"put", "put <key> <value>", "store value under key", 2, 2},
    {"get", "get <key>", "print the value of key, or (nil)", 1, 1},
    {"del", "del <key>", "delete key", 1, 1},
    {"cas", "cas <key> <version> <value>",
     "put only if key is at <version> (0: key must not exist)", 3, 3},
    {"getv", "getv <key>", "print \"<version> <value>\" of key, or (nil)", 1, 1},
    {"scan", "scan <start> <end> [limit]",
     "list pairs in [start, end) in key order; end \"\" = to the end", 2, 3},
    {"batch", "batch <op> [args] ; <op> [args] ; ...",
     "apply put/del/cas ops all or none (one range)", 1, -1},
    {"ping", "ping", "check that the node answers (PONG)", 0, 0},
    {"nodes", "nodes", "list the cluster's nodes: id, address, up/down (--zk)", 0, 0},
    {"ranges", "ranges",
     "list the ranges: bounds, epoch, owner, isr, replicas, state, hwm, lag, keys, bytes, "
     "req/s (--zk)",
     0, 0},
    {"locate", "locate <key>", "show the range holding key and its owner (--zk)", 1, 1},
    {"status", "status",
     "summary: nodes up/down, ranges by state, per node ranges owned and req/s (--zk)", 0, 0},
    {"transfer", "transfer <range-id> <node>",
     "hand a range to one of its in-sync replicas, without a failover (--zk)", 2, 2},
    {"move", "move <range-id> <from-node> <to-node>",
     "move a range's replica to another node: the new copy joins the in-sync replicas, then the "
     "old one leaves (its ownership first, by a transfer) (--zk)",
     3, 3},
    {"decommission", "decommission <node>",
     "move every replica and ownership off a node; OK once it holds none and is safe to stop "
     "(--zk)",
     1, 1},
    {"recommission", "recommission <node>",
     "undo a decommission: the node takes replicas again (--zk)", 1, 1},
    {"split", "split <key>",
     "cut the range holding key in two at key; the new range starts at key (--zk)", 1, 1},
    {"merge", "merge <key>",
     "merge the range holding key with the range right of it, moving that one to the same "
     "owner first (--zk)",
     1, 1},
    {"history", "history <range-id>",
     "what happened to a range: splits, transfers, owners named by the coordinator (--zk)", 1, 1},
    {"consistency", "consistency [stale|linearizable]",
     "show or set the consistency of later get/getv/scan (stale: any replica answers)", 0, 1},
    {"help", "help [command]", "show usage of every command, or of one", 0, 1},
    {"quit", "quit", "leave (also exit, Ctrl-D)", 0, 0},
    {"exit", "exit", "leave (same as quit)", 0, 0},
}};

using Args = std::span<const Token>;

// A user's word inside an error message: 'word' when printable, else the
// escaped "..." form, so the error stays one line whatever the bytes were.
std::string Display(std::string_view word) {
  bool plain = IsBareWord(word) && word.find(';') == std::string_view::npos;
  return plain ? "'" + std::string(word) + "'" : Quote(word);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Status BadRequest(std::string message) { return Status(Code::kBadRequest, std::move(message)); }

Status ArityError(const CommandSpec& spec) {
  return BadRequest("wrong number of arguments for '" + std::string(spec.name) +
                    "'; usage: " + std::string(spec.usage));
}

template <typename T>
Result<T> ParseUnsigned(const std::string& text, std::string_view what) {
  T v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return BadRequest("bad " + std::string(what) + " " + Display(text) + ": expected an unsigned " +
                      "decimal integer up to " + std::to_string(std::numeric_limits<T>::max()));
  }
  return v;
}

bool CheckArity(const CommandSpec& spec, size_t n) {
  if (n < static_cast<size_t>(spec.min_args)) return false;
  return spec.max_args < 0 || n <= static_cast<size_t>(spec.max_args);
}

// Parses one batch op (its tokens hold no separator).
Result<BatchOp> ParseBatchOp(Args op) {
  if (op.empty()) return BadRequest("batch: empty op between ';'");
  std::string name = Lower(op[0].text);
  Args a = op.subspan(1);
  const CommandSpec* spec = FindCommand(name);
  if (name == "put" || name == "del" || name == "cas") {
    if (!CheckArity(*spec, a.size())) {
      return BadRequest("batch: wrong number of arguments for '" + name +
                        "'; usage: " + std::string(spec->usage));
    }
  }
  if (name == "put") return BatchOp::Put(a[0].text, a[1].text);
  if (name == "del") return BatchOp::Delete(a[0].text);
  if (name == "cas") {
    RANGEKV_ASSIGN_OR_RETURN(uint64_t version, ParseUnsigned<uint64_t>(a[1].text, "version"));
    return BatchOp::Cas(a[0].text, version, a[2].text);
  }
  return BadRequest("batch: unknown op " + Display(op[0].text) + " (use put, del or cas)");
}

Result<Command> ParseBatch(Args args) {
  if (!args.empty() && args.back().kind == TokenKind::kSeparator) {
    args = args.first(args.size() - 1);  // one trailing ';' is allowed
  }
  if (args.empty()) {
    return BadRequest("batch needs at least one op; usage: " +
                      std::string(FindCommand("batch")->usage));
  }
  BatchCommand cmd;
  size_t begin = 0;
  for (size_t i = 0; i <= args.size(); ++i) {
    if (i < args.size() && args[i].kind != TokenKind::kSeparator) continue;
    RANGEKV_ASSIGN_OR_RETURN(BatchOp op, ParseBatchOp(args.subspan(begin, i - begin)));
    cmd.ops.push_back(std::move(op));
    begin = i + 1;
  }
  return Command(std::move(cmd));
}

Result<Command> ParseScan(Args a) {
  ScanCommand cmd;
  cmd.start = a[0].text;
  if (!a[1].text.empty()) cmd.end = a[1].text;
  if (a.size() == 3) {
    RANGEKV_ASSIGN_OR_RETURN(cmd.limit, ParseUnsigned<uint32_t>(a[2].text, "limit"));
  }
  return Command(std::move(cmd));
}

constexpr std::array<ReadConsistency, 2> kLevels{ReadConsistency::kLinearizable,
                                                  ReadConsistency::kStale};

Result<Command> ParseConsistency(Args a) {
  if (a.empty()) return Command(ConsistencyCommand{});
  const std::string word = Lower(a[0].text);
  for (ReadConsistency c : kLevels) {
    if (word == ConsistencyName(c)) return Command(ConsistencyCommand{c});
  }
  return BadRequest("consistency: unknown level " + Display(a[0].text) +
                    " (use stale or linearizable)");
}

Result<Command> ParseHelp(Args a) {
  if (a.empty()) return Command(HelpCommand{});
  const CommandSpec* spec = FindCommand(a[0].text);
  if (spec == nullptr) return BadRequest("help: unknown command " + Display(a[0].text));
  return Command(HelpCommand{std::string(spec->name)});
}

// Dispatches on the canonical name; arity has been checked already.
Result<Command> ParseArgs(std::string_view name, Args a) {
  if (name == "put") return Command(PutCommand{a[0].text, a[1].text});
  if (name == "get") return Command(GetCommand{a[0].text});
  if (name == "del") return Command(DelCommand{a[0].text});
  if (name == "getv") return Command(GetvCommand{a[0].text});
  if (name == "cas") {
    RANGEKV_ASSIGN_OR_RETURN(uint64_t version, ParseUnsigned<uint64_t>(a[1].text, "version"));
    return Command(CasCommand{a[0].text, version, a[2].text});
  }
  if (name == "scan") return ParseScan(a);
  if (name == "ping") return Command(PingCommand{});
  if (name == "nodes") return Command(NodesCommand{});
  if (name == "ranges") return Command(RangesCommand{});
  if (name == "locate") return Command(LocateCommand{a[0].text});
  if (name == "status") return Command(StatusCommand{});
  if (name == "transfer") {
    RANGEKV_ASSIGN_OR_RETURN(uint64_t range, ParseUnsigned<uint64_t>(a[0].text, "range id"));
    if (range == 0) return BadRequest("transfer: range ids start at 1");
    return Command(TransferCommand{range, a[1].text});
  }
  if (name == "move") {
    RANGEKV_ASSIGN_OR_RETURN(uint64_t range, ParseUnsigned<uint64_t>(a[0].text, "range id"));
    if (range == 0) return BadRequest("move: range ids start at 1");
    if (a[1].text == a[2].text) return BadRequest("move: the two nodes are the same");
    return Command(MoveCommand{range, a[1].text, a[2].text});
  }
  if (name == "decommission") return Command(DecommissionCommand{a[0].text, true});
  if (name == "recommission") return Command(DecommissionCommand{a[0].text, false});
  if (name == "split") {
    if (a[0].text.empty()) return BadRequest("split: the empty key starts the key space");
    return Command(SplitCommand{a[0].text});
  }
  if (name == "merge") return Command(MergeCommand{a[0].text});
  if (name == "history") {
    RANGEKV_ASSIGN_OR_RETURN(uint64_t range, ParseUnsigned<uint64_t>(a[0].text, "range id"));
    return Command(HistoryCommand{range});
  }
  if (name == "consistency") return ParseConsistency(a);
  if (name == "help") return ParseHelp(a);
  return Command(QuitCommand{});  // quit, exit
}

}  // namespace

std::span<const CommandSpec> AllCommands() { return kCommands; }

std::string_view ConsistencyName(ReadConsistency c) {
  return c == ReadConsistency::kStale ? "stale" : "linearizable";
}

std::vector<std::string> Completions(std::string_view before, std::string_view prefix) {
  // Words typed so far; quoting does not matter for the two cases below.
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < before.size()) {
    while (i < before.size() && (before[i] == ' ' || before[i] == '\t')) ++i;
    size_t start = i;
    while (i < before.size() && before[i] != ' ' && before[i] != '\t') ++i;
    if (i > start) words.push_back(before.substr(start, i - start));
  }
  std::vector<std::string> out;
  auto offer = [&](std::string_view word) {
    if (word.substr(0, prefix.size()) == prefix) out.emplace_back(word);
  };
  if (words.empty()) {
    for (const CommandSpec& spec : kCommands) offer(spec.name);
  } else if (words.size() == 1 && Lower(words[0]) == "consistency") {
    for (ReadConsistency c : kLevels) offer(ConsistencyName(c));
  }
  return out;
}

const CommandSpec* FindCommand(std::string_view name) {
  std::string lower = Lower(name);
  for (const CommandSpec& spec : kCommands) {
    if (spec.name == lower) return &spec;
  }
  return nullptr;
}

Result<Command> ParseCommand(const std::vector<Token>& tokens) {
  if (tokens.empty()) return BadRequest("empty command");
  if (tokens[0].kind == TokenKind::kSeparator) {
    return BadRequest("';' separates ops only inside a batch");
  }
  const CommandSpec* spec = FindCommand(tokens[0].text);
  if (spec == nullptr) {
    return BadRequest("unknown command " + Display(tokens[0].text) + " (type help for a list)");
  }
  Args args = Args(tokens).subspan(1);
  if (spec->name == "batch") return ParseBatch(args);
  for (const Token& t : args) {
    if (t.kind == TokenKind::kSeparator) {
      return BadRequest("';' separates ops only inside a batch (quote it to use it as data)");
    }
  }
  if (!CheckArity(*spec, args.size())) return ArityError(*spec);
  return ParseArgs(spec->name, args);
}

}  // namespace rangekv::repl
