// kvnode/storage/commit_point.h — a replicated range's commit point, kept on
// disk so that recovery applies only what was committed.
//
// Why: a replica (or a deposed owner) may hold records past the commit
// point that the owner never committed; after a restart they must not become
// readable, and a divergent owner must still be able to truncate them (the
// store refuses to take back applied records). So a store with the commit
// gate on applies, at Open, the log only through max(this file's seq, the
// snapshot's end), and keeps the rest staged until Commit() reaches it.
//
// The file may lag the real commit point (it is written at most every
// kCommitPointPeriod, and at Close); it never leads it, and records through
// its seq are made durable before it is (a log cut back by a power loss
// never ends before it).
//
// File: `commit` in the range directory, replaced atomically (commit.tmp,
// fdatasync, rename, directory fsync). Little-endian:
//
//   | off | size | field   | rule                                        |
//   | --- | ---- | ------- | ------------------------------------------- |
//   |   0 |    8 | magic   | kCommitMagic, "RKVCOMIT"                    |
//   |   8 |    4 | version | kCommitVersion (1); others are refused      |
//   |  12 |    8 | seq     | every record <= seq is committed            |
//   |  20 |    4 | crc     | crc32c::Mask(CRC32C(bytes 0..19))           |
//
// A missing or damaged file reads as "nothing known" (the store then
// applies only what its snapshot covers: never more than was committed).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/fs.h"
#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

inline constexpr char kCommitFileName[] = "commit";
inline constexpr char kCommitTempName[] = "commit.tmp";
inline constexpr char kCommitMagic[] = "RKVCOMIT";
inline constexpr uint32_t kCommitVersion = 1;
inline constexpr size_t kCommitFileSize = 24;
inline constexpr std::chrono::milliseconds kCommitPointPeriod{100};

// nullopt when the file is missing or does not check (*why says which).
std::optional<Seq> LoadCommitPoint(fs::FileSystem& fs, const std::string& dir, std::string* why);
Status SaveCommitPoint(fs::FileSystem& fs, const std::string& dir, Seq seq);

}  // namespace rangekv::kvnode
