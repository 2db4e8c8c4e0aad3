// repl/command.h — the kvrepl command grammar and its parser (I/O-free).
//
// | command                                  | args | prints on success          |
// | ---------------------------------------- | ---- | -------------------------- |
// | put <key> <value>                        | 2    | OK                         |
// | get <key>                                | 1    | <value> or (nil)           |
// | del <key>                                | 1    | OK                         |
// | cas <key> <version> <value>              | 3    | OK                         |
// | getv <key>                               | 1    | <version> <value> or (nil) |
// | scan <start> <end> [limit]               | 2-3  | <key> <value> per pair,    |
// |                                          |      | then (<n> keys[, more])    |
// | batch <op> [args] ; <op> [args] ; ...    | 1+   | OK                         |
// | ping                                     | 0    | PONG                       |
// | nodes                                    | 0    | <id> <address> up|down     |
// | ranges                                   | 0    | one line per range         |
// | locate <key>                             | 1    | range, bounds, owner       |
// | status                                   | 0    | cluster summary (4 lines)  |
// | consistency [stale|linearizable]         | 0-1  | current level, or OK       |
// | help [command]                           | 0-1  | usage lines                |
// | quit, exit                               | 0    | nothing; leaves            |
//
// Command names are case-insensitive. <version> is a decimal uint64 (0 = the
// key must not exist); [limit] a decimal uint32 (0 or absent = the server's
// default). An empty <end> ("") means "to the end of the key space". Batch
// ops are put/del/cas with the arities above, separated by ';' tokens; one
// trailing ';' is allowed. nodes, ranges, locate and status read the
// client's cluster map and need --zk (repl/format.h has their output);
// ranges also asks each owner for its replication progress (hwm, lag).
// consistency without an argument prints the level of later get, getv and
// scan (linearizable at start); with one (any case) it sets it: stale reads
// may be answered by any replica of the range from its committed state, so
// they keep working while the owner is down but may miss recent writes.
// Writes are not affected.
// Every parse error is BAD_REQUEST with a message
// that names the command and shows its usage.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rangekv/client.h"
#include "rangekv/status.h"
#include "repl/tokenizer.h"

namespace rangekv::repl {

struct PutCommand {
  std::string key, value;
};
struct GetCommand {
  std::string key;
};
struct DelCommand {
  std::string key;
};
struct CasCommand {
  std::string key;
  uint64_t version = 0;
  std::string value;
};
struct GetvCommand {
  std::string key;
};
struct ScanCommand {
  std::string start;
  std::optional<std::string> end;  // nullopt = to the end
  uint32_t limit = 0;              // 0 = server default
};
struct BatchCommand {
  std::vector<BatchOp> ops;  // never empty
};
struct PingCommand {};
struct NodesCommand {};
struct RangesCommand {};
struct LocateCommand {
  std::string key;
};
struct StatusCommand {};
struct TransferCommand {
  uint64_t range = 0;
  std::string node;
};
struct MoveCommand {
  uint64_t range = 0;
  std::string from;
  std::string to;
};
// decommission (on) or recommission (off) a node.
struct DecommissionCommand {
  std::string node;
  bool on = true;
};
struct SplitCommand {
  std::string key;
};
struct MergeCommand {
  std::string key;
};
struct HistoryCommand {
  uint64_t range = 0;
};
struct ConsistencyCommand {
  std::optional<ReadConsistency> set;  // nullopt: print the current level
};
struct HelpCommand {
  std::string topic;  // canonical command name; empty = every command
};
struct QuitCommand {};

using Command =
    std::variant<PutCommand, GetCommand, DelCommand, CasCommand, GetvCommand, ScanCommand,
                 BatchCommand, PingCommand, NodesCommand, RangesCommand, LocateCommand,
                 StatusCommand, TransferCommand, MoveCommand, DecommissionCommand, SplitCommand,
                 MergeCommand, HistoryCommand, ConsistencyCommand, HelpCommand, QuitCommand>;

// One row of the command table: drives arity checks, help and completion.
struct CommandSpec {
  std::string_view name;     // canonical, lower case
  std::string_view usage;    // e.g. "put <key> <value>"
  std::string_view summary;  // one short sentence
  int min_args;
  int max_args;  // -1 = unbounded (batch)
};

// Every command in display order. "exit" is listed as its own row (an alias
// of quit) so that completion offers it.
std::span<const CommandSpec> AllCommands();
// The row for a name (any case, aliases included); nullptr when unknown.
const CommandSpec* FindCommand(std::string_view name);

// "linearizable" / "stale": how consistency prints and parses the levels.
std::string_view ConsistencyName(ReadConsistency c);

// Completion candidates for the word being typed (prefix), given the line
// before it: command names for the first word, the levels for the argument
// of consistency, nothing elsewhere (the other arguments are keys and
// values, which the shell does not know). In display order.
std::vector<std::string> Completions(std::string_view before, std::string_view prefix);

// Parses the tokens of one non-empty line. Errors: BAD_REQUEST for an
// unknown command, wrong arity, a bad number, or a ';' outside a batch.
Result<Command> ParseCommand(const std::vector<Token>& tokens);

}  // namespace rangekv::repl
