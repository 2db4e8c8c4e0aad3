// tests/lincheck/search_cache.h — internal to the checker (lincheck.cc):
// the model state and the search's memo of visited nodes.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

namespace rangekv::lincheck::internal {

constexpr int32_t kAbsent = -1;

// Register state (model: lincheck.h). value is an interned id, kAbsent, or
// kUnread (lincheck.cc).
struct State {
  uint64_t ver = 0;
  int32_t value = kAbsent;
  bool exact = true;
  bool operator==(const State&) const = default;
};

// Lowe's cache of visited (linearized set, state) pairs, with one
// refinement for indeterminate ops. A node is (K, s, I): K the linearized
// known ops, s the state, I the linearized indeterminate ops. Indeterminate
// ops are optional, so everything reachable from (K, s, I) is reachable from
// (K, s, I') when I' is a subset of I: a node is skipped when a visited node
// has the same K and s and a subset of its I. Without this, every unseen
// write that a later write silently overwrites doubles the search.
//
// Storage: ops are numbered known-first in invoke order, so K is mostly
// "every op below some point" plus a few bits; K is kept as [count of
// leading all-ones words, (index, word) for each later non-zero word] and I
// as (index, word) pairs, back to back in one arena. Chained hash table on a
// hash of (K, s).
class Cache {
 public:
  Cache() : heads_(1024, 0) {}

  // Records (K, s, I) unless it or a node dominating it was seen; returns
  // whether it was recorded. hash must be a function of (K, s) only.
  bool Insert(uint64_t hash, const State& s, const std::vector<uint64_t>& known,
              const std::vector<uint64_t>& maybe) {
    EncodeKnown(known);
    const size_t klen = scratch_.size();
    EncodeSparse(maybe, 0);
    for (uint32_t id = heads_[hash & (heads_.size() - 1)]; id != 0; id = entries_[id - 1].next) {
      const Entry& e = entries_[id - 1];
      if (e.hash == hash && e.state == s && e.klen == klen &&
          std::memcmp(&arena_[e.offset], scratch_.data(), klen * 8) == 0 &&
          Subset(&arena_[e.offset + klen], e.ilen, &scratch_[klen], scratch_.size() - klen)) {
        return false;
      }
    }
    entries_.push_back(Entry{hash, s, arena_.size(), static_cast<uint32_t>(klen),
                             static_cast<uint32_t>(scratch_.size() - klen), 0});
    arena_.insert(arena_.end(), scratch_.begin(), scratch_.end());
    if (entries_.size() > heads_.size()) {
      heads_.assign(heads_.size() * 2, 0);
      for (size_t i = 0; i < entries_.size(); ++i) Link(static_cast<uint32_t>(i + 1));
    } else {
      Link(static_cast<uint32_t>(entries_.size()));
    }
    return true;
  }

  size_t size() const { return entries_.size(); }
  size_t bytes() const {
    return entries_.size() * sizeof(Entry) + arena_.size() * 8 + heads_.size() * sizeof(uint32_t);
  }

 private:
  struct Entry {
    uint64_t hash;
    State state;
    size_t offset;  // into arena_: K encoding, then I encoding
    uint32_t klen;
    uint32_t ilen;
    uint32_t next;  // next entry id in the chain, 0 = end
  };

  void EncodeKnown(const std::vector<uint64_t>& bits) {
    scratch_.clear();
    size_t lead = 0;
    while (lead < bits.size() && bits[lead] == ~uint64_t{0}) ++lead;
    scratch_.push_back(lead);
    EncodeSparse(bits, lead);
  }

  void EncodeSparse(const std::vector<uint64_t>& bits, size_t from) {
    for (size_t w = from; w < bits.size(); ++w) {
      if (bits[w] == 0) continue;
      scratch_.push_back(w);
      scratch_.push_back(bits[w]);
    }
  }

  // Whether sparse set a is a subset of sparse set b (both sorted pairs).
  static bool Subset(const uint64_t* a, size_t alen, const uint64_t* b, size_t blen) {
    size_t j = 0;
    for (size_t i = 0; i < alen; i += 2) {
      while (j < blen && b[j] < a[i]) j += 2;
      if (j >= blen || b[j] != a[i] || (a[i + 1] & ~b[j + 1]) != 0) return false;
    }
    return true;
  }

  void Link(uint32_t id) {
    Entry& e = entries_[id - 1];
    uint32_t& head = heads_[e.hash & (heads_.size() - 1)];
    e.next = head;
    head = id;
  }

  std::vector<uint32_t> heads_;  // chain heads: entry id, 0 = empty
  std::vector<Entry> entries_;
  std::vector<uint64_t> arena_;
  std::vector<uint64_t> scratch_;
};

}  // namespace rangekv::lincheck::internal
