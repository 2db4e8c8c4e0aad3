#include "common/escape.h"

namespace rangekv {

bool IsBareWord(std::string_view bytes) {
  if (bytes.empty()) return false;
  for (unsigned char c : bytes) {
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '\'' ||
        c == ';') return false;
  }
  return true;
}

std::string Quote(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() + 2);
  out += '"';
  for (unsigned char c : bytes) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string QuoteIfNeeded(std::string_view bytes) {
  return IsBareWord(bytes) ? std::string(bytes) : Quote(bytes);
}

}  // namespace rangekv
