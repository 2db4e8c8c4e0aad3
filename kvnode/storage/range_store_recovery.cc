// RangeStore::Open's recovery (docs/design.md §6): newest usable snapshot, then the
// log after it, checking every segment; the newest segment's torn tail is cut.
//
// A snapshot is usable when it verifies and the log still reaches back to
// its replay seq (the first segment starts at or before replay_from + 1). A
// corrupt newest snapshot falls back to the next older one under the same
// rule; with none usable, the log must start at seq 1. Anything else is
// CORRUPTION: the range must then be recovered from its replicas.
#include <algorithm>

#include "common/log.h"
#include "kvnode/storage/commit_point.h"
#include "kvnode/storage/range_store_impl.h"
#include "kvnode/storage/snapshot.h"

namespace rangekv::kvnode {
namespace {

struct DirListing {
  std::vector<std::pair<Seq, std::string>> segments;  // ascending
  std::vector<Seq> snapshots;                         // ascending
};

Result<DirListing> ListStoreDir(fs::FileSystem& fs, const std::string& dir) {
  RANGEKV_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDir(dir));
  DirListing l;
  for (const std::string& name : names) {
    Seq seq;
    if (wal::ParseSegmentName(name, &seq)) {
      l.segments.emplace_back(seq, fs::JoinPath(dir, name));
    } else if (snapshot::ParseSnapshotName(name, &seq)) {
      l.snapshots.push_back(seq);
    } else if (snapshot::IsSnapshotTempName(name) || name == kEpochsTempName ||
               name == kCommitTempName || IsExportFileName(name)) {
      // An unfinished snapshot or history from before a crash (never
      // renamed, so unused), or an export of the previous run.
      RANGEKV_RETURN_IF_ERROR(fs.Remove(fs::JoinPath(dir, name)));
    } else if (name == kEpochsFileName || name == kCommitFileName) {
      continue;
    } else {
      LOG_WARN(dir << ": ignoring unknown file " << name);
    }
  }
  std::sort(l.segments.begin(), l.segments.end());
  std::sort(l.snapshots.begin(), l.snapshots.end());
  return l;
}

Status Corrupt(const std::string& msg) { return Status(Code::kCorruption, msg); }

// A record recovery keeps staged (past the commit point), as the log
// thread would hold it after writing it.
Result<PendingWrite> StagedRecord(const wal::RecordView& rec) {
  RANGEKV_ASSIGN_OR_RETURN(wal::DecodedBatch batch, wal::DecodeBatchPayload(rec.payload));
  PendingWrite w;
  w.seq = rec.seq;
  w.epoch = batch.epoch;
  for (const wal::BatchOp& op : batch.ops) {
    if (op.op == wal::OpCode::kPut) {
      w.ops.push_back(proto::WriteOp::Put(std::string(op.key), std::string(op.value)));
    } else {
      w.ops.push_back(proto::WriteOp::Delete(std::string(op.key)));
    }
  }
  return w;
}

// Applies one record during replay.
Status ReplayRecord(const wal::RecordView& rec, KeyMap& map) {
  RANGEKV_ASSIGN_OR_RETURN(wal::DecodedBatch batch, wal::DecodeBatchPayload(rec.payload));
  for (const wal::BatchOp& op : batch.ops) {
    if (op.op == wal::OpCode::kPut) {
      ApplyPut(map, op.key, std::string(op.value), rec.seq);
    } else {
      ApplyDelete(map, op.key);
    }
  }
  return Status::Ok();
}

}  // namespace

// Loads the newest snapshot that verifies and that the log still covers
// into `map`. replay_from 0 in the result: none (the log must start at 1).
Result<snapshot::SnapshotInfo> RangeStore::Impl::LoadUsableSnapshot(const std::vector<Seq>& snaps,
                                                                    std::optional<Seq> log_start) {
  std::string rejected;  // why newer snapshots were not used
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    const std::string path = fs::JoinPath(opts.dir, snapshot::SnapshotFileName(*it));
    if (log_start && log_start->value() > it->value() + 1) {
      rejected += "; " + path + " is not covered by the log, which starts at seq " +
                  std::to_string(log_start->value());
      break;  // older snapshots need even more log
    }
    KeyMap loaded;
    auto info =
        snapshot::ReadSnapshot(fs, path, id, [&](std::string_view k, std::string_view v, uint64_t ver) {
          loaded.PutInOrder(k, std::string(v), ver);
        });
    if (info.ok() && info->replay_from != *it) {
      info = Status(Code::kCorruption,
                    path + ": holds replay seq " + std::to_string(info->replay_from.value()));
    }
    if (!info.ok()) {
      LOG_WARN("range " << id << ": skipping snapshot: " << info.status().ToString());
      rejected += "; " + info.status().message();
      continue;
    }
    if (!rejected.empty()) {
      LOG_WARN("range " << id << ": recovering from older snapshot at seq " << *it << rejected);
    }
    map = std::move(loaded);
    return *info;
  }
  if (log_start && log_start->value() > 1) {
    return Corrupt("range " + std::to_string(id.value()) + " in " + opts.dir +
                   ": no usable snapshot and the log starts at seq " +
                   std::to_string(log_start->value()) + rejected);
  }
  return snapshot::SnapshotInfo{};
}

// Reads one segment, replaying its records after replay_from into `map`,
// and checks its header against its name and range.
Result<wal::SegmentSummary> RangeStore::Impl::ReplaySegment(
    const std::string& path, Seq name_seq, wal::SegmentRole role, Seq replay_from,
    uint64_t* replayed_bytes, EpochScan* epochs, std::vector<wal::RecordPosition>* index) {
  RANGEKV_ASSIGN_OR_RETURN(auto mapped, fs.Map(path));
  auto visit = [&](const wal::RecordView& rec) -> Status {
    if (index->empty() || rec.offset >= index->back().offset + kIndexEvery) {
      index->push_back(wal::RecordPosition{rec.seq, rec.offset});
    }
    const Epoch e = wal::PayloadEpoch(rec.payload);
    if (epochs->any && e < epochs->last) {
      LOG_WARN(path << ": record " << rec.seq << " has epoch " << e << ", below epoch "
                    << epochs->last << " of an earlier record");
    } else if (!epochs->any || e > epochs->last) {
      epochs->starts.push_back(EpochStart{e, rec.seq});
      epochs->last = e;
    }
    epochs->any = true;
    if (rec.seq <= replay_from) return Status::Ok();
    *replayed_bytes += wal::kRecordHeaderSize + rec.payload.size();
    if (apply_through && rec.seq > *apply_through) {
      RANGEKV_ASSIGN_OR_RETURN(PendingWrite w, StagedRecord(rec));
      for (const proto::WriteOp& op : w.ops) {
        pending[op.key] = PendingKey{w.seq, op.kind != proto::WriteOp::Kind::kDelete};
      }
      staged.push_back(std::move(w));
      return Status::Ok();
    }
    return ReplayRecord(rec, map);
  };
  auto summary = wal::ReadSegment(mapped->data(), role, visit);
  if (!summary.ok()) return summary.status().WithContext(path);
  if (summary->end == wal::SegmentEnd::kTornHeader) {
    summary->header.first_seq = name_seq;
    summary->header.range = id;
    summary->last_seq = Seq(name_seq.value() - 1);
  }
  if (summary->header.first_seq != name_seq) {
    return Corrupt(path + ": header says first seq " +
                   std::to_string(summary->header.first_seq.value()));
  }
  if (summary->header.range != id) {
    return Corrupt(path + ": segment belongs to range " +
                   std::to_string(summary->header.range.value()));
  }
  if (summary->end != wal::SegmentEnd::kClean) {
    LOG_WARN(path << ": newest segment ends in a " << summary->tail_reason << " at offset "
                  << summary->valid_bytes << " (crash during append); cutting it");
    cut_tail = true;
  }
  return summary;
}

// Continues the newest segment after its last whole record, or starts a
// new one at last + 1 when there is none (or its header never made it).
Status RangeStore::Impl::OpenActiveSegment(Seq last, const wal::SegmentSummary& newest) {
  if (segments.empty() || newest.end == wal::SegmentEnd::kTornHeader) {
    if (!segments.empty()) {
      RANGEKV_RETURN_IF_ERROR(fs.Remove(segments.back().path));
      segments.pop_back();
    }
    RANGEKV_ASSIGN_OR_RETURN(active, wal::SegmentWriter::Create(fs, opts.dir, id, last.Next()));
    segments.push_back(SegmentInfo{last.Next(), active->path(), active->size(), {}});
    return Status::Ok();
  }
  const SegmentInfo& seg = segments.back();
  RANGEKV_ASSIGN_OR_RETURN(
      active, wal::SegmentWriter::Reopen(fs, seg.path, seg.first, newest.valid_bytes));
  // What a killed process left in the page cache is made durable now, so
  // that "synced through `last`" holds from here on.
  return active->Sync();
}

Status RangeStore::Impl::Recover() {
  if (opts.dir.empty()) return Status(Code::kBadRequest, "store directory not set");
  RANGEKV_RETURN_IF_ERROR(fs.CreateDirs(opts.dir));
  RANGEKV_ASSIGN_OR_RETURN(DirListing listing, ListStoreDir(fs, opts.dir));
  const auto& segs = listing.segments;

  std::optional<Seq> log_start;
  if (!segs.empty()) log_start = segs.front().first;
  RANGEKV_ASSIGN_OR_RETURN(snapshot::SnapshotInfo snap,
                           LoadUsableSnapshot(listing.snapshots, log_start));

  RANGEKV_ASSIGN_OR_RETURN(EpochHistory loaded, EpochHistory::Load(fs, opts.dir));
  if (opts.commit_gate) {
    // What is known committed: the kept commit point, or what the snapshot
    // holds (its map is committed state).
    std::string why;
    std::optional<Seq> kept = LoadCommitPoint(fs, opts.dir, &why);
    apply_through = std::max(kept.value_or(Seq(0)), snap.end);
    checkpoint_saved = kept.value_or(Seq(0));
  }
  Seq prev_last{0};  // last seq of the segment before
  uint64_t replayed_bytes = 0;
  wal::SegmentSummary newest;
  EpochScan epochs;
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto& [name_seq, path] = segs[i];
    const bool is_newest = i + 1 == segs.size();
    std::vector<wal::RecordPosition> index;
    RANGEKV_ASSIGN_OR_RETURN(
        newest, ReplaySegment(path, name_seq,
                              is_newest ? wal::SegmentRole::kNewest : wal::SegmentRole::kOlder,
                              snap.replay_from, &replayed_bytes, &epochs, &index));
    if (i > 0 && name_seq != prev_last.Next()) {
      return Corrupt(path + ": first seq " + std::to_string(name_seq.value()) +
                     " does not follow seq " + std::to_string(prev_last.value()) + " of " +
                     segs[i - 1].second);
    }
    prev_last = newest.last_seq;
    segments.push_back(SegmentInfo{name_seq, path, newest.valid_bytes, std::move(index)});
  }
  // The log is fsync'ed through a snapshot's end before the snapshot is
  // committed, so a log ending earlier has lost records. A snapshot
  // installed from another node (OpenFromSnapshot) is the exception: its
  // log starts empty and reaches the end only by replication.
  const Seq last = segs.empty() ? snap.replay_from : prev_last;
  const bool installed = loaded.base_seq().value() != 0 && loaded.base_seq() == snap.replay_from;
  if (last < snap.end && !installed) {
    return Corrupt(opts.dir + ": the log ends at seq " + std::to_string(last.value()) +
                   ", before the end of snapshot seq " + std::to_string(snap.end.value()));
  }
  RANGEKV_RETURN_IF_ERROR(OpenActiveSegment(last, newest));

  const Seq log_first = segments.empty() ? last.Next() : segments.front().first;
  RANGEKV_RETURN_IF_ERROR(RecoverHistory(std::move(loaded), epochs, log_first, last));
  const Seq applied = staged.empty() ? last : Seq(staged.front().seq.value() - 1);
  applied_seq = applied;
  committing_seq = commit_seq = applied;
  next_seq = last.Next();
  written_seq = synced_seq = last;
  log_end = LogPosition{last, epochs.any ? epochs.last : history.EpochAt(last)};
  last_record_epoch = epochs.any ? epochs.last : Epoch(0);
  bytes_since_snapshot = replayed_bytes;
  if (snap.replay_from.value() != 0) snapshots.push_back(snap.replay_from);
  snapshot_seq = snap.replay_from.value();
  LOG_INFO("range " << id << ": opened " << opts.dir << " at seq " << last << " with " << map.size()
                    << " keys (snapshot " << snap.replay_from << ", " << segments.size()
                    << " segments"
                    << (staged.empty() ? std::string()
                                       : ", " + std::to_string(staged.size()) +
                                             " records past the commit point staged")
                    << ")");
  return Status::Ok();
}

// The history file next to the log: entries that start before the log's
// first record only live there; the rest is re-derived from the records'
// epochs (the truth), keeping a trailing entry for an epoch begun after
// the last record. Rewritten when that changes anything.
Status RangeStore::Impl::RecoverHistory(EpochHistory loaded, const EpochScan& scan, Seq log_first,
                                        Seq last) {
  EpochHistory h = loaded;
  std::optional<EpochStart> trailing;
  if (!h.entries().empty() && h.entries().back().start == last.Next() &&
      (!scan.any || h.entries().back().epoch > scan.last)) {
    trailing = h.entries().back();
  }
  h.DropFrom(log_first);
  for (const EpochStart& s : scan.starts) (void)h.Append(s.epoch, s.start);
  if (trailing) (void)h.Append(trailing->epoch, trailing->start);
  if (!(h == loaded)) {
    LOG_INFO("range " << id << ": epoch history rebuilt from the log (" << h.entries().size()
                      << " entries, was " << loaded.entries().size() << ")");
    RANGEKV_RETURN_IF_ERROR(h.Save(fs, opts.dir));
  }
  history = std::move(h);
  write_epoch.store(history.last_epoch().value());
  consistent_from = history.consistent_from();
  return Status::Ok();
}

}  // namespace rangekv::kvnode
