#include "kvnode/storage/snapshot.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "common/crc32c.h"
#include "common/log.h"
#include "kvnode/storage/wal_format.h"

namespace rangekv::kvnode::snapshot {
namespace {

using wal::GetFixed32;
using wal::GetFixed64;
using wal::PutFixed32;
using wal::PutFixed64;

constexpr std::string_view kPrefix = "snap-";
constexpr std::string_view kSuffix = ".snap";
constexpr std::string_view kTempSuffix = ".tmp";

uint32_t MaskedCrc(const char* p, size_t n) { return crc32c::Mask(crc32c::Value(p, n)); }

Status Corrupt(const std::string& path, uint64_t off, const std::string& what) {
  return Status(Code::kCorruption, path + ": offset " + std::to_string(off) + ": snapshot " + what);
}

std::string EncodeHeader(RangeId range, Seq replay_from) {
  std::string h(kHeaderSize, '\0');
  std::memcpy(h.data(), kSnapshotMagic, 8);
  PutFixed32(h.data() + 8, kSnapshotVersion);
  PutFixed32(h.data() + 12, 0);
  PutFixed64(h.data() + 16, range.value());
  PutFixed64(h.data() + 24, replay_from.value());
  PutFixed32(h.data() + 32, 0);
  PutFixed32(h.data() + 36, MaskedCrc(h.data(), 36));
  return h;
}

Status CheckHeader(const std::string& path, std::string_view d, RangeId range, SnapshotInfo* info) {
  const char* p = d.data();
  if (std::memcmp(p, kSnapshotMagic, 8) != 0) return Corrupt(path, 0, "bad magic");
  if (GetFixed32(p + 36) != MaskedCrc(p, 36)) return Corrupt(path, 0, "header crc mismatch");
  if (GetFixed32(p + 8) != kSnapshotVersion) return Corrupt(path, 8, "unsupported version");
  if (GetFixed32(p + 12) != 0) return Corrupt(path, 12, "unknown feature flags");
  if (GetFixed64(p + 16) != range.value()) {
    return Corrupt(path, 16, "belongs to range " + std::to_string(GetFixed64(p + 16)));
  }
  info->replay_from = Seq(GetFixed64(p + 24));
  return Status::Ok();
}

// Checks the footer and the entries crc; sets *entries to the entry bytes.
Status CheckFooter(const std::string& path, std::string_view d, SnapshotInfo* info,
                   std::string_view* entries) {
  const size_t foff = d.size() - kFooterSize;
  const char* f = d.data() + foff;
  if (std::memcmp(f + 32, kSnapshotEndMagic, 8) != 0) return Corrupt(path, foff, "bad end magic");
  if (GetFixed32(f + 28) != MaskedCrc(f, 28)) return Corrupt(path, foff, "footer crc mismatch");
  info->entries = GetFixed64(f);
  info->end = Seq(GetFixed64(f + 8));
  if (GetFixed64(f + 16) != foff - kHeaderSize) {
    return Corrupt(path, foff, "entry bytes do not match the file size");
  }
  if (info->end < info->replay_from) return Corrupt(path, foff, "end seq below replay seq");
  *entries = d.substr(kHeaderSize, foff - kHeaderSize);
  if (crc32c::Mask(crc32c::Value(*entries)) != GetFixed32(f + 24)) {
    return Corrupt(path, kHeaderSize, "entries crc mismatch");
  }
  return Status::Ok();
}

}  // namespace

std::string SnapshotFileName(Seq replay_from) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "snap-%020" PRIu64 ".snap", replay_from.value());
  return buf;
}

bool ParseSnapshotName(std::string_view name, Seq* replay_from) {
  if (name.size() != kPrefix.size() + 20 + kSuffix.size()) return false;
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  uint64_t v = 0;
  for (char c : name.substr(kPrefix.size(), 20)) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *replay_from = Seq(v);
  return true;
}

bool IsSnapshotTempName(std::string_view name) {
  return name.size() > kPrefix.size() + kTempSuffix.size() &&
         name.substr(0, kPrefix.size()) == kPrefix &&
         name.substr(name.size() - kTempSuffix.size()) == kTempSuffix;
}

SnapshotWriter::SnapshotWriter(fs::FileSystem& fs, std::string dir, std::string final_path,
                               std::unique_ptr<fs::AppendFile> f, Seq replay_from)
    : fs_(fs),
      dir_(std::move(dir)),
      final_path_(std::move(final_path)),
      file_(std::move(f)),
      replay_from_(replay_from) {}

SnapshotWriter::~SnapshotWriter() {
  if (committed_) return;
  (void)file_->Close();
  (void)fs_.Remove(file_->path());
}

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(fs::FileSystem& fs,
                                                               const std::string& dir,
                                                               RangeId range, Seq replay_from) {
  std::string final_path = fs::JoinPath(dir, SnapshotFileName(replay_from));
  RANGEKV_ASSIGN_OR_RETURN(auto file, fs.OpenAppend(final_path + std::string(kTempSuffix),
                                                    fs::AppendFile::Mode::kTruncate));
  RANGEKV_RETURN_IF_ERROR(file->Append(EncodeHeader(range, replay_from)));
  return std::unique_ptr<SnapshotWriter>(
      new SnapshotWriter(fs, dir, std::move(final_path), std::move(file), replay_from));
}

void SnapshotWriter::Add(std::string_view key, std::string_view value, uint64_t version) {
  char fixed[kEntryFixed];
  PutFixed32(fixed, static_cast<uint32_t>(key.size()));
  PutFixed32(fixed + 4, static_cast<uint32_t>(value.size()));
  PutFixed64(fixed + 8, version);
  buf_.append(fixed, kEntryFixed);
  buf_.append(key);
  buf_.append(value);
  ++entries_;
}

Status SnapshotWriter::Flush() {
  if (buf_.empty()) return Status::Ok();
  crc_ = crc32c::Extend(crc_, buf_.data(), buf_.size());
  entry_bytes_ += buf_.size();
  RANGEKV_RETURN_IF_ERROR(file_->Append(buf_));
  buf_.clear();
  return Status::Ok();
}

Status SnapshotWriter::Finish(Seq end) {
  RANGEKV_RETURN_IF_ERROR(Flush());
  char f[kFooterSize];
  PutFixed64(f, entries_);
  PutFixed64(f + 8, end.value());
  PutFixed64(f + 16, entry_bytes_);
  PutFixed32(f + 24, crc32c::Mask(crc_));
  PutFixed32(f + 28, MaskedCrc(f, 28));
  std::memcpy(f + 32, kSnapshotEndMagic, 8);
  RANGEKV_RETURN_IF_ERROR(file_->Append(std::string_view(f, kFooterSize)));
  RANGEKV_RETURN_IF_ERROR(file_->Sync());
  return file_->Close();
}

Status SnapshotWriter::Commit() {
  RANGEKV_RETURN_IF_ERROR(fs_.Rename(file_->path(), final_path_));
  committed_ = true;
  return fs_.SyncDir(dir_);
}

namespace {
// Maps the file and checks its size and header (both readers start so).
Result<std::unique_ptr<fs::MappedFile>> OpenChecked(fs::FileSystem& fs, const std::string& path,
                                                    RangeId range, SnapshotInfo* info) {
  RANGEKV_ASSIGN_OR_RETURN(auto mapped, fs.Map(path));
  std::string_view d = mapped->data();
  if (d.size() < kHeaderSize + kFooterSize) {
    return Corrupt(path, 0, "is " + std::to_string(d.size()) + " bytes, too short");
  }
  RANGEKV_RETURN_IF_ERROR(CheckHeader(path, d, range, info));
  return mapped;
}
}  // namespace

Result<SnapshotInfo> ReadSnapshotInfo(fs::FileSystem& fs, const std::string& path, RangeId range) {
  SnapshotInfo info;
  RANGEKV_ASSIGN_OR_RETURN(auto mapped, OpenChecked(fs, path, range, &info));
  std::string_view d = mapped->data();
  const size_t foff = d.size() - kFooterSize;
  const char* f = d.data() + foff;
  if (std::memcmp(f + 32, kSnapshotEndMagic, 8) != 0) return Corrupt(path, foff, "bad end magic");
  if (GetFixed32(f + 28) != MaskedCrc(f, 28)) return Corrupt(path, foff, "footer crc mismatch");
  info.entries = GetFixed64(f);
  info.end = Seq(GetFixed64(f + 8));
  return info;
}

Result<SnapshotInfo> ReadSnapshot(fs::FileSystem& fs, const std::string& path, RangeId range,
                                  const EntryVisitor& visit) {
  SnapshotInfo info;
  RANGEKV_ASSIGN_OR_RETURN(auto mapped, OpenChecked(fs, path, range, &info));
  std::string_view d = mapped->data();
  std::string_view entries;
  RANGEKV_RETURN_IF_ERROR(CheckFooter(path, d, &info, &entries));
  size_t pos = 0;
  uint64_t count = 0;
  std::string_view prev;
  while (pos < entries.size()) {
    const uint64_t off = kHeaderSize + pos;
    if (entries.size() - pos < kEntryFixed) return Corrupt(path, off, "entry header cut short");
    const char* e = entries.data() + pos;
    const uint32_t klen = GetFixed32(e), vlen = GetFixed32(e + 4);
    const uint64_t version = GetFixed64(e + 8);
    if (klen > kMaxSnapshotKey || vlen > kMaxSnapshotValue ||
        entries.size() - pos - kEntryFixed < uint64_t{klen} + vlen) {
      return Corrupt(path, off, "entry lengths out of bounds");
    }
    if (version == 0 || version > info.end.value()) {
      return Corrupt(path, off, "entry version " + std::to_string(version) + " out of range");
    }
    std::string_view key = entries.substr(pos + kEntryFixed, klen);
    if (count > 0 && key <= prev) return Corrupt(path, off, "keys out of order");
    visit(key, entries.substr(pos + kEntryFixed + klen, vlen), version);
    prev = key;
    pos += kEntryFixed + klen + vlen;
    ++count;
  }
  if (count != info.entries) return Corrupt(path, d.size() - kFooterSize, "entry count mismatch");
  return info;
}

}  // namespace rangekv::kvnode::snapshot
