// repl/format.h — how kvrepl prints results (I/O-free).
//
// Output lines (each ends in '\n'; scripts parse them, so they are stable):
//
// | result                 | printed as                                        |
// | ---------------------- | ------------------------------------------------- |
// | write succeeded        | OK                                                |
// | missing key            | (nil)                                             |
// | value                  | <value>                                           |
// | versioned value        | <version> <value>                                 |
// | scan pair              | <key> <value>                                     |
// | scan end               | (<n> keys)  or  (<n> keys, more)  (n in decimal)  |
// | ping                   | PONG                                              |
// | any error              | (error) <CODE> <message>                          |
// | nodes, per node        | <id> <address|-> up|down|draining owned <n>       |
// |                        |   held <n> bytes <b|-> req/s <q|->                 |
// | ranges                 | a table, see below                                |
// | locate                 | range <id> [<start>, <end>) owner <id> <address>  |
// |                        |   (owner "-" when none; address "(down)")         |
// | status                 | cluster: NAME / zookeeper: CONNECT /              |
// |                        | nodes: U up, D down /                             |
// |                        | ranges: N total, A active, U unavailable,         |
// |                        |   W without owner   (four lines), then owned:,    |
// |                        |   load: and moving: lines (see FormatStatus)      |
//
// consistency prints "linearizable" or "stale" (the current level) and
// "OK" when it sets one.
//
// ranges prints a header line, then one line per range in key order, the
// columns left-aligned, padded to the widest cell plus two spaces:
//
//   range  bounds     epoch  owner  isr    replicas  state        hwm  lag
//   1      ["", m)    4      n1     n1,n2  n1,n2,n3  active       812  n2:0,n3:17
//   2      [m, +inf)  2      -      -      n2,n3     unavailable  -    -
//
// owner "-" when none; isr and replicas comma-separated ids, "-" when
// empty; state active|unavailable; hwm the owner's high-water mark; lag
// "<node>:<records behind the owner's log end>" per replica other than the
// owner ("-" when there is none). hwm and lag are "-" when unknown (the
// owner was not asked, is down, or did not answer). A quoted bound may hold
// spaces: the table is for people; scripts read locate or status.
// No ranges: "(no ranges)" without a header.
//
// Bounds are FormatWord'ed bytes; an unbounded end prints as bare +inf (a
// real bound "+inf" is printed quoted, so the two never look alike).
//
// Keys and values go through FormatWord: common/escape.h QuoteIfNeeded (bare
// when printable without spaces, quotes or backslashes, otherwise "..." with
// C escapes; the empty string prints as ""), except that a word holding ';'
// is quoted too, because a bare ';' is the batch separator. Whatever is
// printed parses back (repl/tokenizer.h) to exactly the same bytes.
//
// An error is always one line: CR/LF inside a message become spaces.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/client.h"
#include "rangekv/cluster_info.h"
#include "rangekv/status.h"
#include "repl/backend.h"

namespace rangekv::repl {

inline constexpr std::string_view kOkLine = "OK\n";
inline constexpr std::string_view kNilLine = "(nil)\n";
inline constexpr std::string_view kPongLine = "PONG\n";

// One key or value as printed (no newline); see above.
std::string FormatWord(std::string_view bytes);
// "(error) CODE message\n". Precondition: !status.ok().
std::string FormatError(const Status& status);
// "<value>\n".
std::string FormatValue(std::string_view value);
// "<version> <value>\n".
std::string FormatVersioned(const VersionedValue& v);
// One "<key> <value>\n" per entry, then the count line.
std::string FormatScan(const ScanResult& result);
// owned: ranges the node owns; held: ranges it holds a copy of (replicas,
// so a copy being made counts); bytes: the held ranges' bytes and req/s
// the owned ranges' requests a second, as the owners report them ("-"
// when an owner did not answer for one of them). Without ranges (the map
// could not be read) all four are "-".
std::string FormatNodes(const std::vector<NodeStatus>& nodes,
                        const std::vector<RangeStatus>* ranges = nullptr,
                        const std::map<uint64_t, RangeProgress>& progress = {});
// progress: by range id; a range missing from it prints hwm/lag "-".
std::string FormatRanges(const std::vector<RangeStatus>& ranges,
                         const std::map<uint64_t, RangeProgress>& progress = {});
std::string FormatLocate(const RangeStatus& range);
// One line per event of the range's history, oldest first, in words
// ("created with the cluster" when it has none).
std::string FormatHistory(const RangeStatus& range);
// progress (as for FormatRanges) adds a line "load:" with each node's
// requests a second over the ranges it owns and its share of them. Each
// replica move under way adds a line
//   moving: range <id> <from> -> <to> (<to> <n> records behind, <b> bytes)
// ("copying" in place of "<n> records behind" until the owner counts
// <to> among the replicas it feeds; "<b> bytes" only when known).
std::string FormatStatus(std::string_view cluster, std::string_view zookeeper,
                         const std::vector<NodeStatus>& nodes,
                         const std::vector<RangeStatus>& ranges,
                         const std::map<uint64_t, RangeProgress>& progress = {});

// Usage of every command (topic empty) or of one (topic = canonical name),
// plus a short note on quoting when listing all.
std::string FormatHelp(std::string_view topic);

}  // namespace rangekv::repl
