// common/mutex.h — a mutex, its scoped lock, a reader/writer mutex
// (SharedMutex with ReaderMutexLock / WriterMutexLock) and a condition
// variable that clang's thread-safety analysis (-Wthread-safety) understands.
//
// libstdc++'s std::mutex carries no capability attributes, so state
// annotated GUARDED_BY(mu) must be guarded by a Mutex from here for the
// analysis to check it. The types are thin wrappers: same cost, same
// semantics as std::mutex / std::unique_lock / std::shared_mutex /
// std::condition_variable.
// Under GCC the attributes expand to nothing.
//
//   class Counter {
//    public:
//     void Add() EXCLUDES(mu_) { MutexLock lock(mu_); ++n_; }
//    private:
//     Mutex mu_;
//     int n_ GUARDED_BY(mu_) = 0;
//   };
//
// Build with -DRANGEKV_THREAD_SAFETY=ON (clang) to run the analysis.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <utility>

#if defined(__clang__)
#define RANGEKV_TSA(x) __attribute__((x))
#else
#define RANGEKV_TSA(x)
#endif

#define CAPABILITY(x) RANGEKV_TSA(capability(x))
#define SCOPED_CAPABILITY RANGEKV_TSA(scoped_lockable)
#define GUARDED_BY(x) RANGEKV_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) RANGEKV_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) RANGEKV_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) RANGEKV_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) RANGEKV_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) RANGEKV_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) RANGEKV_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) RANGEKV_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) RANGEKV_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) RANGEKV_TSA(release_shared_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) RANGEKV_TSA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) RANGEKV_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) RANGEKV_TSA(assert_capability(x))
#define RETURN_CAPABILITY(x) RANGEKV_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS RANGEKV_TSA(no_thread_safety_analysis)

namespace rangekv {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // For code the analysis cannot follow (a lock held across a callback it
  // does not see); says "held here" without checking it.
  void AssertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex for its scope; Unlock/Lock in between for a section that
// must run without it (the analysis tracks both).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() { lock_.unlock(); }
  void Lock() ACQUIRE() { lock_.lock(); }

 private:
  friend class CondVar;
  std::unique_lock<std::mutex> lock_;
};

// A reader/writer mutex (std::shared_mutex): readers share it, a writer
// holds it alone. For state read far more often than written, where a
// reader must not wait for another reader.
class CAPABILITY("shared mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds a SharedMutex exclusively for its scope.
class SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterMutexLock() RELEASE() { mu_.unlock(); }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

 private:
  SharedMutex& mu_;
};

// Holds a SharedMutex shared for its scope.
class SCOPED_CAPABILITY ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderMutexLock() RELEASE() { mu_.unlock_shared(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex& mu_;
};

// A condition variable waited on with a MutexLock held.
class CondVar {
 public:
  void Wait(MutexLock& lock) { cv_.wait(lock.lock_); }
  template <class Pred>
  void Wait(MutexLock& lock, Pred pred) {
    cv_.wait(lock.lock_, std::move(pred));
  }
  // False when the deadline passed first.
  template <class Clock, class Duration>
  bool WaitUntil(MutexLock& lock, const std::chrono::time_point<Clock, Duration>& deadline) {
    return cv_.wait_until(lock.lock_, deadline) == std::cv_status::no_timeout;
  }
  template <class Clock, class Duration, class Pred>
  bool WaitUntil(MutexLock& lock, const std::chrono::time_point<Clock, Duration>& deadline,
                 Pred pred) {
    return cv_.wait_until(lock.lock_, deadline, std::move(pred));
  }
  template <class Rep, class Period, class Pred>
  bool WaitFor(MutexLock& lock, const std::chrono::duration<Rep, Period>& timeout, Pred pred) {
    return cv_.wait_for(lock.lock_, timeout, std::move(pred));
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace rangekv
