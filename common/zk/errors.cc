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
    {ZNOAUTH, "ZNOAUTH", Code::kUnauthenticated, ZkError::kNoAuth},
    {ZBADVERSION, "ZBADVERSION", Code::kCasFailed, ZkError::kBadVersion},
    {ZNOCHILDRENFOREPHEMERALS, "ZNOCHILDRENFOREPHEMERALS", Code::kBadRequest, ZkError::kOther},
    {ZNODEEXISTS, "ZNODEEXISTS", Code::kCasFailed, ZkError::kNodeExists},
    {ZNOTEMPTY, "ZNOTEMPTY", Code::kBadRequest, ZkError::kNotEmpty},
    {ZSESSIONEXPIRED, "ZSESSIONEXPIRED", Code::kUnavailable, ZkError::kSessionExpired},
    {ZINVALIDCALLBACK, "ZINVALIDCALLBACK", Code::kInternal, ZkError::kOther},
    {ZINVALIDACL, "ZINVALIDACL", Code::kBadRequest, ZkError::kOther},
    {ZAUTHFAILED, "ZAUTHFAILED", Code::kUnauthenticated, ZkError::kAuthFailed},
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
  // Said plainly, with where to look: these are configuration errors, and
  // the C client's own texts ("not authenticated") do not say which side.
  if (rc == ZNOAUTH) {
    return Status(code, ZkErrorName(rc) + " (ZooKeeper refused: not authorized to " +
                            std::string(what) + ") - check --zk-auth-file");
  }
  if (rc == ZAUTHFAILED) {
    return Status(code, ZkErrorName(rc) + " (ZooKeeper refused the credentials): " +
                            std::string(what) + " - check --zk-auth-file");
  }
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

bool IsZkRefusal(const Status& status) {
  ZkError e = ZkErrorOf(status);
  if (e == ZkError::kNoAuth || e == ZkError::kAuthFailed) return true;
  // Also after WithContext has put words in front of the name.
  return status.code() == Code::kUnauthenticated &&
         status.message().find("ZooKeeper refused") != std::string::npos;
}

}  // namespace rangekv::zk
