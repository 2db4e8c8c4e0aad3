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
//     before the range's directory, durable before anything in it is,
//     removed only once its first snapshot is durable): Open of a
//     directory with the marker and no snapshot needs the seed rebuilt
//     from the recipe, else CORRUPTION (the copy is then made again from
//     the replicas);
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
// another node (RangeStore::OpenFromSnapshot).
//
// Preparing and opening it cost no fsync: they sat on the path of the
// first write to the new range, on every replica. The new log's first
// sync makes the preparation durable before its own records (the
// marker's bytes, the ranges directory, then its segment and the range's
// directory: RangeLog::SyncFirst, SyncSeedMarker), so nothing the range
// acknowledges outlives a crash without its recipe; the first snapshot's
// RemoveSeedMarker syncs the ranges directory too. A power loss before
// that may leave the directory with "seeded" and a missing or torn
// marker. Such a directory holds nothing that was durable (no snapshot,
// no segment with a record), and counts as empty (PreparedDirLost): the
// range is built again. With a record in it the same directory is
// CORRUPTION: only damage makes it, and the copy is made again from the
// replicas.
//
// Marker file, written in place (torn by a crash only while nothing
// depends on it, above), in the framing of kvnode/storage/field_codec.h
// (little-endian; a span as specified there):
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
// marker (SeedMarkerStale), one holding this does. Synced with the
// range's first log sync; lost in a crash before it, the directory is
// empty and built again.
inline constexpr char kSeededFileName[] = "seeded";

// Nothing is durable on return: SyncSeedMarker makes the marker's bytes
// and name durable.
Status WriteSeedMarker(fs::FileSystem& fs, const std::string& range_dir, const SeedRecipe& recipe);
// The marker's bytes (when it is still there), then the ranges directory
// (its name and the range directory's entry).
Status SyncSeedMarker(fs::FileSystem& fs, const std::string& range_dir);
// A directory PrepareSeeded made that a crash took back before its first
// log sync or snapshot: "seeded" in it, no snapshot, no segment holding a
// record, and no readable marker beside it. Nothing in it was durable:
// it is built again as if it were empty. names: the directory's listing.
bool PreparedDirLost(fs::FileSystem& fs, const std::string& range_dir,
                     const std::vector<std::string>& names);
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
