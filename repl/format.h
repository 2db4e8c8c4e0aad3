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
//
// Keys and values go through FormatWord: common/escape.h QuoteIfNeeded (bare
// when printable without spaces, quotes or backslashes, otherwise "..." with
// C escapes; the empty string prints as ""), except that a word holding ';'
// is quoted too, because a bare ';' is the batch separator. Whatever is
// printed parses back (repl/tokenizer.h) to exactly the same bytes.
//
// An error is always one line: CR/LF inside a message become spaces.
#pragma once

#include <string>
#include <string_view>

#include "rangekv/client.h"
#include "rangekv/status.h"

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
// Usage of every command (topic empty) or of one (topic = canonical name),
// plus a short note on quoting when listing all.
std::string FormatHelp(std::string_view topic);

}  // namespace rangekv::repl
