// The ZooKeeper side of the watch channel: handshake, restoring watches
// (addWatch on a new session, SetWatches2 on a resumed one), replies and
// notifications. Protocol facts: docs/zookeeper-watch.md.
#include <sstream>

#include "common/log.h"
#include "common/zk/errors.h"
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

namespace {

std::optional<WatchEventType> FromWireType(int32_t type) {
  switch (type) {
    case jute::kEventNodeCreated:
      return WatchEventType::kNodeCreated;
    case jute::kEventNodeDeleted:
      return WatchEventType::kNodeDeleted;
    case jute::kEventNodeDataChanged:
      return WatchEventType::kNodeDataChanged;
    case jute::kEventNodeChildrenChanged:
      return WatchEventType::kNodeChildrenChanged;
    default:
      return std::nullopt;
  }
}

std::string Hex(int64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << static_cast<uint64_t>(v);
  return os.str();
}

}  // namespace

void WatchChannel::Impl::HandleFrame(const std::shared_ptr<Conn>& conn, std::string_view payload) {
  if (phase_ == Phase::kHandshake) return OnConnectResponse(conn, payload);
  auto frame = jute::DecodeServerFrame(payload);
  if (!frame.ok()) return Fail(frame.status().message());
  const jute::ReplyHeader& h = frame->header;
  if (h.zxid > last_zxid_) {
    last_zxid_ = h.zxid;
    UpdateStats([&](WatchChannelStats& s) { s.last_zxid = last_zxid_; });
  }
  if (h.xid == jute::kXidNotification) {
    if (frame->event) OnNotification(*frame->event);
  } else if (h.xid == jute::kXidAuth) {
    OnAuthReply(conn, h.err);
  } else if (h.xid == jute::kXidSetWatches) {
    if (h.err != 0) return Fail("setWatches2 refused: " + ZkErrorName(h.err));
    if (restore_outstanding_ > 0) --restore_outstanding_;
    MaybeLive();
  } else if (h.xid > 0) {
    OnReply(conn, *frame);
  }
  // Ping replies (xid -2) only prove the connection is alive (last_recv_).
}

void WatchChannel::Impl::OnConnectResponse(const std::shared_ptr<Conn>& conn,
                                           std::string_view payload) {
  auto resp = jute::DecodeConnectResponse(payload);
  if (!resp.ok()) return Fail(resp.status().message());
  if (resp->expired()) {
    if (session_id_ == 0) return Fail("server refused to open a session");
    ResetSession("session " + Hex(session_id_) + " expired");
    // The server closes this socket; reconnect at once with a new session.
    CloseConn();
    return ScheduleAttempt(milliseconds(0));
  }
  SessionKind kind = session_id_ != 0 && resp->session_id == session_id_ ? SessionKind::kResumed
                                                                         : SessionKind::kNew;
  if (session_id_ != 0 && kind == SessionKind::kNew) {
    ResetSession("session " + Hex(session_id_) + " replaced");
  }
  session_id_ = resp->session_id;
  password_ = resp->password;
  timeout_ms_ = resp->timeout_ms;
  handshake_eofs_ = 0;
  UpdateStats([&](WatchChannelStats& s) {
    s.session_id = session_id_;
    s.negotiated_timeout_ms = timeout_ms_;
    ++s.handshakes;
  });
  LOG_INFO("zk watch channel: " << (kind == SessionKind::kResumed ? "resumed" : "opened")
                                << " session " << Hex(session_id_) << " on " << conn->server
                                << ", timeout " << timeout_ms_ << " ms");
  ArmTick(conn);
  if (options_.auth) {
    phase_ = Phase::kAuthenticating;
    restore_kind_ = kind;
    return Send(conn, jute::EncodeAuth(options_.auth->scheme, options_.auth->credential));
  }
  phase_ = Phase::kRestoring;
  RestoreWatches(conn, kind);
}

void WatchChannel::Impl::OnAuthReply(const std::shared_ptr<Conn>& conn, int32_t err) {
  if (phase_ != Phase::kAuthenticating) return Fail("auth reply out of turn");
  if (err == 0) {
    phase_ = Phase::kRestoring;
    return RestoreWatches(conn, restore_kind_);
  }
  // Retrying would be refused the same way: stop, and say so once.
  const std::string why = "ZooKeeper refused the credentials of " + options_.auth->source + " (" +
                          ZkErrorName(err) + ") - check --zk-auth-file";
  LOG_ERROR("zk watch channel: " << conn->server << ": " << why);
  UpdateStats([&](WatchChannelStats& s) {
    s.auth_failed = true;
    s.last_error = conn->server + ": " + why;
  });
  CloseConn();
  backoff_timer_.cancel();
  phase_ = Phase::kStopped;
  Deliver(WatchEventType::kAuthFailed, "");
}

void WatchChannel::Impl::RestoreWatches(const std::shared_ptr<Conn>& conn, SessionKind kind) {
  restore_outstanding_ = 0;
  if (kind == SessionKind::kResumed) {
    // Watches belong to the connection: SetWatches2 puts them back.
    std::vector<std::string> paths;
    for (const auto& w : watches_) paths.push_back(ToServerPath(cs_.chroot, w));
    for (auto& frame : jute::EncodeSetWatches2Batches(last_zxid_, paths)) {
      ++restore_outstanding_;
      Send(conn, std::move(frame));
    }
  } else {
    for (const auto& w : watches_) {
      int32_t xid = NextXid();
      pending_.push_back(Pending{xid, PendingKind::kRestoreAddWatch, w});
      ++restore_outstanding_;
      Send(conn, jute::EncodeAddWatch(xid, ToServerPath(cs_.chroot, w),
                                      jute::kAddWatchModePersistentRecursive));
    }
  }
  MaybeLive();
}

void WatchChannel::Impl::OnReply(const std::shared_ptr<Conn>& conn,
                                 const jute::ServerFrame& frame) {
  if (pending_.empty() || pending_.front().xid != frame.header.xid) {
    return Fail("reply with unexpected xid " + std::to_string(frame.header.xid));
  }
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  int32_t err = frame.header.err;
  if (err == 0) {
    auto body = jute::DecodeAddWatchReply(frame.body);
    if (!body.ok()) return Fail(body.status().message());
    err = *body;
  }
  if (err != 0) {
    LOG_ERROR("zk watch channel: addWatch " << p.path << " on " << conn->server
                                            << " failed: " << ZkErrorName(err));
  }
  if (p.kind == PendingKind::kRestoreAddWatch) {
    if (restore_outstanding_ > 0) --restore_outstanding_;
    MaybeLive();
  } else if (err == 0) {
    Deliver(WatchEventType::kResynced, p.path);
  }
}

void WatchChannel::Impl::OnNotification(const jute::WatcherEvent& ev) {
  auto type = FromWireType(ev.type);
  std::optional<std::string> path = FromServerPath(cs_.chroot, ev.path);
  if (!type || !path) {
    LOG_DEBUG("zk watch channel: ignored event type " << ev.type << " for " << ev.path);
    return;
  }
  Deliver(*type, std::move(*path));
}

void WatchChannel::Impl::MaybeLive() {
  if (phase_ != Phase::kRestoring || restore_outstanding_ > 0) return;
  phase_ = Phase::kLive;
  attempt_timer_.cancel();
  backoff_ = options_.backoff_initial;
  reported_live_ = true;
  UpdateStats([&](WatchChannelStats& s) {
    s.live = true;
    s.backoff = milliseconds(0);
  });
  Deliver(WatchEventType::kResynced, "");
}

void WatchChannel::Impl::ResetSession(const std::string& why) {
  LOG_WARN("zk watch channel: " << why);
  session_id_ = 0;
  password_ = {};
  UpdateStats([](WatchChannelStats& s) {
    s.session_id = 0;
    ++s.session_expiries;
  });
  reported_live_ = false;
  Deliver(WatchEventType::kSessionExpired, "");
}

void WatchChannel::Impl::AddWatch(const std::string& path) {
  bool added = watches_.insert(path).second;
  bool connected = phase_ == Phase::kRestoring || phase_ == Phase::kLive;
  if (!connected) return;  // the next restore includes it
  if (!added && phase_ == Phase::kLive) return Deliver(WatchEventType::kResynced, path);
  int32_t xid = NextXid();
  pending_.push_back(Pending{xid, PendingKind::kLiveAddWatch, path});
  Send(conn_, jute::EncodeAddWatch(xid, ToServerPath(cs_.chroot, path),
                                   jute::kAddWatchModePersistentRecursive));
}

}  // namespace rangekv::zk
