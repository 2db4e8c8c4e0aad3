// repl/tokenizer.h — splits one kvrepl input line into words and separators.
//
// Grammar of a line (I/O-free; bytes in, tokens out):
//
// | element        | form                                | becomes                  |
// | -------------- | ----------------------------------- | ------------------------ |
// | whitespace     | ' ' \t \n \r \v \f                  | ends a word; dropped     |
// | bare word      | run of bytes other than whitespace, | kWord, the bytes as is   |
// |                | '"' and ';' (a '\' is literal here) |                          |
// | quoted word    | "..." with the escapes below        | kWord, decoded bytes     |
// | separator      | ';' outside quotes                  | kSeparator               |
// | comment line   | first non-blank byte is '#'         | no tokens at all         |
//
// Escapes inside quotes (the inverse of common/escape.h Quote, plus a few):
//
// | escape | byte | escape | byte | escape | byte | escape | byte            |
// | ------ | ---- | ------ | ---- | ------ | ---- | ------ | --------------- |
// | \n     | 0x0a | \t     | 0x09 | \r     | 0x0d | \xHH   | 0xHH (2 hex)    |
// | \\     | 0x5c | \"     | 0x22 | \0     | 0x00 | \a \b  | 0x07 0x08       |
// | \f     | 0x0c | \v     | 0x0b |        |      |        |                 |
//
// Errors (each a BAD_REQUEST Status whose message names the 1-based column):
//   - a quote that never closes;
//   - '\x' not followed by two hex digits, or an unknown escape such as '\q';
//   - anything but whitespace, ';' or the end of line right after a closing
//     quote ("abc"def);
//   - a '"' in the middle of a bare word (ab"cd").
//
// Examples:
//   put "a b" 1          -> [put] [a b] [1]
//   batch put a 1;del b  -> [batch] [put] [a] [1] ; [del] [b]
//   put k "x;y"          -> [put] [k] [x;y]           (';' inside quotes is data)
//   scan a ""            -> [scan] [a] []             (an empty word)
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rangekv/status.h"

namespace rangekv::repl {

enum class TokenKind { kWord, kSeparator };

struct Token {
  TokenKind kind = TokenKind::kWord;
  std::string text;  // decoded bytes of a word; empty for a separator

  friend bool operator==(const Token&, const Token&) = default;
};

// Splits a line into tokens. An empty, all-blank or comment line yields an
// empty vector.
Result<std::vector<Token>> Tokenize(std::string_view line);

// True when the line does nothing: empty, blanks only, or a '#' comment.
bool IsBlankOrComment(std::string_view line);

}  // namespace rangekv::repl
