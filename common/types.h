// common/types.h — strong types for ids, epochs and sequences.
//
// A RangeId, an Epoch and a Seq are all 64-bit integers on the wire, and
// mixing them up is a silent data-loss bug. Each is its own type here: they
// do not convert into one another, and arithmetic is limited to what makes
// sense (a sequence can be advanced, an epoch bumped).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace rangekv {

template <typename Tag, typename T>
class StrongValue {
 public:
  using value_type = T;
  constexpr StrongValue() = default;
  constexpr explicit StrongValue(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  constexpr auto operator<=>(const StrongValue&) const = default;
  friend std::ostream& operator<<(std::ostream& os, StrongValue s) { return os << s.v_; }

 private:
  T v_{};
};

struct RangeIdTag {};
struct EpochTag {};
struct SeqTag {};

// Stable id of a range; assigned once by the coordinator, never reused.
using RangeId = StrongValue<RangeIdTag, uint64_t>;

// Generation clock of a range's ownership. Each new owner gets a higher one.
struct Epoch : StrongValue<EpochTag, uint64_t> {
  using StrongValue::StrongValue;
  constexpr Epoch Next() const { return Epoch(value() + 1); }
};

// Position in a range's log. Seq(0) means "nothing"; the first record is 1.
// A key's version is the Seq of the write that last changed it.
struct Seq : StrongValue<SeqTag, uint64_t> {
  using StrongValue::StrongValue;
  constexpr Seq Next() const { return Seq(value() + 1); }
};

// Id of a node, chosen by the operator (--id). Text, not a number.
class NodeId {
 public:
  NodeId() = default;
  explicit NodeId(std::string id) : id_(std::move(id)) {}
  const std::string& str() const { return id_; }
  bool empty() const { return id_.empty(); }
  auto operator<=>(const NodeId&) const = default;

 private:
  std::string id_;
};

// The single range a standalone node serves: the whole key space.
inline constexpr RangeId kStandaloneRange{1};

}  // namespace rangekv

template <typename Tag, typename T>
struct std::hash<rangekv::StrongValue<Tag, T>> {
  size_t operator()(rangekv::StrongValue<Tag, T> v) const { return std::hash<T>{}(v.value()); }
};
