// common/zk/reconciler.h — the level-triggered consumer of ZooKeeper state.
//
// Watches are triggers, not the truth (docs/design.md §4): a notification can be
// lost (the channel was disconnected, the session expired, the process was
// paused), and the server never replays what happened meanwhile. So a
// consumer never applies events; it re-reads the state it cares about and
// reconciles, whenever anything might have changed:
//
//   * on every watch event (coalesced, see below),
//   * on every kResynced (after connect, reconnect, new session),
//   * on a periodic timer (default 5 s), which also covers a channel that
//     is silently broken.
//
// The Reconcile callback receives what triggered it (for logs and metrics
// only: it must not depend on it) and a `done` continuation.
//
// Coalescing: at most one Reconcile runs at a time, and at most one more is
// pending. Triggers that arrive while one runs set the pending flag; when
// `done` is called, the pending one starts with the triggers accumulated
// meanwhile. A burst of 1000 events costs at most two runs.
//
// What Reconcile must do: first zk::Session::Sync (or AsyncSync) on the
// watched path, so the C client's server has caught up with everything the
// watch channel's server reported (they may be different servers), then
// re-read (Children, Get) and compare with the local view; and call `done`
// exactly once when finished (success or failure: failures are retried by
// the next trigger or tick). Reconcile runs on the executor, so it must not
// block: use the Async* calls of zk::Session.
//
// Threads and lifetime: all methods are thread-safe. After Stop() (or the
// destructor) returns, neither Reconcile nor the event observer runs again;
// a `done` called later is ignored. Same caveat as WatchChannel: do not call
// Stop while holding a lock that these callbacks take.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/asio.h"
#include "common/zk/watch_channel.h"
#include "rangekv/status.h"

namespace rangekv::zk {

// What happened since the previous Reconcile started.
struct ReconcileTriggers {
  uint64_t events = 0;            // node events from the watch
  uint64_t resyncs = 0;           // kResynced
  uint64_t session_expiries = 0;  // kSessionExpired
  uint64_t timer_ticks = 0;
  uint64_t explicit_requests = 0;  // TriggerNow
};

struct ReconcilerOptions {
  WatchChannelOptions channel;
  std::chrono::milliseconds period{5000};
};

class Reconciler {
 public:
  using Done = std::function<void()>;
  using ReconcileFn = std::function<void(const ReconcileTriggers&, Done done)>;
  // Sees every channel event as it arrives (optional; for logging or tests).
  using EventObserver = std::function<void(const WatchEvent&)>;

  // kBadRequest for invalid channel options or a non-positive period.
  static Result<std::unique_ptr<Reconciler>> Create(asio::any_io_executor executor,
                                                    ReconcilerOptions options,
                                                    ReconcileFn reconcile,
                                                    EventObserver observer = {});
  ~Reconciler();  // Stop()
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Starts the watch channel and the timer.
  void Start();
  void Stop();
  // Requests a run (coalesced like any trigger), e.g. after a write of our own.
  void TriggerNow();
  // Completed Reconcile runs so far.
  uint64_t runs() const;
  // The underlying channel (stats, AddWatch, test hooks).
  WatchChannel& channel() { return *channel_; }

  class Impl;

 private:
  Reconciler(std::shared_ptr<Impl> impl, std::unique_ptr<WatchChannel> channel);
  std::shared_ptr<Impl> impl_;
  std::unique_ptr<WatchChannel> channel_;
};

}  // namespace rangekv::zk
