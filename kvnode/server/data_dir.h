// kvnode/server/data_dir.h — a kvnode's data directory: identity and exclusive lock.
//
// Layout of DIR:
//
// | path               | what                                                   |
// |--------------------|--------------------------------------------------------|
// | NODE               | identity file (format below); written atomically       |
// | LOCK               | flock(2)ed by the running kvnode; holds its pid as text |
// | CLEAN              | present only between a clean shutdown and the next     |
// |                    | start (empty; written and removed durably)             |
// | BOOT               | the OS boot id (Env::BootId) when the last process     |
// |                    | started; rewritten atomically at every start           |
// | SUSPECT            | present while this node may lack records it had        |
// |                    | acknowledged and has not caught up since (empty;       |
// |                    | written and removed durably); survives restarts        |
// | ranges/<id>/       | one RangeStore per range (kvnode/storage/range_store.h) |
// | ranges/<id>.damaged/ | a corrupt copy set aside for inspection; the next    |
// |                    | rebuild of the range replaces it                       |
// | ranges/<id>.copying | present while the range's copy is being made again:  |
// |                    | the store there is not the copy the ISR counted (empty; |
// |                    | written and removed durably; replicator.h)             |
// | ranges/<id>.incoming | the owner's snapshot while it is being copied here,  |
// | ranges/<id>.copy   | and which snapshot it is, so that a restart resumes    |
// |                    | the copy (replication/follower_copy.cc)                |
// | ranges/<id>.removed/ | a range this node no longer holds, renamed aside     |
// |                    | while its files are deleted (server/node_drop.cc)      |
//
// NODE format, version 1: ASCII text, each line ending in '\n':
//
// | line | content                | meaning                                     |
// |------|------------------------|---------------------------------------------|
// | 1    | "rangekv-node 1"       | magic word and format version               |
// | 2    | "id <node-id>"         | the node that owns DIR; [A-Za-z0-9._-]{1,64}|
// | 3    | "incarnation <hex>"    | optional (see below); 1..64 lower-case hex  |
// | 4... | "<field> <value>"      | reserved: ignored by this reader            |
//
// Example:  "rangekv-node 1\nid n1\nincarnation 9f86d081884c7d659a2feaa0c55ad015\n".
//
// The incarnation is 128 random bits (32 hex digits), created once per data
// directory. It tells "this directory's previous process" apart from "another
// node using the same id": a kvnode that finds its ZooKeeper node znode
// already present with its own incarnation knows it is looking at its own
// previous life (kill -9 and restart within the session timeout) and may
// replace it. Files written before the line existed (lines 1-2 only) still
// load: Open adds an incarnation and rewrites NODE. Readers of version 1 that
// predate the line ignore everything after line 2, so they still read
// directories written with it; that is why the version stays 1.
//
// Readers reject any other magic, a newer version, a missing/invalid id line,
// or an invalid incarnation line (CORRUPTION), so an older binary never
// misreads a newer directory. NODE is written to NODE.tmp, fsynced, renamed
// over NODE and the directory fsynced: a crash leaves either no NODE or a
// whole one.
//
// The lock is flock(LOCK_EX | LOCK_NB) on LOCK, held for the DataDir's
// lifetime. The kernel drops it when the process dies, so a kill -9 never
// leaves a stale lock behind; the pid written into LOCK only makes the error
// message of a second kvnode more helpful.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/exec.h"
#include "common/fs.h"
#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

inline constexpr std::string_view kNodeFileName = "NODE";
inline constexpr std::string_view kLockFileName = "LOCK";
inline constexpr std::string_view kCleanFileName = "CLEAN";
inline constexpr std::string_view kBootFileName = "BOOT";
inline constexpr std::string_view kSuspectFileName = "SUSPECT";
inline constexpr std::string_view kRangesDirName = "ranges";
inline constexpr std::string_view kNodeFileMagic = "rangekv-node";
inline constexpr int kNodeFileVersion = 1;
inline constexpr size_t kIncarnationBytes = 16;  // written as 32 hex digits
inline constexpr size_t kMaxIncarnationHex = 64;

// What NODE says.
struct NodeIdentity {
  NodeId id;
  std::string incarnation;  // "" in a file written before incarnations existed
  friend bool operator==(const NodeIdentity&, const NodeIdentity&) = default;
};

class DataDir {
 public:
  // Opens DIR for the node `want` (nullopt: adopt DIR's id, or
  // default_id for a new DIR):
  //   - creates DIR with its parents (IO_ERROR when it cannot be created or
  //     written, e.g. a regular file is in the way or the path is read-only);
  //   - takes the lock (UNAVAILABLE "in use by another kvnode (pid N)");
  //   - reads NODE, or writes it (with a new incarnation) for a new DIR;
  //     adds an incarnation to a NODE that has none. BAD_REQUEST when DIR
  //     belongs to a different node id; CORRUPTION when NODE does not parse.
  // Messages are one line and name the path.
  static Result<std::unique_ptr<DataDir>> Open(Env& env, const std::string& dir,
                                               const std::optional<NodeId>& want,
                                               const NodeId& default_id);

  ~DataDir();  // releases the lock
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  const std::string& path() const { return path_; }
  const NodeId& node_id() const { return identity_.id; }
  // Never empty once opened.
  const std::string& incarnation() const { return identity_.incarnation; }
  // Whether the previous process that used DIR closed it cleanly (its
  // stores closed, everything fsynced), or DIR is new.
  bool previous_run_clean() const { return previous_clean_; }
  // DIR had no NODE file: this Open made it a new data directory.
  bool created() const { return created_; }
  // Whether the previous process ran in this same OS boot: then whatever it
  // wrote is still there even if it never fsynced (it died, the machine
  // did not). False when either boot id is unknown.
  bool previous_run_same_boot() const { return same_boot_; }
  // Records a clean shutdown (after every store closed).
  Status MarkClean();
  // The SUSPECT marker: whether it was present at Open, and setting or
  // removing it durably (idempotent).
  bool suspect_marked() const { return suspect_marked_.load(); }
  Status SetSuspect(bool suspect);
  // DIR/ranges/<id> (not created here; RangeStore::Open creates it).
  std::string RangeDir(RangeId id) const;
  // DIR/ranges.
  std::string RangesDir() const;

  // The NODE file text, and its parser (exposed for tests). An empty
  // incarnation writes the old two-line form.
  static std::string FormatNodeFile(const NodeId& id, std::string_view incarnation = "");
  static Result<NodeIdentity> ParseNodeFile(std::string_view text);
  // kIncarnationBytes random bytes (from env) as lower-case hex.
  static std::string NewIncarnation(Env& env);

 private:
  DataDir(std::string path, std::unique_ptr<fs::FileLock> lock, NodeIdentity identity,
          fs::FileSystem& fs, bool previous_clean);
  std::string path_;
  fs::FileSystem* fs_;
  bool previous_clean_;
  bool same_boot_ = false;
  bool created_ = false;
  std::atomic<bool> suspect_marked_{false};  // read by any thread, set by one
  std::unique_ptr<fs::FileLock> lock_;
  NodeIdentity identity_;
};

}  // namespace rangekv::kvnode
