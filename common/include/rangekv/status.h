// rangekv/status.h — the one error vocabulary of rangekv.
//
// Status is a code plus a human-readable message. Result<T> is either a value
// or a non-OK Status. Both are [[nodiscard]]: an ignored error is how an
// acknowledged write gets lost, so the compiler refuses to let it vanish.
//
// The codes mirror the wire error codes (common/protocol.capnp, docs/design.md §7).
// Their numeric values are part of the wire format: never renumber, only add.
//
// Thread-safety: values; copy freely between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace rangekv {

enum class Code : int {
  kOk = 0,
  kNotOwner = 1,           // this node does not own the key's range (hint attached)
  kStaleEpoch = 2,         // the message carried an epoch older than the receiver's
  kRangeUnavailable = 3,   // the range exists but cannot serve now (recovering, corrupt)
  kNotEnoughReplicas = 4,  // in-sync set below min-insync: writes pause
  kTooLarge = 5,           // key, value or frame above its limit
  kCrossRange = 6,         // a batch touches more than one range
  kCasFailed = 7,          // compare-and-set version mismatch
  kBadRequest = 8,         // malformed request, unknown command, bad arguments
  kTimeout = 9,            // the deadline passed; the outcome is unknown
  kUnavailable = 10,       // could not reach the node (connect failed, connection lost)
  kCorruption = 11,        // on-disk data failed a checksum or format check
  kIoError = 12,           // a file-system call failed
  kInternal = 13,          // a bug or an impossible state
  kUnauthenticated = 14,   // TLS refused: no, a wrong or an expired certificate; plaintext;
                           // ZooKeeper refused the credentials (ZNOAUTH, ZAUTHFAILED)
  kLastCode = kUnauthenticated,
};

// Stable upper-case name of a code, e.g. "CAS_FAILED". Never null.
const char* CodeName(Code code);
// Parses a name produced by CodeName; nullopt when unknown.
std::optional<Code> CodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "CODE message" — the form the REPL and logs print.
  std::string ToString() const;

  // Returns a copy whose message is prefixed with context, e.g. the file name.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Either a T or an error Status. Accessing value() of an error is a bug
// (asserted in debug builds).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T& value() & { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // OK when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rangekv

// Propagates a non-OK Status out of the enclosing function.
#define RANGEKV_RETURN_IF_ERROR(expr)            \
  do {                                           \
    ::rangekv::Status _st = (expr);              \
    if (!_st.ok()) return _st;                   \
  } while (0)

#define RANGEKV_CONCAT_INNER(a, b) a##b
#define RANGEKV_CONCAT(a, b) RANGEKV_CONCAT_INNER(a, b)
// Assigns the value of a Result to lhs, or returns its error.
#define RANGEKV_ASSIGN_OR_RETURN(lhs, expr)                          \
  auto RANGEKV_CONCAT(_res_, __LINE__) = (expr);                    \
  if (!RANGEKV_CONCAT(_res_, __LINE__).ok())                         \
    return RANGEKV_CONCAT(_res_, __LINE__).status();                 \
  lhs = std::move(RANGEKV_CONCAT(_res_, __LINE__)).value()
