// common/zk/errors.h — ZooKeeper error codes as rangekv Status values.
//
// rangekv has one error vocabulary (rangekv/status.h); ZooKeeper errors are
// mapped onto it and keep their ZooKeeper name at the start of the message,
// e.g. "ZBADVERSION (bad version): set /rangekv/c1/ranges/7".
//
// | ZooKeeper error                                | Code           |
// |------------------------------------------------|----------------|
// | ZBADVERSION, ZNODEEXISTS                       | kCasFailed     |
// | ZNONODE, ZNOTEMPTY, ZNOCHILDRENFOREPHEMERALS,  | kBadRequest    |
// | ZBADARGUMENTS, ZINVALIDACL,                    |                |
// | ZNOWATCHER, ZUNIMPLEMENTED                     |                |
// | ZNOAUTH, ZAUTHFAILED                           | kUnauthenticated |
// | ZCONNECTIONLOSS, ZSESSIONEXPIRED, ZINVALIDSTATE,| kUnavailable  |
// | ZCLOSING, ZSESSIONMOVED, ZNOTREADONLY,         |                |
// | ZTHROTTLEDOP, ZSSLCONNECTIONERROR              |                |
// | ZOPERATIONTIMEOUT                              | kTimeout       |
// | anything else (system errors, marshalling)     | kInternal      |
//
// ZNOAUTH (this identity may not do that to that znode) and ZAUTHFAILED (the
// server refused the credentials) are refusals like a TLS one: retrying
// cannot help, so they share UNAUTHENTICATED, and their message says
// "ZooKeeper refused" and points at --zk-auth-file.
// ZNODEEXISTS is a failed precondition "must not exist" (like a cas with
// version 0), hence kCasFailed. A write that ends in kUnavailable or
// kTimeout may or may not have been applied: re-read before retrying.
// Callers that must tell errors of one Code apart (ZNONODE vs ZNOTEMPTY) use
// ZkErrorOf, which reads the name back from the message.
//
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "rangekv/status.h"

namespace rangekv::zk {

// The ZooKeeper errors that callers branch on; everything else is kOther.
enum class ZkError {
  kNone,              // not a ZooKeeper error (or OK)
  kNoNode,            // ZNONODE
  kNodeExists,        // ZNODEEXISTS
  kBadVersion,        // ZBADVERSION
  kNotEmpty,          // ZNOTEMPTY
  kConnectionLoss,    // ZCONNECTIONLOSS
  kSessionExpired,    // ZSESSIONEXPIRED or ZINVALIDSTATE on an expired handle
  kOperationTimeout,  // ZOPERATIONTIMEOUT
  kClosing,           // ZCLOSING: the Session is being destroyed
  kNoAuth,            // ZNOAUTH: the ACL does not let this identity do it
  kAuthFailed,        // ZAUTHFAILED: the server refused the credentials
  kOther,
};

// "ZNONODE", "ZBADVERSION", ... ; "ZUNKNOWN(<rc>)" for codes it does not know.
std::string ZkErrorName(int rc);

// Status for a ZooKeeper return code; OK for rc == 0. `what` names the
// operation and path, e.g. "set /a".
Status ZkStatus(int rc, std::string_view what);

// The ZooKeeper error a Status made by ZkStatus carries.
ZkError ZkErrorOf(const Status& status);

// ZNOAUTH or ZAUTHFAILED: ZooKeeper refused this identity (with or without
// context added in front).
bool IsZkRefusal(const Status& status);

}  // namespace rangekv::zk
