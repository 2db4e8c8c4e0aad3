// RangeLog's part of Open (docs/design.md §6): every segment is read and
// checked, the newest one's torn tail is cut, records after the snapshot
// go to the caller (RangeStore::Impl puts them in the map or stages them),
// and the epoch history is re-derived from the records' epochs.
//
// Open runs before any worker starts; the locks taken here are never
// contended, they only keep the guarded state guarded.
#include "common/log.h"
#include "kvnode/storage/range_log.h"

namespace rangekv::kvnode {
namespace {

Status Corrupt(const std::string& msg) { return Status(Code::kCorruption, msg); }

}  // namespace

Result<Seq> RangeLog::Recover(const std::vector<std::pair<Seq, std::string>>& segs,
                              EpochHistory loaded, const snapshot::SnapshotInfo& snap,
                              const Replay& replay, uint64_t* replayed_bytes) {
  Seq prev_last{0};  // last seq of the segment before
  wal::SegmentSummary newest;
  EpochScan epochs;
  for (size_t i = 0; i < segs.size(); ++i) {
    const auto& [name_seq, path] = segs[i];
    const bool is_newest = i + 1 == segs.size();
    std::vector<wal::RecordPosition> index;
    RANGEKV_ASSIGN_OR_RETURN(
        newest, ReplaySegment(path, name_seq,
                              is_newest ? wal::SegmentRole::kNewest : wal::SegmentRole::kOlder,
                              snap.replay_from, replay, replayed_bytes, &epochs, &index));
    if (i > 0 && name_seq != prev_last.Next()) {
      return Corrupt(path + ": first seq " + std::to_string(name_seq.value()) +
                     " does not follow seq " + std::to_string(prev_last.value()) + " of " +
                     segs[i - 1].second);
    }
    prev_last = newest.last_seq;
    MutexLock lock(seg_mu_);
    segments_.push_back(SegmentInfo{name_seq, path, newest.valid_bytes, std::move(index)});
  }
  // The log is fsync'ed through a snapshot's end before the snapshot is
  // committed, so a log ending earlier has lost records. A snapshot
  // installed from another node (OpenFromSnapshot) is the exception: its
  // log starts empty and reaches the end only by replication.
  const Seq last = segs.empty() ? snap.replay_from : prev_last;
  const bool installed = loaded.base_seq().value() != 0 && loaded.base_seq() == snap.replay_from;
  if (last < snap.end && !installed) {
    return Corrupt(opts_.dir + ": the log ends at seq " + std::to_string(last.value()) +
                   ", before the end of snapshot seq " + std::to_string(snap.end.value()));
  }
  RANGEKV_RETURN_IF_ERROR(OpenActiveSegment(last, newest));

  Seq log_first;
  {
    MutexLock lock(seg_mu_);
    log_first = segments_.empty() ? last.Next() : segments_.front().first;
  }
  RANGEKV_RETURN_IF_ERROR(RecoverHistory(std::move(loaded), epochs, log_first, last));
  MutexLock lock(mu_);
  next_seq_ = last.Next();
  written_seq_ = synced_seq_ = last;
  log_end_ = LogPosition{last, epochs.any ? epochs.last : history_.EpochAt(last)};
  last_record_epoch_ = epochs.any ? epochs.last : Epoch(0);
  return last;
}

// Reads one segment, handing its records after replay_from to `replay`,
// and checks its header against its name and range.
Result<wal::SegmentSummary> RangeLog::ReplaySegment(const std::string& path, Seq name_seq,
                                                    wal::SegmentRole role, Seq replay_from,
                                                    const Replay& replay,
                                                    uint64_t* replayed_bytes, EpochScan* epochs,
                                                    std::vector<wal::RecordPosition>* index) {
  RANGEKV_ASSIGN_OR_RETURN(auto mapped, fs_.Map(path));
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
    return replay(rec);
  };
  auto summary = wal::ReadSegment(mapped->data(), role, visit);
  if (!summary.ok()) return summary.status().WithContext(path);
  if (summary->end == wal::SegmentEnd::kTornHeader) {
    summary->header.first_seq = name_seq;
    summary->header.range = id_;
    summary->last_seq = Seq(name_seq.value() - 1);
  }
  if (summary->header.first_seq != name_seq) {
    return Corrupt(path + ": header says first seq " +
                   std::to_string(summary->header.first_seq.value()));
  }
  if (summary->header.range != id_) {
    return Corrupt(path + ": segment belongs to range " +
                   std::to_string(summary->header.range.value()));
  }
  if (summary->end != wal::SegmentEnd::kClean) {
    LOG_WARN(path << ": newest segment ends in a " << summary->tail_reason << " at offset "
                  << summary->valid_bytes << " (crash during append); cutting it");
    cut_tail_ = true;
  }
  return summary;
}

// Continues the newest segment after its last whole record, or starts a
// new one at last + 1 when there is none (or its header never made it).
Status RangeLog::OpenActiveSegment(Seq last, const wal::SegmentSummary& newest) {
  std::optional<SegmentInfo> newest_seg;
  {
    MutexLock lock(seg_mu_);
    if (!segments_.empty()) newest_seg = segments_.back();
  }
  std::unique_ptr<wal::SegmentWriter> writer;
  if (!newest_seg || newest.end == wal::SegmentEnd::kTornHeader) {
    if (newest_seg) {
      RANGEKV_RETURN_IF_ERROR(fs_.Remove(newest_seg->path));
      MutexLock lock(seg_mu_);
      segments_.pop_back();
    }
    RANGEKV_ASSIGN_OR_RETURN(writer, wal::SegmentWriter::Create(fs_, opts_.dir, id_, last.Next()));
    {
      MutexLock lock(seg_mu_);
      segments_.push_back(SegmentInfo{last.Next(), writer->path(), writer->size(), {}});
    }
    active_ = std::move(writer);
    MutexLock file_lock(file_mu_);
    syncing_ = active_.get();
    return Status::Ok();
  }
  RANGEKV_ASSIGN_OR_RETURN(writer, wal::SegmentWriter::Reopen(fs_, newest_seg->path,
                                                              newest_seg->first,
                                                              newest.valid_bytes));
  active_ = std::move(writer);
  {
    MutexLock file_lock(file_mu_);
    syncing_ = active_.get();
  }
  // What a killed process left in the page cache is made durable now, so
  // that "synced through `last`" holds from here on.
  return active_->Sync();
}

// The history file next to the log: entries that start before the log's
// first record only live there; the rest is re-derived from the records'
// epochs (the truth), keeping a trailing entry for an epoch begun after
// the last record. Rewritten when that changes anything.
Status RangeLog::RecoverHistory(EpochHistory loaded, const EpochScan& scan, Seq log_first,
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
    LOG_INFO("range " << id_ << ": epoch history rebuilt from the log (" << h.entries().size()
                      << " entries, was " << loaded.entries().size() << ")");
    RANGEKV_RETURN_IF_ERROR(h.Save(fs_, opts_.dir));
  }
  consistent_from_ = h.consistent_from();
  write_epoch_.store(h.last_epoch().value());
  MutexLock lock(mu_);
  history_ = std::move(h);
  return Status::Ok();
}

}  // namespace rangekv::kvnode
