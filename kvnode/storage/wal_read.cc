// Reading records back out of a segment file for replication
// (wal::ReadSegmentRecords, kvnode/storage/wal.h).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kvnode/storage/wal.h"

namespace rangekv::kvnode::wal {
namespace {

constexpr size_t kReadChunk = 1u << 20;

// A read-only file read through a window buffer with pread.
class WindowReader {
 public:
  explicit WindowReader(std::string path) : path_(std::move(path)) {}
  ~WindowReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  WindowReader(const WindowReader&) = delete;
  WindowReader& operator=(const WindowReader&) = delete;

  Status Open() {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Errno("open");
    return Status::Ok();
  }

  // Makes [off, off + n) available; *have is false when the file ends first.
  Status Ensure(uint64_t off, size_t n, bool* have) {
    *have = true;
    if (off >= buf_off_ && off + n <= buf_off_ + buf_.size()) return Status::Ok();
    buf_.resize(std::max(n, kReadChunk));
    size_t got = 0;
    while (got < buf_.size()) {
      ssize_t r = ::pread(fd_, buf_.data() + got, buf_.size() - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Errno("pread");
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    buf_.resize(got);
    buf_off_ = off;
    *have = got >= n;
    return Status::Ok();
  }
  std::string_view View(uint64_t off, size_t n) const {
    return std::string_view(buf_).substr(off - buf_off_, n);
  }
  const std::string& path() const { return path_; }

 private:
  Status Errno(const char* op) const {
    return Status(Code::kIoError, path_ + ": " + op + ": " + std::strerror(errno));
  }
  std::string path_;
  int fd_ = -1;
  std::string buf_;
  uint64_t buf_off_ = 0;
};

Status Corrupt(const std::string& path, uint64_t off, const std::string& what) {
  return Status(Code::kCorruption, path + ": offset " + std::to_string(off) + ": " + what);
}

}  // namespace

Result<RecordPosition> ReadSegmentRecords(const std::string& path, RecordPosition start, Seq from,
                                          Seq through, size_t max_bytes,
                                          std::vector<RawRecord>* out) {
  WindowReader f(path);
  RANGEKV_RETURN_IF_ERROR(f.Open());
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
