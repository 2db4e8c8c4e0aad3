#include "kvnode/storage/epoch_history.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/crc32c.h"
#include "common/fs.h"
#include "kvnode/storage/wal_format.h"

namespace rangekv::kvnode {
namespace {

using wal::GetFixed32;
using wal::GetFixed64;
using wal::PutFixed32;
using wal::PutFixed64;

constexpr size_t kFixed = 40;
constexpr size_t kEntrySize = 16;

Status Corrupt(const std::string& path, const std::string& what) {
  return Status(Code::kCorruption, path + ": epoch history " + what);
}

uint32_t MaskedCrc(std::string_view s) { return crc32c::Mask(crc32c::Value(s.data(), s.size())); }

}  // namespace

Result<EpochHistory> EpochHistory::Load(fs::FileSystem& fs, const std::string& dir) {
  const std::string path = fs::JoinPath(dir, kEpochsFileName);
  RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> is_dir, fs.IsDirectory(path));
  if (!is_dir) return EpochHistory{};
  RANGEKV_ASSIGN_OR_RETURN(auto mapped, fs.Map(path));
  std::string_view d = mapped->data();
  if (d.size() < kFixed + 4) return Corrupt(path, "is too short");
  if (std::memcmp(d.data(), kEpochsMagic, 8) != 0) return Corrupt(path, "has a bad magic");
  if (GetFixed32(d.data() + 8) != kEpochsVersion) return Corrupt(path, "has an unknown version");
  const uint32_t n = GetFixed32(d.data() + 12);
  if (n > kMaxEpochEntries || d.size() != kFixed + kEntrySize * n + 4) {
    return Corrupt(path, "size does not match its entry count");
  }
  if (GetFixed32(d.data() + d.size() - 4) != MaskedCrc(d.substr(0, d.size() - 4))) {
    return Corrupt(path, "crc mismatch");
  }
  EpochHistory h;
  h.base_seq_ = Seq(GetFixed64(d.data() + 16));
  h.base_epoch_ = Epoch(GetFixed64(d.data() + 24));
  h.consistent_from_ = Seq(GetFixed64(d.data() + 32));
  for (uint32_t i = 0; i < n; ++i) {
    const char* p = d.data() + kFixed + kEntrySize * i;
    EpochStart e{Epoch(GetFixed64(p)), Seq(GetFixed64(p + 8))};
    if (!h.entries_.empty() &&
        (e.epoch <= h.entries_.back().epoch || e.start < h.entries_.back().start)) {
      return Corrupt(path, "entries out of order");
    }
    h.entries_.push_back(e);
  }
  return h;
}

Status EpochHistory::Save(fs::FileSystem& fs, const std::string& dir) const {
  std::string out(kFixed + kEntrySize * entries_.size() + 4, '\0');
  char* p = out.data();
  std::memcpy(p, kEpochsMagic, 8);
  PutFixed32(p + 8, kEpochsVersion);
  PutFixed32(p + 12, static_cast<uint32_t>(entries_.size()));
  PutFixed64(p + 16, base_seq_.value());
  PutFixed64(p + 24, base_epoch_.value());
  PutFixed64(p + 32, consistent_from_.value());
  for (size_t i = 0; i < entries_.size(); ++i) {
    PutFixed64(p + kFixed + kEntrySize * i, entries_[i].epoch.value());
    PutFixed64(p + kFixed + kEntrySize * i + 8, entries_[i].start.value());
  }
  PutFixed32(p + out.size() - 4, MaskedCrc(std::string_view(out).substr(0, out.size() - 4)));
  const std::string tmp = fs::JoinPath(dir, kEpochsTempName);
  RANGEKV_ASSIGN_OR_RETURN(auto file, fs.OpenAppend(tmp, fs::AppendFile::Mode::kTruncate));
  RANGEKV_RETURN_IF_ERROR(file->Append(out));
  RANGEKV_RETURN_IF_ERROR(file->Sync());
  RANGEKV_RETURN_IF_ERROR(file->Close());
  RANGEKV_RETURN_IF_ERROR(fs.Rename(tmp, fs::JoinPath(dir, kEpochsFileName)));
  return fs.SyncDir(dir);
}

void EpochHistory::SetBase(Seq seq, Epoch epoch, Seq consistent_from) {
  base_seq_ = seq;
  base_epoch_ = epoch;
  consistent_from_ = consistent_from;
}

Epoch EpochHistory::last_epoch() const {
  return entries_.empty() ? base_epoch_ : entries_.back().epoch;
}

Epoch EpochHistory::EpochAt(Seq seq) const {
  Epoch e = base_epoch_;
  for (const EpochStart& s : entries_) {
    if (s.start > seq) break;
    e = s.epoch;
  }
  return e;
}

Seq EpochHistory::EpochEnd(Epoch e, Seq last) const {
  if (base_seq_.value() > 0 && e < base_epoch_) return Seq(0);
  for (const EpochStart& s : entries_) {
    if (s.epoch > e) return std::min(Seq(s.start.value() - 1), last);
  }
  return last;
}

bool EpochHistory::Append(Epoch e, Seq start) {
  // Epoch 0 (records from before replication) never needs an entry: it is
  // what EpochAt answers when nothing else starts earlier.
  if (e.value() == 0) return false;
  if (entries_.empty() ? e < base_epoch_ : e <= entries_.back().epoch) return false;
  entries_.push_back(EpochStart{e, start});
  return true;
}

bool EpochHistory::TruncateAfter(Seq seq) {
  const size_t before = entries_.size();
  while (!entries_.empty() && entries_.back().start > seq) entries_.pop_back();
  return entries_.size() != before;
}

void EpochHistory::DropFrom(Seq seq) {
  while (!entries_.empty() && entries_.back().start >= seq) entries_.pop_back();
}

}  // namespace rangekv::kvnode
