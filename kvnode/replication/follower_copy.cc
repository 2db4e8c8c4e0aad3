// A snapshot copy that outlives a restart of the node making it
// (docs/replication.md §9).
//
// The owner's snapshot arrives in chunks into "<range dir>.incoming". Once
// the first chunk has named the snapshot, "<range dir>.copy" names it too:
//
//   rangekv-copy 1\n
//   owner <node-id>\n
//   replay_from <seq>\n
//   end <seq>\n
//   epoch <epoch>\n
//   total <bytes>\n
//
// written atomically (a crash leaves the old file or the new one). A
// follower that must copy the range again (the next life of the node, a
// new follower after a map change) continues after the bytes .incoming
// holds when the file names the owner it follows and holds no more than
// the snapshot's size; the owner then serves the rest, or answers that
// the snapshot is gone and the copy starts over. Bytes a crash left short
// are simply asked for again; bytes it left wrong (a file system that
// shows a grown file before its data) fail the snapshot's checksums at
// install, and the copy starts over. The identity goes before .incoming is
// emptied for a new copy, and with it once the copy is installed.
#include <sstream>

#include "common/log.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode {

std::string CopyIdentityPath(const std::string& range_dir) { return range_dir + ".copy"; }

namespace replication {
namespace {

constexpr std::string_view kCopyMagic = "rangekv-copy 1";

struct CopyIdentity {
  std::string owner;
  uint64_t replay_from = 0, end = 0, epoch = 0, total = 0;
};

std::string Encode(const CopyIdentity& c) {
  std::ostringstream out;
  out << kCopyMagic << "\nowner " << c.owner << "\nreplay_from " << c.replay_from << "\nend "
      << c.end << "\nepoch " << c.epoch << "\ntotal " << c.total << "\n";
  return out.str();
}

std::optional<CopyIdentity> Decode(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kCopyMagic) return std::nullopt;
  CopyIdentity c;
  std::string field;
  auto read = [&](const char* name, auto& into) {
    return static_cast<bool>(in >> field >> into) && field == name;
  };
  if (!read("owner", c.owner) || !read("replay_from", c.replay_from) || !read("end", c.end) ||
      !read("epoch", c.epoch) || !read("total", c.total)) {
    return std::nullopt;
  }
  if (c.replay_from == 0 || c.total == 0) return std::nullopt;
  return c;
}

}  // namespace

bool Follower::ResumeCopy() {
  if (resume_tried_ || !range_.info.owner) return false;
  resume_tried_ = true;
  fs::FileSystem& fs = ctx_.fs();
  const std::string dir = ctx_.store_options(range_.info.id).dir;
  auto text = fs.ReadSmallFile(CopyIdentityPath(dir), 4096);
  if (!text.ok() || !*text) return false;
  std::optional<CopyIdentity> c = Decode(**text);
  auto size = fs.FileSize(snap_path_);
  if (!c || c->owner != range_.info.owner->str() || !size.ok() || *size == 0 || *size > c->total) {
    return false;
  }
  auto file = fs.OpenAppend(snap_path_, fs::AppendFile::Mode::kOpenExisting);
  if (!file.ok()) return false;
  snap_file_ = std::move(*file);
  snap_ = proto::SnapshotChunk{};
  snap_.replay_from = Seq(c->replay_from);
  snap_.end = Seq(c->end);
  snap_.epoch = Epoch(c->epoch);
  snap_.total_bytes = c->total;
  snap_offset_ = *size;
  LOG_INFO(Name(range_.info.id) << ": resuming the copy of the owner's snapshot at byte "
                                << snap_offset_ << " of " << c->total);
  ctx_.Step("copy.resumed", range_.info.id);
  return true;
}

void Follower::SaveCopyIdentity() {
  if (!range_.info.owner) return;
  const std::string dir = ctx_.store_options(range_.info.id).dir;
  CopyIdentity c{range_.info.owner->str(), snap_.replay_from.value(), snap_.end.value(),
                 snap_.epoch.value(), snap_.total_bytes};
  const std::string path = CopyIdentityPath(dir);
  Status st = ctx_.fs().WriteFileAtomically(fs::DirName(path),
                                            path.substr(fs::DirName(path).size() + 1), Encode(c));
  // Without it the copy only cannot resume after a restart.
  if (!st.ok()) LOG_WARN(Name(range_.info.id) << ": saving the copy's identity: " << st.ToString());
}

}  // namespace replication
}  // namespace rangekv::kvnode
