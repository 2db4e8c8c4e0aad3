#include "kvnode/storage/wal.h"

#include <algorithm>

#include "common/log.h"

namespace rangekv::kvnode::wal {
namespace {

Status Corrupt(uint64_t offset, const std::string& what) {
  return Status(Code::kCorruption, "offset " + std::to_string(offset) + ": " + what);
}

bool AllZeros(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

// Offset of the first crc-valid record header at or after `from` whose seq is
// at least min_seq (and not absurdly far past it), or npos. Linear: the crc
// runs only where the seq field is plausible.
size_t FindValidHeader(std::string_view data, size_t from, Seq min_seq) {
  if (data.size() < kRecordHeaderSize) return std::string_view::npos;
  const uint64_t lo = min_seq.value();
  const uint64_t hi = lo + data.size() / kRecordHeaderSize + 1;
  for (size_t p = from; p + kRecordHeaderSize <= data.size(); ++p) {
    const uint64_t seq = GetFixed64(data.data() + p + 8);
    if (seq < lo || seq > hi) continue;
    RecordHeader h;
    HeaderCheck c = CheckRecordHeader(data.data() + p, &h);
    if (c == HeaderCheck::kValid || c == HeaderCheck::kBadField) return p;
  }
  return std::string_view::npos;
}

// Classifies a bad spot at `off` in the newest segment: a tail to cut, or
// corruption when a valid record header appears at or after resume_from.
Status JudgeNewestTail(std::string_view data, uint64_t off, size_t resume_from, Seq expected,
                       const std::string& reason, SegmentSummary* s) {
  size_t found = FindValidHeader(data, resume_from, expected);
  if (found != std::string_view::npos) {
    return Corrupt(off,
                   reason + "; a valid record header follows at offset " + std::to_string(found));
  }
  s->valid_bytes = off;
  s->end = AllZeros(data.substr(off)) ? SegmentEnd::kZeroTail : SegmentEnd::kTornTail;
  s->tail_reason = reason;
  return Status::Ok();
}

}  // namespace

Result<SegmentSummary> ReadSegment(std::string_view data, SegmentRole role,
                                   const RecordVisitor& visit) {
  SegmentSummary s;
  Result<SegmentHeader> header = DecodeSegmentHeader(data);
  if (!header.ok()) {
    if (role == SegmentRole::kNewest &&
        FindValidHeader(data, 0, Seq(1)) == std::string_view::npos) {
      s.end = SegmentEnd::kTornHeader;
      s.tail_reason = header.status().message();
      return s;
    }
    return header.status();
  }
  s.header = *header;
  Seq expected = s.header.first_seq;
  uint64_t off = kSegmentHeaderSize;
  while (off < data.size()) {
    const uint64_t remaining = data.size() - off;
    std::string reason;
    size_t resume = off + 1;
    RecordHeader h;
    HeaderCheck check = HeaderCheck::kBadCrc;
    if (remaining < kRecordHeaderSize) {
      reason = "incomplete record header (" + std::to_string(remaining) + " bytes)";
    } else {
      check = CheckRecordHeader(data.data() + off, &h);
      if (check == HeaderCheck::kAllZeros) reason = "zero-filled record header";
      if (check == HeaderCheck::kBadCrc) reason = "record header crc mismatch";
      if (check == HeaderCheck::kBadField) {
        return Corrupt(off, "record header has a valid crc but an invalid length, type or flags");
      }
    }
    if (check == HeaderCheck::kValid) {
      if (h.seq != expected) {
        return Corrupt(off, "record seq " + std::to_string(h.seq.value()) + ", expected " +
                                std::to_string(expected.value()));
      }
      if (h.length > remaining - kRecordHeaderSize) {
        reason = "record payload of " + std::to_string(h.length) + " bytes runs past the end";
        resume = off + kRecordHeaderSize;
      } else {
        std::string_view payload = data.substr(off + kRecordHeaderSize, h.length);
        if (PayloadCrc(h.type, payload) == h.payload_crc) {
          Status st = visit(RecordView{h.seq, h.type, payload, off});
          if (!st.ok()) return st.WithContext("offset " + std::to_string(off));
          ++s.records;
          s.last_seq = h.seq;
          expected = h.seq.Next();
          off += kRecordHeaderSize + h.length;
          continue;
        }
        reason = "record payload crc mismatch (seq " + std::to_string(h.seq.value()) + ")";
        // Search from the end of the header, not of the claimed payload:
        // bytes cut out of the middle of a log leave a crc-valid header
        // whose length reaches over the start of the next record.
        resume = off + kRecordHeaderSize;
      }
    }
    if (role == SegmentRole::kOlder) return Corrupt(off, reason + " in an older segment");
    RANGEKV_RETURN_IF_ERROR(JudgeNewestTail(data, off, resume, expected, reason, &s));
    break;
  }
  if (s.end == SegmentEnd::kClean) s.valid_bytes = off;
  if (s.records == 0) s.last_seq = Seq(s.header.first_seq.value() - 1);
  return s;
}

Result<std::unique_ptr<SegmentWriter>> SegmentWriter::Create(fs::FileSystem& fs,
                                                             const std::string& dir, RangeId range,
                                                             Seq first) {
  const std::string path = fs::JoinPath(dir, SegmentFileName(first));
  RANGEKV_ASSIGN_OR_RETURN(auto file, fs.OpenAppend(path, fs::AppendFile::Mode::kTruncate));
  SegmentHeader h;
  h.range = range;
  h.first_seq = first;
  RANGEKV_RETURN_IF_ERROR(file->Append(EncodeSegmentHeader(h)));
  return std::unique_ptr<SegmentWriter>(new SegmentWriter(std::move(file), first, &fs, dir));
}

Result<std::unique_ptr<SegmentWriter>> SegmentWriter::Reopen(fs::FileSystem& fs,
                                                             const std::string& path, Seq first,
                                                             uint64_t valid_bytes) {
  RANGEKV_ASSIGN_OR_RETURN(auto file, fs.OpenAppend(path, fs::AppendFile::Mode::kOpenExisting));
  if (file->size() != valid_bytes) {
    LOG_WARN(path << ": cutting " << (file->size() - valid_bytes)
                  << " bytes of torn or unused tail at offset " << valid_bytes);
    RANGEKV_RETURN_IF_ERROR(file->Truncate(valid_bytes));
    RANGEKV_RETURN_IF_ERROR(file->Sync());
  }
  return std::unique_ptr<SegmentWriter>(new SegmentWriter(std::move(file), first, &fs, ""));
}

void SegmentWriter::SyncFirst(std::function<Status()> work) {
  MutexLock lock(first_mu_);
  first_work_ = std::move(work);
  first_pending_.store(first_work_ != nullptr);
}

Status SegmentWriter::Sync() {
  if (first_pending_.load()) {
    MutexLock lock(first_mu_);
    if (first_work_) RANGEKV_RETURN_IF_ERROR(first_work_());
    first_work_ = nullptr;
    first_pending_.store(false);
  }
  RANGEKV_RETURN_IF_ERROR(file_->Sync());
  if (!dir_unsynced_.load()) return Status::Ok();
  RANGEKV_RETURN_IF_ERROR(fs_->SyncDir(dir_to_sync_));
  dir_unsynced_.store(false);
  return Status::Ok();
}

Status SegmentWriter::Append(std::span<const std::string_view> records) {
  const uint64_t before = file_->size();
  Status st = file_->AppendV(records);
  if (!st.ok()) {
    // Best effort: leave no partial group behind. If this fails too, the
    // next Open treats the leftovers by the recovery rules.
    Status cut = file_->Truncate(before);
    if (!cut.ok()) LOG_ERROR("after a failed append: " << cut.ToString());
  }
  return st;
}

}  // namespace rangekv::kvnode::wal
