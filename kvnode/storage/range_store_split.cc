// A store's part in a split (docs/elastic.md §3): the parent's narrowing
// (RetainOnly). The new range's copy of the span is range_store_seed.cc's.
//
// The file "retained" in the store's directory says which keys the map
// holds; without it, every key its log and snapshots name. It is written
// (temp file, fsync, rename, directory fsync) before any key is dropped,
// so a snapshot taken after the narrowing, which lacks the dropped keys,
// is never read as complete for them. Layout (the framing of
// kvnode/storage/field_codec.h), little-endian:
//
//   | off | size | field                                   |
//   |-----|------|-----------------------------------------|
//   |   0 |    8 | magic "RKVKEEP\n"                       |
//   |   8 |    4 | version (1)                             |
//   |  12 |    4 | start length s (<= 4 KiB)               |
//   |  16 |    s | start                                   |
//   |16+s |    1 | 1: bounded above, 0: unbounded          |
//   |17+s |    4 | end length e (0 when unbounded)         |
//   |21+s |    e | end                                     |
//   |21+s+e|   4 | crc(x) = crc32c::Mask(CRC32C(bytes before)) |
//
// A file that does not check makes Open fail with CORRUPTION (the copy is
// then made again from the replicas): guessing would either resurrect
// dropped keys or lose kept ones.
#include "common/log.h"
#include "kvnode/storage/field_codec.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

constexpr char kRetainedMagic[8] = {'R', 'K', 'V', 'K', 'E', 'E', 'P', '\n'};
constexpr uint32_t kRetainedVersion = 1;

std::string EncodeRetained(const KeyRange& keep) {
  FieldWriter w(kRetainedMagic);
  w.U32(kRetainedVersion);
  w.Span(keep);
  return w.Finish();
}

Result<KeyRange> DecodeRetained(const std::string& d, const std::string& path) {
  RANGEKV_ASSIGN_OR_RETURN(FieldReader r, FieldReader::Open(d, kRetainedMagic, path));
  uint32_t version = 0;
  if (!r.U32(&version) || version != kRetainedVersion) {
    return FieldReader::Bad(path, "unknown version");
  }
  std::optional<KeyRange> keep;
  if (!r.Span(&keep) || !r.done()) return FieldReader::Bad(path, "bad span");
  return std::move(*keep);
}

Status SaveRetained(fs::FileSystem& fs, const std::string& dir, const KeyRange& keep) {
  const std::string tmp = fs::JoinPath(dir, kRetainedTempName);
  {
    RANGEKV_ASSIGN_OR_RETURN(auto f, fs.OpenAppend(tmp, fs::AppendFile::Mode::kTruncate));
    RANGEKV_RETURN_IF_ERROR(f->Append(EncodeRetained(keep)));
    RANGEKV_RETURN_IF_ERROR(f->Sync());
    RANGEKV_RETURN_IF_ERROR(f->Close());
  }
  RANGEKV_RETURN_IF_ERROR(fs.Rename(tmp, fs::JoinPath(dir, kRetainedFileName)));
  return fs.SyncDir(dir);
}

bool Inside(const KeyRange& inner, const KeyRange& outer) {
  return inner.end() ? outer.ContainsSpan(inner.start(), std::string_view(*inner.end()))
                     : outer.ContainsSpan(inner.start(), std::nullopt);
}

}  // namespace

Status SaveRetainedFile(fs::FileSystem& fs, const std::string& dir, const KeyRange& keep) {
  return SaveRetained(fs, dir, keep);
}

Status RangeStore::Impl::LoadRetained(const std::optional<KeyRange>& absent) {
  const std::string path = fs::JoinPath(opts.dir, kRetainedFileName);
  RANGEKV_ASSIGN_OR_RETURN(std::optional<std::string> data, fs.ReadSmallFile(path, 16384));
  if (!data && !absent) return Status::Ok();
  KeyRange keep = absent.value_or(KeyRange());
  if (data) {
    RANGEKV_ASSIGN_OR_RETURN(keep, DecodeRetained(*data, path));
  }
  map.Retain(keep);
  // A store narrowed by a split never admits more, whatever bounds it was
  // opened with (a map read before the split, arriving late).
  set_bounds(keep);
  return Status::Ok();
}

Status RangeStore::Impl::SaveBaseFiles() {
  RANGEKV_RETURN_IF_ERROR(log.SaveHistoryNow());
  MutexLock lock(retained_mu);
  std::optional<KeyRange> keep = map.retained();
  return keep ? SaveRetained(fs, opts.dir, *keep) : Status::Ok();
}

// Narrowing only ever narrows.
static Status CheckNarrower(const RangeStore& store, const KeyRange& keep) {
  if (Inside(keep, store.bounds())) return Status::Ok();
  return Status(Code::kBadRequest, "range " + std::to_string(store.id().value()) + ": " +
                                       keep.ToString() + " is not inside its bounds " +
                                       store.bounds().ToString());
}

Status RangeStore::RetainOnly(const KeyRange& keep) {
  Impl& s = *impl_;
  RANGEKV_RETURN_IF_ERROR(CheckNarrower(*this, keep));
  // Writes first: from here on nothing outside `keep` is admitted, so no
  // record written after this moment names a dropped key.
  s.set_bounds(keep);
  {
    MutexLock lock(s.retained_mu);
    RANGEKV_RETURN_IF_ERROR(SaveRetained(s.fs, s.opts.dir, keep));
    s.map.Retain(keep);
  }
  LOG_INFO("range " << s.id << ": narrowed to " << keep.ToString());
  return Status::Ok();
}

Status RangeStore::NarrowWrites(const KeyRange& keep) {
  RANGEKV_RETURN_IF_ERROR(CheckNarrower(*this, keep));
  impl_->set_bounds(keep);
  return Status::Ok();
}

std::optional<KeyRange> RangeStore::retained() const { return impl_->map.retained(); }

bool RangeStore::Holds(const KeyRange& span) const { return impl_->map.Holds(span); }

std::optional<std::string> RangeStore::MiddleKey() const {
  return impl_->map.MiddleKey(impl_->bounds());
}

bool RangeStore::HoldsOnly(const KeyRange& b) const {
  // Keys given to a range built from this one are gone from the map but
  // not from its files: only RetainOnly makes those say so.
  if (impl_->bounds() != b || impl_->map.gave_pending()) return false;
  std::optional<KeyRange> keep = impl_->map.retained();
  if (keep) return Inside(*keep, b);
  return !impl_->map.HasKeysOutside(b);
}

}  // namespace rangekv::kvnode
