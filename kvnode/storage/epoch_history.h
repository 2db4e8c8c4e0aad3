// kvnode/storage/epoch_history.h — which ownership epoch wrote which part of a
// range's log (Kafka's leader-epoch cache).
//
// An entry (epoch e, start s) says "the first record written under epoch e
// is (or, if none is written yet, will be) seq s". Entries are strictly
// increasing in epoch and non-decreasing in start. A "base" describes a log
// that begins after a snapshot copied from another node: records up to
// base_seq are known only through that snapshot, the record at base_seq is
// taken to carry base_epoch, and nothing is known about the epochs of
// records below it (EpochEnd answers 0 for older epochs, which makes a
// replica with such a tail resync instead of trusting it).
//
// File: `epochs` in the range directory, replaced atomically (written to
// `epochs.tmp`, fdatasync'ed, renamed, directory fsync'ed). Little-endian:
//
//   | off    | size | field            | rule                                     |
//   | ------ | ---- | ---------------- | ---------------------------------------- |
//   |      0 |    8 | magic            | kEpochsMagic, "RKVEPCH\n"                |
//   |      8 |    4 | version          | kEpochsVersion (1); others are refused   |
//   |     12 |    4 | entry count n    | n <= kMaxEpochEntries                    |
//   |     16 |    8 | base seq         | 0: the log began at seq 1                |
//   |     24 |    8 | base epoch       | epoch of the record at base seq          |
//   |     32 |    8 | consistent from  | end seq E of the installed snapshot (the |
//   |        |      |                  | map is consistent once E is applied); 0  |
//   |     40 | 16×n | (epoch, start)   | epoch u64, start seq u64, as above       |
//   | 40+16n |    4 | crc              | crc32c::Mask(CRC32C(bytes before it))    |
//
// The file is advisory next to the log, which is the truth: recovery keeps
// the entries that start before the log's first record, re-derives the rest
// from the records' epochs, and keeps a trailing entry that starts right
// after the last record (an epoch begun with no record yet).
//
// Thread-safety: a value type; the store guards it with its own mutex.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/fs.h"
#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

inline constexpr char kEpochsMagic[8] = {'R', 'K', 'V', 'E', 'P', 'C', 'H', '\n'};
inline constexpr uint32_t kEpochsVersion = 1;
inline constexpr uint32_t kMaxEpochEntries = 1u << 20;
inline constexpr char kEpochsFileName[] = "epochs";
inline constexpr char kEpochsTempName[] = "epochs.tmp";

struct EpochStart {
  Epoch epoch{0};
  Seq start{0};
  friend bool operator==(const EpochStart&, const EpochStart&) = default;
};

class EpochHistory {
 public:
  // Reads dir/epochs; a missing file is an empty history. CORRUPTION when
  // the file does not check.
  static Result<EpochHistory> Load(fs::FileSystem& fs, const std::string& dir);
  // Replaces dir/epochs durably.
  Status Save(fs::FileSystem& fs, const std::string& dir) const;

  const std::vector<EpochStart>& entries() const { return entries_; }
  Seq base_seq() const { return base_seq_; }
  Epoch base_epoch() const { return base_epoch_; }
  Seq consistent_from() const { return consistent_from_; }
  void SetBase(Seq seq, Epoch epoch, Seq consistent_from);

  // The newest epoch known: of the last entry, else the base epoch, else 0.
  Epoch last_epoch() const;
  // The epoch of the record at seq per the history (base epoch or 0 when no
  // entry starts at or before it).
  Epoch EpochAt(Seq seq) const;
  // The last seq written under an epoch <= e, for a log ending at `last`:
  // the start of the first entry with epoch > e, minus 1; `last` when there
  // is none; 0 when e is older than the base epoch (unknown).
  Seq EpochEnd(Epoch e, Seq last) const;

  // Adds (e, start) when e is newer than the last entry's epoch (with no
  // entry: not older than the base epoch); never for epoch 0. Returns
  // whether it changed anything. start must not be below the last entry's.
  bool Append(Epoch e, Seq start);
  // Drops every entry that starts after seq. Returns whether it changed.
  bool TruncateAfter(Seq seq);
  // Drops every entry that starts at or after seq (recovery re-derives them).
  void DropFrom(Seq seq);

  friend bool operator==(const EpochHistory&, const EpochHistory&) = default;

 private:
  std::vector<EpochStart> entries_;
  Seq base_seq_{0};
  Epoch base_epoch_{0};
  Seq consistent_from_{0};
};

}  // namespace rangekv::kvnode
