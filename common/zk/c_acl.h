// common/zk/c_acl.h — an Acl (auth.h) as the C client's ACL_vector, for
// session.cc. Internal: not part of the zk API.
//
// The C client takes `char*` fields and serializes the vector when a create
// (or a multi holding one) is issued, so one CAcl per Session, built at Open
// and never changed, serves every request of that Session.
#pragma once

#include <zookeeper/zookeeper.h>

#include <vector>

#include "common/zk/auth.h"

namespace rangekv::zk::internal {

class CAcl {
 public:
  explicit CAcl(const Acl& acl) : acl_(acl) {
    // Pointers into acl_'s strings: acl_ is never changed after this.
    for (AclEntry& e : acl_) {
      entries_.push_back(::ACL{e.perms, ::Id{e.scheme.data(), e.id.data()}});
    }
    vec_.count = static_cast<int32_t>(entries_.size());
    vec_.data = entries_.data();
  }
  CAcl(const CAcl&) = delete;
  CAcl& operator=(const CAcl&) = delete;
  const ::ACL_vector* get() const { return &vec_; }

 private:
  Acl acl_;
  std::vector<::ACL> entries_;
  ::ACL_vector vec_{};
};

}  // namespace rangekv::zk::internal
