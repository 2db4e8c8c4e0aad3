// common/zk/watch_channel.h — persistent recursive ZooKeeper watches over a
// connection and session of our own (Boost.Asio, hand-written protocol).
//
// Why it exists: the ZooKeeper C client has no addWatch call, and requests
// must never be injected into its connection (an unexpected reply kills it).
// So the channel speaks the few messages it needs itself (common/zk/jute.h)
// on a separate TCP connection with a separate session: a second connection
// with the C handle's session id would get the first one closed by the
// server. Everything else (reads, writes, ephemerals) goes through
// zk::Session.
//
// Protocol steps (docs/zookeeper-watch.md; checked against a ZooKeeper 3.8 server):
//   1. ConnectRequest{lastZxidSeen, timeout, sessionId, passwd}; wait for
//      ConnectResponse. timeOut=0 && sessionId=0 means the session expired.
//   1a. With credentials: AuthPacket (xid -4) and wait for its reply; on
//      every connection, since the server ties them to the connection. A
//      refusal (AUTHFAILED) ends the channel: kAuthFailed, no retry.
//   2. New session: addWatch(path, PERSISTENT_RECURSIVE) for every watch.
//      Same session again: SetWatches2(relativeZxid = last zxid seen,
//      persistentRecursive = every watch). Wait for all replies.
//   3. Live: ping every timeout/3; a connection from which nothing was
//      received for 2/3 of the timeout is dead. Notifications (xid -1) become events.
//
// Lifecycle (one attempt per server, round-robin over the connect string):
//
//   Start ─► Resolving ─► Connecting ─► Handshake ─► [Authenticating] ─► Restoring ─► Live
//               ▲      any error, EOF, bad frame, timeout            │
//               └──────────── Backoff ◄──────────────────────────────┘
//   Stop: any state ─► Stopped (closeSession is sent when connected)
//   AUTHFAILED: Authenticating ─► Stopped, after kAuthFailed
//
// Under ACLs the server sends a notification only for a znode the channel's
// identity may READ: without credentials a watch on a protected path stays
// silent rather than failing.
//
// Events (the callback runs on the executor, one at a time, in order):
//   kNodeCreated / kNodeDeleted / kNodeDataChanged / kNodeChildrenChanged:
//       a change under a watched path (path = client path, chroot removed).
//       NodeChildrenChanged is never sent for recursive watches.
//   kResynced: the watches are in place from now on; `path` is empty for
//       all of them (after every connect, reconnect and new session), or the
//       one path of an AddWatch made while connected. Changes made while the
//       channel was disconnected are NEVER replayed (the server ignores
//       relativeZxid for persistent watches), so on kResynced a consumer
//       must re-read everything under the path(s).
//   kDisconnected: the live connection was lost; events may be missed until
//       the next kResynced. The channel reconnects by itself.
//   kSessionExpired: the channel's session expired (e.g. it could not reach
//       any server for longer than the timeout); it opens a new session and
//       adds the watches again, then reports kResynced.
//   kAuthFailed: the server refused the credentials; the channel has
//       stopped (stats().last_error says why).
// Watches are triggers, not the truth: use zk::Reconciler (reconciler.h) or
// follow the same level-triggered pattern (Sync, then re-read).
//
// Chroot: a connect string may end in "/chroot". Watch paths are then
// relative to it, and event paths come back relative to it.
//
// Errors: a bad connect string or watch path is refused at Create/AddWatch
// with kBadRequest. Unreachable servers are not an error of the API: the
// channel logs each failure, retries with exponential backoff (with jitter),
// and reports the latest reason in stats().last_error.
//
// Threads and lifetime: all methods are thread-safe and never block (they
// post onto an internal strand of the executor). The callback never runs
// after Stop() (or the destructor) has returned, except when Stop is called
// from inside the callback (then: not after the callback returns). Do not
// call Stop while holding a lock the callback takes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/zk/auth.h"
#include "rangekv/status.h"

namespace rangekv::zk {

enum class WatchEventType {
  kNodeCreated,
  kNodeDeleted,
  kNodeDataChanged,
  kNodeChildrenChanged,
  kResynced,
  kDisconnected,
  kSessionExpired,
  kAuthFailed,
};
const char* WatchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::kResynced;
  std::string path;
};

struct WatchChannelOptions {
  // "host:port[,host:port...][/chroot]"
  std::string connect_string;
  // Persistent recursive watches to hold from the start (validated).
  std::vector<std::string> watch_paths;
  // Requested session timeout; the server clamps it (2..20 ticks by default).
  std::chrono::milliseconds session_timeout{10000};
  // Bound on one attempt: resolve + TCP connect + handshake + restore.
  std::chrono::milliseconds connect_timeout{3000};
  // Delay between failed attempts: doubles from initial up to max, with
  // jitter (each delay is drawn from [d/2, d]). After a live connection is
  // lost the first retry is immediate.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{2000};
  // Sent after every handshake; none: anonymous.
  std::optional<ZkAuth> auth;
};

// A snapshot for logs, metrics and tests.
struct WatchChannelStats {
  bool live = false;
  std::string server;      // the server of the current/last attempt
  int64_t session_id = 0;  // 0 before the first session
  int32_t negotiated_timeout_ms = 0;
  int64_t last_zxid = 0;          // highest zxid seen in replies
  uint64_t connect_attempts = 0;  // TCP attempts started
  uint64_t connect_failures = 0;  // attempts that never got live
  uint64_t handshakes = 0;        // ConnectResponses accepted (new or resumed session)
  uint64_t session_expiries = 0;
  bool auth_failed = false;              // the server refused the credentials (terminal)
  uint64_t events = 0;                   // events handed to the callback
  std::chrono::milliseconds backoff{0};  // delay before the next attempt
  std::string last_error;                // latest failure reason ("" if none)
};

class WatchChannel {
 public:
  using EventCallback = std::function<void(const WatchEvent&)>;

  // Validates the options (kBadRequest: connect string, watch paths, zero
  // timeouts). Does not connect until Start().
  static Result<std::unique_ptr<WatchChannel>> Create(asio::any_io_executor executor,
                                                      WatchChannelOptions options,
                                                      EventCallback on_event);
  ~WatchChannel();  // Stop()
  WatchChannel(const WatchChannel&) = delete;
  WatchChannel& operator=(const WatchChannel&) = delete;

  // Starts connecting. Idempotent; no effect after Stop.
  void Start();
  // Stops for good; see the callback guarantee above.
  void Stop();
  // Adds a persistent recursive watch. kBadRequest for an invalid path.
  // Once connected, kResynced{path} reports it in place.
  Status AddWatch(const std::string& path);
  WatchChannelStats stats() const;

  // ---- test hooks (fault injection; cost nothing unless called) ----
  // Closes the TCP connection as if the network dropped it.
  void TestDropConnection();
  // Stops reading and pinging, as if the process froze (SIGSTOP); the
  // server then expires the session after its timeout.
  void TestPause();
  void TestResume();

  class Impl;

 private:
  explicit WatchChannel(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace rangekv::zk
