#include "kvnode/server/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "common/log.h"
#include "kvnode/server/node_options.h"

namespace rangekv::kvnode {
namespace {

Status IoError(const std::string& what, const std::string& path, int err) {
  return Status(Code::kIoError, what + " " + path + ": " + std::strerror(err));
}

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

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot write", path, errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// nullopt when the file does not exist.
Result<std::optional<std::string>> ReadSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::optional<std::string>();
  if (fd < 0) return IoError("cannot read", path, errno);
  FdCloser closer(fd);
  std::string out;
  char buf[512];
  while (out.size() < 64 * 1024) {  // NODE is tiny; a huge one is garbage
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError("cannot read", path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(out));
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open", dir, errno);
  FdCloser closer(fd);
  if (::fsync(fd) != 0) return IoError("cannot fsync", dir, errno);
  return Status::Ok();
}

// NODE.tmp -> fsync -> rename -> fsync(dir): a crash leaves no NODE or a whole one.
Status WriteFileAtomically(const std::string& dir, std::string_view name, std::string_view data) {
  std::string path = dir + "/" + std::string(name);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot write", tmp, errno);
  {
    FdCloser closer(fd);
    RANGEKV_RETURN_IF_ERROR(WriteAll(fd, data, tmp));
    if (::fsync(fd) != 0) return IoError("cannot fsync", tmp, errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return IoError("cannot rename", tmp, errno);
  return SyncDir(dir);
}

Status CreateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(Code::kIoError, "cannot create data dir " + dir + ": " + ec.message());
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status(Code::kIoError, "data dir " + dir + " is not a directory");
  }
  return Status::Ok();
}

// Opens and locks DIR/LOCK; returns the fd that holds the lock.
Result<int> Lock(const std::string& dir) {
  std::string path = dir + "/" + std::string(kLockFileName);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot write data dir: cannot open", path, errno);
  FdCloser closer(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return IoError("cannot lock", path, errno);
    auto holder = ReadSmallFile(path);
    std::string pid = holder.ok() && *holder ? **holder : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Status(Code::kUnavailable, "data dir " + dir + " is in use by another kvnode" +
                                          (pid.empty() ? "" : " (pid " + pid + ")"));
  }
  std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0) return IoError("cannot write", path, errno);
  RANGEKV_RETURN_IF_ERROR(WriteAll(fd, me, path));
  return closer.release();
}

// Reads DIR's identity or writes a new one; returns what DIR now says.
Result<NodeIdentity> Identify(const std::string& dir, const std::optional<NodeId>& want,
                              const NodeId& default_id) {
  std::string path = dir + "/" + std::string(kNodeFileName);
  RANGEKV_ASSIGN_OR_RETURN(std::optional<std::string> text, ReadSmallFile(path));
  if (!text) {
    NodeIdentity fresh{want ? *want : default_id, DataDir::NewIncarnation()};
    RANGEKV_RETURN_IF_ERROR(WriteFileAtomically(
        dir, kNodeFileName, DataDir::FormatNodeFile(fresh.id, fresh.incarnation)));
    return fresh;
  }
  auto have = DataDir::ParseNodeFile(*text);
  if (!have.ok()) return have.status().WithContext(path);
  if (want && *want != have->id) {
    return Status(Code::kBadRequest, "data dir " + dir + " belongs to node '" + have->id.str() +
                                         "', not '" + want->str() + "'");
  }
  if (have->incarnation.empty()) {
    // A directory from before incarnations: give it one, once.
    have->incarnation = DataDir::NewIncarnation();
    RANGEKV_RETURN_IF_ERROR(WriteFileAtomically(
        dir, kNodeFileName, DataDir::FormatNodeFile(have->id, have->incarnation)));
    LOG_INFO("data dir " << dir << ": recorded incarnation " << have->incarnation);
  }
  return *have;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

DataDir::DataDir(std::string path, int lock_fd, NodeIdentity identity)
    : path_(std::move(path)), lock_fd_(lock_fd), identity_(std::move(identity)) {}

DataDir::~DataDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing the fd releases the flock
}

Result<std::unique_ptr<DataDir>> DataDir::Open(const std::string& dir,
                                               const std::optional<NodeId>& want,
                                               const NodeId& default_id) {
  RANGEKV_RETURN_IF_ERROR(CreateDir(dir));
  RANGEKV_ASSIGN_OR_RETURN(int lock_fd, Lock(dir));
  FdCloser closer(lock_fd);
  RANGEKV_ASSIGN_OR_RETURN(NodeIdentity identity, Identify(dir, want, default_id));
  return std::unique_ptr<DataDir>(new DataDir(dir, closer.release(), std::move(identity)));
}

std::string DataDir::RangeDir(RangeId id) const {
  return path_ + "/" + std::string(kRangesDirName) + "/" + std::to_string(id.value());
}

std::string DataDir::FormatNodeFile(const NodeId& id, std::string_view incarnation) {
  std::string text = std::string(kNodeFileMagic) + " " + std::to_string(kNodeFileVersion) +
                     "\nid " + id.str() + "\n";
  if (!incarnation.empty()) text += "incarnation " + std::string(incarnation) + "\n";
  return text;
}

std::string DataDir::NewIncarnation() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;  // the kernel's CSPRNG on Linux (getrandom)
  std::string out;
  for (size_t i = 0; i < kIncarnationBytes; ++i) {
    auto byte = static_cast<unsigned>(rd()) & 0xffu;
    out += kHex[byte >> 4];
    out += kHex[byte & 0xf];
  }
  return out;
}

Result<NodeIdentity> DataDir::ParseNodeFile(std::string_view text) {
  auto corrupt = [](std::string why) { return Status(Code::kCorruption, std::move(why)); };
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return corrupt("identity file has no header line");
  std::string_view header = text.substr(0, nl);
  std::string_view rest = text.substr(nl + 1);
  std::string magic = std::string(kNodeFileMagic) + " ";
  if (!header.starts_with(magic)) return corrupt("identity file lacks the rangekv-node header");
  std::string_view version = header.substr(magic.size());
  if (version != std::to_string(kNodeFileVersion)) {
    return corrupt("identity file has format version '" + std::string(version) +
                   "'; this kvnode reads version " + std::to_string(kNodeFileVersion));
  }
  size_t nl2 = rest.find('\n');
  std::string_view line = rest.substr(0, nl2);
  if (nl2 == std::string_view::npos || !line.starts_with("id ") || !IsValidNodeId(line.substr(3))) {
    return corrupt("identity file has no valid 'id' line");
  }
  NodeIdentity identity{NodeId(std::string(line.substr(3))), ""};
  rest = rest.substr(nl2 + 1);
  constexpr std::string_view kField = "incarnation ";
  if (rest.starts_with(kField)) {
    size_t nl3 = rest.find('\n');
    std::string_view hex = nl3 == std::string_view::npos
                               ? std::string_view()
                               : rest.substr(kField.size(), nl3 - kField.size());
    if (hex.empty() || hex.size() > kMaxIncarnationHex || !IsLowerHex(hex)) {
      return corrupt("identity file has an invalid 'incarnation' line");
    }
    identity.incarnation = std::string(hex);
  }
  return identity;
}

}  // namespace rangekv::kvnode
