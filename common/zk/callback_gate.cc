#include "common/zk/callback_gate.h"

namespace rangekv::zk {
namespace {
// The callbacks the current thread is inside, innermost first: a list
// threaded through the Inside objects on this thread's stack.
thread_local const void* t_innermost = nullptr;
}  // namespace

CallbackGate::Inside::Inside(const CallbackGate* gate)
    : gate_(gate), outer_(static_cast<const Inside*>(t_innermost)) {
  t_innermost = this;
}

CallbackGate::Inside::~Inside() { t_innermost = outer_; }

bool CallbackGate::RunningOnThisThread() const {
  for (auto* in = static_cast<const Inside*>(t_innermost); in != nullptr; in = in->outer()) {
    if (in->gate() == this) return true;
  }
  return false;
}

void CallbackGate::Close() {
  if (RunningOnThisThread()) {
    // This thread holds mu_ further up its stack: setting the flag is enough.
    closed_.store(true);
    return;
  }
  std::lock_guard lock(mu_);
  closed_.store(true);
}

}  // namespace rangekv::zk
