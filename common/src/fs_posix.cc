// The POSIX file system of common/fs.h.
#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/mutex.h"

namespace rangekv::fs {
namespace {

std::atomic<bool> g_hook_set{false};
Mutex g_hook_mu;
FaultHook g_hook GUARDED_BY(g_hook_mu);

// Returns the errno a test asked for, or 0. The atomic keeps the common case
// (no hook) free of the mutex.
std::atomic<bool> g_forbidden{false};

void CheckAllowed(const std::string& path) {
  if (g_forbidden.load(std::memory_order_relaxed)) {
    std::fprintf(stderr, "real file system used while forbidden: %s\n", path.c_str());
    std::abort();
  }
}

int InjectedError(FaultPoint point, const std::string& path) {
  CheckAllowed(path);
  if (!g_hook_set.load(std::memory_order_relaxed)) return 0;
  FaultHook hook;
  {
    MutexLock lock(g_hook_mu);
    hook = g_hook;
  }
  return hook ? hook(point, path) : 0;
}

Status IoError(const std::string& path, const char* op, int err) {
  return Status(Code::kIoError, path + ": " + op + ": " + std::strerror(err));
}

#ifndef IOV_MAX
constexpr int kIovMax = 1024;
#else
constexpr int kIovMax = IOV_MAX;
#endif

}  // namespace


void SetFaultHookForTesting(FaultHook hook) {
  MutexLock lock(g_hook_mu);
  g_hook = std::move(hook);
  g_hook_set.store(static_cast<bool>(g_hook), std::memory_order_relaxed);
}

void ForbidPosixForTesting(bool forbid) { g_forbidden.store(forbid); }

namespace {

class PosixAppendFile final : public AppendFile {
 public:
  PosixAppendFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixAppendFile() override { (void)Close(); }

  Status Append(std::string_view data) override {
    std::string_view one[1] = {data};
    return AppendV(one);
  }

  Status AppendV(std::span<const std::string_view> parts) override {
    if (int err = InjectedError(FaultPoint::kWrite, path_)) return IoError(path_, "write", err);
    iovec iov[kIovMax];
    size_t next = 0;  // first part not yet fully written
    size_t skip = 0;  // bytes of parts[next] already written
    while (next < parts.size()) {
      int n = 0;
      for (size_t i = next; i < parts.size() && n < kIovMax; ++i) {
        size_t off = (i == next) ? skip : 0;
        if (parts[i].size() == off) continue;
        iov[n].iov_base = const_cast<char*>(parts[i].data() + off);
        iov[n].iov_len = parts[i].size() - off;
        ++n;
      }
      if (n == 0) break;
      ssize_t w = ::writev(fd_, iov, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return IoError(path_, "write", errno);
      }
      size_ += static_cast<uint64_t>(w);
      // Advance (next, skip) past the w bytes just written.
      size_t left = static_cast<size_t>(w);
      while (next < parts.size() && left >= parts[next].size() - skip) {
        left -= parts[next].size() - skip;
        ++next;
        skip = 0;
      }
      skip += left;
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (int err = InjectedError(FaultPoint::kSync, path_)) return IoError(path_, "fdatasync", err);
    if (::fdatasync(fd_) != 0) return IoError(path_, "fdatasync", errno);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (int err = InjectedError(FaultPoint::kTruncate, path_))
      return IoError(path_, "ftruncate", err);
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return IoError(path_, "ftruncate", errno);
    if (::lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0) return IoError(path_, "lseek", errno);
    size_ = size;
    return Status::Ok();
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return IoError(path_, "close", errno);
    return Status::Ok();
  }

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

class PosixMappedFile final : public MappedFile {
 public:
  PosixMappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~PosixMappedFile() override {
    if (addr_ != nullptr) ::munmap(addr_, size_);
  }
  std::string_view data() const override { return {static_cast<const char*>(addr_), size_}; }

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

class PosixReadFile final : public ReadFile {
 public:
  PosixReadFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadFile() override { ::close(fd_); }
  Result<size_t> ReadAt(uint64_t off, char* buf, size_t n) override {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd_, buf + got, n - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return IoError(path_, "pread", errno);
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing the fd releases the flock

 private:
  int fd_;
};

// Closes an fd on scope exit unless released.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<AppendFile>> OpenAppend(const std::string& path,
                                                 AppendFile::Mode mode) override {
    if (int err = InjectedError(FaultPoint::kCreate, path)) return IoError(path, "open", err);
    int flags = O_WRONLY | O_CLOEXEC;
    if (mode == AppendFile::Mode::kCreateNew) flags |= O_CREAT | O_EXCL;
    if (mode == AppendFile::Mode::kTruncate) flags |= O_CREAT | O_TRUNC;
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return IoError(path, "open", errno);
    off_t end = ::lseek(fd, 0, SEEK_END);
    if (end < 0) {
      int err = errno;
      ::close(fd);
      return IoError(path, "lseek", err);
    }
    return std::unique_ptr<AppendFile>(
        new PosixAppendFile(path, fd, static_cast<uint64_t>(end)));
  }

  Result<std::unique_ptr<MappedFile>> Map(const std::string& path) override {
    CheckAllowed(path);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError(path, "open", errno);
    FdCloser closer(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) return IoError(path, "fstat", errno);
    size_t size = static_cast<size_t>(st.st_size);
    void* addr = nullptr;
    if (size > 0) {
      addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (addr == MAP_FAILED) return IoError(path, "mmap", errno);
      ::madvise(addr, size, MADV_SEQUENTIAL);
    }
    return std::unique_ptr<MappedFile>(new PosixMappedFile(addr, size));
  }

  Result<std::unique_ptr<ReadFile>> OpenRead(const std::string& path) override {
    CheckAllowed(path);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError(path, "open", errno);
    return std::unique_ptr<ReadFile>(new PosixReadFile(path, fd));
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    CheckAllowed(dir);
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return IoError(dir, "opendir", errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status CreateDirs(const std::string& dir) override {
    CheckAllowed(dir);
    if (dir.empty()) return Status(Code::kIoError, "empty directory name");
    for (size_t pos = 1; pos <= dir.size(); ++pos) {
      if (pos != dir.size() && dir[pos] != '/') continue;
      std::string prefix = dir.substr(0, pos);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        return IoError(prefix, "mkdir", errno);
      }
    }
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) return IoError(dir, "stat", errno);
    if (!S_ISDIR(st.st_mode)) return Status(Code::kIoError, dir + ": not a directory");
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    if (int err = InjectedError(FaultPoint::kSync, dir)) return IoError(dir, "fsync", err);
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return IoError(dir, "open", errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return IoError(dir, "fsync", err);
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (int err = InjectedError(FaultPoint::kRename, from)) return IoError(from, "rename", err);
    if (::rename(from.c_str(), to.c_str()) != 0) return IoError(from, "rename", errno);
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    CheckAllowed(path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError(path, "unlink", errno);
    return Status::Ok();
  }

  Status RemoveAll(const std::string& path) override {
    CheckAllowed(path);
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return Status(Code::kIoError, path + ": remove: " + ec.message());
    return Status::Ok();
  }

  Status Link(const std::string& from, const std::string& to) override {
    CheckAllowed(from);
    if (::unlink(to.c_str()) != 0 && errno != ENOENT) return IoError(to, "unlink", errno);
    if (::link(from.c_str(), to.c_str()) != 0) return IoError(to, "link", errno);
    return Status::Ok();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    if (int err = InjectedError(FaultPoint::kTruncate, path)) return IoError(path, "truncate", err);
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return IoError(path, "truncate", errno);
    }
    return Status::Ok();
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    CheckAllowed(path);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return IoError(path, "stat", errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Result<std::optional<bool>> IsDirectory(const std::string& path) override {
    CheckAllowed(path);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return std::optional<bool>();
      return IoError(path, "stat", errno);
    }
    return std::optional<bool>(S_ISDIR(st.st_mode));
  }

  Result<std::unique_ptr<FileLock>> Lock(const std::string& path,
                                         std::string_view holder) override {
    CheckAllowed(path);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return IoError(path, "open", errno);
    FdCloser closer(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) return IoError(path, "flock", errno);
      auto held = ReadSmallFile(path, 4096);
      std::string who = held.ok() && *held ? **held : "";
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      return Status(Code::kUnavailable, path + " is locked" + (who.empty() ? "" : " by " + who));
    }
    if (::ftruncate(fd, 0) != 0) return IoError(path, "ftruncate", errno);
    std::string_view left = holder;
    while (!left.empty()) {
      ssize_t n = ::write(fd, left.data(), left.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return IoError(path, "write", errno);
      left.remove_prefix(static_cast<size_t>(n));
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(closer.release()));
  }
};

}  // namespace

FileSystem& Posix() {
  static PosixFileSystem* fs = new PosixFileSystem();  // never destroyed: used until exit
  return *fs;
}

Result<std::optional<std::string>> FileSystem::ReadSmallFile(const std::string& path,
                                                            size_t max_bytes) {
  RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> dir, IsDirectory(path));
  if (!dir) return std::optional<std::string>();
  RANGEKV_ASSIGN_OR_RETURN(uint64_t size, FileSize(path));
  if (size > max_bytes) {
    return Status(Code::kIoError, path + ": larger than " + std::to_string(max_bytes) + " bytes");
  }
  RANGEKV_ASSIGN_OR_RETURN(auto f, OpenRead(path));
  std::string out(static_cast<size_t>(size), '\0');
  RANGEKV_ASSIGN_OR_RETURN(size_t n, f->ReadAt(0, out.data(), out.size()));
  out.resize(n);
  return std::optional<std::string>(std::move(out));
}

Status FileSystem::WriteFileAtomically(const std::string& dir, std::string_view name,
                                       std::string_view data, bool sync_dir) {
  const std::string path = JoinPath(dir, name);
  const std::string tmp = path + ".tmp";
  {
    RANGEKV_ASSIGN_OR_RETURN(auto f, OpenAppend(tmp, AppendFile::Mode::kTruncate));
    RANGEKV_RETURN_IF_ERROR(f->Append(data));
    RANGEKV_RETURN_IF_ERROR(f->Sync());
    RANGEKV_RETURN_IF_ERROR(f->Close());
  }
  RANGEKV_RETURN_IF_ERROR(Rename(tmp, path));
  return sync_dir ? SyncDir(dir) : Status::Ok();
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty() && p.back() != '/') p += '/';
  p.append(name);
  return p;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace rangekv::fs
