#include "repl/tokenizer.h"

#include <optional>

namespace rangekv::repl {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::optional<int> HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return std::nullopt;
}

// Printable form of one byte for error messages; the message itself must
// stay one line even when the offending byte is a newline or binary.
std::string Show(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string(1, c);
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("\\x") + kHex[u >> 4] + kHex[u & 0xf];
}

Status Error(size_t pos, const std::string& what) {
  return Status(Code::kBadRequest, what + " at column " + std::to_string(pos + 1));
}

class Scanner {
 public:
  explicit Scanner(std::string_view line) : line_(line) {}

  Result<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (true) {
      while (pos_ < line_.size() && IsSpace(line_[pos_])) ++pos_;
      if (pos_ == line_.size()) return tokens;
      char c = line_[pos_];
      if (c == ';') {
        tokens.push_back(Token{TokenKind::kSeparator, {}});
        ++pos_;
        continue;
      }
      Result<std::string> word = c == '"' ? Quoted() : Bare();
      if (!word.ok()) return word.status();
      tokens.push_back(Token{TokenKind::kWord, std::move(word).value()});
    }
  }

 private:
  Result<std::string> Bare() {
    size_t start = pos_;
    while (pos_ < line_.size() && !IsSpace(line_[pos_]) && line_[pos_] != ';') {
      if (line_[pos_] == '"') {
        return Error(pos_, "unexpected '\"' inside a bare word (quote the whole word)");
      }
      ++pos_;
    }
    return std::string(line_.substr(start, pos_ - start));
  }

  Result<std::string> Quoted() {
    size_t open = pos_++;
    std::string out;
    while (pos_ < line_.size()) {
      char c = line_[pos_];
      if (c == '"') {
        ++pos_;
        // A word must end at the closing quote; "abc"def is almost always a
        // typo, so it is refused rather than silently glued together.
        if (pos_ < line_.size() && !IsSpace(line_[pos_]) && line_[pos_] != ';') {
          return Error(pos_, "junk '" + Show(line_[pos_]) + "' right after a closing quote");
        }
        return out;
      }
      if (c == '\\') {
        RANGEKV_RETURN_IF_ERROR(Escape(out));
        continue;
      }
      out += c;
      ++pos_;
    }
    return Error(open, "unterminated quoted string starting");
  }

  // Decodes the escape at pos_ (which points at the backslash) into out.
  Status Escape(std::string& out) {
    size_t at = pos_;
    if (pos_ + 1 >= line_.size()) return Error(at, "unterminated quoted string: '\\' at end");
    char e = line_[pos_ + 1];
    pos_ += 2;
    switch (e) {
      case 'n': out += '\n'; return Status::Ok();
      case 't': out += '\t'; return Status::Ok();
      case 'r': out += '\r'; return Status::Ok();
      case '\\': out += '\\'; return Status::Ok();
      case '"': out += '"'; return Status::Ok();
      case '0': out += '\0'; return Status::Ok();
      case 'a': out += '\a'; return Status::Ok();
      case 'b': out += '\b'; return Status::Ok();
      case 'f': out += '\f'; return Status::Ok();
      case 'v': out += '\v'; return Status::Ok();
      case 'x': return HexEscape(at, out);
      default: return Error(at, "unknown escape '\\" + Show(e) + "'");
    }
  }

  Status HexEscape(size_t at, std::string& out) {
    std::optional<int> hi, lo;
    if (pos_ + 1 < line_.size()) {
      hi = HexValue(line_[pos_]);
      lo = HexValue(line_[pos_ + 1]);
    }
    if (!hi || !lo) return Error(at, "bad '\\x' escape: need exactly two hex digits");
    out += static_cast<char>(*hi * 16 + *lo);
    pos_ += 2;
    return Status::Ok();
  }

  std::string_view line_;
  size_t pos_ = 0;
};

}  // namespace

bool IsBlankOrComment(std::string_view line) {
  for (char c : line) {
    if (IsSpace(c)) continue;
    return c == '#';
  }
  return true;
}

Result<std::vector<Token>> Tokenize(std::string_view line) {
  if (IsBlankOrComment(line)) return std::vector<Token>{};
  return Scanner(line).Run();
}

}  // namespace rangekv::repl
