#include "kvnode/storage/commit_point.h"

#include <cstring>

#include "common/crc32c.h"
#include "kvnode/storage/wal_format.h"

namespace rangekv::kvnode {

std::optional<Seq> LoadCommitPoint(fs::FileSystem& fs, const std::string& dir, std::string* why) {
  auto text = fs.ReadSmallFile(fs::JoinPath(dir, kCommitFileName), 4096);
  if (!text.ok()) {
    *why = text.status().message();
    return std::nullopt;
  }
  if (!*text) {
    *why = "no commit point file";
    return std::nullopt;
  }
  const std::string& d = **text;
  if (d.size() != kCommitFileSize || std::memcmp(d.data(), kCommitMagic, 8) != 0 ||
      wal::GetFixed32(d.data() + 8) != kCommitVersion ||
      wal::GetFixed32(d.data() + 20) != crc32c::Mask(crc32c::Value(d.data(), 20))) {
    *why = "commit point file does not check";
    return std::nullopt;
  }
  return Seq(wal::GetFixed64(d.data() + 12));
}

Status SaveCommitPoint(fs::FileSystem& fs, const std::string& dir, Seq seq) {
  std::string out(kCommitFileSize, '\0');
  std::memcpy(out.data(), kCommitMagic, 8);
  wal::PutFixed32(out.data() + 8, kCommitVersion);
  wal::PutFixed64(out.data() + 12, seq.value());
  wal::PutFixed32(out.data() + 20, crc32c::Mask(crc32c::Value(out.data(), 20)));
  const std::string tmp = fs::JoinPath(dir, kCommitTempName);
  {
    RANGEKV_ASSIGN_OR_RETURN(auto f, fs.OpenAppend(tmp, fs::AppendFile::Mode::kTruncate));
    RANGEKV_RETURN_IF_ERROR(f->Append(out));
    RANGEKV_RETURN_IF_ERROR(f->Sync());
    RANGEKV_RETURN_IF_ERROR(f->Close());
  }
  RANGEKV_RETURN_IF_ERROR(fs.Rename(tmp, fs::JoinPath(dir, kCommitFileName)));
  return fs.SyncDir(dir);
}

}  // namespace rangekv::kvnode
