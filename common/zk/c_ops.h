// common/zk/c_ops.h — the zk::Session's side of the ZooKeeper C client's
// requests: per-request contexts, the completion callbacks that turn C
// results into rangekv values, and a multi's C op array. Internal to
// session.cc: not part of the zk API.
#pragma once

#include <zookeeper/zookeeper.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/zk/errors.h"
#include "common/zk/session.h"

namespace rangekv::zk::internal {

// Where an operation's outcome goes. Called exactly once: on the C client's
// completion thread, or inline when the request could not even be queued.
template <typename T>
using Sink = std::function<void(T)>;

// The C API takes a `const void*` context per request; this is it.
template <typename T>
struct OpCtx {
  Sink<T> sink;
  std::string what;  // "get /a", for error messages
};

template <typename T>
std::unique_ptr<OpCtx<T>> Own(const void* data) {
  return std::unique_ptr<OpCtx<T>>(static_cast<OpCtx<T>*>(const_cast<void*>(data)));
}

ZnodeStat ToStat(const struct Stat& s);
int ToCMode(CreateMode mode);

// C completion callbacks: convert, hand to the sink, free the context.
void OnString(int rc, const char* value, const void* data);
void OnVoid(int rc, const void* data);
void OnSyncDone(int rc, const char*, const void* data);
void OnData(int rc, const char* value, int len, const struct Stat* stat, const void* data);
void OnSetStat(int rc, const struct Stat* stat, const void* data);
void OnExistsStat(int rc, const struct Stat* stat, const void* data);
void OnStrings(int rc, const struct String_vector* strings, const void* data);

// A multi keeps its C op array, result array and output buffers alive until
// the completion runs.
struct MultiCtx {
  Sink<Result<std::vector<ZkOpResult>>> sink;
  std::function<const ACL_vector*(const std::string&)> acl_for;
  std::vector<ZkOp> ops;
  std::vector<zoo_op_t> c_ops;
  std::vector<zoo_op_result_t> results;
  std::vector<std::vector<char>> path_bufs;
  std::vector<struct Stat> stats;
};

void OnMulti(int rc, const void* data);
// Fills m->c_ops (and the buffers they point into) from m->ops.
void FillCOps(MultiCtx* m);

}  // namespace rangekv::zk::internal
