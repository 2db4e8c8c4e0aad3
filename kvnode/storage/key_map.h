// kvnode/storage/key_map.h — the committed keys of one range in memory,
// ordered (scans, snapshots, splits) and hashed (point reads, overwrites).
// Internal to kvnode/storage (CommittedMap guards it; not thread-safe).
//
// Why this layout: memory per key. A key costs one allocation, its Entry,
// which carries the tree's links, the version and the bytes of key and
// value together; the hash index is an array of Entry pointers. (A
// std::map of strings plus a node-based hash index cost four allocations
// and about 320 bytes for a 16-byte key and a 100-byte value; this costs
// one, about 175 with its index slots.)
//
// Entry, one allocation of sizeof(KeyMapEntry) + the sizes' varints + key
// size + value size:
//   offset  0  red-black tree links    24 B  (the parent's low bit holds
//                                            the colour)
//   offset 24  version                  8 B  (seq of the write that last
//                                            changed the key)
//   offset 32  key size, then value size, each an LEB128 varint (1-3 B:
//              keys and values are bounded by proto::Limits)
//   then       the key's bytes, then the value's
// (Varints rather than two 4-byte sizes: a 16-byte key and a 100-byte
// value then fit a 160-byte malloc chunk instead of a 176-byte one.)
//
// Index: open addressing with linear probing over a power-of-two array of
// Entry pointers, at most 3/4 full (it doubles past that), deletion by
// backward shift (no tombstones, so probes never lengthen with churn).
// A slot's low 4 bits (free: entries are 16-byte aligned) hold 4 bits of
// its key's hash, so a probe passes over another key's slot without
// reading that entry (a cache miss each) 15 times out of 16. A lookup
// still costs two misses, its slot and its entry: under pipelined GETs on
// 100k keys it was a fifth of a node's CPU, a quarter before the tags.
//
// Invariants: every entry is in the tree and the index exactly once; an
// entry's address does not change while it is in the map (an overwrite
// with a value of another size makes a new entry and swaps it into both
// in place); bytes() is the sum of every key's and value's size. Moving a
// KeyMap leaves the source empty.
#pragma once

#include <boost/intrusive/set.hpp>
#include <cstdint>
#include <string_view>
#include <vector>

namespace rangekv::kvnode {

class KeyMapEntry : public boost::intrusive::set_base_hook<
                        boost::intrusive::optimize_size<true>,
                        boost::intrusive::link_mode<boost::intrusive::normal_link>> {
 public:
  static KeyMapEntry* Make(std::string_view key, std::string_view value, uint64_t version);
  static void Free(KeyMapEntry* e);

  std::string_view key() const {
    Sizes s = ReadSizes();
    return {s.bytes, s.key};
  }
  std::string_view value() const {
    Sizes s = ReadSizes();
    return {s.bytes + s.key, s.value};
  }
  // Same size only (the caller checks): the entry is rewritten in place.
  void Overwrite(std::string_view value, uint64_t version);

  uint64_t version;

 private:
  struct Sizes {
    const char* bytes;  // the key's first byte
    uint32_t key;
    uint32_t value;
  };
  explicit KeyMapEntry(uint64_t v) : version(v) {}
  const uint8_t* head() const { return reinterpret_cast<const uint8_t*>(this + 1); }
  Sizes ReadSizes() const {
    const uint8_t* p = head();
    Sizes s{};
    s.key = ReadVarint(&p);
    s.value = ReadVarint(&p);
    s.bytes = reinterpret_cast<const char*>(p);
    return s;
  }
  static uint32_t ReadVarint(const uint8_t** p) {
    uint32_t v = 0;
    for (int shift = 0;; shift += 7) {
      const uint8_t b = *(*p)++;
      v |= static_cast<uint32_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
  }
};

struct KeyMapLess {
  bool operator()(const KeyMapEntry& a, const KeyMapEntry& b) const { return a.key() < b.key(); }
  bool operator()(std::string_view a, const KeyMapEntry& b) const { return a < b.key(); }
  bool operator()(const KeyMapEntry& a, std::string_view b) const { return a.key() < b; }
};

class KeyMap {
 public:
  using Entry = KeyMapEntry;
  using Ordered = boost::intrusive::set<Entry, boost::intrusive::compare<KeyMapLess>,
                                        boost::intrusive::constant_time_size<true>>;
  using const_iterator = Ordered::const_iterator;

  KeyMap() = default;
  ~KeyMap();
  KeyMap(KeyMap&& other) noexcept;
  KeyMap& operator=(KeyMap&& other) noexcept;
  KeyMap(const KeyMap&) = delete;
  KeyMap& operator=(const KeyMap&) = delete;

  // nullptr when absent. Valid until the key is next written or deleted.
  const Entry* Find(std::string_view key) const;
  void Put(std::string_view key, std::string_view value, uint64_t version);
  // Put for keys arriving in ascending order, each after every key held
  // (snapshot load, a span copied out in order): no tree walk.
  void PutInOrder(std::string_view key, std::string_view value, uint64_t version);
  void Delete(std::string_view key);

  size_t size() const { return tree_.size(); }
  bool empty() const { return tree_.empty(); }
  // Key and value bytes of every entry (what a size split halves).
  uint64_t bytes() const { return bytes_; }
  const Ordered& ordered() const { return tree_; }
  const_iterator LowerBound(std::string_view key) const {
    return tree_.lower_bound(key, KeyMapLess());
  }
  const_iterator UpperBound(std::string_view key) const {
    return tree_.upper_bound(key, KeyMapLess());
  }

  // The entries at or after `from`, moved out (the entries, not copies);
  // this map keeps the ones before. Costs the smaller side only: a range
  // split off a large one is handed its keys without a copy.
  KeyMap TakeFrom(std::string_view from);
  // Adds every entry of `other`, whose keys all sort after this map's or
  // all before (entries moved; the smaller side is the one walked).
  void Append(KeyMap other);

 private:
  // The open-addressing index of the tree's entries (see above).
  class Index {
   public:
    static constexpr size_t kAbsent = ~size_t{0};
    // The slot holding `key`'s entry, or kAbsent.
    size_t Find(std::string_view key) const;
    Entry* At(size_t pos) const { return reinterpret_cast<Entry*>(slots_[pos] & ~kTagMask); }
    // Puts another entry of the same key in slot pos.
    void Replace(size_t pos, Entry* e) {
      slots_[pos] = reinterpret_cast<uintptr_t>(e) | (slots_[pos] & kTagMask);
    }
    void Insert(Entry* e);  // its key is not in the index
    void Erase(const Entry* e) { EraseAt(Find(e->key())); }
    void EraseAt(size_t pos);  // no-op for kAbsent
    void Clear() { slots_.clear(), count_ = 0; }
    void Swap(Index& other) noexcept {
      slots_.swap(other.slots_);
      std::swap(count_, other.count_);
    }

   private:
    static constexpr uintptr_t kTagMask = 0xf;
    static size_t Hash(std::string_view key);
    static uintptr_t Tag(size_t hash) { return hash >> (8 * sizeof(size_t) - 4); }
    size_t Home(size_t hash) const { return hash & (slots_.size() - 1); }
    void Place(uintptr_t slot, size_t hash);  // in the first free slot from its home
    void Grow();

    std::vector<uintptr_t> slots_;  // 0: free; else an Entry* | its tag
    size_t count_ = 0;
  };

  // Moves the entries [first, last) of this map into `to` (keys ascending,
  // all before or all after `to`'s).
  void MoveEntries(Ordered::iterator first, Ordered::iterator last, KeyMap& to);
  void Clear();

  Ordered tree_;
  Index index_;
  uint64_t bytes_ = 0;
};

}  // namespace rangekv::kvnode
