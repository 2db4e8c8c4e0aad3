// kvnode/storage/wal_format.h — the on-disk format of a range's write-ahead log.
//
// A range's log is a sequence of segment files in the range's directory, each
// named by the first Seq it holds, zero-padded to 20 digits so that names sort
// like numbers:
//
//   wal-00000000000000000001.log   wal-00000000000000052344.log   ...
//
// A segment is a fixed header followed by records, back to back, no padding:
//
//   [segment header 40 B][record header 24 B][payload][record header][payload]...
//
// All integers are little-endian. "crc(x)" is crc32c::Mask(CRC32C(x)).
//
// Segment header (kSegmentHeaderSize = 40 bytes)
//
//   | off | size | field         | value / rule                                        |
//   | --- | ---- | ------------- | --------------------------------------------------- |
//   |   0 |    8 | magic         | kSegmentMagic, the bytes "RKVWAL\r\n"               |
//   |   8 |    4 | version       | kFormatVersion (1); a reader refuses other values   |
//   |  12 |    4 | feature flags | incompatible features; 0 in version 1; a reader     |
//   |     |      |               | refuses any bit it does not know                    |
//   |  16 |    8 | range id      | the RangeId the log belongs to                      |
//   |  24 |    8 | first seq     | Seq of the first record; equals the file name's Seq |
//   |  32 |    4 | reserved      | 0                                                   |
//   |  36 |    4 | header crc    | crc(bytes 0..35)                                    |
//
// Record header (kRecordHeaderSize = 24 bytes)
//
//   | off | size | field       | value / rule                                      |
//   | --- | ---- | ----------- | ------------------------------------------------- |
//   |   0 |    4 | length      | payload bytes L; L <= kMaxRecordPayload (128 MiB) |
//   |   4 |    1 | type        | RecordType; 0 is reserved and never written       |
//   |   5 |    1 | flags       | 0                                                 |
//   |   6 |    2 | reserved    | 0                                                 |
//   |   8 |    8 | seq         | this record's Seq (>= 1)                          |
//   |  16 |    4 | payload crc | crc(type byte ‖ payload)                          |
//   |  20 |    4 | header crc  | crc(bytes 0..19): length, type and seq are        |
//   |     |      |             | trusted only after this matches                   |
//
// Batch payload (type kBatch): one atomic write, ops already resolved
// (a cas that passed is stored as a put)
//
//   | off | size | field    | value / rule                                         |
//   | --- | ---- | -------- | ---------------------------------------------------- |
//   |   0 |    8 | epoch    | ownership epoch of the writer (0: standalone)        |
//   |   8 |    4 | op count | n >= 1                                               |
//   |  12 |    … | op × n   | kind (1 B: 1 put, 2 delete), key length k (4 B),     |
//   |     |      |          | key; put only: value length v (4 B), value           |
//
//   A payload decodes only if every length stays inside it and the ops end
//   exactly at its end. The record's Seq is the new version of every key
//   the batch touches.
//
// Invariants
//   - Records in a segment have consecutive Seqs starting at "first seq";
//     the next segment's first seq is the previous segment's last Seq + 1.
//   - A record never spans two segments; a writer rotates to a new segment
//     only between records, once the current one has reached its size target.
//   - 24 zero bytes where a record header is expected mean "unused space"
//     (a zero-filled tail after a crash), never a record: a real header has
//     type >= 1 and seq >= 1.
//   - kMaxRecordPayload bounds the length a reader will believe (and what a
//     writer accepts); a reader also never believes a length past the end of
//     the file.
//
// Example: a new segment holding seq 7 (put "a"="xy") and seq 8 (delete "a"),
// range 1, epoch 0:
//
//   0x00  52 4b 56 57 41 4c 0d 0a  01 00 00 00  00 00 00 00     magic, version, flags
//   0x10  01 00 00 00 00 00 00 00  07 00 00 00 00 00 00 00     range 1, first seq 7
//   0x20  00 00 00 00  <crc>                                   reserved, header crc
//   0x28  18 00 00 00  01 00 00 00  07 00 00 00 00 00 00 00    L=24, kBatch, seq 7
//   0x38  <payload crc> <header crc>
//   0x40  <epoch 0 ×8>  01 00 00 00                            epoch, 1 op
//   0x4c  01  01 00 00 00  61  02 00 00 00  78 79              put "a" = "xy"
//   0x58  12 00 00 00  01 00 00 00  08 00 00 00 00 00 00 00    L=18, kBatch, seq 8
//   0x68  <payload crc> <header crc>
//   0x70  <epoch 0 ×8>  01 00 00 00  02  01 00 00 00  61       delete "a"
//   0x82  end of file (the next record would start here)
//
// Recovery rules (which bad bytes are a torn tail and which are corruption)
// are in kvnode/storage/wal.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/types.h"
#include "rangekv/status.h"

namespace rangekv::kvnode::wal {

inline constexpr char kSegmentMagic[8] = {'R', 'K', 'V', 'W', 'A', 'L', '\r', '\n'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kKnownFeatureFlags = 0;  // none defined in version 1
inline constexpr size_t kSegmentHeaderSize = 40;
inline constexpr size_t kRecordHeaderSize = 24;
inline constexpr uint32_t kMaxRecordPayload = 128u << 20;  // 128 MiB
inline constexpr size_t kBatchPayloadFixed = 12;           // epoch + op count

inline constexpr char kSegmentPrefix[] = "wal-";
inline constexpr char kSegmentSuffix[] = ".log";

enum class RecordType : uint8_t {
  kZero = 0,   // reserved: never written (unused space reads as zeros)
  kBatch = 1,  // one atomic batch of put/delete ops
};

enum class OpCode : uint8_t { kPut = 1, kDelete = 2 };

// ---- little-endian helpers --------------------------------------------------

inline void PutFixed32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void PutFixed64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// ---- segment header ---------------------------------------------------------

struct SegmentHeader {
  uint32_t version = kFormatVersion;
  uint32_t features = 0;
  RangeId range{0};
  Seq first_seq{0};
};

// Returns the 40 header bytes.
std::string EncodeSegmentHeader(const SegmentHeader& h);
// Parses and checks magic, crc, version and feature flags. `bytes` must hold
// at least kSegmentHeaderSize bytes. CORRUPTION (offset 0) on any mismatch.
Result<SegmentHeader> DecodeSegmentHeader(std::string_view bytes);

// "wal-<20 digits>.log"; ParseSegmentName is its inverse (nullopt otherwise).
std::string SegmentFileName(Seq first);
bool ParseSegmentName(std::string_view name, Seq* first);

// ---- record header ----------------------------------------------------------

struct RecordHeader {
  uint32_t length = 0;
  RecordType type = RecordType::kZero;
  Seq seq{0};
  uint32_t payload_crc = 0;  // masked, as stored
};

// What a record header's 24 bytes turned out to be.
enum class HeaderCheck : uint8_t {
  kValid,     // crc matches and fields are within bounds
  kAllZeros,  // unused space
  kBadCrc,    // the header crc does not match: nothing in it can be trusted
  kBadField,  // crc matches but a field is out of bounds (length, type, flags)
};

// Masked crc over the type byte followed by the payload.
uint32_t PayloadCrc(RecordType type, std::string_view payload);
// Writes the 24 header bytes for a payload to out[0..23]. Used with
// FinishRecordHeader when the Seq is known only later.
void EncodeRecordHeader(const RecordHeader& h, char* out);
// Fills in seq and the header crc of a header written by EncodeRecordHeader.
void FinishRecordHeader(Seq seq, char* out);
// Checks 24 header bytes; fills *h when kValid.
HeaderCheck CheckRecordHeader(const char* bytes, RecordHeader* h);

// ---- batch payload ----------------------------------------------------------

struct BatchOp {
  OpCode op = OpCode::kPut;
  std::string_view key;
  std::string_view value;  // put only
};

// Appends a batch payload to out. The caller bounds the total size.
void AppendBatchPayloadHeader(Epoch epoch, uint32_t op_count, std::string* out);
void AppendBatchOp(OpCode op, std::string_view key, std::string_view value, std::string* out);
// Exact encoded size of one op (for reserving).
inline size_t BatchOpSize(OpCode op, size_t key_len, size_t value_len) {
  return 1 + 4 + key_len + (op == OpCode::kPut ? 4 + value_len : 0);
}

// Decodes a batch payload. The views point into `payload`. CORRUPTION when
// a length runs past the end, the kind is unknown, or bytes are left over.
struct DecodedBatch {
  Epoch epoch{0};
  std::vector<BatchOp> ops;
};
Result<DecodedBatch> DecodeBatchPayload(std::string_view payload);

// The epoch field of a batch payload without decoding the rest (0 when the
// payload is too short to hold one; DecodeBatchPayload refuses those).
inline Epoch PayloadEpoch(std::string_view payload) {
  return payload.size() < 8 ? Epoch(0) : Epoch(GetFixed64(payload.data()));
}

}  // namespace rangekv::kvnode::wal
