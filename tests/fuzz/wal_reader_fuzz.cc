// libFuzzer entry point for the WAL segment reader (kvnode/storage/wal.h).
//
// The first input byte picks how the rest is used, so the fuzzer gets past
// the checksums instead of stopping at the first one:
//   0: the rest is a whole segment file, as is;
//   1: a valid segment header is put in front of the rest;
//   2: as 1, and every record header found by following the lengths gets
//      consecutive seqs and correct CRCs, so payload decoding is explored.
// The resulting bytes are one segment file. It is read both as an older
// segment and as the newest one, and every record the reader accepts is
// decoded as a batch payload. Properties checked: no crash or out-of-bounds
// read (sanitizers), only OK or CORRUPTION comes back, accepted records have
// consecutive seqs, and a cut-back point never lies past the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kvnode/storage/wal.h"
#include "kvnode/storage/wal_format.h"

namespace {

void Check(bool cond) {
  if (!cond) std::abort();
}

void ReadAs(std::string_view data, rangekv::kvnode::wal::SegmentRole role) {
  using namespace rangekv::kvnode::wal;
  uint64_t prev = 0;
  auto result = ReadSegment(data, role, [&](const RecordView& rec) {
    Check(prev == 0 || rec.seq.value() == prev + 1);
    prev = rec.seq.value();
    Check(rec.offset + kRecordHeaderSize + rec.payload.size() <= data.size());
    auto batch = DecodeBatchPayload(rec.payload);
    if (batch.ok()) {
      for (const BatchOp& op : batch->ops) {
        Check(op.key.data() >= rec.payload.data() &&
              op.key.data() + op.key.size() <= rec.payload.data() + rec.payload.size());
      }
    }
    return batch.status();
  });
  if (result.ok()) {
    Check(result->valid_bytes <= data.size());
    Check(role == SegmentRole::kNewest || result->end == SegmentEnd::kClean);
  } else {
    Check(result.status().code() == rangekv::Code::kCorruption);
  }
}

// Gives each record, found by following the length fields, consecutive
// seqs and valid CRCs; stops at the first length that does not fit.
void FixRecords(std::string& seg, rangekv::Seq first) {
  using namespace rangekv::kvnode::wal;
  size_t off = kSegmentHeaderSize;
  rangekv::Seq seq = first;
  while (seg.size() - off >= kRecordHeaderSize) {
    char* h = seg.data() + off;
    uint32_t len = GetFixed32(h);
    if (len > seg.size() - off - kRecordHeaderSize) break;
    if (h[4] == 0) h[4] = 1;  // type 0 is reserved
    std::string_view payload(h + kRecordHeaderSize, len);
    PutFixed32(h + 16, PayloadCrc(static_cast<RecordType>(h[4]), payload));
    FinishRecordHeader(seq, h);
    seq = seq.Next();
    off += kRecordHeaderSize + len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rangekv::kvnode::wal;
  if (size == 0) return 0;
  const int mode = data[0] % 3;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string seg;
  if (mode == 0) {
    seg.assign(rest);
  } else {
    SegmentHeader h;
    h.range = rangekv::RangeId(1);
    h.first_seq = rangekv::Seq(7);
    seg = EncodeSegmentHeader(h);
    seg.append(rest);
    if (mode == 2) FixRecords(seg, h.first_seq);
  }
  ReadAs(seg, SegmentRole::kOlder);
  ReadAs(seg, SegmentRole::kNewest);
  return 0;
}

