// The seed recipe marker and StoreSeed (kvnode/storage/store_seed.h).
#include "kvnode/storage/store_seed.h"

#include <cstring>

#include "common/crc32c.h"
#include "kvnode/storage/range_store_impl.h"
#include "kvnode/storage/wal_format.h"

namespace rangekv::kvnode {
namespace {

constexpr char kSeedMagic[8] = {'R', 'K', 'V', 'S', 'E', 'E', 'D', '\n'};
constexpr uint32_t kSeedVersion = 1;
constexpr size_t kMaxBoundBytes = 4096;
constexpr size_t kMaxSources = 2;

class Writer {
 public:
  void U32(uint32_t v) {
    char b[4];
    wal::PutFixed32(b, v);
    out_.append(b, 4);
  }
  void U64(uint64_t v) {
    char b[8];
    wal::PutFixed64(b, v);
    out_.append(b, 8);
  }
  void Bytes(const std::string& s) {
    U32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void Span(const KeyRange& r) {
    Bytes(r.start());
    out_.push_back(r.end() ? 1 : 0);
    Bytes(r.end().value_or(""));
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool U32(uint32_t* v) {
    if (d_.size() - pos_ < 4) return false;
    *v = wal::GetFixed32(d_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t* v) {
    if (d_.size() - pos_ < 8) return false;
    *v = wal::GetFixed64(d_.data() + pos_);
    pos_ += 8;
    return true;
  }
  bool Bytes(std::string* s) {
    uint32_t n = 0;
    if (!U32(&n) || n > kMaxBoundBytes || d_.size() - pos_ < n) return false;
    s->assign(d_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool Span(std::optional<KeyRange>* r) {
    std::string start, end;
    if (!Bytes(&start) || pos_ >= d_.size()) return false;
    const bool bounded = d_[pos_++] == 1;
    if (!Bytes(&end)) return false;
    if (!bounded) {
      r->emplace(std::move(start), std::nullopt);
      return true;
    }
    if (!(start < end)) return false;
    r->emplace(std::move(start), std::move(end));
    return true;
  }
  bool done() const { return pos_ == d_.size(); }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

std::string MarkerName(const std::string& range_dir) {
  const std::string parent = fs::DirName(range_dir);
  return range_dir.substr(parent.empty() ? 0 : parent.size() + 1) + ".seed";
}

}  // namespace

std::string SeedMarkerPath(const std::string& range_dir) { return range_dir + ".seed"; }

std::string EncodeSeedRecipe(const SeedRecipe& recipe) {
  Writer w;
  w.out().assign(kSeedMagic, 8);
  w.U32(kSeedVersion);
  w.U64(recipe.at.value());
  w.U64(recipe.epoch.value());
  w.U32(static_cast<uint32_t>(recipe.sources.size()));
  for (const SeedSource& s : recipe.sources) {
    w.U64(s.range.value());
    w.U64(s.at.value());
    w.Span(s.span);
  }
  w.U32(crc32c::Mask(crc32c::Value(w.out().data(), w.out().size())));
  return std::move(w.out());
}

Result<SeedRecipe> DecodeSeedRecipe(const std::string& d, const std::string& path) {
  auto bad = [&path](const char* what) { return Status(Code::kCorruption, path + ": " + what); };
  if (d.size() < 36 || std::memcmp(d.data(), kSeedMagic, 8) != 0) return bad("bad magic");
  if (wal::GetFixed32(d.data() + d.size() - 4) !=
      crc32c::Mask(crc32c::Value(d.data(), d.size() - 4))) {
    return bad("crc mismatch");
  }
  Reader r(std::string_view(d).substr(8, d.size() - 12));
  uint32_t version = 0, n = 0;
  uint64_t at = 0, epoch = 0;
  if (!r.U32(&version) || version != kSeedVersion) return bad("unknown version");
  if (!r.U64(&at) || !r.U64(&epoch) || !r.U32(&n) || n == 0 || n > kMaxSources) {
    return bad("bad header");
  }
  SeedRecipe recipe{Seq(at), Epoch(epoch), {}};
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t id = 0, seq = 0;
    std::optional<KeyRange> span;
    if (!r.U64(&id) || !r.U64(&seq) || !r.Span(&span)) return bad("bad source");
    if (seq > at) return bad("a source's seq is past the recipe's");
    recipe.sources.push_back(SeedSource{RangeId(id), std::move(*span), Seq(seq)});
  }
  if (!r.done()) return bad("trailing bytes");
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
  return fs.WriteFileAtomically(fs::DirName(range_dir), MarkerName(range_dir),
                                EncodeSeedRecipe(recipe));
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
Seq StoreSeed::at() const { return data_ ? data_->at : Seq(0); }
size_t StoreSeed::keys() const { return data_ ? data_->map.size() : 0; }

}  // namespace rangekv::kvnode
