// Snapshot shipping (kvnode/storage/range_store.h): the owner's ExportSnapshot and
// the replica's OpenFromSnapshot.
//
// An export is a hard link `export-<R, 20 digits>.snap` to the store's own
// snapshot file: free to make, immutable (snapshot files are never
// rewritten, only removed), and it outlives the pruning of the snapshot it
// names. Open removes leftovers.
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/log.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

namespace stdfs = std::filesystem;

std::string ExportFileName(Seq replay_from) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "export-%020" PRIu64 ".snap", replay_from.value());
  return buf;
}

Status LinkFile(const std::string& from, const std::string& to) {
  if (::unlink(to.c_str()) != 0 && errno != ENOENT) {
    return Status(Code::kIoError, to + ": unlink: " + std::strerror(errno));
  }
  if (::link(from.c_str(), to.c_str()) != 0) {
    return Status(Code::kIoError, to + ": link: " + std::strerror(errno));
  }
  return Status::Ok();
}

// Moves a received file into place durably (copying across file systems).
Status InstallFile(const std::string& from, const std::string& to, const std::string& dir) {
  {
    RANGEKV_ASSIGN_OR_RETURN(auto f,
                             fs::AppendFile::Create(from, fs::AppendFile::Mode::kOpenExisting));
    RANGEKV_RETURN_IF_ERROR(f->Sync());
    RANGEKV_RETURN_IF_ERROR(f->Close());
  }
  if (!fs::RenameFile(from, to).ok()) {
    std::error_code ec;
    stdfs::copy_file(from, to, stdfs::copy_options::overwrite_existing, ec);
    if (ec) return Status(Code::kIoError, to + ": copy from " + from + ": " + ec.message());
    RANGEKV_ASSIGN_OR_RETURN(auto f,
                             fs::AppendFile::Create(to, fs::AppendFile::Mode::kOpenExisting));
    RANGEKV_RETURN_IF_ERROR(f->Sync());
    RANGEKV_RETURN_IF_ERROR(f->Close());
  }
  return fs::SyncDir(dir);
}

Status WipeDir(const std::string& dir) {
  std::error_code ec;
  stdfs::remove_all(dir, ec);
  if (ec) return Status(Code::kIoError, dir + ": remove: " + ec.message());
  return fs::CreateDirs(dir);
}

}  // namespace

bool IsExportFileName(std::string_view name) {
  return name.size() == 7 + 20 + 5 && name.substr(0, 7) == "export-" &&
         name.substr(name.size() - 5) == ".snap";
}

Result<SnapshotExport> RangeStore::Impl::ExportSnapshot() {
  {
    std::lock_guard lock(mu);
    if (closing) return Status(Code::kUnavailable, "range store is closed");
  }
  std::lock_guard lock(snap_mu);
  const Seq start = LogStart();
  if (current_export && current_export->replay_from.Next() >= start) return *current_export;
  if (snapshots.empty() || snapshots.back().Next() < start) {
    RANGEKV_RETURN_IF_ERROR(TakeSnapshotLocked());
  }
  if (snapshots.empty()) {
    return Status(Code::kUnavailable, "range " + std::to_string(id.value()) +
                                          " has nothing to export: no write was ever applied");
  }
  const Seq r = snapshots.back();
  const std::string dst = fs::JoinPath(opts.dir, ExportFileName(r));
  if (!current_export || current_export->path != dst) {
    RANGEKV_RETURN_IF_ERROR(LinkFile(fs::JoinPath(opts.dir, snapshot::SnapshotFileName(r)), dst));
  }
  RANGEKV_ASSIGN_OR_RETURN(snapshot::SnapshotInfo info, snapshot::ReadSnapshotInfo(dst, id));
  RANGEKV_ASSIGN_OR_RETURN(uint64_t size, fs::FileSize(dst));
  if (current_export && current_export->path != dst) {
    Status st = fs::RemoveFile(current_export->path);
    if (!st.ok()) LOG_WARN("range " << id << ": " << st.ToString());
  }
  current_export = SnapshotExport{dst, r, info.end, size};
  return *current_export;
}

Result<std::unique_ptr<RangeStore>> RangeStore::OpenFromSnapshot(RangeId id, KeyRange bounds,
                                                                 StoreOptions opts,
                                                                 const std::string& snapshot_file,
                                                                 Epoch epoch) {
  if (opts.dir.empty()) return Status(Code::kBadRequest, "store directory not set");
  std::error_code ec;
  const stdfs::path file_dir =
      stdfs::weakly_canonical(stdfs::path(snapshot_file), ec).parent_path();
  if (!ec && file_dir == stdfs::weakly_canonical(stdfs::path(opts.dir), ec)) {
    return Status(Code::kBadRequest, snapshot_file + " is inside the directory it would replace");
  }
  RANGEKV_ASSIGN_OR_RETURN(
      snapshot::SnapshotInfo info,
      snapshot::ReadSnapshot(snapshot_file, id,
                             [](std::string_view, std::string_view, uint64_t) {}));
  if (info.replay_from.value() == 0) {
    return Status(Code::kBadRequest, snapshot_file + " has replay seq 0");
  }
  RANGEKV_RETURN_IF_ERROR(WipeDir(opts.dir));
  // The snapshot first, then the history that says it was installed: a
  // crash in between leaves a directory Open refuses (its log ends before
  // the snapshot's end), never one it misreads.
  RANGEKV_RETURN_IF_ERROR(
      InstallFile(snapshot_file,
                  fs::JoinPath(opts.dir, snapshot::SnapshotFileName(info.replay_from)), opts.dir));
  EpochHistory h;
  h.SetBase(info.replay_from, epoch, info.end);
  (void)h.Append(epoch, info.replay_from.Next());
  RANGEKV_RETURN_IF_ERROR(h.Save(opts.dir));
  LOG_INFO("range " << id << ": installed snapshot " << info.replay_from << " (end " << info.end
                    << ", " << info.entries << " keys) at epoch " << epoch);
  return Open(id, std::move(bounds), std::move(opts));
}

}  // namespace rangekv::kvnode
