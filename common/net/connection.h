// common/net/connection.h — one pipelined TCP connection to a node.
//
// A Connection carries many requests at once. Callers hand it complete
// frames (common/frame.h) whose request id is unique among the requests in
// flight; responses are matched back by id, in any order.
//
// Life cycle (state guarded by mu_):
//
//            Send / Connect              connected
//   kIdle ------------------> kConnecting ---------> kConnected
//     ^  (retry_at_ passed)       |                      |
//     |   connect failed:         |   read/write error,  |
//     +-- backoff, fail queued <--+   bad frame: fail or +
//     |                               retry in flight    |
//     +----------------------------------<---------------+
//   any state --Shutdown()--> kClosed (final)
//
// Reconnection is lazy: a lost connection is re-established by the next
// Send. After a failed connect, Sends fail at once with UNAVAILABLE until
// the backoff (doubling, capped) has passed, so callers fail fast while a
// node is down instead of each waiting for its own connect timeout.
//
// Deadlines: every request carries one. A single steady_timer per
// connection is armed at the earliest deadline of a min-heap of (deadline,
// id); an answered request's entry stays in the heap until it comes to the
// top or the heap is rebuilt from the pending set (when it holds more than
// twice as many entries), so an answer costs no heap work and a request no
// allocation. When the timer fires it fails every expired request with
// TIMEOUT, and a response
// that arrives later finds no pending entry and is dropped. Each callback
// therefore runs exactly once. When nothing at all was read on the link
// since an expired request was sent, the link is dropped too (its other
// requests fail as on a lost connection) and the next Send connects anew:
// after a cut heals, a fresh connection works at once, while the old one
// would wait out TCP's retransmission backoff.
//
// Writes are coalesced: Send appends the frame to an output buffer; one
// async_write at a time sends everything queued so far.
//
// Threading: the io_context given to a Connection is run by exactly one
// thread (the client keeps one io_context per I/O thread), so socket,
// timers and resolver need no strand: they are touched only on that thread.
// The pending set, output buffer and state are guarded by mu_, so Send may
// be called from any thread. Callbacks run on the connection's I/O thread,
// never with mu_ held.
//
// Affinity: while a Connection runs the callbacks of the responses it just
// read, CurrentlyDispatching() names it. A request sent from such a
// callback may go to the same connection (the client prefers it); it then
// needs no hand-off to the I/O thread, and every request those callbacks
// send leaves in one write when the dispatch ends.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/asio.h"
#include "common/frame.h"
#include "common/mutex.h"
#include "common/net/address.h"
#include "common/net/tls.h"
#include "common/protocol.h"
#include "rangekv/status.h"

namespace rangekv::net {

using Clock = std::chrono::steady_clock;
using ResponseCallback = std::function<void(Result<proto::Response>)>;

// One request handed to a Connection.
struct PendingRequest {
  uint64_t id = 0;
  Clock::time_point deadline;
  std::chrono::milliseconds timeout{0};  // for the TIMEOUT message
  // How many more times the request may be resent after its connection is
  // lost (reads only; a write's outcome would be unknown).
  int retries_left = 0;
  // The encoded frame. Kept while the request is pending only when
  // retries_left > 0, so that it can be resent.
  std::string frame;
  ResponseCallback done;
  // The caller's tag for FailRoute (the client: the range routed to and its
  // epoch in the map then); 0: none.
  uint64_t route = 0;
  uint64_t route_epoch = 0;
};

struct ConnectionOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds initial_backoff{20};
  std::chrono::milliseconds max_backoff{1000};
  // TLS (client role, tls.h); null: plaintext.
  std::shared_ptr<TlsContext> tls;
  // Opens every connection with kFetchStreamMark (tls.h): a replica's
  // connection to the node it fetches from.
  bool fetch_stream = false;
};

class Connection {
 public:
  // Receives requests that lost their connection and may be resent (their
  // retries_left already decremented). Runs on an I/O thread.
  using RetryFn = std::function<void(PendingRequest)>;

  // io must be run by one thread only and outlive the Connection, and every
  // handler of this Connection must have run (the io_context drained)
  // before it is destroyed. owner tags the connections of one client.
  Connection(asio::io_context& io, HostPort target, ConnectionOptions options, RetryFn retry,
             const void* owner);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting now unless connected or connecting; done runs once on
  // an I/O thread with OK or UNAVAILABLE when this attempt ends.
  void Connect(std::function<void(Status)> done) EXCLUDES(mu_);

  // Queues a request; its callback runs exactly once (response, TIMEOUT,
  // UNAVAILABLE). Thread-safe.
  void Send(PendingRequest req) EXCLUDES(mu_);

  // Fails every pending request with UNAVAILABLE, closes the socket and
  // refuses further Sends. Idempotent; thread-safe.
  void Shutdown() EXCLUDES(mu_);
  // Fails with st the pending requests tagged `route` at an epoch below
  // `epoch` (an answer that comes later is dropped); returns how many.
  // Thread-safe.
  size_t FailRoute(uint64_t route, uint64_t epoch, const Status& st) EXCLUDES(mu_);

  // Whether the connection is up right now (a hint for load spreading).
  bool connected() const { return connected_.load(std::memory_order_relaxed); }

  const HostPort& target() const { return target_; }
  const void* owner() const { return owner_; }

  // The connection whose response callbacks the calling thread is running,
  // or nullptr.
  static Connection* CurrentlyDispatching();

 private:
  struct Link;
  enum class State { kIdle, kConnecting, kConnected, kClosed };
  struct Deadline {
    Clock::time_point at;
    uint64_t id;
    // std::push_heap keeps the greatest on top: the earliest must be.
    friend bool operator<(const Deadline& a, const Deadline& b) { return a.at > b.at; }
  };
  void PushDeadlineLocked(Clock::time_point at, uint64_t id) REQUIRES(mu_);
  // Pops answered requests' entries off the top, so the top is pending.
  void PopAnsweredLocked() REQUIRES(mu_);

  // What Send starts on the I/O thread after releasing mu_.
  struct FollowUps {
    bool connect = false;
    bool timer = false;
    bool write = false;
  };

  // ---- I/O thread only ----
  void StartConnect();
  void StartHandshake(uint64_t attempt, std::shared_ptr<Link> link);
  void FinishConnect(uint64_t attempt, std::shared_ptr<Link> link, Status st);
  void OnConnected(std::shared_ptr<Link> link);
  void OnConnectFailed(const Status& st);
  void StartRead(const std::shared_ptr<Link>& link);
  void OnRead(const std::shared_ptr<Link>& link, const boost::system::error_code& ec, size_t n);
  bool DecodeResponses(Link& link);
  void Dispatch(const std::shared_ptr<Link>& link);
  void DoWrite(const std::shared_ptr<Link>& link);
  void OnLinkError(const std::shared_ptr<Link>& link, const Status& st);
  void ArmTimer();
  void OnTimer(const boost::system::error_code& ec);

  // ---- any thread, mu_ held ----
  Status AdmitLocked(FollowUps& follow) REQUIRES(mu_);
  void QueueLocked(PendingRequest req, FollowUps& follow) REQUIRES(mu_);
  // Removes and returns every pending request; clears output and deadlines.
  std::vector<PendingRequest> TakeAllLocked() REQUIRES(mu_);

  // ---- any thread ----
  // Runs each callback with st on an I/O thread (posted).
  void PostFailures(std::vector<PendingRequest> reqs, const Status& st);

  asio::io_context& io_;
  const void* const owner_;
  const HostPort target_;
  const std::string name_;  // target_.ToString(), for messages
  const ConnectionOptions options_;
  const RetryFn retry_;
  std::atomic<bool> connected_{false};

  // I/O-thread-only members.
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  asio::steady_timer deadline_timer_;
  std::shared_ptr<Link> link_;             // the established connection
  std::shared_ptr<Link> connecting_link_;  // the attempt in progress
  uint64_t attempt_ = 0;                   // stale connect handlers compare this

  Mutex mu_;
  State state_ GUARDED_BY(mu_) = State::kIdle;
  Clock::time_point retry_at_ GUARDED_BY(mu_);
  std::chrono::milliseconds backoff_ GUARDED_BY(mu_);
  std::string last_error_ GUARDED_BY(mu_);  // why the last connect failed
  std::string out_ GUARDED_BY(mu_);         // frames not yet written
  bool write_posted_ GUARDED_BY(mu_) = false;
  std::unordered_map<uint64_t, PendingRequest> pending_ GUARDED_BY(mu_);
  std::vector<Deadline> deadlines_ GUARDED_BY(mu_);  // a heap; may hold answered ids
  Clock::time_point timer_at_ GUARDED_BY(mu_) = Clock::time_point::max();
  std::vector<std::function<void(Status)>> connect_waiters_ GUARDED_BY(mu_);
};

}  // namespace rangekv::net
