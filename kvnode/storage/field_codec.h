// kvnode/storage/field_codec.h — the small files a store keeps beside its
// log (`retained`, range_store_split.cc; the seed marker, store_seed.h).
// Internal to kvnode/storage. Layout, little-endian:
//
//   | size | field                                               |
//   |------|-----------------------------------------------------|
//   |    8 | magic (per file kind)                               |
//   |  ... | fields: u32, u64, or a span (below)                 |
//   |    4 | crc32c::Mask(CRC32C(every byte before))             |
//
// A span: start length s (4, <= 4 KiB), start, 1 byte (1: bounded above),
// end length e (4; 0 when unbounded), end; a bounded end is after start.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "common/crc32c.h"
#include "common/key_range.h"
#include "kvnode/storage/wal_format.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

inline constexpr size_t kMaxSpanBoundBytes = 4096;

class FieldWriter {
 public:
  explicit FieldWriter(const char (&magic)[8]) : out_(magic, 8) {}
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
  void Span(const KeyRange& r) {
    U32(static_cast<uint32_t>(r.start().size()));
    out_ += r.start();
    out_.push_back(r.end() ? 1 : 0);
    U32(r.end() ? static_cast<uint32_t>(r.end()->size()) : 0);
    if (r.end()) out_ += *r.end();
  }
  // The file's bytes, its CRC appended.
  std::string Finish() {
    U32(crc32c::Mask(crc32c::Value(out_.data(), out_.size())));
    return std::move(out_);
  }

 private:
  std::string out_;
};

class FieldReader {
 public:
  // CORRUPTION (naming path) unless d has the magic and its CRC checks;
  // the fields are then read in order from after the magic.
  static Result<FieldReader> Open(std::string_view d, const char (&magic)[8],
                                  const std::string& path) {
    if (d.size() < 12 || std::memcmp(d.data(), magic, 8) != 0) return Bad(path, "bad magic");
    if (wal::GetFixed32(d.data() + d.size() - 4) !=
        crc32c::Mask(crc32c::Value(d.data(), d.size() - 4))) {
      return Bad(path, "crc mismatch");
    }
    return FieldReader(d.substr(8, d.size() - 12));
  }
  static Status Bad(const std::string& path, const char* what) {
    return Status(Code::kCorruption, path + ": " + what);
  }

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
  explicit FieldReader(std::string_view d) : d_(d) {}
  bool Bytes(std::string* s) {
    uint32_t n = 0;
    if (!U32(&n) || n > kMaxSpanBoundBytes || d_.size() - pos_ < n) return false;
    s->assign(d_.substr(pos_, n));
    pos_ += n;
    return true;
  }

  std::string_view d_;
  size_t pos_ = 0;
};

}  // namespace rangekv::kvnode
