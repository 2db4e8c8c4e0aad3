// tests/sim/sim_fs.h — the simulated disk: an in-memory file system that
// remembers what was made durable, so a simulated crash can take back the
// rest (common/fs.h states the contract it enforces).
//
// Model:
//   - a file is an inode with its current bytes and its durable bytes (as
//     of the last AppendFile::Sync); hard links share the inode;
//   - a directory's entries (name -> inode) are current, and durable as of
//     its last SyncDir; directories themselves are durable once created
//     (journaling file systems commit a mkdir with the next fsync of
//     anything; the engine relies on nothing stronger);
//   - open files, locks and mappings belong to the process that made them.
//
// Crashes, per node (all of a node's files live under its path prefix):
//   - process crash (kill -9): nothing is lost; the page cache survives;
//   - power loss: each directory under the prefix gets its durable entries
//     back and each file its durable bytes, plus, when it was appended to
//     since, a random prefix of what was appended (pages the kernel wrote
//     out on its own; the last record may be torn).
// Faults: a failing fdatasync (EIO; the bytes stay not durable, as Linux
// may drop dirty pages after a failed fsync), a byte flipped in a durable
// file (bit rot), a wiped directory (an empty disk).
//
// Time: every fdatasync costs simulated disk time, which the worker that
// called it pays before its next step (TakeIoTime).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/fs.h"
#include "tests/sim/world.h"

namespace rangekv::sim {

class FileSystemSim final : public fs::FileSystem {
 public:
  explicit FileSystemSim(World& world) : world_(world) {}

  Result<std::unique_ptr<fs::AppendFile>> OpenAppend(const std::string& path,
                                                     fs::AppendFile::Mode mode) override;
  Result<std::unique_ptr<fs::MappedFile>> Map(const std::string& path) override;
  Result<std::unique_ptr<fs::ReadFile>> OpenRead(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDirs(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status RemoveAll(const std::string& path) override;
  Status Link(const std::string& from, const std::string& to) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Result<uint64_t> FileSize(const std::string& path) override;
  Result<std::optional<bool>> IsDirectory(const std::string& path) override;
  Result<std::unique_ptr<fs::FileLock>> Lock(const std::string& path,
                                             std::string_view holder) override;

  // ---- crashes and faults ----
  // A copy of everything under prefix (directories, entries, bytes, what
  // is durable), and putting it back: a crashed process's objects are torn
  // down between the two, so nothing they do while going away (a close
  // that flushes and fsyncs) reaches the disk a real crash would leave.
  struct Image {
    // dir -> name -> index into inodes
    std::map<std::string, std::map<std::string, size_t>> current;
    std::map<std::string, std::map<std::string, size_t>> durable;
    std::vector<std::pair<std::string, std::string>> inodes;        // (data, durable)
  };
  Image Capture(const std::string& prefix) const;
  void Restore(const std::string& prefix, const Image& image);
  void PowerLoss(const std::string& prefix);
  void Wipe(const std::string& prefix);
  // Flips one byte of one durable file under prefix whose name passes
  // `want` (chosen by the world's generator). Returns "<path> at offset
  // <n>", or "" when there is no such file.
  std::string CorruptOneFile(const std::string& prefix,
                             const std::function<bool(const std::string&)>& want);
  // Flips the last durable byte of the file at path (bit rot inside its
  // last record); false when there is no such file or it is empty.
  bool FlipLastByte(const std::string& path);
  // fdatasync / SyncDir of paths under prefix fail with EIO with this
  // probability (0: never).
  void SetSyncFailure(const std::string& prefix, double probability);

  // Simulated disk time used since the last call.
  Nanos TakeIoTime() { return std::exchange(io_time_, 0); }

  struct Inode {
    std::string data;
    std::string durable;
  };
  struct Dir {
    std::map<std::string, std::shared_ptr<Inode>> entries;
    std::map<std::string, std::shared_ptr<Inode>> durable;
  };

 private:
  Status Fault(const std::string& path, const char* op);
  void SyncCost() { io_time_ += world_.Latency(100 * kMicro, 2 * kMilli); }
  Dir* DirOf(const std::string& path);  // nullptr when the parent is missing
  static void FlipByte(Inode& inode, size_t at);
  std::shared_ptr<Inode> Find(const std::string& path);
  friend class SimAppendFile;

  World& world_;
  std::map<std::string, Dir> dirs_;  // every directory by path
  std::set<std::string> locks_;
  std::map<std::string, double> sync_failure_;  // by prefix
  Nanos io_time_ = 0;
};

}  // namespace rangekv::sim
