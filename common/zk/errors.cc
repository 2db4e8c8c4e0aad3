#include "common/zk/errors.h"

#include <zookeeper/zookeeper.h>

#include <string>

namespace rangekv::zk {
namespace {

struct Entry {
  int rc;
  const char* name;
  Code code;
  ZkError error;
};

// One table drives the name, the Code and the ZkError so they cannot drift.
constexpr Entry kTable[] = {
    {ZSYSTEMERROR, "ZSYSTEMERROR", Code::kInternal, ZkError::kOther},
    {ZRUNTIMEINCONSISTENCY, "ZRUNTIMEINCONSISTENCY", Code::kInternal, ZkError::kOther},
    {ZDATAINCONSISTENCY, "ZDATAINCONSISTENCY", Code::kInternal, ZkError::kOther},
    {ZCONNECTIONLOSS, "ZCONNECTIONLOSS", Code::kUnavailable, ZkError::kConnectionLoss},
    {ZMARSHALLINGERROR, "ZMARSHALLINGERROR", Code::kInternal, ZkError::kOther},
    {ZUNIMPLEMENTED, "ZUNIMPLEMENTED", Code::kBadRequest, ZkError::kOther},
    {ZOPERATIONTIMEOUT, "ZOPERATIONTIMEOUT", Code::kTimeout, ZkError::kOperationTimeout},
    {ZBADARGUMENTS, "ZBADARGUMENTS", Code::kBadRequest, ZkError::kOther},
    {ZINVALIDSTATE, "ZINVALIDSTATE", Code::kUnavailable, ZkError::kSessionExpired},
    {ZSSLCONNECTIONERROR, "ZSSLCONNECTIONERROR", Code::kUnavailable, ZkError::kOther},
    {ZNONODE, "ZNONODE", Code::kBadRequest, ZkError::kNoNode},
    {ZNOAUTH, "ZNOAUTH", Code::kBadRequest, ZkError::kOther},
    {ZBADVERSION, "ZBADVERSION", Code::kCasFailed, ZkError::kBadVersion},
    {ZNOCHILDRENFOREPHEMERALS, "ZNOCHILDRENFOREPHEMERALS", Code::kBadRequest, ZkError::kOther},
    {ZNODEEXISTS, "ZNODEEXISTS", Code::kCasFailed, ZkError::kNodeExists},
    {ZNOTEMPTY, "ZNOTEMPTY", Code::kBadRequest, ZkError::kNotEmpty},
    {ZSESSIONEXPIRED, "ZSESSIONEXPIRED", Code::kUnavailable, ZkError::kSessionExpired},
    {ZINVALIDCALLBACK, "ZINVALIDCALLBACK", Code::kInternal, ZkError::kOther},
    {ZINVALIDACL, "ZINVALIDACL", Code::kBadRequest, ZkError::kOther},
    {ZAUTHFAILED, "ZAUTHFAILED", Code::kBadRequest, ZkError::kOther},
    {ZCLOSING, "ZCLOSING", Code::kUnavailable, ZkError::kClosing},
    {ZSESSIONMOVED, "ZSESSIONMOVED", Code::kUnavailable, ZkError::kOther},
    {ZNOTREADONLY, "ZNOTREADONLY", Code::kUnavailable, ZkError::kOther},
    {ZNOWATCHER, "ZNOWATCHER", Code::kBadRequest, ZkError::kOther},
    {ZTHROTTLEDOP, "ZTHROTTLEDOP", Code::kUnavailable, ZkError::kOther},
};

const Entry* Find(int rc) {
  for (const auto& e : kTable) {
    if (e.rc == rc) return &e;
  }
  return nullptr;
}

}  // namespace

std::string ZkErrorName(int rc) {
  if (rc == ZOK) return "ZOK";
  const Entry* e = Find(rc);
  return e ? e->name : "ZUNKNOWN(" + std::to_string(rc) + ")";
}

Status ZkStatus(int rc, std::string_view what) {
  if (rc == ZOK) return Status::Ok();
  const Entry* e = Find(rc);
  Code code = e ? e->code : Code::kInternal;
  return Status(code, ZkErrorName(rc) + " (" + zerror(rc) + "): " + std::string(what));
}

ZkError ZkErrorOf(const Status& status) {
  if (status.ok()) return ZkError::kNone;
  const std::string& m = status.message();
  for (const auto& e : kTable) {
    std::string_view name = e.name;
    // Match the whole name: "ZNONODE" must not match "ZNONODEX".
    if (m.size() > name.size() && m.compare(0, name.size(), name) == 0 && m[name.size()] == ' ') {
      return e.error;
    }
  }
  return m.rfind("ZUNKNOWN(", 0) == 0 ? ZkError::kOther : ZkError::kNone;
}

}  // namespace rangekv::zk
