#include "kvnode/server/data_dir.h"

#include <unistd.h>

#include "common/log.h"
#include "kvnode/server/node_options.h"

namespace rangekv::kvnode {
namespace {

Status CreateDir(fs::FileSystem& fs, const std::string& dir) {
  Status st = fs.CreateDirs(dir);
  if (!st.ok()) return Status(Code::kIoError, "cannot create data dir " + dir + ": " + st.message());
  return Status::Ok();
}

// Locks DIR/LOCK, writing our pid into it.
Result<std::unique_ptr<fs::FileLock>> Lock(fs::FileSystem& fs, const std::string& dir) {
  std::string path = fs::JoinPath(dir, kLockFileName);
  auto lock = fs.Lock(path, "pid " + std::to_string(::getpid()) + "\n");
  if (lock.ok()) return lock;
  if (lock.status().code() == Code::kUnavailable) {
    // "<path> is locked by pid N": name the directory and the other kvnode.
    const std::string m = lock.status().message();
    const size_t by = m.find(" by ");
    std::string holder;
    if (by != std::string::npos) holder = " (" + m.substr(by + 4) + ")";
    return Status(Code::kUnavailable,
                  "data dir " + dir + " is in use by another kvnode" + holder);
  }
  return Status(Code::kIoError, "cannot write data dir: " + lock.status().message());
}

// Reads DIR's identity or writes a new one; returns what DIR now says.
Result<NodeIdentity> Identify(Env& env, const std::string& dir, const std::optional<NodeId>& want,
                              const NodeId& default_id) {
  fs::FileSystem& fs = env.fs();
  std::string path = fs::JoinPath(dir, kNodeFileName);
  // NODE is tiny; a huge one is garbage.
  RANGEKV_ASSIGN_OR_RETURN(std::optional<std::string> text, fs.ReadSmallFile(path, 64 * 1024));
  if (!text) {
    NodeIdentity fresh{want ? *want : default_id, DataDir::NewIncarnation(env)};
    RANGEKV_RETURN_IF_ERROR(fs.WriteFileAtomically(
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
    have->incarnation = DataDir::NewIncarnation(env);
    RANGEKV_RETURN_IF_ERROR(fs.WriteFileAtomically(
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

DataDir::DataDir(std::string path, std::unique_ptr<fs::FileLock> lock, NodeIdentity identity,
                 fs::FileSystem& fs, bool previous_clean)
    : path_(std::move(path)),
      fs_(&fs),
      previous_clean_(previous_clean),
      lock_(std::move(lock)),
      identity_(std::move(identity)) {}

Status DataDir::MarkClean() { return fs_->WriteFileAtomically(path_, kCleanFileName, ""); }

Status DataDir::SetSuspect(bool suspect) {
  if (suspect == suspect_marked_) return Status::Ok();
  if (suspect) {
    RANGEKV_RETURN_IF_ERROR(fs_->WriteFileAtomically(path_, kSuspectFileName, ""));
  } else {
    RANGEKV_RETURN_IF_ERROR(fs_->Remove(fs::JoinPath(path_, kSuspectFileName)));
    RANGEKV_RETURN_IF_ERROR(fs_->SyncDir(path_));
  }
  suspect_marked_ = suspect;
  return Status::Ok();
}

DataDir::~DataDir() = default;  // releases the lock

Result<std::unique_ptr<DataDir>> DataDir::Open(Env& env, const std::string& dir,
                                               const std::optional<NodeId>& want,
                                               const NodeId& default_id) {
  fs::FileSystem& fs = env.fs();
  RANGEKV_RETURN_IF_ERROR(CreateDir(fs, dir));
  RANGEKV_ASSIGN_OR_RETURN(std::unique_ptr<fs::FileLock> lock, Lock(fs, dir));
  RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> had_node,
                           fs.IsDirectory(fs::JoinPath(dir, kNodeFileName)));
  RANGEKV_ASSIGN_OR_RETURN(NodeIdentity identity, Identify(env, dir, want, default_id));
  // Clean until proven otherwise only for a brand-new directory; the marker
  // is consumed so that a crash of this process is not taken for clean.
  const std::string clean = fs::JoinPath(dir, kCleanFileName);
  RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> marked, fs.IsDirectory(clean));
  if (marked) {
    RANGEKV_RETURN_IF_ERROR(fs.Remove(clean));
    RANGEKV_RETURN_IF_ERROR(fs.SyncDir(dir));
  }
  RANGEKV_ASSIGN_OR_RETURN(std::optional<std::string> previous_boot,
                           fs.ReadSmallFile(fs::JoinPath(dir, kBootFileName), 256));
  const std::string boot = env.BootId();
  if (!boot.empty() && previous_boot != boot) {
    RANGEKV_RETURN_IF_ERROR(fs.WriteFileAtomically(dir, kBootFileName, boot));
  }
  RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> suspect,
                           fs.IsDirectory(fs::JoinPath(dir, kSuspectFileName)));
  std::unique_ptr<DataDir> out(new DataDir(dir, std::move(lock), std::move(identity), fs,
                                           !had_node || marked.has_value()));
  out->same_boot_ = !boot.empty() && previous_boot == boot;
  out->created_ = !had_node;
  out->suspect_marked_ = suspect.has_value();
  return out;
}

std::string DataDir::RangesDir() const { return path_ + "/" + std::string(kRangesDirName); }

std::string DataDir::RangeDir(RangeId id) const {
  return RangesDir() + "/" + std::to_string(id.value());
}

std::string DataDir::FormatNodeFile(const NodeId& id, std::string_view incarnation) {
  std::string text = std::string(kNodeFileMagic) + " " + std::to_string(kNodeFileVersion) +
                     "\nid " + id.str() + "\n";
  if (!incarnation.empty()) text += "incarnation " + std::string(incarnation) + "\n";
  return text;
}

std::string DataDir::NewIncarnation(Env& env) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  uint64_t bits = 0;
  for (size_t i = 0; i < kIncarnationBytes; ++i) {
    if (i % 8 == 0) bits = env.RandomU64();
    auto byte = static_cast<unsigned>(bits & 0xffu);
    bits >>= 8;
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
