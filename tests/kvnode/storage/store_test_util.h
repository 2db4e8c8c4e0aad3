// tests/kvnode/storage/store_test_util.h — helpers for the storage-engine tests:
// synchronous writes over the callback API, whole-map dumps, and byte-level
// file surgery on segments.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kvnode/storage/range_store.h"
#include "kvnode/storage/wal.h"

namespace rangekv::kvnode::testing {

// Writes ops and waits for the callback.
inline Result<Seq> WriteSync(RangeStore& store, std::vector<proto::WriteOp> ops) {
  std::promise<Result<Seq>> done;
  auto fut = done.get_future();
  store.Write(std::move(ops), [&done](Result<Seq> r) { done.set_value(std::move(r)); });
  return fut.get();
}
inline Result<Seq> Put(RangeStore& store, std::string k, std::string v) {
  std::vector<proto::WriteOp> ops;
  ops.push_back(proto::WriteOp::Put(std::move(k), std::move(v)));
  return WriteSync(store, std::move(ops));
}
inline Result<Seq> Del(RangeStore& store, std::string k) {
  std::vector<proto::WriteOp> ops;
  ops.push_back(proto::WriteOp::Delete(std::move(k)));
  return WriteSync(store, std::move(ops));
}
inline Result<Seq> Cas(RangeStore& store, std::string k, uint64_t ver, std::string v) {
  std::vector<proto::WriteOp> ops;
  ops.push_back(proto::WriteOp::Cas(std::move(k), ver, std::move(v)));
  return WriteSync(store, std::move(ops));
}

// key -> (value, version)
using Model = std::map<std::string, std::pair<std::string, uint64_t>>;

// The whole committed map, read through Scan in pages.
inline Model Dump(const RangeStore& store) {
  Model out;
  std::string start;
  for (;;) {
    bool more = false;
    auto page = store.Scan(start, std::nullopt, 1000, &more);
    for (const auto& e : page) out[e.key] = {e.value, e.version};
    if (!more) break;
    start = page.back().key + std::string(1, '\0');
  }
  return out;
}

inline std::unique_ptr<RangeStore> MustOpen(const StoreOptions& opts) {
  auto r = RangeStore::Open(RangeId(7), KeyRange(), opts);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return nullptr;
  return std::move(r).value();
}

// A store in dir that never fsyncs (tests of what a split or merge builds).
inline StoreOptions NoSyncOpts(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  o.fsync = FsyncPolicy::kNever;
  return o;
}

// Two neighbours to merge at "k": range 7 (a, b; through seq 2) and
// range 8 (m written five times; through seq 5), and the recipe of the
// merged range (its log continues after seq 5).
struct MergeSources {
  std::unique_ptr<RangeStore> left, right;
  SeedRecipe recipe{Seq(5),
                    Epoch(0),
                    {SeedSource{RangeId(7), KeyRange("", std::string("k")), Seq(2)},
                     SeedSource{RangeId(8), KeyRange("k", std::nullopt), Seq(5)}}};
};
inline MergeSources TwoToMerge(const std::string& dir) {
  MergeSources m;
  m.left = MustOpen(NoSyncOpts(dir + "/left"));
  EXPECT_TRUE(Put(*m.left, "a", "l1").ok());
  EXPECT_TRUE(Put(*m.left, "b", "l2").ok());
  auto right = RangeStore::Open(RangeId(8), KeyRange(), NoSyncOpts(dir + "/right"));
  EXPECT_TRUE(right.ok()) << right.status().ToString();
  if (right.ok()) m.right = std::move(right).value();
  for (int i = 0; m.right && i < 5; ++i) {
    EXPECT_TRUE(Put(*m.right, "m", "r" + std::to_string(i)).ok());
  }
  return m;
}

// Range 7 in dir holding a..f, one record each: key k has version
// (k - 'a' + 1).
inline std::unique_ptr<RangeStore> SixKeys(const std::string& dir) {
  auto store = MustOpen(NoSyncOpts(dir));
  for (char c = 'a'; c <= 'f'; ++c) EXPECT_TRUE(Put(*store, std::string(1, c), "v").ok());
  return store;
}

// Segment files of a store directory, oldest first (full paths).
std::vector<std::string> SegmentPaths(const std::string& dir);
std::vector<std::string> SnapshotPaths(const std::string& dir);

std::string ReadBytes(const std::string& path);
void WriteBytes(const std::string& path, const std::string& bytes);

// Where a record sits in a segment file.
struct RecordSpan {
  Seq seq{0};
  size_t offset = 0;  // of the header
  size_t size = 0;    // header + payload
};
// The whole records of a (valid) segment file.
std::vector<RecordSpan> RecordSpans(const std::string& path);

// Copies every regular file of from/ into to/ (created), replacing files.
void CopyDir(const std::string& from, const std::string& to);

}  // namespace rangekv::kvnode::testing
