// kvnode/storage/store_seed.h — a range built from other ranges' copies on
// this node (a split's new part, a merge's new range) without writing it
// to disk first (docs/elastic.md §3, §4).
//
// A new range's keys are its sources' keys as of a seq S: the span split
// off a parent as of the split seq, or the two spans of a merge as of
// their merge seqs. Before, every replica wrote them as a snapshot, loaded
// that back, and only then served the range: the new range's writes waited
// for a copy, a write, an fsync and two reads of all its data. Now the
// range opens from its sources' entries in memory (a StoreSeed) at once,
// and its first snapshot is written in the background. Until that
// snapshot is durable the range's base exists only in memory and in its
// sources, so:
//
//   - a recipe marker, "<range dir>.seed", names the sources (written
//     durably before the range's directory exists, removed only once its
//     first snapshot is durable): Open of a directory with the marker and
//     no snapshot needs the seed rebuilt from the recipe, else CORRUPTION
//     (the copy is then made again from the replicas);
//   - the sources must keep every key of their spans, and their
//     directories, while any marker names them (the node checks
//     SeedSources before narrowing a parent or dropping a merged one).
//
// A seed is usually taken, not copied (RangeStore::TakeSeed): the span's
// map nodes move out of the source, whose files keep them (the source
// writes no snapshot until it narrows durably). A seed is then made once
// per process: an Open that fails before its log added anything hands the
// keys back in the seed, and the node keeps it for the next try; after a
// restart the sources are read from their files again.
//
// The range's directory starts with nothing but the file "seeded"; the
// marker's recipe stands for its epoch history (based at S, with the epoch
// of the sources' record S) and its retained span (the sources' spans),
// which its first snapshot writes before it makes the marker stale. Its
// log continues at S + 1, exactly as if a snapshot had been installed from
// another node (RangeStore::OpenFromSnapshot). Preparing it costs two
// fsyncs (the marker, the ranges directory), opening it none: the new
// log's first sync makes its segment and the directory's entries durable.
//
// Marker file, written with FileSystem::WriteFileAtomically, in the
// framing of kvnode/storage/field_codec.h (little-endian; a span as
// specified there):
//
//   | off | size | field                                           |
//   |-----|------|-------------------------------------------------|
//   |   0 |    8 | magic "RKVSEED\n"                               |
//   |   8 |    4 | version (1)                                     |
//   |  12 |    8 | at: the seq the new range's log continues after |
//   |  20 |    8 | epoch of the record at `at`                     |
//   |  28 |    4 | source count n (1 or 2)                         |
//   |  32 |  ... | n sources: range id (8), seq (8), span          |
//   | end |    4 | crc32c::Mask(CRC32C(every byte before))         |
//
// Invariants: sources in key order with adjacent spans; each source's seq
// <= at, and at is the largest of them.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/key_range.h"
#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

// One span a new range takes from a range on this node, as of that
// range's seq `at`.
struct SeedSource {
  RangeId range{0};
  KeyRange span;
  Seq at{0};
  friend bool operator==(const SeedSource&, const SeedSource&) = default;
};

struct SeedRecipe {
  Seq at{0};       // the new range's log continues at at + 1
  Epoch epoch{0};  // the epoch of the record at `at` (its history's base)
  std::vector<SeedSource> sources;
  friend bool operator==(const SeedRecipe&, const SeedRecipe&) = default;
};

std::string SeedMarkerPath(const std::string& range_dir);
std::string EncodeSeedRecipe(const SeedRecipe& recipe);
Result<SeedRecipe> DecodeSeedRecipe(const std::string& data, const std::string& path);
// The recipe of range_dir's marker; nullopt when there is none.
Result<std::optional<SeedRecipe>> ReadSeedMarker(fs::FileSystem& fs, const std::string& range_dir);
// An empty file PrepareSeeded leaves in a new range's directory: a
// directory holding nothing (made again since) has no use for its seed
// marker (SeedMarkerStale), one holding this does. Never synced: lost in a
// crash before the range's first log sync, the directory is empty and
// built again.
inline constexpr char kSeededFileName[] = "seeded";

// The marker's bytes are durable on return, its name only with the
// caller's next sync of the ranges directory (PrepareSeeded's).
Status WriteSeedMarker(fs::FileSystem& fs, const std::string& range_dir, const SeedRecipe& recipe);
// Removes the marker durably (missing: OK).
Status RemoveSeedMarker(fs::FileSystem& fs, const std::string& range_dir);

// The keys of a new range as of its recipe's seq, taken (or copied) out
// of its sources' maps (RangeStore::TakeSeed, CopySeed); consumed by
// RangeStore::Open.
class StoreSeed {
 public:
  StoreSeed();
  ~StoreSeed();
  StoreSeed(StoreSeed&&) noexcept;
  StoreSeed& operator=(StoreSeed&&) noexcept;

  size_t keys() const;
  // Still holds its keys: not consumed by an Open (one that failed before
  // its log added anything to them hands them back; store_seed.h).
  bool usable() const { return data_ != nullptr; }
  // The seq the keys are as of (the recipe's `at`).
  Seq at() const;

 private:
  friend class RangeStore;
  struct Data;
  std::unique_ptr<Data> data_;
};

}  // namespace rangekv::kvnode
