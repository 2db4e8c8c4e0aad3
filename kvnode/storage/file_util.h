// kvnode/storage/file_util.h — the small POSIX file layer under the WAL and snapshots.
//
// Every call returns IO_ERROR with "<path>: <operation>: <strerror>" on
// failure; none throws. This is also the fault-injection seam of the storage
// engine: a test installs a FaultHook and chosen calls fail with the errno it
// returns, as a full or broken disk would make them fail. With no hook set
// the check is one relaxed atomic load.
//
// Thread-safety: the free functions are safe from any thread. An AppendFile
// is used by one thread at a time (the log thread or the snapshot writer).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/status.h"

namespace rangekv::kvnode::fs {

// Calls that a FaultHook can fail.
enum class FaultPoint : uint8_t {
  kWrite,     // AppendFile::Append / AppendV (nothing is written)
  kSync,      // AppendFile::Sync, SyncDir
  kTruncate,  // AppendFile::Truncate
  kCreate,    // AppendFile::Create
  kRename,    // RenameFile
};

// Returns the errno to fail with, or 0 to let the call run. Runs on the
// thread making the call; must be thread-safe.
using FaultHook = std::function<int(FaultPoint, const std::string& path)>;

// Installs (or, with nullptr, removes) the process-wide hook. For tests only.
void SetFaultHookForTesting(FaultHook hook);

// A file opened for appending. Owns its descriptor; closes it on destruction.
class AppendFile {
 public:
  enum class Mode : uint8_t {
    kCreateNew,     // fails if the file exists
    kTruncate,      // creates or empties
    kOpenExisting,  // appends after the current end
  };
  static Result<std::unique_ptr<AppendFile>> Create(const std::string& path, Mode mode);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  // Writes all bytes at the end, retrying short writes. On error some prefix
  // may have been written; size() still counts only what is known written.
  Status Append(std::string_view data);
  // Same, gathering several buffers with writev (IOV_MAX at a time).
  Status AppendV(std::span<const std::string_view> parts);
  Status Sync();  // fdatasync
  // Cuts the file to `size` bytes; later appends go there.
  Status Truncate(uint64_t size);
  Status Close();  // idempotent

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  AppendFile(std::string path, int fd, uint64_t size);
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// A read-only memory map of a whole file (empty files map to an empty view).
// The view is valid while the object lives; the file must not shrink
// meanwhile (the store only maps files it does not write).
class MappedFile {
 public:
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view data() const { return {static_cast<const char*>(addr_), size_}; }

 private:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// Names (not paths) of the entries of dir, without "." and "..".
Result<std::vector<std::string>> ListDir(const std::string& dir);
// mkdir -p.
Status CreateDirs(const std::string& dir);
// fsync of the directory itself, so creations, renames and unlinks persist.
Status SyncDir(const std::string& dir);
Status RenameFile(const std::string& from, const std::string& to);
Status RemoveFile(const std::string& path);
Status TruncateFile(const std::string& path, uint64_t size);
Result<uint64_t> FileSize(const std::string& path);
std::string JoinPath(const std::string& dir, std::string_view name);

}  // namespace rangekv::kvnode::fs
