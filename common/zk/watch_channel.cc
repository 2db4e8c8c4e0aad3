#include "common/zk/watch_channel.h"

#include <algorithm>

#include "common/log.h"
#include "common/zk/watch_channel_impl.h"

namespace rangekv::zk {

using std::chrono::milliseconds;
using watch_internal::Clock;
using watch_internal::Conn;
using watch_internal::Pending;
using watch_internal::PendingKind;
using watch_internal::Phase;
using watch_internal::SessionKind;
using tcp = asio::ip::tcp;

const char* WatchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kNodeCreated:
      return "NodeCreated";
    case WatchEventType::kNodeDeleted:
      return "NodeDeleted";
    case WatchEventType::kNodeDataChanged:
      return "NodeDataChanged";
    case WatchEventType::kNodeChildrenChanged:
      return "NodeChildrenChanged";
    case WatchEventType::kResynced:
      return "Resynced";
    case WatchEventType::kDisconnected:
      return "Disconnected";
    case WatchEventType::kSessionExpired:
      return "SessionExpired";
    case WatchEventType::kAuthFailed:
      return "AuthFailed";
  }
  return "Unknown";
}

void WatchChannel::Impl::BeginAttempt() {
  auto conn = std::make_shared<Conn>(strand_);
  conn_ = conn;
  phase_ = Phase::kResolving;
  const ZkServerAddress& server = cs_.servers[next_server_++ % cs_.servers.size()];
  conn->server = server.ToString();
  UpdateStats([&](WatchChannelStats& s) {
    s.server = conn->server;
    ++s.connect_attempts;
  });
  attempt_timer_.expires_after(options_.connect_timeout);
  attempt_timer_.async_wait([self = shared_from_this(), conn](boost::system::error_code ec) {
    if (ec || !self->Current(conn) || self->phase_ == Phase::kLive) return;
    self->Fail("no session within " + std::to_string(self->options_.connect_timeout.count()) +
               " ms");
  });
  resolver_.async_resolve(server.host, std::to_string(server.port),
                          [self = shared_from_this(), conn](boost::system::error_code ec,
                                                            tcp::resolver::results_type results) {
                            if (!self->Current(conn)) return;
                            if (ec) return self->Fail("cannot resolve: " + ec.message());
                            self->OnResolved(conn, results);
                          });
}

void WatchChannel::Impl::OnResolved(const std::shared_ptr<Conn>& conn,
                                    const tcp::resolver::results_type& results) {
  phase_ = Phase::kConnecting;
  asio::async_connect(
      conn->socket, results,
      [self = shared_from_this(), conn](boost::system::error_code ec, const tcp::endpoint&) {
        if (!self->Current(conn)) return;
        if (ec) return self->Fail("cannot connect: " + ec.message());
        self->OnConnected(conn);
      });
}

void WatchChannel::Impl::OnConnected(const std::shared_ptr<Conn>& conn) {
  boost::system::error_code ignored;
  conn->socket.set_option(tcp::no_delay(true), ignored);
  phase_ = Phase::kHandshake;
  jute::ConnectRequest req;
  req.last_zxid_seen = last_zxid_;
  req.timeout_ms = static_cast<int32_t>(options_.session_timeout.count());
  req.session_id = session_id_;
  req.password = password_;
  Send(conn, jute::EncodeConnectRequest(req));
  last_recv_ = Clock::now();
  ReadMore(conn);
}

void WatchChannel::Impl::ReadMore(const std::shared_ptr<Conn>& conn) {
  if (paused_) {
    conn->read_stalled = true;
    return;
  }
  conn->socket.async_read_some(
      asio::buffer(conn->rbuf),
      [self = shared_from_this(), conn](boost::system::error_code ec, size_t n) {
        if (!self->Current(conn)) return;
        if (self->paused_) {
          conn->read_stalled = true;
          conn->stalled_result.emplace(ec, n);
          return;
        }
        self->OnRead(conn, ec, n);
      });
}

void WatchChannel::Impl::OnRead(const std::shared_ptr<Conn>& conn, boost::system::error_code ec,
                                size_t n) {
  if (ec) {
    bool eof = ec == asio::error::eof || ec == asio::error::connection_reset;
    if (eof && phase_ == Phase::kHandshake) ++handshake_eofs_;
    return Fail(eof ? "server closed the connection" : "read: " + ec.message());
  }
  last_recv_ = last_session_contact_ = Clock::now();
  conn->frames.Append(std::string_view(conn->rbuf.data(), n));
  while (Current(conn)) {
    std::string_view payload;
    auto next = conn->frames.Next(&payload);
    if (!next.ok()) return Fail(next.status().message());
    if (*next == jute::FrameBuffer::Outcome::kNeedMore) break;
    HandleFrame(conn, payload);
  }
  if (Current(conn)) ReadMore(conn);
}

void WatchChannel::Impl::Send(const std::shared_ptr<Conn>& conn, std::string frame) {
  conn->wq.push_back(std::move(frame));
  if (!conn->writing) DoWrite(conn);
}

void WatchChannel::Impl::DoWrite(const std::shared_ptr<Conn>& conn) {
  conn->writing = true;
  asio::async_write(conn->socket, asio::buffer(conn->wq.front()),
                    [self = shared_from_this(), conn](boost::system::error_code ec, size_t) {
                      conn->writing = false;
                      if (!conn->closing && !self->Current(conn)) return;
                      if (ec) {
                        if (!conn->closing) self->Fail("write: " + ec.message());
                        return;
                      }
                      conn->wq.pop_front();
                      if (!conn->wq.empty()) return self->DoWrite(conn);
                      if (conn->closing) {
                        boost::system::error_code ignored;
                        conn->socket.close(ignored);
                      }
                    });
}

void WatchChannel::Impl::ArmTick(const std::shared_ptr<Conn>& conn) {
  tick_timer_.expires_after(milliseconds(std::max(timeout_ms_ / 3, 1)));
  tick_timer_.async_wait([self = shared_from_this(), conn](boost::system::error_code ec) {
    if (ec || !self->Current(conn)) return;
    self->OnTick(conn);
  });
}

void WatchChannel::Impl::OnTick(const std::shared_ptr<Conn>& conn) {
  if (!paused_) {
    auto silent = std::chrono::duration_cast<milliseconds>(Clock::now() - last_recv_);
    if (silent.count() > timeout_ms_ * 2 / 3) {
      return Fail("server silent for " + std::to_string(silent.count()) + " ms");
    }
    Send(conn, jute::EncodePing());
  }
  ArmTick(conn);
}

void WatchChannel::Impl::Fail(const std::string& reason) {
  if (!conn_ || phase_ == Phase::kStopped) return;
  bool was_live = phase_ == Phase::kLive;
  std::string server = conn_->server;
  LOG_WARN("zk watch channel: " << server << ": " << reason);
  UpdateStats([&](WatchChannelStats& s) {
    s.last_error = server + ": " + reason;
    if (!was_live) ++s.connect_failures;
  });
  MaybeAbandonSession();
  CloseConn();
  if (reported_live_) {
    reported_live_ = false;
    Deliver(WatchEventType::kDisconnected, "");
  }
  if (was_live) return ScheduleAttempt(milliseconds(0));
  milliseconds delay = backoff_;
  backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  auto lo = std::max<int64_t>(delay.count() / 2, 1);
  ScheduleAttempt(
      milliseconds(std::uniform_int_distribution<int64_t>(lo, std::max(lo, delay.count()))(rng_)));
}

void WatchChannel::Impl::MaybeAbandonSession() {
  // A server hangs up on a ConnectRequest whose lastZxidSeen is ahead of it
  // (a lagging follower, or an ensemble rebuilt from scratch), and also while
  // it is starting. If every server keeps doing so for longer than the
  // session timeout, no server can have heard from this session for that
  // long, so it is expired anyway: start over with a new one and zxid 0.
  if (static_cast<size_t>(handshake_eofs_) < cs_.servers.size()) return;
  if (session_id_ == 0 && last_zxid_ == 0) return;
  milliseconds timeout = timeout_ms_ > 0 ? milliseconds(timeout_ms_) : options_.session_timeout;
  if (Clock::now() - last_session_contact_ <= timeout) return;
  handshake_eofs_ = 0;
  last_zxid_ = 0;
  ResetSession("servers keep closing the handshake; starting a new session");
}

void WatchChannel::Impl::CloseConn() {
  if (conn_) {
    boost::system::error_code ignored;
    conn_->socket.close(ignored);
  }
  conn_.reset();
  resolver_.cancel();
  attempt_timer_.cancel();
  tick_timer_.cancel();
  pending_.clear();
  restore_outstanding_ = 0;
  UpdateStats([](WatchChannelStats& s) { s.live = false; });
}

void WatchChannel::Impl::ScheduleAttempt(milliseconds delay) {
  phase_ = Phase::kBackoff;
  UpdateStats([&](WatchChannelStats& s) { s.backoff = delay; });
  backoff_timer_.expires_after(delay);
  backoff_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->phase_ != Phase::kBackoff) return;
    self->BeginAttempt();
  });
}

void WatchChannel::Impl::Deliver(WatchEventType type, std::string path) {
  WatchEvent ev{type, std::move(path)};
  gate_->Run([&] {
    UpdateStats([](WatchChannelStats& s) { ++s.events; });
    if (on_event_) on_event_(ev);
  });
}

void WatchChannel::Impl::Stop() {
  if (phase_ == Phase::kStopped) return;
  bool connected =
      phase_ == Phase::kAuthenticating || phase_ == Phase::kRestoring || phase_ == Phase::kLive;
  std::shared_ptr<Conn> conn = conn_;
  conn_.reset();
  resolver_.cancel();
  attempt_timer_.cancel();
  backoff_timer_.cancel();
  tick_timer_.cancel();
  phase_ = Phase::kStopped;
  UpdateStats([](WatchChannelStats& s) { s.live = false; });
  if (!conn) return;
  if (!connected) {
    boost::system::error_code ignored;
    conn->socket.close(ignored);
    return;
  }
  // Tell the server we are gone so it frees the session now, not after the
  // timeout; the socket closes once the request is written.
  conn->closing = true;
  Send(conn, jute::EncodeCloseSession(NextXid()));
}

void WatchChannel::Impl::Resume() {
  if (!paused_) return;
  paused_ = false;
  last_recv_ = Clock::now();
  if (!conn_ || !conn_->read_stalled) return;
  std::shared_ptr<Conn> conn = conn_;
  conn->read_stalled = false;
  if (!conn->stalled_result) return ReadMore(conn);
  auto [ec, n] = *conn->stalled_result;
  conn->stalled_result.reset();
  OnRead(conn, ec, n);
}

// ---- public wrapper ----

Result<std::unique_ptr<WatchChannel>> WatchChannel::Create(asio::any_io_executor executor,
                                                           WatchChannelOptions options,
                                                           EventCallback on_event) {
  RANGEKV_ASSIGN_OR_RETURN(ConnectString cs, ParseConnectString(options.connect_string));
  for (const auto& p : options.watch_paths) RANGEKV_RETURN_IF_ERROR(ValidateZnodePath(p));
  if (options.session_timeout.count() <= 0 || options.connect_timeout.count() <= 0 ||
      options.backoff_initial.count() <= 0 || options.backoff_max < options.backoff_initial) {
    return Status(Code::kBadRequest, "zk watch channel: timeouts and backoff must be positive");
  }
  auto impl = std::make_shared<Impl>(std::move(executor), std::move(options), std::move(cs),
                                     std::move(on_event));
  return std::unique_ptr<WatchChannel>(new WatchChannel(std::move(impl)));
}

WatchChannel::WatchChannel(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

WatchChannel::~WatchChannel() { Stop(); }

void WatchChannel::Start() {
  impl_->Post([](Impl& i) { i.Start(); });
}

void WatchChannel::Stop() {
  impl_->gate()->Close();
  impl_->Post([](Impl& i) { i.Stop(); });
}

Status WatchChannel::AddWatch(const std::string& path) {
  RANGEKV_RETURN_IF_ERROR(ValidateZnodePath(path));
  impl_->Post([path](Impl& i) { i.AddWatch(path); });
  return Status::Ok();
}

WatchChannelStats WatchChannel::stats() const { return impl_->stats(); }

void WatchChannel::TestDropConnection() {
  impl_->Post([](Impl& i) { i.DropConnection(); });
}

void WatchChannel::TestPause() {
  impl_->Post([](Impl& i) { i.Pause(); });
}

void WatchChannel::TestResume() {
  impl_->Post([](Impl& i) { i.Resume(); });
}

}  // namespace rangekv::zk
