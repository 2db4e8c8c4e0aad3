// kvnode/storage/snapshot.h — the snapshot file of a range's map.
//
// A snapshot is the map written in key order while writes go on (a "fuzzy"
// snapshot): it is read in chunks under a shared lock, so each entry is the
// key's state at some moment between seq R ("replay from", the applied Seq
// when writing started) and seq E ("end", the applied Seq when it finished).
// Replaying the log from R+1 through at least E on top of it yields exactly
// the map at E, because every record sets or removes whole keys: a key whose
// entry came from after a write is simply set again by that write's record.
// The file is therefore named by R, and recovery needs the log from R+1.
//
//   snap-<R, 20 digits>.snap        the committed snapshot
//   snap-<R, 20 digits>.snap.tmp    while being written; removed at Open
//
// Layout, all integers little-endian, "crc(x)" = crc32c::Mask(CRC32C(x)):
//
//   | part   | off | size | field          | rule                                   |
//   | ------ | --- | ---- | -------------- | -------------------------------------- |
//   | header |   0 |    8 | magic          | kSnapshotMagic, "RKVSNAP\n"            |
//   |        |   8 |    4 | version        | kSnapshotVersion (1)                   |
//   |        |  12 |    4 | feature flags  | 0; a reader refuses unknown bits       |
//   |        |  16 |    8 | range id       | must match the store's RangeId         |
//   |        |  24 |    8 | replay from R  | the file name's Seq                    |
//   |        |  32 |    4 | reserved       | 0                                      |
//   |        |  36 |    4 | header crc     | crc(bytes 0..35)                       |
//   | entry  |   0 |    4 | key length k   | ≤ kMaxSnapshotKey                      |
//   | (× n)  |   4 |    4 | value length v | ≤ kMaxSnapshotValue                    |
//   |        |   8 |    8 | version        | 1 ≤ version ≤ E                        |
//   |        |  16 |  k+v | key, value     | keys strictly increasing               |
//   | footer |   0 |    8 | entry count n  |                                        |
//   |        |   8 |    8 | end seq E      | E ≥ R                                  |
//   |        |  16 |    8 | entries bytes  | = file size − 40 − 40                  |
//   |        |  24 |    4 | entries crc    | crc(all entry bytes)                   |
//   |        |  28 |    4 | footer crc     | crc(footer bytes 0..27)                |
//   |        |  32 |    8 | end magic      | kSnapshotEndMagic, "RKVSEND\n"         |
//
// Durability: written to the .tmp name, fdatasync'ed, renamed, directory
// fsync'ed. The store keeps the previous snapshot until the new one is
// durable (kvnode/storage/range_store.h).
//
// Thread-safety: a SnapshotWriter is used by one thread; ReadSnapshot is
// safe from any thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/types.h"
#include "common/fs.h"
#include "rangekv/status.h"

namespace rangekv::kvnode::snapshot {

inline constexpr char kSnapshotMagic[8] = {'R', 'K', 'V', 'S', 'N', 'A', 'P', '\n'};
inline constexpr char kSnapshotEndMagic[8] = {'R', 'K', 'V', 'S', 'E', 'N', 'D', '\n'};
inline constexpr uint32_t kSnapshotVersion = 1;
inline constexpr size_t kHeaderSize = 40;
inline constexpr size_t kFooterSize = 40;
inline constexpr size_t kEntryFixed = 16;
inline constexpr uint32_t kMaxSnapshotKey = 1u << 20;      // generous: keys are ≤ 4 KiB today
inline constexpr uint32_t kMaxSnapshotValue = 256u << 20;  // values are ≤ 1 MiB today

std::string SnapshotFileName(Seq replay_from);
// True for "snap-<20 digits>.snap"; sets *replay_from.
bool ParseSnapshotName(std::string_view name, Seq* replay_from);
// True for a leftover "snap-*.snap.tmp".
bool IsSnapshotTempName(std::string_view name);

struct SnapshotInfo {
  Seq replay_from{0};
  Seq end{0};
  uint64_t entries = 0;
};

// Writes one snapshot. Buffer entries with Add (no I/O; cheap enough to call
// under the map's lock), push them to the file with Flush, then Finish and
// Commit. Destroying an uncommitted writer removes the temp file.
class SnapshotWriter {
 public:
  static Result<std::unique_ptr<SnapshotWriter>> Create(fs::FileSystem& fs, const std::string& dir,
                                                        RangeId range, Seq replay_from);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Appends one entry to the in-memory buffer; keys must be added in
  // strictly increasing order.
  void Add(std::string_view key, std::string_view value, uint64_t version);
  size_t buffered() const { return buf_.size(); }
  // Writes the buffer out.
  Status Flush();
  // Flushes, writes the footer with end seq `end`, syncs and closes.
  Status Finish(Seq end);
  // Renames the temp file to its final name and syncs the directory.
  Status Commit();

  const std::string& final_path() const { return final_path_; }

 private:
  SnapshotWriter(fs::FileSystem& fs, std::string dir, std::string final_path,
                 std::unique_ptr<fs::AppendFile> f, Seq replay_from);
  fs::FileSystem& fs_;
  std::string dir_;
  std::string final_path_;
  std::unique_ptr<fs::AppendFile> file_;
  Seq replay_from_;
  std::string buf_;
  uint32_t crc_ = 0;  // unmasked running crc of the entry bytes written
  uint64_t entries_ = 0;
  uint64_t entry_bytes_ = 0;
  bool committed_ = false;
};

// Checks only the header and footer (not the entries) and returns what
// they say: cheap, for a snapshot this store wrote and verified before.
Result<SnapshotInfo> ReadSnapshotInfo(fs::FileSystem& fs, const std::string& path, RangeId range);

// Called for each entry in key order.
using EntryVisitor =
    std::function<void(std::string_view key, std::string_view value, uint64_t version)>;

// Verifies a whole snapshot (header, footer, entries crc, then structure)
// before and while calling visit. CORRUPTION naming the path on any
// mismatch; a caller must then discard whatever visit has collected.
Result<SnapshotInfo> ReadSnapshot(fs::FileSystem& fs, const std::string& path, RangeId range,
                                  const EntryVisitor& visit);

}  // namespace rangekv::kvnode::snapshot
