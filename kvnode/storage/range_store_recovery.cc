// RangeStore::Open's recovery (docs/design.md §6): newest usable snapshot
// (RangeSnapshots::LoadUsable), then the log after it (RangeLog::Recover),
// checking every segment; the newest segment's torn tail is cut. Records
// through the commit point go into the map, later ones are staged
// (CommittedMap).
//
// A snapshot is usable when it verifies and the log still reaches back to
// its replay seq (the first segment starts at or before replay_from + 1). A
// corrupt newest snapshot falls back to the next older one under the same
// rule; with none usable, the log must start at seq 1. Anything else is
// CORRUPTION: the range must then be recovered from its replicas.
//
// A directory PrepareSeeded made (store_seed.h) has no snapshot until its
// first one is durable: its base is the seed the caller copied from the
// recipe's sources, at the seq its epoch history is based at, and its log
// continues after it. Without the seed it is CORRUPTION (copied again).
#include <algorithm>

#include "common/log.h"
#include "kvnode/storage/commit_point.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

struct DirListing {
  bool seed_stale = true;                             // SeedMarkerStale
  bool seeded = false;                                // holds kSeededFileName
  std::vector<std::pair<Seq, std::string>> segments;  // ascending
  std::vector<Seq> snapshots;                         // ascending
};

Result<DirListing> ListStoreDir(fs::FileSystem& fs, const std::string& dir) {
  RANGEKV_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.ListDir(dir));
  DirListing l;
  l.seed_stale = SeedMarkerStale(names);
  for (const std::string& name : names) {
    Seq seq;
    if (wal::ParseSegmentName(name, &seq)) {
      l.segments.emplace_back(seq, fs::JoinPath(dir, name));
    } else if (snapshot::ParseSnapshotName(name, &seq)) {
      l.snapshots.push_back(seq);
    } else if (snapshot::IsSnapshotTempName(name) || name == kEpochsTempName ||
               name == kCommitTempName || name == kRetainedTempName || IsExportFileName(name)) {
      // An unfinished snapshot or history from before a crash (never
      // renamed, so unused), or an export of the previous run.
      RANGEKV_RETURN_IF_ERROR(fs.Remove(fs::JoinPath(dir, name)));
    } else if (name == kSeededFileName) {
      l.seeded = true;
    } else if (name == kEpochsFileName || name == kCommitFileName || name == kRetainedFileName) {
      continue;
    } else {
      LOG_WARN(dir << ": ignoring unknown file " << name);
    }
  }
  std::sort(l.segments.begin(), l.segments.end());
  std::sort(l.snapshots.begin(), l.snapshots.end());
  return l;
}

}  // namespace

KeyRange RecipeSpan(const SeedRecipe& recipe) {
  return KeyRange(recipe.sources.front().span.start(), recipe.sources.back().span.end());
}

bool SeedMarkerStale(const std::vector<std::string>& names) {
  Seq seq;
  return names.empty() || std::any_of(names.begin(), names.end(), [&seq](const std::string& n) {
           return snapshot::ParseSnapshotName(n, &seq);
         });
}

bool PreparedDirLost(fs::FileSystem& fs, const std::string& range_dir,
                     const std::vector<std::string>& names) {
  if (SeedMarkerStale(names) ||
      std::find(names.begin(), names.end(), kSeededFileName) == names.end()) {
    return false;
  }
  auto recipe = ReadSeedMarker(fs, range_dir);
  if (recipe.ok() && recipe->has_value()) return false;
  for (const std::string& name : names) {
    Seq seq;
    if (!wal::ParseSegmentName(name, &seq)) continue;
    auto size = fs.FileSize(fs::JoinPath(range_dir, name));
    if (!size.ok() || *size > wal::kSegmentHeaderSize) return false;
  }
  return true;
}

Status RangeStore::Impl::Recover(StoreSeed::Data* seed) {
  bool loaded = false;
  Status st = RecoverFrom(seed, &loaded);
  if (!st.ok() && seed && loaded && !seed_consumed) seed->map = map.Release();
  return st;
}

Status RangeStore::Impl::RecoverFrom(StoreSeed::Data* seed, bool* seed_loaded) {
  if (opts.dir.empty()) return Status(Code::kBadRequest, "store directory not set");
  RANGEKV_RETURN_IF_ERROR(fs.CreateDirs(opts.dir));
  RANGEKV_ASSIGN_OR_RETURN(DirListing listing, ListStoreDir(fs, opts.dir));
  const auto& segs = listing.segments;
  // A marker of a directory made again since, or whose first snapshot is
  // durable, speaks of nothing any more: it goes once Open succeeds.
  std::optional<SeedRecipe> recipe;
  if (!listing.seed_stale) {
    RANGEKV_ASSIGN_OR_RETURN(recipe, ReadSeedMarker(fs, opts.dir));
  }
  if (!recipe && listing.seeded && !listing.seed_stale) {
    // Prepared, and its marker gone: never the store of an empty range
    // (PreparedDirLost tells the caller to build it again).
    return Status(Code::kCorruption, opts.dir + ": prepared from a seed whose marker " +
                                         SeedMarkerPath(opts.dir) + " is gone");
  }
  if (recipe && (!seed || seed->at != recipe->at)) {
    std::string names;
    for (const SeedSource& src : recipe->sources) {
      names += (names.empty() ? "range " : " and range ") + std::to_string(src.range.value());
    }
    return Status(Code::kCorruption, opts.dir + ": its base (seq " +
                                         std::to_string(recipe->at.value()) + ") is only in " +
                                         names + " (" + SeedMarkerPath(opts.dir) +
                                         "), and was not given");
  }

  std::optional<Seq> log_start;
  if (!segs.empty()) log_start = segs.front().first;
  KeyMap base;
  snapshot::SnapshotInfo snap;
  if (recipe) {
    snap.replay_from = snap.end = recipe->at;
  } else {
    RANGEKV_ASSIGN_OR_RETURN(snap, snapshots.LoadUsable(listing.snapshots, log_start, &base));
  }
  // Before the map: it filters what loads.
  RANGEKV_RETURN_IF_ERROR(
      LoadRetained(recipe ? std::optional<KeyRange>(RecipeSpan(*recipe)) : std::nullopt));
  if (recipe) {
    base = std::move(seed->map);
    *seed_loaded = true;  // from here on a failure moves the map back (Recover)
  }
  map.Load(std::move(base));

  RANGEKV_ASSIGN_OR_RETURN(EpochHistory loaded, EpochHistory::Load(fs, opts.dir));
  RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> has_epochs,
                           fs.IsDirectory(fs::JoinPath(opts.dir, kEpochsFileName)));
  if (recipe && !has_epochs) {
    // Not written yet (PrepareSeeded leaves it to the first snapshot).
    loaded.SetBase(recipe->at, recipe->epoch, recipe->at);
  }
  if (recipe && loaded.base_seq() != recipe->at) {
    return Status(Code::kCorruption, opts.dir + ": epoch history based at seq " +
                                         std::to_string(loaded.base_seq().value()) +
                                         ", its seed at " + std::to_string(recipe->at.value()));
  }
  // Records after this stay staged (commit_gate stores).
  std::optional<Seq> apply_through;
  if (opts.commit_gate) {
    // What is known committed: the kept commit point, or what the snapshot
    // holds (its map is committed state).
    std::string why;
    std::optional<Seq> kept = LoadCommitPoint(fs, opts.dir, &why);
    apply_through = std::max(kept.value_or(Seq(0)), snap.end);
    snapshots.set_checkpoint_saved(kept.value_or(Seq(0)));
  }
  uint64_t replayed_bytes = 0;
  auto replay = [this, &apply_through](const wal::RecordView& rec) -> Status {
    seed_consumed = true;  // the map is no longer the seed alone
    if (apply_through && rec.seq > *apply_through) return map.StageRecovered(rec);
    return map.ReplayRecovered(rec);
  };
  RANGEKV_ASSIGN_OR_RETURN(Seq last,
                           log.Recover(segs, std::move(loaded), snap, replay, &replayed_bytes));
  map.FinishRecovery(last);
  if (recipe) {
    // No snapshot file holds the base: the first one is written now.
    snapshots.Recovered(Seq(0), replayed_bytes);
    snapshots.SetBasePending([this] { return SaveBaseFiles(); });
    // Prepared without an fsync (store_seed.h): durable before any record.
    log.SyncFirst([&fs = fs, dir = opts.dir] { return SyncSeedMarker(fs, dir); });
  } else {
    snapshots.Recovered(snap.replay_from, replayed_bytes);
  }
  if (listing.seed_stale) RANGEKV_RETURN_IF_ERROR(RemoveSeedMarker(fs, opts.dir));
  const size_t staged = map.staged_count();
  LOG_INFO("range " << id << ": opened " << opts.dir << " at seq " << last << " with " << map.size()
                    << " keys (" << (recipe ? "seeded at " : "snapshot ") << snap.replay_from
                    << ", " << log.segment_count() << " segments"
                    << (staged == 0 ? std::string()
                                    : ", " + std::to_string(staged) +
                                          " records past the commit point staged")
                    << ")");
  return Status::Ok();
}

}  // namespace rangekv::kvnode
