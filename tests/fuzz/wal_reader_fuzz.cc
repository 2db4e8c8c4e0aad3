// libFuzzer entry point for the WAL segment reader (kvnode/wal.h).
//
// The input is the content of one segment file. It is read both as an older
// segment and as the newest one, and every record the reader accepts is
// decoded as a batch payload. Properties checked: no crash or out-of-bounds
// read (sanitizers), only OK or CORRUPTION comes back, accepted records have
// consecutive seqs, and a cut-back point never lies past the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "kvnode/wal.h"
#include "kvnode/wal_format.h"

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ReadAs(bytes, rangekv::kvnode::wal::SegmentRole::kOlder);
  ReadAs(bytes, rangekv::kvnode::wal::SegmentRole::kNewest);
  return 0;
}
