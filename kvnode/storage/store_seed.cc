// The seed recipe marker and StoreSeed (kvnode/storage/store_seed.h).
#include "kvnode/storage/store_seed.h"

#include "kvnode/storage/field_codec.h"
#include "kvnode/storage/range_store_impl.h"

namespace rangekv::kvnode {
namespace {

constexpr char kSeedMagic[8] = {'R', 'K', 'V', 'S', 'E', 'E', 'D', '\n'};
constexpr uint32_t kSeedVersion = 1;
constexpr size_t kMaxSources = 2;

}  // namespace

std::string SeedMarkerPath(const std::string& range_dir) { return range_dir + ".seed"; }

std::string EncodeSeedRecipe(const SeedRecipe& recipe) {
  FieldWriter w(kSeedMagic);
  w.U32(kSeedVersion);
  w.U64(recipe.at.value());
  w.U64(recipe.epoch.value());
  w.U32(static_cast<uint32_t>(recipe.sources.size()));
  for (const SeedSource& s : recipe.sources) {
    w.U64(s.range.value());
    w.U64(s.at.value());
    w.Span(s.span);
  }
  return w.Finish();
}

Result<SeedRecipe> DecodeSeedRecipe(const std::string& d, const std::string& path) {
  RANGEKV_ASSIGN_OR_RETURN(FieldReader r, FieldReader::Open(d, kSeedMagic, path));
  uint32_t version = 0, n = 0;
  uint64_t at = 0, epoch = 0;
  if (!r.U32(&version) || version != kSeedVersion) return FieldReader::Bad(path, "unknown version");
  if (!r.U64(&at) || !r.U64(&epoch) || !r.U32(&n) || n == 0 || n > kMaxSources) {
    return FieldReader::Bad(path, "bad header");
  }
  SeedRecipe recipe{Seq(at), Epoch(epoch), {}};
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t id = 0, seq = 0;
    std::optional<KeyRange> span;
    if (!r.U64(&id) || !r.U64(&seq) || !r.Span(&span)) return FieldReader::Bad(path, "bad source");
    if (seq > at) return FieldReader::Bad(path, "a source's seq is past the recipe's");
    recipe.sources.push_back(SeedSource{RangeId(id), std::move(*span), Seq(seq)});
  }
  if (!r.done()) return FieldReader::Bad(path, "trailing bytes");
  return recipe;
}

Result<std::optional<SeedRecipe>> ReadSeedMarker(fs::FileSystem& fs, const std::string& range_dir) {
  const std::string path = SeedMarkerPath(range_dir);
  RANGEKV_ASSIGN_OR_RETURN(std::optional<std::string> data, fs.ReadSmallFile(path, 65536));
  if (!data) return std::optional<SeedRecipe>();
  RANGEKV_ASSIGN_OR_RETURN(SeedRecipe recipe, DecodeSeedRecipe(*data, path));
  return std::optional<SeedRecipe>(std::move(recipe));
}

Status WriteSeedMarker(fs::FileSystem& fs, const std::string& range_dir, const SeedRecipe& recipe) {
  RANGEKV_ASSIGN_OR_RETURN(
      auto f, fs.OpenAppend(SeedMarkerPath(range_dir), fs::AppendFile::Mode::kTruncate));
  RANGEKV_RETURN_IF_ERROR(f->Append(EncodeSeedRecipe(recipe)));
  return f->Close();
}

Status SyncSeedMarker(fs::FileSystem& fs, const std::string& range_dir) {
  const std::string path = SeedMarkerPath(range_dir);
  auto f = fs.OpenAppend(path, fs::AppendFile::Mode::kOpenExisting);
  Status st = f.ok() ? (*f)->Sync() : f.status();
  if (f.ok()) (void)(*f)->Close();
  if (!st.ok()) {
    // Gone: the range's first snapshot made its base durable, and the
    // ranges directory with it (RemoveSeedMarker).
    RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> kind, fs.IsDirectory(path));
    if (kind) return st;
  }
  return fs.SyncDir(fs::DirName(range_dir));
}

Status RemoveSeedMarker(fs::FileSystem& fs, const std::string& range_dir) {
  RANGEKV_ASSIGN_OR_RETURN(std::optional<bool> kind, fs.IsDirectory(SeedMarkerPath(range_dir)));
  if (!kind) return Status::Ok();
  RANGEKV_RETURN_IF_ERROR(fs.Remove(SeedMarkerPath(range_dir)));
  return fs.SyncDir(fs::DirName(range_dir));
}

StoreSeed::StoreSeed() : data_(std::make_unique<Data>()) {}
StoreSeed::~StoreSeed() = default;
StoreSeed::StoreSeed(StoreSeed&&) noexcept = default;
StoreSeed& StoreSeed::operator=(StoreSeed&&) noexcept = default;
size_t StoreSeed::keys() const { return data_ ? data_->map.size() : 0; }
Seq StoreSeed::at() const { return data_ ? data_->at : Seq(0); }

}  // namespace rangekv::kvnode
