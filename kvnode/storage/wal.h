// kvnode/storage/wal.h — reading and writing WAL segments (format: kvnode/storage/wal_format.h).
//
// Reading is I/O-free: ReadSegment parses the bytes of one segment file held
// in memory, so it can be fuzzed (tests/fuzz/wal_reader_fuzz.cc) and tested
// byte by byte. Writing goes through SegmentWriter, owned by the log thread.
//
// Recovery rules (docs/design.md §6). A "bad spot" is the first place in a segment
// where a whole, valid record should start but does not: fewer than 24 bytes
// left, a header of all zeros, a header whose crc does not match, or a valid
// header whose payload is cut short by the end of the file or fails its crc.
//
//   | where                      | what follows the bad spot            | outcome          |
//   | -------------------------- | ------------------------------------ | ---------------- |
//   | an older segment           | anything                             | CORRUPTION       |
//   | the newest segment         | only zeros (or nothing)              | kZeroTail: cut   |
//   | the newest segment         | bytes, but no valid record header    | kTornTail: cut   |
//   | the newest segment         | a record header with a valid crc     | CORRUPTION       |
//   | any segment                | crc-valid header with a wrong seq,   | CORRUPTION       |
//   |                            | unknown type/flags, or undecodable   |                  |
//   | newest segment's header    | no valid record header after it      | kTornHeader      |
//   | newest segment's header    | a valid record header after it       | CORRUPTION       |
//
// "Cut" means the store truncates the newest segment back to valid_bytes
// before appending again. The "valid record header follows" test is what
// separates a crash in the middle of the last append (nothing valid can
// follow it) from damage in the middle of the log (records after it would be
// lost silently if we cut there). A search for such a header only accepts a
// seq at or above the one expected next, and a header's own crc must match,
// so payload bytes are mistaken for a header with probability ~2^-32 per
// position; the mistake's direction is safe (refuse to start, never drop).
//
// Thread-safety: ReadSegment is a pure function. A SegmentWriter is used by
// one thread at a time.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fs.h"
#include "common/mutex.h"
#include "common/types.h"
#include "kvnode/storage/wal_format.h"
#include "rangekv/status.h"

namespace rangekv::kvnode::wal {

// Whether a segment is the newest of its log: only the newest may end in a
// torn or zero-filled tail.
enum class SegmentRole : uint8_t { kOlder, kNewest };

enum class SegmentEnd : uint8_t {
  kClean,       // the bytes end exactly after the last whole record
  kZeroTail,    // only zero bytes follow the last whole record (newest only)
  kTornTail,    // an incomplete or damaged last record follows (newest only)
  kTornHeader,  // the segment header itself is incomplete and nothing valid
                // follows it (newest only): the segment holds no records
};

struct RecordView {
  Seq seq{0};
  RecordType type = RecordType::kZero;
  std::string_view payload;  // points into the segment bytes
  uint64_t offset = 0;       // of the record header in the segment
};

struct SegmentSummary {
  SegmentHeader header;  // meaningful unless end == kTornHeader
  uint64_t records = 0;
  Seq last_seq{0};           // header.first_seq - 1 when there are no records
  uint64_t valid_bytes = 0;  // end of the last whole record (0 for kTornHeader)
  SegmentEnd end = SegmentEnd::kClean;
  std::string tail_reason;  // what was found at valid_bytes when end != kClean
};

// Called for each whole record in order. A non-OK Status stops the read and
// is returned with the record's offset prepended.
using RecordVisitor = std::function<Status(const RecordView&)>;

// Parses one segment, calling visit for each whole record, and applies the
// recovery rules above. CORRUPTION messages start with "offset N: "; the
// caller adds the file name. Never reads outside `data`; time is linear in
// its size.
Result<SegmentSummary> ReadSegment(std::string_view data, SegmentRole role,
                                   const RecordVisitor& visit);

// ---- reading records back (replication) ------------------------------------

// A record boundary in a segment file: record `seq` starts at `offset`.
struct RecordPosition {
  Seq seq{0};
  uint64_t offset = 0;
};

// One whole record as stored: header + payload bytes.
struct RawRecord {
  Seq seq{0};
  Epoch epoch{0};       // the payload's epoch field
  uint64_t offset = 0;  // of the header in its segment
  std::string bytes;
};

// Reads the records with from <= seq <= through of the segment file at
// `path` with pread (never mmap: the file may be cut by a truncation while
// this runs, and a cut mapping would fault). The scan starts at `start`, a
// record boundary at or before `from` (e.g. {first seq, kSegmentHeaderSize});
// records are appended to *out while they total at most max_bytes (but at
// least one).
// Each header and payload crc is checked and seqs must be consecutive:
// CORRUPTION otherwise, also when the file ends before record `through`
// (the caller passes a seq it knows the segment holds). Returns the
// boundary after the last record read.
Result<RecordPosition> ReadSegmentRecords(fs::FileSystem& fs, const std::string& path,
                                          RecordPosition start, Seq from, Seq through,
                                          size_t max_bytes, std::vector<RawRecord>* out);

// Appends records to one segment file.
class SegmentWriter {
 public:
  // Creates wal-<first>.log in dir with its header (replacing a file of that
  // name, which recovery has already judged empty). Nothing is synced yet:
  // the first Sync makes the header and the directory entry durable with
  // the first records (a new range's first write, a rotation's next group),
  // so creating a segment costs no fsync of its own. Until then a crash may
  // leave no file or a torn header, which recovery treats as a segment
  // that held nothing durable (kTornHeader above).
  static Result<std::unique_ptr<SegmentWriter>> Create(fs::FileSystem& fs, const std::string& dir,
                                                       RangeId range, Seq first);
  // Continues an existing segment whose whole records end at valid_bytes,
  // cutting off anything after that first (and syncing the cut).
  static Result<std::unique_ptr<SegmentWriter>> Reopen(fs::FileSystem& fs, const std::string& path,
                                                       Seq first, uint64_t valid_bytes);

  // Writes complete encoded records (header + payload each) in one writev.
  // On error the file is cut back to where it was (best effort) and the
  // error returned; the caller must then stop appending.
  Status Append(std::span<const std::string_view> records);
  // The work SyncFirst left (once), the file, then (once) the directory
  // entry Create left unsynced.
  Status Sync();
  // Work the next Sync does before the file's sync, once, that no record
  // of this segment counts as durable without: a new range's directory,
  // prepared without an fsync of its own (kvnode/storage/store_seed.h).
  // Concurrent Syncs wait for it; a failure leaves it for the next Sync.
  void SyncFirst(std::function<Status()> work);
  // Cuts the segment back to `size` bytes (undoing a group that failed).
  Status Truncate(uint64_t size) { return file_->Truncate(size); }
  Status Close() { return file_->Close(); }

  Seq first_seq() const { return first_; }
  uint64_t size() const { return file_->size(); }
  const std::string& path() const { return file_->path(); }

 private:
  SegmentWriter(std::unique_ptr<fs::AppendFile> file, Seq first, fs::FileSystem* fs,
                std::string dir_to_sync)
      : file_(std::move(file)), first_(first), fs_(fs), dir_to_sync_(std::move(dir_to_sync)) {
    dir_unsynced_.store(!dir_to_sync_.empty());
  }
  std::unique_ptr<fs::AppendFile> file_;
  Seq first_;
  fs::FileSystem* fs_;
  std::string dir_to_sync_;  // empty: the entry was durable when opened
  // Atomic: a snapshot's SyncThrough may sync while the log thread does.
  std::atomic<bool> dir_unsynced_{false};
  std::atomic<bool> first_pending_{false};
  Mutex first_mu_;
  std::function<Status()> first_work_ GUARDED_BY(first_mu_);
};

}  // namespace rangekv::kvnode::wal
