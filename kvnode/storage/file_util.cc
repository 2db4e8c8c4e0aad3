#include "kvnode/storage/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace rangekv::kvnode::fs {
namespace {

std::atomic<bool> g_hook_set{false};
std::mutex g_hook_mu;
FaultHook g_hook;

// Returns the errno a test asked for, or 0. The atomic keeps the common case
// (no hook) free of the mutex.
int InjectedError(FaultPoint point, const std::string& path) {
  if (!g_hook_set.load(std::memory_order_relaxed)) return 0;
  FaultHook hook;
  {
    std::lock_guard<std::mutex> lock(g_hook_mu);
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
  std::lock_guard<std::mutex> lock(g_hook_mu);
  g_hook = std::move(hook);
  g_hook_set.store(static_cast<bool>(g_hook), std::memory_order_relaxed);
}

AppendFile::AppendFile(std::string path, int fd, uint64_t size)
    : path_(std::move(path)), fd_(fd), size_(size) {}

AppendFile::~AppendFile() { (void)Close(); }

Result<std::unique_ptr<AppendFile>> AppendFile::Create(const std::string& path, Mode mode) {
  if (int err = InjectedError(FaultPoint::kCreate, path)) return IoError(path, "open", err);
  int flags = O_WRONLY | O_CLOEXEC;
  if (mode == Mode::kCreateNew) flags |= O_CREAT | O_EXCL;
  if (mode == Mode::kTruncate) flags |= O_CREAT | O_TRUNC;
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return IoError(path, "open", errno);
  off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) {
    int err = errno;
    ::close(fd);
    return IoError(path, "lseek", err);
  }
  return std::unique_ptr<AppendFile>(new AppendFile(path, fd, static_cast<uint64_t>(end)));
}

Status AppendFile::Append(std::string_view data) {
  std::string_view one[1] = {data};
  return AppendV(one);
}

Status AppendFile::AppendV(std::span<const std::string_view> parts) {
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

Status AppendFile::Sync() {
  if (int err = InjectedError(FaultPoint::kSync, path_)) return IoError(path_, "fdatasync", err);
  if (::fdatasync(fd_) != 0) return IoError(path_, "fdatasync", errno);
  return Status::Ok();
}

Status AppendFile::Truncate(uint64_t size) {
  if (int err = InjectedError(FaultPoint::kTruncate, path_))
    return IoError(path_, "ftruncate", err);
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return IoError(path_, "ftruncate", errno);
  if (::lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0) return IoError(path_, "lseek", errno);
  size_ = size;
  return Status::Ok();
}

Status AppendFile::Close() {
  if (fd_ < 0) return Status::Ok();
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return IoError(path_, "close", errno);
  return Status::Ok();
}

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path, "open", errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return IoError(path, "fstat", err);
  }
  size_t size = static_cast<size_t>(st.st_size);
  void* addr = nullptr;
  if (size > 0) {
    addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return IoError(path, "mmap", err);
    }
    ::madvise(addr, size, MADV_SEQUENTIAL);
  }
  ::close(fd);
  return std::unique_ptr<MappedFile>(new MappedFile(addr, size));
}

MappedFile::~MappedFile() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
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

Status CreateDirs(const std::string& dir) {
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

Status SyncDir(const std::string& dir) {
  if (int err = InjectedError(FaultPoint::kSync, dir)) return IoError(dir, "fsync", err);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(dir, "open", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IoError(dir, "fsync", err);
  return Status::Ok();
}

Status RenameFile(const std::string& from, const std::string& to) {
  if (int err = InjectedError(FaultPoint::kRename, from)) return IoError(from, "rename", err);
  if (::rename(from.c_str(), to.c_str()) != 0) return IoError(from, "rename", errno);
  return Status::Ok();
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError(path, "unlink", errno);
  return Status::Ok();
}

Status TruncateFile(const std::string& path, uint64_t size) {
  if (int err = InjectedError(FaultPoint::kTruncate, path)) return IoError(path, "truncate", err);
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
    return IoError(path, "truncate", errno);
  }
  return Status::Ok();
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IoError(path, "stat", errno);
  return static_cast<uint64_t>(st.st_size);
}

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (!p.empty() && p.back() != '/') p += '/';
  p.append(name);
  return p;
}

}  // namespace rangekv::kvnode::fs
