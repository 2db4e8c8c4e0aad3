// kvnode/storage/pending_write.h — a record on its way from Write() or
// AppendReplicated() into the committed map. Internal to kvnode/storage.
//
// It is the one type both halves of a RangeStore hand each other: RangeLog
// queues it and writes it, then passes it (durable) to CommittedMap, which
// stages it until the commit point covers it and applies it. Whoever holds
// it owns it; it is never shared.
#pragma once

#include <string>
#include <vector>

#include "common/protocol.h"
#include "common/types.h"
#include "kvnode/storage/range_store.h"

namespace rangekv::kvnode {

struct PendingWrite {
  Seq seq{0};
  Epoch epoch{0};
  std::string record;               // record header + payload; moved to the tail cache once written
  std::vector<proto::WriteOp> ops;  // cas already resolved to put
  RangeStore::WriteCallback cb;     // Write(): once applied
  RangeStore::WriteCallback durable_cb;  // AppendReplicated: once durable (last of its batch)
};

// The most records a group's vector keeps room for once its writes are
// handed on (RangeLog::Recycle, CommittedMap's apply batch), so that
// groups do not allocate again and again: 1024 of them, 136 KiB.
inline constexpr size_t kKeptGroupCapacity = 1024;

}  // namespace rangekv::kvnode
