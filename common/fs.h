// common/fs.h — the file system under the storage engine and the data
// directory, as an interface.
//
// Posix() is the real one. The deterministic simulation (sim/) supplies its
// own: an in-memory disk that remembers what was made durable (fdatasync of
// a file, fsync of a directory for its entries) so that a simulated power
// loss can drop the rest, tear the last write, or fail a call.
//
// Durability contract the callers rely on (and the simulated disk enforces):
//   - bytes appended to a file are durable once AppendFile::Sync returns;
//   - a file's existence and name (create, rename, remove, link) are durable
//     once SyncDir of its directory returns;
//   - a file that is not durable may after a power loss be missing, shorter,
//     or (its last unsynced append) partly written.
//
// Errors: IO_ERROR with "<path>: <operation>: <reason>"; nothing throws.
// Thread-safety: a FileSystem is used from many threads; one AppendFile by
// one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/status.h"

namespace rangekv::fs {

// A file opened for appending.
class AppendFile {
 public:
  enum class Mode : uint8_t {
    kCreateNew,     // fails if the file exists
    kTruncate,      // creates or empties
    kOpenExisting,  // appends after the current end
  };
  virtual ~AppendFile() = default;  // closes
  // Writes all bytes at the end. On error some prefix may have been
  // written; size() counts only what is known written.
  virtual Status Append(std::string_view data) = 0;
  virtual Status AppendV(std::span<const std::string_view> parts) = 0;
  virtual Status Sync() = 0;  // fdatasync
  // Cuts the file to `size` bytes; later appends go there.
  virtual Status Truncate(uint64_t size) = 0;
  virtual Status Close() = 0;  // idempotent
  virtual uint64_t size() const = 0;
  virtual const std::string& path() const = 0;
};

// A whole file's bytes as one view (a memory map, or a copy), valid while
// the object lives. The file must not shrink meanwhile.
class MappedFile {
 public:
  virtual ~MappedFile() = default;
  virtual std::string_view data() const = 0;
};

// A file read at offsets (pread).
class ReadFile {
 public:
  virtual ~ReadFile() = default;
  // Up to n bytes at off; fewer only at the end of the file.
  virtual Result<size_t> ReadAt(uint64_t off, char* buf, size_t n) = 0;
  virtual const std::string& path() const = 0;
};

// An exclusive lock on a file, held until destroyed (flock; the kernel drops
// it when the process dies).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual Result<std::unique_ptr<AppendFile>> OpenAppend(const std::string& path,
                                                         AppendFile::Mode mode) = 0;
  virtual Result<std::unique_ptr<MappedFile>> Map(const std::string& path) = 0;
  virtual Result<std::unique_ptr<ReadFile>> OpenRead(const std::string& path) = 0;
  // Names (not paths) of the entries of dir, without "." and "..", sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // mkdir -p; IO_ERROR when something that is not a directory is in the way.
  virtual Status CreateDirs(const std::string& dir) = 0;
  // fsync of the directory itself, so creations, renames and unlinks persist.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // A missing file is not an error.
  virtual Status Remove(const std::string& path) = 0;
  // rm -r; a missing path is not an error.
  virtual Status RemoveAll(const std::string& path) = 0;
  // Hard link; replaces an existing `to`.
  virtual Status Link(const std::string& from, const std::string& to) = 0;
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  // nullopt when nothing exists at path; true for a directory.
  virtual Result<std::optional<bool>> IsDirectory(const std::string& path) = 0;
  // Locks path (created if missing) and writes `holder` into it.
  // UNAVAILABLE, with what the file holds, when another process holds it.
  virtual Result<std::unique_ptr<FileLock>> Lock(const std::string& path,
                                                 std::string_view holder) = 0;

  // ---- conveniences over the calls above ----
  // The whole file; nullopt when it does not exist. Refuses files over
  // max_bytes (IO_ERROR).
  Result<std::optional<std::string>> ReadSmallFile(const std::string& path,
                                                   size_t max_bytes = 1u << 20);
  // path.tmp, written and synced, renamed over path, directory synced: a
  // crash leaves the old file or the new one, whole. sync_dir false: the
  // new name is durable only with the caller's next sync of dir (several
  // changes to one directory made durable by one fsync).
  Status WriteFileAtomically(const std::string& dir, std::string_view name, std::string_view data,
                             bool sync_dir = true);
};

std::string JoinPath(const std::string& dir, std::string_view name);
// The directory part of path ("" when it has none).
std::string DirName(const std::string& path);

// The real file system.
FileSystem& Posix();

// ---- fault injection into Posix(), for tests ----

enum class FaultPoint : uint8_t {
  kWrite,     // AppendFile::Append / AppendV (nothing is written)
  kSync,      // AppendFile::Sync, SyncDir
  kTruncate,  // AppendFile::Truncate, Truncate
  kCreate,    // OpenAppend
  kRename,    // Rename
};
// Returns the errno to fail with, or 0 to let the call run. Runs on the
// calling thread; must be thread-safe.
using FaultHook = std::function<int(FaultPoint, const std::string& path)>;
// Installs (or, with nullptr, removes) the process-wide hook.
void SetFaultHookForTesting(FaultHook hook);

// While set, any call into Posix() aborts the process naming the path: the
// simulation sets it so that code which forgot to use the simulated disk
// is caught, not silently run against the real one.
void ForbidPosixForTesting(bool forbid);

}  // namespace rangekv::fs
