// common/zk/watch_channel_impl.h — internals of zk::WatchChannel, shared by
// watch_channel.cc (connection lifecycle: connect, read, write, ping, backoff,
// stop) and watch_protocol.cc (handshake, watch restore, replies, events).
// Not part of the API: include watch_channel.h instead.
//
// Threading: every member of Impl below the "strand_ only" line is touched
// only by handlers running on strand_. stats_ is guarded by stats_mu_ and is
// the only state read from other threads. Lock order: gate_ (while a user
// callback runs) before stats_mu_; stats_mu_ is never held across a call out.
#pragma once

#include <array>
#include <climits>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>

#include "common/asio.h"
#include "common/mutex.h"
#include "common/zk/callback_gate.h"
#include "common/zk/connect_string.h"
#include "common/zk/jute.h"
#include "common/zk/watch_channel.h"

namespace rangekv::zk::watch_internal {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One TCP connection attempt and everything that dies with it. Handlers hold
// a shared_ptr to it, so its buffers outlive any operation still using them;
// a handler whose Conn is no longer the current one does nothing.
struct Conn {
  explicit Conn(const asio::strand<asio::any_io_executor>& strand) : socket(strand) {}
  tcp::socket socket;
  std::string server;
  std::array<char, 16384> rbuf{};
  jute::FrameBuffer frames;
  std::deque<std::string> wq;  // frames to write, front is being written
  bool writing = false;
  bool closing = false;  // Stop: close once the write queue drains
  // Pause hook: a read result held back until TestResume.
  bool read_stalled = false;
  std::optional<std::pair<boost::system::error_code, size_t>> stalled_result;
};

// See the lifecycle diagram in watch_channel.h; kIdle before Start.
enum class Phase {
  kIdle,
  kResolving,
  kConnecting,
  kHandshake,
  kAuthenticating,
  kRestoring,
  kLive,
  kBackoff,
  kStopped
};

// Whether a handshake resumed our session or opened a new one.
enum class SessionKind { kNew, kResumed };

// Why an addWatch was sent: to restore watches on a new session, or for an
// AddWatch call while connected (its reply reports kResynced{path}).
enum class PendingKind { kRestoreAddWatch, kLiveAddWatch };

struct Pending {
  int32_t xid;
  PendingKind kind;
  std::string path;  // client path
};

}  // namespace rangekv::zk::watch_internal

namespace rangekv::zk {

class WatchChannel::Impl : public std::enable_shared_from_this<Impl> {
  using Clock = watch_internal::Clock;
  using Conn = watch_internal::Conn;
  using Pending = watch_internal::Pending;
  using PendingKind = watch_internal::PendingKind;
  using Phase = watch_internal::Phase;
  using SessionKind = watch_internal::SessionKind;
  using milliseconds = std::chrono::milliseconds;
  using tcp = asio::ip::tcp;

 public:
  Impl(asio::any_io_executor ex, WatchChannelOptions options, ConnectString cs, EventCallback cb)
      : strand_(asio::make_strand(ex)),
        resolver_(strand_),
        attempt_timer_(strand_),
        backoff_timer_(strand_),
        tick_timer_(strand_),
        options_(std::move(options)),
        cs_(std::move(cs)),
        on_event_(std::move(cb)),
        backoff_(options_.backoff_initial),
        rng_(std::random_device{}()) {
    watches_.insert(options_.watch_paths.begin(), options_.watch_paths.end());
    // Start at a random server so that many clients spread over the ensemble.
    next_server_ = std::uniform_int_distribution<size_t>(0, cs_.servers.size() - 1)(rng_);
  }

  template <typename F>
  void Post(F&& f) {
    asio::post(strand_,
               [self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(*self); });
  }

  void Start() {
    if (phase_ == Phase::kIdle) BeginAttempt();
  }
  void Stop();
  void AddWatch(const std::string& path);
  WatchChannelStats stats() const EXCLUDES(stats_mu_) {
    MutexLock lock(stats_mu_);
    return stats_;
  }
  void DropConnection() {
    if (conn_) Fail("connection dropped by test hook");
  }
  void Pause() { paused_ = true; }
  void Resume();

  std::shared_ptr<CallbackGate> gate() { return gate_; }

 private:
  void BeginAttempt();
  void OnResolved(const std::shared_ptr<Conn>& conn, const tcp::resolver::results_type& results);
  void OnConnected(const std::shared_ptr<Conn>& conn);
  void ReadMore(const std::shared_ptr<Conn>& conn);
  void OnRead(const std::shared_ptr<Conn>& conn, boost::system::error_code ec, size_t n);
  void HandleFrame(const std::shared_ptr<Conn>& conn, std::string_view payload);
  void OnConnectResponse(const std::shared_ptr<Conn>& conn, std::string_view payload);
  void OnAuthReply(const std::shared_ptr<Conn>& conn, int32_t err);
  void RestoreWatches(const std::shared_ptr<Conn>& conn, SessionKind kind);
  void OnReply(const std::shared_ptr<Conn>& conn, const jute::ServerFrame& frame);
  void OnNotification(const jute::WatcherEvent& ev);
  void MaybeLive();
  void Send(const std::shared_ptr<Conn>& conn, std::string frame);
  void DoWrite(const std::shared_ptr<Conn>& conn);
  void ArmTick(const std::shared_ptr<Conn>& conn);
  void OnTick(const std::shared_ptr<Conn>& conn);
  void Fail(const std::string& reason);
  void MaybeAbandonSession();
  void CloseConn();
  void ResetSession(const std::string& why);
  void ScheduleAttempt(milliseconds delay);
  void Deliver(WatchEventType type, std::string path);
  int32_t NextXid() {
    // Positive and increasing; wraps long before int32 overflow would.
    if (next_xid_ == INT32_MAX) next_xid_ = 1;
    return next_xid_++;
  }
  bool Current(const std::shared_ptr<Conn>& conn) const {
    return conn == conn_ && phase_ != Phase::kStopped;
  }
  template <typename F>
  void UpdateStats(F&& f) EXCLUDES(stats_mu_) {
    MutexLock lock(stats_mu_);
    f(stats_);
  }

  asio::strand<asio::any_io_executor> strand_;
  tcp::resolver resolver_;
  asio::steady_timer attempt_timer_;  // bounds one attempt until Live
  asio::steady_timer backoff_timer_;
  asio::steady_timer tick_timer_;  // ping + silence check while connected
  const WatchChannelOptions options_;
  const ConnectString cs_;
  const EventCallback on_event_;
  const std::shared_ptr<CallbackGate> gate_ = std::make_shared<CallbackGate>();

  // Everything below is touched only on strand_.
  Phase phase_ = Phase::kIdle;
  std::shared_ptr<Conn> conn_;
  size_t next_server_ = 0;
  std::set<std::string> watches_;  // client paths
  int64_t session_id_ = 0;
  jute::Password password_{};
  int32_t timeout_ms_ = 0;
  SessionKind restore_kind_ = SessionKind::kNew;  // what to restore once authenticated
  int64_t last_zxid_ = 0;
  int32_t next_xid_ = 1;
  std::deque<Pending> pending_;  // addWatch requests awaiting replies, in order
  size_t restore_outstanding_ = 0;
  milliseconds backoff_;
  bool reported_live_ = false;  // kResynced delivered, kDisconnected not yet
  int handshake_eofs_ = 0;
  bool paused_ = false;
  Clock::time_point last_recv_;
  Clock::time_point last_session_contact_ = Clock::now();  // last frame from a server
  std::minstd_rand rng_;

  mutable Mutex stats_mu_;
  WatchChannelStats stats_ GUARDED_BY(stats_mu_);
};

}  // namespace rangekv::zk
