// common/escape.h — the quoting rules shared by the REPL, logs and tools.
//
// A word is printed bare when it is non-empty and every byte is a printable
// ASCII character other than space, '"', '\'', '\\' and ';' (the REPL's batch
// separator). Otherwise it is printed in double quotes with C escapes:
// \n \t \r \\ \" and \xHH for any other byte outside 0x20..0x7e. The REPL's
// tokenizer (repl/tokenizer.h) reads back exactly what Quote produces.
#pragma once

#include <string>
#include <string_view>

namespace rangekv {

// Always quoted: "..." with escapes.
std::string Quote(std::string_view bytes);
// Bare when safe (see above), else Quote().
std::string QuoteIfNeeded(std::string_view bytes);
// True when QuoteIfNeeded would print the bytes bare.
bool IsBareWord(std::string_view bytes);

}  // namespace rangekv
