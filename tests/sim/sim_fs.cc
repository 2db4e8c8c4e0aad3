#include "tests/sim/sim_fs.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rangekv::sim {
namespace {

Status NotFound(const std::string& path, const char* op) {
  return Status(Code::kIoError, path + ": " + op + ": No such file or directory");
}

std::string Base(const std::string& path) { return path.substr(path.rfind('/') + 1); }

bool Under(const std::string& path, const std::string& prefix) {
  return path == prefix || (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 &&
                            path[prefix.size()] == '/');
}

void CheckPath(const std::string& path) {
  if (path.empty() || path[0] != '/' || path.find("//") != std::string::npos) {
    std::fprintf(stderr, "sim: bad path '%s'\n", path.c_str());
    std::abort();
  }
}

}  // namespace

class SimAppendFile final : public fs::AppendFile {
 public:
  SimAppendFile(FileSystemSim& fs, std::string path, std::shared_ptr<FileSystemSim::Inode> inode)
      : fs_(fs), path_(std::move(path)), inode_(std::move(inode)) {}

  Status Append(std::string_view data) override {
    if (closed_) return Status(Code::kIoError, path_ + ": write: closed");
    inode_->data.append(data);
    return Status::Ok();
  }
  Status AppendV(std::span<const std::string_view> parts) override {
    if (closed_) return Status(Code::kIoError, path_ + ": write: closed");
    for (std::string_view p : parts) inode_->data.append(p);
    return Status::Ok();
  }
  Status Sync() override {
    if (closed_) return Status(Code::kIoError, path_ + ": fdatasync: closed");
    fs_.SyncCost();
    RANGEKV_RETURN_IF_ERROR(fs_.Fault(path_, "fdatasync"));
    inode_->durable = inode_->data;
    return Status::Ok();
  }
  Status Truncate(uint64_t size) override {
    if (closed_) return Status(Code::kIoError, path_ + ": ftruncate: closed");
    inode_->data.resize(std::min<size_t>(size, inode_->data.size()));
    return Status::Ok();
  }
  Status Close() override {
    closed_ = true;
    return Status::Ok();
  }
  uint64_t size() const override { return inode_->data.size(); }
  const std::string& path() const override { return path_; }

 private:
  FileSystemSim& fs_;
  std::string path_;
  std::shared_ptr<FileSystemSim::Inode> inode_;
  bool closed_ = false;
};

namespace {

class SimMappedFile final : public fs::MappedFile {
 public:
  explicit SimMappedFile(std::string data) : data_(std::move(data)) {}
  std::string_view data() const override { return data_; }

 private:
  std::string data_;
};

class SimReadFile final : public fs::ReadFile {
 public:
  SimReadFile(std::string path, std::shared_ptr<FileSystemSim::Inode> inode)
      : path_(std::move(path)), inode_(std::move(inode)) {}
  Result<size_t> ReadAt(uint64_t off, char* buf, size_t n) override {
    if (off >= inode_->data.size()) return size_t{0};
    size_t k = std::min<size_t>(n, inode_->data.size() - off);
    std::memcpy(buf, inode_->data.data() + off, k);
    return k;
  }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  std::shared_ptr<FileSystemSim::Inode> inode_;
};

class SimFileLock final : public fs::FileLock {
 public:
  SimFileLock(std::set<std::string>& locks, std::string path)
      : locks_(locks), path_(std::move(path)) {}
  ~SimFileLock() override { locks_.erase(path_); }

 private:
  std::set<std::string>& locks_;
  std::string path_;
};

}  // namespace

Status FileSystemSim::Fault(const std::string& path, const char* op) {
  for (const auto& [prefix, p] : sync_failure_) {
    if (Under(path, prefix) && world_.Chance(p)) {
      return Status(Code::kIoError, path + ": " + op + ": Input/output error");
    }
  }
  return Status::Ok();
}

FileSystemSim::Dir* FileSystemSim::DirOf(const std::string& path) {
  CheckPath(path);
  auto it = dirs_.find(fs::DirName(path));
  return it == dirs_.end() ? nullptr : &it->second;
}

std::shared_ptr<FileSystemSim::Inode> FileSystemSim::Find(const std::string& path) {
  Dir* d = DirOf(path);
  if (d == nullptr) return nullptr;
  auto it = d->entries.find(Base(path));
  return it == d->entries.end() ? nullptr : it->second;
}

Result<std::unique_ptr<fs::AppendFile>> FileSystemSim::OpenAppend(const std::string& path,
                                                                  fs::AppendFile::Mode mode) {
  Dir* d = DirOf(path);
  if (d == nullptr || dirs_.count(path)) return NotFound(path, "open");
  auto& slot = d->entries[Base(path)];
  if (mode == fs::AppendFile::Mode::kCreateNew && slot) {
    return Status(Code::kIoError, path + ": open: File exists");
  }
  if (mode == fs::AppendFile::Mode::kOpenExisting && !slot) {
    d->entries.erase(Base(path));
    return NotFound(path, "open");
  }
  if (!slot) slot = std::make_shared<Inode>();
  if (mode == fs::AppendFile::Mode::kTruncate) slot->data.clear();
  return std::unique_ptr<fs::AppendFile>(new SimAppendFile(*this, path, slot));
}

Result<std::unique_ptr<fs::MappedFile>> FileSystemSim::Map(const std::string& path) {
  auto inode = Find(path);
  if (!inode) return NotFound(path, "open");
  return std::unique_ptr<fs::MappedFile>(new SimMappedFile(inode->data));
}

Result<std::unique_ptr<fs::ReadFile>> FileSystemSim::OpenRead(const std::string& path) {
  auto inode = Find(path);
  if (!inode) return NotFound(path, "open");
  return std::unique_ptr<fs::ReadFile>(new SimReadFile(path, inode));
}

Result<std::vector<std::string>> FileSystemSim::ListDir(const std::string& dir) {
  CheckPath(dir);
  auto it = dirs_.find(dir);
  if (it == dirs_.end()) return NotFound(dir, "opendir");
  std::vector<std::string> names;
  for (const auto& [name, inode] : it->second.entries) names.push_back(name);
  for (auto d = dirs_.upper_bound(dir); d != dirs_.end() && Under(d->first, dir); ++d) {
    if (fs::DirName(d->first) == dir) names.push_back(Base(d->first));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Status FileSystemSim::CreateDirs(const std::string& dir) {
  CheckPath(dir);
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (Find(prefix)) return Status(Code::kIoError, prefix + ": mkdir: Not a directory");
    dirs_.try_emplace(prefix);
  }
  return Status::Ok();
}

Status FileSystemSim::SyncDir(const std::string& dir) {
  CheckPath(dir);
  auto it = dirs_.find(dir);
  if (it == dirs_.end()) return NotFound(dir, "open");
  SyncCost();
  RANGEKV_RETURN_IF_ERROR(Fault(dir, "fsync"));
  it->second.durable = it->second.entries;
  return Status::Ok();
}

Status FileSystemSim::Rename(const std::string& from, const std::string& to) {
  if (dirs_.count(from)) {
    // A directory: every directory under it moves (the new name is durable
    // once its parent is synced; directories are durable in this model).
    if (dirs_.count(to)) return Status(Code::kIoError, to + ": rename: Directory not empty");
    std::vector<std::pair<std::string, Dir>> moved;
    for (auto it = dirs_.lower_bound(from); it != dirs_.end() && Under(it->first, from);) {
      moved.emplace_back(to + it->first.substr(from.size()), std::move(it->second));
      it = dirs_.erase(it);
    }
    for (auto& [path, dir] : moved) dirs_[path] = std::move(dir);
    return Status::Ok();
  }
  Dir* src = DirOf(from);
  Dir* dst = DirOf(to);
  if (src == nullptr || dst == nullptr) return NotFound(from, "rename");
  auto it = src->entries.find(Base(from));
  if (it == src->entries.end()) return NotFound(from, "rename");
  std::shared_ptr<Inode> inode = it->second;
  src->entries.erase(it);
  dst->entries[Base(to)] = std::move(inode);
  return Status::Ok();
}

Status FileSystemSim::Remove(const std::string& path) {
  Dir* d = DirOf(path);
  if (d != nullptr) d->entries.erase(Base(path));
  return Status::Ok();
}

Status FileSystemSim::RemoveAll(const std::string& path) {
  CheckPath(path);
  (void)Remove(path);
  for (auto it = dirs_.lower_bound(path); it != dirs_.end() && Under(it->first, path);) {
    it = dirs_.erase(it);
  }
  return Status::Ok();
}

Status FileSystemSim::Link(const std::string& from, const std::string& to) {
  auto inode = Find(from);
  Dir* dst = DirOf(to);
  if (!inode || dst == nullptr) return NotFound(to, "link");
  dst->entries[Base(to)] = inode;
  return Status::Ok();
}

Status FileSystemSim::Truncate(const std::string& path, uint64_t size) {
  auto inode = Find(path);
  if (!inode) return NotFound(path, "truncate");
  inode->data.resize(std::min<size_t>(size, inode->data.size()));
  return Status::Ok();
}

Result<uint64_t> FileSystemSim::FileSize(const std::string& path) {
  auto inode = Find(path);
  if (!inode) return NotFound(path, "stat");
  return static_cast<uint64_t>(inode->data.size());
}

Result<std::optional<bool>> FileSystemSim::IsDirectory(const std::string& path) {
  CheckPath(path);
  if (dirs_.count(path)) return std::optional<bool>(true);
  if (Find(path)) return std::optional<bool>(false);
  return std::optional<bool>();
}

Result<std::unique_ptr<fs::FileLock>> FileSystemSim::Lock(const std::string& path,
                                                          std::string_view holder) {
  if (locks_.count(path)) return Status(Code::kUnavailable, path + " is locked");
  Dir* d = DirOf(path);
  if (d == nullptr) return NotFound(path, "open");
  auto& inode = d->entries[Base(path)];
  if (!inode) inode = std::make_shared<Inode>();
  inode->data = std::string(holder);
  locks_.insert(path);
  return std::unique_ptr<fs::FileLock>(new SimFileLock(locks_, path));
}

FileSystemSim::Image FileSystemSim::Capture(const std::string& prefix) const {
  Image image;
  std::map<const Inode*, size_t> index;
  auto id_of = [&](const std::shared_ptr<Inode>& inode) {
    auto [it, fresh] = index.emplace(inode.get(), image.inodes.size());
    if (fresh) image.inodes.emplace_back(inode->data, inode->durable);
    return it->second;
  };
  for (auto it = dirs_.lower_bound(prefix); it != dirs_.end() && Under(it->first, prefix); ++it) {
    auto& cur = image.current[it->first];
    for (const auto& [name, inode] : it->second.entries) cur[name] = id_of(inode);
    auto& dur = image.durable[it->first];
    for (const auto& [name, inode] : it->second.durable) dur[name] = id_of(inode);
  }
  return image;
}

void FileSystemSim::Restore(const std::string& prefix, const Image& image) {
  for (auto it = dirs_.lower_bound(prefix); it != dirs_.end() && Under(it->first, prefix);) {
    it = dirs_.erase(it);
  }
  std::vector<std::shared_ptr<Inode>> inodes;
  for (const auto& [data, durable] : image.inodes) {
    inodes.push_back(std::make_shared<Inode>(Inode{data, durable}));
  }
  for (const auto& [dir, names] : image.current) {
    Dir& d = dirs_[dir];
    for (const auto& [name, ref] : names) d.entries[name] = inodes[ref];
  }
  for (const auto& [dir, names] : image.durable) {
    Dir& d = dirs_[dir];
    for (const auto& [name, ref] : names) d.durable[name] = inodes[ref];
  }
}

void FileSystemSim::PowerLoss(const std::string& prefix) {
  std::set<Inode*> done;
  for (auto it = dirs_.lower_bound(prefix); it != dirs_.end() && Under(it->first, prefix); ++it) {
    Dir& d = it->second;
    d.entries = d.durable;
    for (auto& [name, inode] : d.entries) {
      if (!done.insert(inode.get()).second) continue;
      std::string& data = inode->data;
      const std::string& durable = inode->durable;
      const bool appended = data.size() > durable.size() && data.compare(0, durable.size(), durable) == 0;
      if (appended && world_.Chance(0.5)) {
        // Some of the unsynced tail made it out, possibly cut mid-record.
        data.resize(durable.size() + static_cast<size_t>(world_.Uniform(
                                         0, static_cast<int64_t>(data.size() - durable.size()))));
      } else {
        data = durable;
      }
      inode->durable = data;
    }
  }
}

void FileSystemSim::Wipe(const std::string& prefix) {
  (void)RemoveAll(prefix);
  (void)CreateDirs(prefix);
}

// Bit rot at `at`: the durable byte and the page cache see the same flip.
void FileSystemSim::FlipByte(Inode& inode, size_t at) {
  inode.durable[at] = static_cast<char>(inode.durable[at] ^ 0x5a);
  if (at < inode.data.size()) inode.data[at] = inode.durable[at];
}

std::string FileSystemSim::CorruptOneFile(const std::string& prefix,
                                          const std::function<bool(const std::string&)>& want) {
  std::vector<std::pair<std::string, std::shared_ptr<Inode>>> candidates;
  for (auto it = dirs_.lower_bound(prefix); it != dirs_.end() && Under(it->first, prefix); ++it) {
    for (auto& [name, inode] : it->second.entries) {
      if (want(it->first + "/" + name) && !inode->durable.empty()) {
        candidates.emplace_back(it->first + "/" + name, inode);
      }
    }
  }
  if (candidates.empty()) return "";
  auto& [path, inode] = candidates[static_cast<size_t>(
      world_.Uniform(0, static_cast<int64_t>(candidates.size()) - 1))];
  size_t at = static_cast<size_t>(world_.Uniform(0, static_cast<int64_t>(inode->durable.size()) - 1));
  FlipByte(*inode, at);
  return path + " at offset " + std::to_string(at);
}

bool FileSystemSim::FlipLastByte(const std::string& path) {
  std::shared_ptr<Inode> inode = Find(path);
  if (!inode || inode->durable.empty()) return false;
  FlipByte(*inode, inode->durable.size() - 1);
  return true;
}

void FileSystemSim::SetSyncFailure(const std::string& prefix, double probability) {
  if (probability <= 0) {
    sync_failure_.erase(prefix);
  } else {
    sync_failure_[prefix] = probability;
  }
}

}  // namespace rangekv::sim
