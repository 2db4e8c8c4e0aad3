// Reading records back out of a segment file for replication
// (wal::ReadSegmentRecords, kvnode/storage/wal.h).
#include <algorithm>

#include "kvnode/storage/wal.h"

namespace rangekv::kvnode::wal {
namespace {

constexpr size_t kReadChunk = 1u << 20;

// A read-only file read through a window buffer (pread).
class WindowReader {
 public:
  explicit WindowReader(std::unique_ptr<fs::ReadFile> file) : file_(std::move(file)) {}

  // Makes [off, off + n) available; *have is false when the file ends first.
  Status Ensure(uint64_t off, size_t n, bool* have) {
    *have = true;
    if (off >= buf_off_ && off + n <= buf_off_ + buf_.size()) return Status::Ok();
    buf_.resize(std::max(n, kReadChunk));
    RANGEKV_ASSIGN_OR_RETURN(size_t got, file_->ReadAt(off, buf_.data(), buf_.size()));
    buf_.resize(got);
    buf_off_ = off;
    *have = got >= n;
    return Status::Ok();
  }
  std::string_view View(uint64_t off, size_t n) const {
    return std::string_view(buf_).substr(off - buf_off_, n);
  }

 private:
  std::unique_ptr<fs::ReadFile> file_;
  std::string buf_;
  uint64_t buf_off_ = 0;
};

Status Corrupt(const std::string& path, uint64_t off, const std::string& what) {
  return Status(Code::kCorruption, path + ": offset " + std::to_string(off) + ": " + what);
}

}  // namespace

Result<RecordPosition> ReadSegmentRecords(fs::FileSystem& fs, const std::string& path,
                                          RecordPosition start, Seq from, Seq through,
                                          size_t max_bytes, std::vector<RawRecord>* out) {
  RANGEKV_ASSIGN_OR_RETURN(auto file, fs.OpenRead(path));
  WindowReader f(std::move(file));
  RecordPosition pos = start;
  size_t bytes = 0;
  bool any = false;
  while (pos.seq <= through) {
    bool have = false;
    RANGEKV_RETURN_IF_ERROR(f.Ensure(pos.offset, kRecordHeaderSize, &have));
    if (!have) {
      return Corrupt(path, pos.offset, "record " + std::to_string(pos.seq.value()) + " is missing");
    }
    RecordHeader h;
    if (CheckRecordHeader(f.View(pos.offset, kRecordHeaderSize).data(), &h) !=
            HeaderCheck::kValid ||
        h.seq != pos.seq) {
      return Corrupt(path, pos.offset,
                     "no valid record header for seq " + std::to_string(pos.seq.value()));
    }
    const size_t total = kRecordHeaderSize + h.length;
    RANGEKV_RETURN_IF_ERROR(f.Ensure(pos.offset, total, &have));
    if (!have) return Corrupt(path, pos.offset, "record payload runs past the end of the file");
    std::string_view rec = f.View(pos.offset, total);
    std::string_view payload = rec.substr(kRecordHeaderSize);
    if (PayloadCrc(h.type, payload) != h.payload_crc) {
      return Corrupt(path, pos.offset, "record payload crc mismatch");
    }
    if (h.seq >= from) {
      if (any && bytes + total > max_bytes) break;
      out->push_back(RawRecord{h.seq, PayloadEpoch(payload), pos.offset, std::string(rec)});
      bytes += total;
      any = true;
    }
    pos = RecordPosition{h.seq.Next(), pos.offset + total};
  }
  return pos;
}

}  // namespace rangekv::kvnode::wal
