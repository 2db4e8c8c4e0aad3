#include "kvnode/storage/wal_format.h"

#include <cinttypes>
#include <cstdio>

#include "common/crc32c.h"

namespace rangekv::kvnode::wal {
namespace {

Status Corrupt(uint64_t offset, const std::string& what) {
  return Status(Code::kCorruption, "offset " + std::to_string(offset) + ": " + what);
}

uint32_t MaskedCrc(const char* p, size_t n) { return crc32c::Mask(crc32c::Value(p, n)); }

}  // namespace

std::string EncodeSegmentHeader(const SegmentHeader& h) {
  std::string out(kSegmentHeaderSize, '\0');
  char* p = out.data();
  std::memcpy(p, kSegmentMagic, 8);
  PutFixed32(p + 8, h.version);
  PutFixed32(p + 12, h.features);
  PutFixed64(p + 16, h.range.value());
  PutFixed64(p + 24, h.first_seq.value());
  PutFixed32(p + 32, 0);
  PutFixed32(p + 36, MaskedCrc(p, 36));
  return out;
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderSize) return Corrupt(0, "segment header is short");
  const char* p = bytes.data();
  if (std::memcmp(p, kSegmentMagic, 8) != 0) return Corrupt(0, "bad segment magic");
  if (GetFixed32(p + 36) != MaskedCrc(p, 36)) return Corrupt(0, "segment header crc mismatch");
  SegmentHeader h;
  h.version = GetFixed32(p + 8);
  h.features = GetFixed32(p + 12);
  h.range = RangeId(GetFixed64(p + 16));
  h.first_seq = Seq(GetFixed64(p + 24));
  if (h.version != kFormatVersion) {
    return Corrupt(0, "unsupported segment format version " + std::to_string(h.version));
  }
  if ((h.features & ~kKnownFeatureFlags) != 0) {
    return Corrupt(0, "unknown segment feature flags " + std::to_string(h.features));
  }
  if (h.first_seq.value() == 0) return Corrupt(0, "segment first seq is 0");
  return h;
}

std::string SegmentFileName(Seq first) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%020" PRIu64 "%s", kSegmentPrefix, first.value(),
                kSegmentSuffix);
  return buf;
}

bool ParseSegmentName(std::string_view name, Seq* first) {
  const std::string_view prefix = kSegmentPrefix, suffix = kSegmentSuffix;
  if (name.size() != prefix.size() + 20 + suffix.size()) return false;
  if (name.substr(0, prefix.size()) != prefix) return false;
  if (name.substr(name.size() - suffix.size()) != suffix) return false;
  uint64_t v = 0;
  for (char c : name.substr(prefix.size(), 20)) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *first = Seq(v);
  return true;
}

uint32_t PayloadCrc(RecordType type, std::string_view payload) {
  const char t = static_cast<char>(type);
  return crc32c::Mask(crc32c::Extend(crc32c::Value(&t, 1), payload.data(), payload.size()));
}

void EncodeRecordHeader(const RecordHeader& h, char* out) {
  PutFixed32(out, h.length);
  out[4] = static_cast<char>(h.type);
  out[5] = 0;
  out[6] = 0;
  out[7] = 0;
  PutFixed64(out + 8, h.seq.value());
  PutFixed32(out + 16, h.payload_crc);
  PutFixed32(out + 20, MaskedCrc(out, 20));
}

void FinishRecordHeader(Seq seq, char* out) {
  PutFixed64(out + 8, seq.value());
  PutFixed32(out + 20, MaskedCrc(out, 20));
}

HeaderCheck CheckRecordHeader(const char* p, RecordHeader* h) {
  static constexpr char kZeros[kRecordHeaderSize] = {};
  if (std::memcmp(p, kZeros, kRecordHeaderSize) == 0) return HeaderCheck::kAllZeros;
  if (GetFixed32(p + 20) != MaskedCrc(p, 20)) return HeaderCheck::kBadCrc;
  const uint32_t length = GetFixed32(p);
  const uint8_t type = static_cast<uint8_t>(p[4]);
  if (length > kMaxRecordPayload || type != static_cast<uint8_t>(RecordType::kBatch) || p[5] != 0 ||
      p[6] != 0 || p[7] != 0 || GetFixed64(p + 8) == 0) {
    return HeaderCheck::kBadField;
  }
  h->length = length;
  h->type = static_cast<RecordType>(type);
  h->seq = Seq(GetFixed64(p + 8));
  h->payload_crc = GetFixed32(p + 16);
  return HeaderCheck::kValid;
}

void AppendBatchPayloadHeader(Epoch epoch, uint32_t op_count, std::string* out) {
  char buf[kBatchPayloadFixed];
  PutFixed64(buf, epoch.value());
  PutFixed32(buf + 8, op_count);
  out->append(buf, sizeof buf);
}

void AppendBatchOp(OpCode op, std::string_view key, std::string_view value, std::string* out) {
  char buf[5];
  buf[0] = static_cast<char>(op);
  PutFixed32(buf + 1, static_cast<uint32_t>(key.size()));
  out->append(buf, 5);
  out->append(key);
  if (op == OpCode::kPut) {
    PutFixed32(buf, static_cast<uint32_t>(value.size()));
    out->append(buf, 4);
    out->append(value);
  }
}

Result<DecodedBatch> DecodeBatchPayload(std::string_view payload) {
  if (payload.size() < kBatchPayloadFixed) return Corrupt(0, "batch payload is short");
  DecodedBatch b;
  b.epoch = Epoch(GetFixed64(payload.data()));
  const uint32_t count = GetFixed32(payload.data() + 8);
  if (count == 0) return Corrupt(8, "batch has no ops");
  // Every op takes at least 5 bytes: bound the reservation by what can fit.
  if (count > (payload.size() - kBatchPayloadFixed) / 5) {
    return Corrupt(8, "op count " + std::to_string(count) + " does not fit the payload");
  }
  b.ops.reserve(count);
  size_t pos = kBatchPayloadFixed;
  auto take = [&](size_t n, std::string_view* out) {
    if (payload.size() - pos < n) return false;
    *out = payload.substr(pos, n);
    pos += n;
    return true;
  };
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view fixed;
    if (!take(5, &fixed)) return Corrupt(pos, "op header runs past the payload");
    BatchOp op;
    op.op = static_cast<OpCode>(fixed[0]);
    if (op.op != OpCode::kPut && op.op != OpCode::kDelete) {
      return Corrupt(pos - 5, "unknown op kind " + std::to_string(uint8_t(fixed[0])));
    }
    if (!take(GetFixed32(fixed.data() + 1), &op.key)) return Corrupt(pos, "key runs past payload");
    if (op.op == OpCode::kPut) {
      std::string_view len;
      if (!take(4, &len)) return Corrupt(pos, "value length runs past the payload");
      if (!take(GetFixed32(len.data()), &op.value)) {
        return Corrupt(pos, "value runs past the payload");
      }
    }
    b.ops.push_back(op);
  }
  if (pos != payload.size()) return Corrupt(pos, "bytes left over after the last op");
  return b;
}

}  // namespace rangekv::kvnode::wal
