// coordinator/coordinator_internal.h — helpers shared by the coordinator's
// .cc files. Not part of the module's interface.
#pragma once

#include <string>

#include "common/zk/errors.h"
#include "rangekv/status.h"

// RANGEKV_RETURN_IF_ERROR for coroutines (which must co_return).
#define COORD_CO_RETURN_IF_ERROR(expr)  \
  do {                                  \
    ::rangekv::Status _co_st = (expr);  \
    if (!_co_st.ok()) co_return _co_st; \
  } while (0)

namespace rangekv::coordinator::internal {

inline bool IsNoNode(const Status& st) { return zk::ZkErrorOf(st) == zk::ZkError::kNoNode; }
inline bool IsNodeExists(const Status& st) { return zk::ZkErrorOf(st) == zk::ZkError::kNodeExists; }

// "0x1a2b..." for logs.
std::string HexId(int64_t id);

}  // namespace rangekv::coordinator::internal
