// Snapshot shipping (kvnode/storage/range_store.h): the owner's export
// (RangeSnapshots::Export) and the replica's OpenFromSnapshot.
//
// An export is a hard link `export-<R, 20 digits>.snap` to the store's own
// snapshot file: free to make, immutable (snapshot files are never
// rewritten, only removed), and it outlives the pruning of the snapshot it
// names. Open removes leftovers.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "common/log.h"
#include "kvnode/storage/range_snapshots.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

std::string ExportFileName(Seq replay_from) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "export-%020" PRIu64 ".snap", replay_from.value());
  return buf;
}

// Copies a file (when a rename cannot move it: another file system).
Status CopyFile(fs::FileSystem& fs, const std::string& from, const std::string& to) {
  RANGEKV_ASSIGN_OR_RETURN(auto in, fs.OpenRead(from));
  RANGEKV_ASSIGN_OR_RETURN(auto out, fs.OpenAppend(to, fs::AppendFile::Mode::kTruncate));
  std::string buf(1u << 20, '\0');
  for (uint64_t off = 0;;) {
    RANGEKV_ASSIGN_OR_RETURN(size_t n, in->ReadAt(off, buf.data(), buf.size()));
    if (n == 0) break;
    RANGEKV_RETURN_IF_ERROR(out->Append(std::string_view(buf.data(), n)));
    off += n;
  }
  RANGEKV_RETURN_IF_ERROR(out->Sync());
  return out->Close();
}

// Moves a received file into place durably.
Status InstallFile(fs::FileSystem& fs, const std::string& from, const std::string& to,
                   const std::string& dir) {
  {
    RANGEKV_ASSIGN_OR_RETURN(auto f, fs.OpenAppend(from, fs::AppendFile::Mode::kOpenExisting));
    RANGEKV_RETURN_IF_ERROR(f->Sync());
    RANGEKV_RETURN_IF_ERROR(f->Close());
  }
  if (!fs.Rename(from, to).ok()) RANGEKV_RETURN_IF_ERROR(CopyFile(fs, from, to));
  return fs.SyncDir(dir);
}

// The path without trailing slashes, for comparing directories.
std::string Trimmed(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

bool IsExportFileName(std::string_view name) {
  return name.size() == 7 + 20 + 5 && name.substr(0, 7) == "export-" &&
         name.substr(name.size() - 5) == ".snap";
}

Result<SnapshotExport> RangeSnapshots::Export() {
  if (log_.closing()) return Status(Code::kUnavailable, "range store is closed");
  MutexLock lock(snap_mu_);
  const Seq start = log_.LogStart();
  // A copy made from the newest snapshot replays the log written since; when
  // that log outweighs the snapshot (and kFreshExportLogBytes), a new
  // snapshot is cheaper to ship than the log is to replay.
  const uint64_t behind = bytes_since_snapshot_.load();
  auto stale = [&](uint64_t snapshot_bytes) {
    return behind > std::max<uint64_t>(kFreshExportLogBytes, snapshot_bytes);
  };
  // A snapshot holding many more keys than the map does now (its range
  // split since, or keys were deleted) ships mostly keys the replica
  // drops: one taken now is smaller.
  auto wide = [&](const std::string& file) {
    auto info = snapshot::ReadSnapshotInfo(fs_, file, id_);
    return info.ok() && info->entries > 2 * map_.size() + kWideExportSlack;
  };
  // The export in hand serves while it is of the newest snapshot (a newer
  // one leaves less log to replay), the log continues it, and it is not
  // stale.
  const bool newest =
      current_export_ && !snapshots_.empty() && current_export_->replay_from == snapshots_.back();
  if (newest && current_export_->replay_from.Next() >= start && !stale(current_export_->bytes) &&
      !wide(current_export_->path)) {
    return *current_export_;
  }
  bool take = snapshots_.empty() || snapshots_.back().Next() < start;
  const std::string newest_file =
      take ? "" : fs::JoinPath(opts_.dir, snapshot::SnapshotFileName(snapshots_.back()));
  if (!take && behind > kFreshExportLogBytes) {
    auto size = fs_.FileSize(newest_file);
    take = !size.ok() || stale(*size);
  }
  // (Taken at the seq of the newest, the snapshot is not written again:
  // the wide one serves, larger but correct.)
  if (!take) take = wide(newest_file);
  if (take) RANGEKV_RETURN_IF_ERROR(TakeSnapshotLocked());
  if (snapshots_.empty()) {
    return Status(Code::kUnavailable, "range " + std::to_string(id_.value()) +
                                          " has nothing to export: no write was ever applied");
  }
  const Seq r = snapshots_.back();
  const std::string dst = fs::JoinPath(opts_.dir, ExportFileName(r));
  if (!current_export_ || current_export_->path != dst) {
    RANGEKV_RETURN_IF_ERROR(
        fs_.Link(fs::JoinPath(opts_.dir, snapshot::SnapshotFileName(r)), dst));
  }
  RANGEKV_ASSIGN_OR_RETURN(snapshot::SnapshotInfo info, snapshot::ReadSnapshotInfo(fs_, dst, id_));
  RANGEKV_ASSIGN_OR_RETURN(uint64_t size, fs_.FileSize(dst));
  if (current_export_ && current_export_->path != dst) {
    Status st = fs_.Remove(current_export_->path);
    if (!st.ok()) LOG_WARN("range " << id_ << ": " << st.ToString());
  }
  current_export_ = SnapshotExport{dst, r, info.end, size};
  return *current_export_;
}

Result<std::unique_ptr<RangeStore>> RangeStore::OpenFromSnapshot(RangeId id, KeyRange bounds,
                                                                 StoreOptions opts,
                                                                 const std::string& snapshot_file,
                                                                 Epoch epoch) {
  if (opts.dir.empty()) return Status(Code::kBadRequest, "store directory not set");
  fs::FileSystem& fs = (opts.env != nullptr ? *opts.env : DefaultEnv()).fs();
  if (Trimmed(fs::DirName(snapshot_file)) == Trimmed(opts.dir)) {
    return Status(Code::kBadRequest, snapshot_file + " is inside the directory it would replace");
  }
  RANGEKV_ASSIGN_OR_RETURN(
      snapshot::SnapshotInfo info,
      snapshot::ReadSnapshot(fs, snapshot_file, id,
                             [](std::string_view, std::string_view, uint64_t) {}));
  if (info.replay_from.value() == 0) {
    return Status(Code::kBadRequest, snapshot_file + " has replay seq 0");
  }
  RANGEKV_RETURN_IF_ERROR(fs.RemoveAll(opts.dir));
  RANGEKV_RETURN_IF_ERROR(fs.CreateDirs(opts.dir));
  // The snapshot first, then the history that says it was installed: a
  // crash in between leaves a directory Open refuses (its log ends before
  // the snapshot's end), never one it misreads.
  RANGEKV_RETURN_IF_ERROR(InstallFile(
      fs, snapshot_file, fs::JoinPath(opts.dir, snapshot::SnapshotFileName(info.replay_from)),
      opts.dir));
  EpochHistory h;
  h.SetBase(info.replay_from, epoch, info.end);
  RANGEKV_RETURN_IF_ERROR(h.Save(fs, opts.dir));
  RANGEKV_RETURN_IF_ERROR(SaveRetainedFile(fs, opts.dir, bounds));
  LOG_INFO("range " << id << ": installed snapshot " << info.replay_from << " (end " << info.end
                    << ", " << info.entries << " keys; its last record of epoch " << epoch << ")");
  return Open(id, std::move(bounds), std::move(opts));
}

}  // namespace rangekv::kvnode
