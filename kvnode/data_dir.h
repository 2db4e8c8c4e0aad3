// kvnode/data_dir.h — a kvnode's data directory: identity and exclusive lock.
//
// Layout of DIR:
//
// | path               | what                                                   |
// |--------------------|--------------------------------------------------------|
// | NODE               | identity file (format below); written once, atomically |
// | LOCK               | flock(2)ed by the running kvnode; holds its pid as text |
// | ranges/<range-id>/ | one RangeStore per range (kvnode/range_store.h)        |
//
// NODE format, version 1: ASCII text, each line ending in '\n':
//
// | line | content            | meaning                                        |
// |------|--------------------|------------------------------------------------|
// | 1    | "rangekv-node 1"   | magic word and format version                  |
// | 2    | "id <node-id>"     | the node that owns DIR; [A-Za-z0-9._-]{1,64}   |
//
// Example:  "rangekv-node 1\nid standalone\n". Readers reject any other
// magic, a newer version, or a missing/invalid id line (CORRUPTION), so an
// older binary never misreads a newer directory. NODE is written to NODE.tmp,
// fsynced, renamed over NODE and the directory fsynced: a crash leaves either
// no NODE or a whole one.
//
// The lock is flock(LOCK_EX | LOCK_NB) on LOCK, held for the DataDir's
// lifetime. The kernel drops it when the process dies, so a kill -9 never
// leaves a stale lock behind; the pid written into LOCK only makes the error
// message of a second kvnode more helpful.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

inline constexpr std::string_view kNodeFileName = "NODE";
inline constexpr std::string_view kLockFileName = "LOCK";
inline constexpr std::string_view kRangesDirName = "ranges";
inline constexpr std::string_view kNodeFileMagic = "rangekv-node";
inline constexpr int kNodeFileVersion = 1;

class DataDir {
 public:
  // Opens DIR for the node `want` (nullopt: adopt DIR's id, or
  // default_id for a new DIR):
  //   - creates DIR with its parents (IO_ERROR when it cannot be created or
  //     written, e.g. a regular file is in the way or the path is read-only);
  //   - takes the lock (UNAVAILABLE "in use by another kvnode (pid N)");
  //   - reads NODE, or writes it for a new DIR. BAD_REQUEST when DIR belongs
  //     to a different node id; CORRUPTION when NODE does not parse.
  // Messages are one line and name the path.
  static Result<std::unique_ptr<DataDir>> Open(const std::string& dir,
                                               const std::optional<NodeId>& want,
                                               const NodeId& default_id);

  ~DataDir();  // releases the lock
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  const std::string& path() const { return path_; }
  const NodeId& node_id() const { return node_id_; }
  // DIR/ranges/<id> (not created here; RangeStore::Open creates it).
  std::string RangeDir(RangeId id) const;

  // The NODE file text for id, and its parser (exposed for tests).
  static std::string FormatNodeFile(const NodeId& id);
  static Result<NodeId> ParseNodeFile(std::string_view text);

 private:
  DataDir(std::string path, int lock_fd, NodeId id);
  std::string path_;
  int lock_fd_;
  NodeId node_id_;
};

}  // namespace rangekv::kvnode
