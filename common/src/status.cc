#include "rangekv/status.h"

#include <array>

namespace rangekv {
namespace {
constexpr std::array<const char*, static_cast<size_t>(Code::kLastCode) + 1> kNames = {
    "OK",          "NOT_OWNER",   "STALE_EPOCH", "RANGE_UNAVAILABLE", "NOT_ENOUGH_REPLICAS",
    "TOO_LARGE",   "CROSS_RANGE", "CAS_FAILED",  "BAD_REQUEST",       "TIMEOUT",
    "UNAVAILABLE", "CORRUPTION",  "IO_ERROR",    "INTERNAL",          "UNAUTHENTICATED",
};
}  // namespace

const char* CodeName(Code code) {
  auto i = static_cast<size_t>(code);
  return i < kNames.size() ? kNames[i] : "UNKNOWN";
}

std::optional<Code> CodeFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (name == kNames[i]) return static_cast<Code>(i);
  }
  return std::nullopt;
}

std::string Status::ToString() const {
  std::string s = CodeName(code_);
  if (!message_.empty()) {
    s += ' ';
    s += message_;
  }
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

}  // namespace rangekv
