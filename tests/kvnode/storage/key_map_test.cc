// KeyMap (kvnode/storage/key_map.h) against a std::map model: random puts
// (same-size and resized overwrites), deletes, in-order loads, splits and
// appends; after each step the order, the index, the versions and the
// byte count agree with the model.
#include "kvnode/storage/key_map.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <utility>

namespace rangekv::kvnode {
namespace {

using Model = std::map<std::string, std::pair<std::string, uint64_t>>;

void ExpectSame(const KeyMap& m, const Model& want) {
  ASSERT_EQ(m.size(), want.size());
  uint64_t bytes = 0;
  auto it = want.begin();
  for (const KeyMap::Entry& e : m.ordered()) {
    ASSERT_NE(it, want.end());
    EXPECT_EQ(e.key(), it->first);
    EXPECT_EQ(e.value(), it->second.first);
    EXPECT_EQ(e.version, it->second.second);
    const KeyMap::Entry* found = m.Find(it->first);
    EXPECT_EQ(found, &e) << "the index names another entry for " << it->first;
    bytes += it->first.size() + it->second.first.size();
    ++it;
  }
  EXPECT_EQ(m.bytes(), bytes);
}

std::string Key(uint32_t n) { return "k" + std::to_string(n % 5000); }

TEST(KeyMap, RandomOperationsMatchAnOrderedModel) {
  std::mt19937 rng(7);
  KeyMap m;
  Model want;
  for (uint64_t step = 1; step <= 60000; ++step) {
    const std::string key = Key(rng());
    switch (rng() % 4) {
      case 0:
      case 1: {
        // Sizes 0-23: many overwrites keep the size, many change it.
        const std::string value(rng() % 24, static_cast<char>('a' + step % 26));
        m.Put(key, value, step);
        want[key] = {value, step};
        break;
      }
      case 2:
        m.Delete(key);
        want.erase(key);
        break;
      case 3: {
        const KeyMap::Entry* e = m.Find(key);
        auto w = want.find(key);
        ASSERT_EQ(e != nullptr, w != want.end()) << key;
        if (e) {
          EXPECT_EQ(e->value(), w->second.first);
        }
        break;
      }
    }
    if (step % 10000 == 0) ExpectSame(m, want);
  }
  ExpectSame(m, want);
  // Everything deleted: the index's backward shifts left no key behind.
  for (uint32_t n = 0; n < 5000; ++n) m.Delete(Key(n));
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.bytes(), 0u);
  for (uint32_t n = 0; n < 5000; ++n) EXPECT_EQ(m.Find(Key(n)), nullptr);
}

TEST(KeyMap, SizesAcrossEveryVarintLengthRoundTrip) {
  KeyMap m;
  Model want;
  uint64_t version = 0;
  for (size_t key_size : {0u, 1u, 127u, 128u, 4096u}) {
    for (size_t value_size : {0u, 127u, 128u, 16383u, 16384u, 1u << 20}) {
      const std::string key = std::string(key_size, 'k') + std::to_string(value_size);
      const std::string value(value_size, static_cast<char>('a' + value_size % 26));
      m.Put(key, value, ++version);
      want[key] = {value, version};
    }
  }
  ExpectSame(m, want);
  // Overwrites in place (same size) and resized.
  for (auto& [key, v] : want) {
    v.first = std::string(v.first.size(), 'z');
    m.Put(key, v.first, ++version);
    v.second = version;
  }
  ExpectSame(m, want);
  for (auto& [key, v] : want) {
    v.first += "grown";
    m.Put(key, v.first, ++version);
    v.second = version;
  }
  ExpectSame(m, want);
}

TEST(KeyMap, SplitAndAppendMoveEntriesWithTheirIndex) {
  KeyMap m;
  Model want;
  for (uint32_t n = 0; n < 3000; ++n) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "key%05u", n);
    m.PutInOrder(buf, std::string(n % 7, 'v'), n + 1);
    want[buf] = {std::string(n % 7, 'v'), n + 1};
  }
  ExpectSame(m, want);
  for (const char* cut : {"key00100", "key02900", "key01500", "", "zzz"}) {
    KeyMap tail = m.TakeFrom(cut);
    Model want_tail(want.lower_bound(cut), want.end());
    Model want_head(want.begin(), want.lower_bound(cut));
    ExpectSame(m, want_head);
    ExpectSame(tail, want_tail);
    if (want_tail.count("key02999")) {  // an overwrite through the moved index
      tail.Put("key02999", "changed size", 9999);
      want_tail["key02999"] = {"changed size", 9999};
    }
    ExpectSame(tail, want_tail);
    m.Append(std::move(tail));
    ExpectSame(tail, {});  // moved from: empty, usable
    want = want_head;
    want.insert(want_tail.begin(), want_tail.end());
    ExpectSame(m, want);
  }
  // A key that does not come after every key held is put as usual.
  m.PutInOrder("a", "first", 1);
  want["a"] = {"first", 1};
  ExpectSame(m, want);
}

}  // namespace
}  // namespace rangekv::kvnode
