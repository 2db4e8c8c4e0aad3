// common/zk/callback_gate.h — "no callback after Close() returns".
//
// The ZooKeeper wrappers hand results to user callbacks through handlers
// posted onto an executor. Those handlers may still be queued when the owner
// destroys the wrapper; a CallbackGate shared by all of them makes the
// owner's rule simple: once Close() has returned, no callback runs, so the
// owner may free whatever its callbacks capture.
//
//   open --Close()--> closed      Run(f): f runs only while open; Close()
//                                 waits for a running f on another thread.
//
// Close() may be called from inside a callback run by the same gate (it then
// does not wait for itself). Do not call Close() while holding a lock that a
// callback takes: Close() waits for a running callback on another thread.
//
// Thread-safety: all members are thread-safe. Held by shared_ptr.
#pragma once

#include <atomic>
#include <mutex>
#include <utility>

namespace rangekv::zk {

class CallbackGate {
 public:
  // Runs f() under the gate unless it is closed. Returns false if closed.
  template <typename F>
  bool Run(F&& f) {
    std::lock_guard lock(mu_);
    if (closed_.load()) return false;
    Inside inside(this);
    std::forward<F>(f)();
    return true;
  }

  void Close();
  bool closed() const { return closed_.load(); }

 private:
  // Marks this thread as running a callback of `gate` (nesting allowed).
  class Inside {
   public:
    explicit Inside(const CallbackGate* gate);
    ~Inside();
    const CallbackGate* gate() const { return gate_; }
    const Inside* outer() const { return outer_; }

   private:
    const CallbackGate* gate_;
    const Inside* outer_;
  };
  bool RunningOnThisThread() const;

  // Held while a callback runs (recursive: nested Run is safe). It guards no
  // data (closed_ is atomic), and the analysis of common/mutex.h has no
  // recursive capability, so it stays a std::recursive_mutex.
  std::recursive_mutex mu_;
  std::atomic<bool> closed_{false};
};

}  // namespace rangekv::zk
