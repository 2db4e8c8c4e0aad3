// KeyMap: one allocation per key, a tree of entries and an open-addressing
// index of them (kvnode/storage/key_map.h).
#include "kvnode/storage/key_map.h"

#include <cstring>
#include <functional>
#include <new>
#include <utility>

namespace rangekv::kvnode {

static_assert(sizeof(KeyMapEntry) == 32, "key_map.h documents a 32-byte entry header");

namespace {

size_t VarintSize(uint32_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7) ++n;
  return n;
}

uint8_t* WriteVarint(uint8_t* p, uint32_t v) {
  for (; v >= 0x80; v >>= 7) *p++ = static_cast<uint8_t>(v | 0x80);
  *p++ = static_cast<uint8_t>(v);
  return p;
}

}  // namespace

// ---- Entry ----

KeyMapEntry* KeyMapEntry::Make(std::string_view key, std::string_view value, uint64_t version) {
  const auto k = static_cast<uint32_t>(key.size());
  const auto v = static_cast<uint32_t>(value.size());
  void* at = ::operator new(sizeof(KeyMapEntry) + VarintSize(k) + VarintSize(v) + k + v);
  auto* e = new (at) KeyMapEntry(version);
  uint8_t* p = WriteVarint(WriteVarint(reinterpret_cast<uint8_t*>(e + 1), k), v);
  if (k != 0) std::memcpy(p, key.data(), k);
  if (v != 0) std::memcpy(p + k, value.data(), v);
  return e;
}

void KeyMapEntry::Free(KeyMapEntry* e) {
  e->~KeyMapEntry();
  ::operator delete(static_cast<void*>(e));
}

void KeyMapEntry::Overwrite(std::string_view value, uint64_t v) {
  const Sizes s = ReadSizes();
  char* const bytes =
      reinterpret_cast<char*>(this + 1) + (s.bytes - reinterpret_cast<const char*>(head()));
  if (!value.empty()) std::memcpy(bytes + s.key, value.data(), value.size());
  version = v;
}

// ---- Index ----

static_assert(__STDCPP_DEFAULT_NEW_ALIGNMENT__ >= 16, "an index slot keeps a tag in 4 low bits");

size_t KeyMap::Index::Hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

size_t KeyMap::Index::Find(std::string_view key) const {
  if (slots_.empty()) return kAbsent;
  const size_t hash = Hash(key);
  const uintptr_t tag = Tag(hash);
  const size_t mask = slots_.size() - 1;
  for (size_t i = Home(hash);; i = (i + 1) & mask) {
    const uintptr_t slot = slots_[i];
    if (slot == 0) return kAbsent;
    if ((slot & kTagMask) == tag && At(i)->key() == key) return i;
  }
}

void KeyMap::Index::Place(uintptr_t slot, size_t hash) {
  const size_t mask = slots_.size() - 1;
  size_t i = Home(hash);
  while (slots_[i] != 0) i = (i + 1) & mask;
  slots_[i] = slot;
}

void KeyMap::Index::Insert(Entry* e) {
  if ((count_ + 1) * 4 > slots_.size() * 3) Grow();
  const size_t hash = Hash(e->key());
  Place(reinterpret_cast<uintptr_t>(e) | Tag(hash), hash);
  ++count_;
}

void KeyMap::Index::EraseAt(size_t hole) {
  if (hole == kAbsent) return;
  const size_t mask = slots_.size() - 1;
  // Backward shift: each later entry of the cluster whose home does not
  // lie cyclically in (hole, j] moves into the hole, which moves to j.
  for (size_t j = (hole + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
    const size_t home = Home(Hash(At(j)->key()));
    const bool stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays) continue;
    slots_[hole] = slots_[j];
    hole = j;
  }
  slots_[hole] = 0;
  --count_;
}

void KeyMap::Index::Grow() {
  std::vector<uintptr_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 16 : old.size() * 2, 0);
  for (uintptr_t slot : old) {
    if (slot != 0) Place(slot, Hash(reinterpret_cast<const Entry*>(slot & ~kTagMask)->key()));
  }
}

// ---- KeyMap ----

KeyMap::~KeyMap() { Clear(); }

KeyMap::KeyMap(KeyMap&& other) noexcept {
  tree_.swap(other.tree_);
  index_.Swap(other.index_);
  std::swap(bytes_, other.bytes_);
}

KeyMap& KeyMap::operator=(KeyMap&& other) noexcept {
  if (this == &other) return *this;
  Clear();
  tree_.swap(other.tree_);
  index_.Swap(other.index_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

void KeyMap::Clear() {
  tree_.clear_and_dispose(&Entry::Free);
  index_.Clear();
  bytes_ = 0;
}

const KeyMap::Entry* KeyMap::Find(std::string_view key) const {
  const size_t pos = index_.Find(key);
  return pos == Index::kAbsent ? nullptr : index_.At(pos);
}

void KeyMap::Put(std::string_view key, std::string_view value, uint64_t version) {
  if (const size_t pos = index_.Find(key); pos != Index::kAbsent) {
    Entry* old = index_.At(pos);
    bytes_ += value.size();
    bytes_ -= old->value().size();
    if (old->value().size() == value.size()) {
      old->Overwrite(value, version);
      return;
    }
    Entry* now = Entry::Make(key, value, version);
    tree_.replace_node(tree_.iterator_to(*old), *now);
    index_.Replace(pos, now);
    Entry::Free(old);
    return;
  }
  Entry* e = Entry::Make(key, value, version);
  tree_.insert_unique(*e);
  index_.Insert(e);
  bytes_ += key.size() + value.size();
}

void KeyMap::PutInOrder(std::string_view key, std::string_view value, uint64_t version) {
  if (!tree_.empty() && !(tree_.rbegin()->key() < key)) return Put(key, value, version);
  Entry* e = Entry::Make(key, value, version);
  tree_.push_back(*e);
  index_.Insert(e);
  bytes_ += key.size() + value.size();
}

void KeyMap::Delete(std::string_view key) {
  const size_t pos = index_.Find(key);
  if (pos == Index::kAbsent) return;
  Entry* e = index_.At(pos);
  bytes_ -= e->key().size() + e->value().size();
  index_.EraseAt(pos);
  tree_.erase(tree_.iterator_to(*e));
  Entry::Free(e);
}

void KeyMap::MoveEntries(Ordered::iterator first, Ordered::iterator last, KeyMap& to) {
  // Every moved key sorts before to's first or after its last: one hint
  // serves them all (each insert lands right before it, in O(1)).
  const Ordered::iterator hint =
      to.tree_.empty() || first == last || to.tree_.begin()->key() < first->key()
          ? to.tree_.end()
          : to.tree_.begin();
  while (first != last) {
    Entry& e = *first;
    first = tree_.erase(first);  // unlinked, not freed
    index_.Erase(&e);
    const uint64_t bytes = e.key().size() + e.value().size();
    bytes_ -= bytes;
    to.tree_.insert_before(hint, e);
    to.index_.Insert(&e);
    to.bytes_ += bytes;
  }
}

KeyMap KeyMap::TakeFrom(std::string_view from) {
  const Ordered::iterator cut = tree_.lower_bound(from, KeyMapLess());
  // Walk both sides in step until one ends: the cost is the smaller one.
  bool head_smaller = false;
  for (auto head = cut, tail = cut;; ++tail) {
    if (tail == tree_.end()) break;
    if (head == tree_.begin()) {
      head_smaller = true;
      break;
    }
    --head;
  }
  KeyMap out;
  if (!head_smaller) {
    MoveEntries(cut, tree_.end(), out);
    return out;
  }
  out = std::move(*this);
  out.MoveEntries(out.tree_.begin(), out.tree_.lower_bound(from, KeyMapLess()), *this);
  return out;
}

void KeyMap::Append(KeyMap other) {
  if (other.size() <= size()) {
    other.MoveEntries(other.tree_.begin(), other.tree_.end(), *this);
    return;
  }
  KeyMap mine = std::move(*this);
  *this = std::move(other);
  mine.MoveEntries(mine.tree_.begin(), mine.tree_.end(), *this);
}

}  // namespace rangekv::kvnode
