// A range built from ranges on this node (kvnode/storage/store_seed.h):
// its seed copied out of their maps, its directory prepared, and Open
// from the seed.
#include "common/log.h"
#include "kvnode/storage/epoch_history.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

// Entries copied per hold of a source's map lock: its log thread's apply
// waits at most this long.
constexpr size_t kCopyChunkEntries = 4096;

std::string RangeName(RangeId id) { return "range " + std::to_string(id.value()); }

}  // namespace

Result<StoreSeed> RangeStore::CopySeed(const SeedRecipe& recipe,
                                       std::span<const RangeStore* const> stores) {
  if (stores.size() != recipe.sources.size() || stores.empty()) {
    return Status(Code::kInternal, "a seed needs one store per source");
  }
  StoreSeed seed;
  seed.data_->at = recipe.at;
  for (size_t i = 0; i < stores.size(); ++i) {
    const SeedSource& src = recipe.sources[i];
    if (stores[i]->id() != src.range) {
      return Status(Code::kInternal,
                    RangeName(stores[i]->id()) + " given for source " + RangeName(src.range));
    }
    RANGEKV_RETURN_IF_ERROR(stores[i]->CopySpanTo(seed, src.span, src.at));
  }
  return seed;
}

Result<StoreSeed> RangeStore::TakeSeed(const SeedRecipe& recipe,
                                       std::span<RangeStore* const> stores,
                                       std::span<const bool> gone) {
  if (stores.size() != recipe.sources.size() || gone.size() != stores.size() || stores.empty()) {
    return Status(Code::kInternal, "a seed needs one store per source");
  }
  for (size_t i = 0; i < stores.size(); ++i) {
    // Every check first: a span taken is not given back.
    const SeedSource& src = recipe.sources[i];
    if (stores[i]->id() != src.range) {
      return Status(Code::kInternal,
                    RangeName(stores[i]->id()) + " given for source " + RangeName(src.range));
    }
    RANGEKV_RETURN_IF_ERROR(stores[i]->CheckSource(src.span, src.at));
  }
  StoreSeed seed;
  seed.data_->at = recipe.at;
  for (size_t i = 0; i < stores.size(); ++i) {
    const SeedSource& src = recipe.sources[i];
    RANGEKV_RETURN_IF_ERROR(stores[i]->TakeSpanTo(seed, src.span, src.at, gone[i]));
  }
  return seed;
}

Status RangeStore::CheckSource(const KeyRange& span, Seq at) const {
  const Impl& s = *impl_;
  if (!Holds(span)) {
    return Status(Code::kRangeUnavailable, RangeName(s.id) + " no longer holds " + span.ToString());
  }
  if (s.map.applied() < at) {
    return Status(Code::kRangeUnavailable, RangeName(s.id) + " has applied only through " +
                                               std::to_string(s.map.applied().value()) + ", not " +
                                               std::to_string(at.value()));
  }
  return Status::Ok();
}

Status RangeStore::TakeSpanTo(StoreSeed& seed, const KeyRange& span, Seq at, bool gone) {
  Impl& s = *impl_;
  // CheckSource ran in TakeSeed, for every source before any span moved.
  // Refused first, then moved: a read that found the key inside the
  // bounds and then no key asks the bounds again (GetInBounds).
  const KeyRange before = s.bounds();
  if (gone) {
    s.AdmitNone();
  } else if (before.Overlaps(span) && span.start() > before.start()) {
    s.set_bounds(KeyRange(before.start(), span.start()));
  }
  uint64_t max_version = 0;
  if (!s.map.GiveSpan(span, gone, at, &seed.data_->map, &max_version)) {
    // Not where the map can give it (a span in its middle, keys outside a
    // merged source's span): copied, and the source serves it on.
    if (gone) {
      LOG_WARN(RangeName(s.id) << " holds keys outside " << span.ToString()
                               << "; its span is copied");
    }
    s.set_bounds(before);
    return CopySpanTo(seed, span, at);
  }
  LOG_DEBUG(RangeName(s.id) << ": " << span.ToString() << " moved to a range built from it");
  return Status::Ok();
}

Status RangeStore::CopySpanTo(StoreSeed& seed, const KeyRange& span, Seq at) const {
  const Impl& s = *impl_;
  RANGEKV_RETURN_IF_ERROR(CheckSource(span, at));
  std::string last_key;
  uint64_t max_version = 0;
  for (bool started = false, done = false; !done; started = true) {
    done = s.map.CopySpanChunk(&seed.data_->map, span, kCopyChunkEntries, started, &last_key,
                               &max_version);
  }
  return CheckFence(span, at, max_version);
}

Status RangeStore::CheckFence(const KeyRange& span, Seq at, uint64_t max_version) const {
  const Impl& s = *impl_;
  if (max_version > at.value()) {
    // The source's log wrote a key of the span after the split or merge
    // point: the owner's fence failed. Never build a copy from it.
    return Status(Code::kInternal, RangeName(s.id) + ": a key of " + span.ToString() +
                                       " has version " + std::to_string(max_version) +
                                       " after its seq " + std::to_string(at.value()) +
                                       " of a split or merge");
  }
  return Status::Ok();
}

Status RangeStore::PrepareSeeded(RangeId id, const KeyRange& span, const SeedRecipe& recipe,
                                 StoreOptions opts) {
  fs::FileSystem& fs = (opts.env != nullptr ? *opts.env : DefaultEnv()).fs();
  const std::string dir = opts.dir;
  RANGEKV_RETURN_IF_ERROR(fs.RemoveAll(dir + ".seeding"));  // left by an older version
  RANGEKV_RETURN_IF_ERROR(fs.RemoveAll(dir));
  if (recipe.at.value() == 0) {
    // Nothing was ever written to the sources: an empty store, narrowed.
    RANGEKV_RETURN_IF_ERROR(fs.CreateDirs(dir));
    RANGEKV_RETURN_IF_ERROR(SaveRetainedFile(fs, dir, span));
    return fs.SyncDir(fs::DirName(dir));
  }
  // No fsync: the new range's writes wait for this, and its log's first
  // sync makes it durable before any record (store_seed.h). Its epoch
  // history and retained span are the recipe's until its first snapshot
  // writes them. The marker comes first: a directory holding "seeded"
  // without a marker beside it is never opened (PreparedDirLost).
  RANGEKV_RETURN_IF_ERROR(WriteSeedMarker(fs, dir, recipe));
  Status st = fs.CreateDirs(dir);
  if (st.ok()) {
    auto f = fs.OpenAppend(fs::JoinPath(dir, kSeededFileName), fs::AppendFile::Mode::kTruncate);
    st = f.ok() ? (*f)->Close() : f.status();
  }
  if (!st.ok()) {
    // Built again at the next Apply, from nothing.
    (void)fs.RemoveAll(dir);
    return st;
  }
  LOG_DEBUG(RangeName(id) << ": prepared " << dir << " to open from its seed at seq " << recipe.at);
  return Status::Ok();
}

Result<std::optional<SeedRecipe>> RangeStore::PendingSeed(fs::FileSystem& fs,
                                                          const std::string& dir) {
  auto names = fs.ListDir(dir);
  if (!names.ok() || SeedMarkerStale(*names)) return std::optional<SeedRecipe>();
  return ReadSeedMarker(fs, dir);
}

Result<std::unique_ptr<RangeStore>> RangeStore::Open(RangeId id, KeyRange bounds, StoreOptions opts,
                                                     StoreSeed seed) {
  return Open(id, std::move(bounds), std::move(opts), &seed);
}

Result<std::unique_ptr<RangeStore>> RangeStore::Open(RangeId id, KeyRange bounds, StoreOptions opts,
                                                     StoreSeed* seed) {
  auto impl = std::make_unique<Impl>(id, std::move(bounds), std::move(opts));
  Status st = impl->Recover(seed->data_.get());
  if (!st.ok()) {
    // The keys are back in the seed unless records were applied onto them.
    if (seed->data_ && impl->seed_consumed) seed->data_.reset();
    return st;
  }
  seed->data_.reset();
  impl->Start();
  return std::unique_ptr<RangeStore>(new RangeStore(std::move(impl)));
}

bool RangeStore::base_pending() const { return impl_->snapshots.base_pending(); }

bool RangeStore::gave_away() const { return impl_->map.gave_pending(); }

}  // namespace rangekv::kvnode
