#include "kvnode/server/connection.h"

#include <unistd.h>

#include <chrono>
#include <sstream>
#include <utility>

#include "common/log.h"
#include "kvnode/server/connection_manager.h"

namespace rangekv::kvnode {
namespace {

// Send buffers above this are released after use instead of kept, so one
// large scan does not pin its memory for the connection's lifetime.
constexpr size_t kKeepBufferBytes = 1u << 20;

// A TLS client's handshake takes a few round trips; this is ample even
// across a slow link, and short enough that silent connections do not pile up.
constexpr std::chrono::seconds kTlsHandshakeTimeout{5};

std::string PeerName(const asio::ip::tcp::socket& s) {
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown peer";
  std::ostringstream os;
  os << ep;
  return os.str();
}

}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, const RequestHandler& handler,
                       ConnectionManager& manager, size_t max_frame,
                       std::shared_ptr<ConnectionSecurity> security, FetchHome* fetch_home)
    : stream_(std::move(socket)),
      executor_(stream_.socket().get_executor()),
      security_(std::move(security)),
      handshake_deadline_(executor_),
      handler_(handler),
      manager_(manager),
      fetch_home_(fetch_home),
      peer_(PeerName(stream_.socket())),
      reader_(max_frame) {}

Connection::~Connection() = default;

void Connection::Start() {
  LOG_DEBUG("connection from " << peer_);
  if (security_->tls) StartHandshakeDeadline();
  PeekFirstByte();
}

void Connection::PeekFirstByte() {
  reading_ = true;
  stream_.socket().async_receive(asio::buffer(&first_byte_, 1), asio::socket_base::message_peek,
                                 [self = shared_from_this()](const boost::system::error_code& ec,
                                                             size_t) { self->OnFirstByte(ec); });
}

void Connection::StartHandshakeDeadline() {
  handshake_deadline_.expires_after(kTlsHandshakeTimeout);
  handshake_deadline_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->authenticated_ || self->refuse_plaintext_ || self->state_ != State::kOpen) {
      return;
    }
    self->Refuse("no TLS handshake within " + std::to_string(kTlsHandshakeTimeout.count()) + " s");
  });
}

void Connection::OnFirstByte(const boost::system::error_code& ec) {
  reading_ = false;
  if (state_ != State::kOpen) return;
  if (ec) {
    LOG_DEBUG("connection from " << peer_ << ": " << ec.message());
    Close();
    return;
  }
  if (first_byte_ == net::kFetchStreamMark && !marked_) {
    marked_ = true;
    // Take the mark off (it was peeked, so it is there to read): the
    // peer's TLS handshake or first frame comes after it.
    boost::system::error_code rec;
    stream_.socket().receive(asio::buffer(&first_byte_, 1), 0, rec);
    if (rec) {
      LOG_DEBUG("connection from " << peer_ << ": " << rec.message());
      Close();
      return;
    }
    if (fetch_home_ == nullptr || !MoveHome()) PeekFirstByte();
    return;
  }
  const bool tls_peer = net::LooksLikeTls(first_byte_);
  if (!security_->tls) {
    if (tls_peer) {
      Refuse(
          "a TLS client, and this node serves plaintext (start it with --tls-ca, --tls-cert and "
          "--tls-key)");
      return;
    }
    authenticated_ = true;
    DoRead();
    return;
  }
  if (!tls_peer) {
    // Its first request gets the refusal in its own language.
    refuse_plaintext_ = true;
    handshake_deadline_.cancel();
    security_->CountRefusal();
    LOG_WARN("refused a plaintext connection from " << peer_ << ": this node requires TLS");
    DoRead();
    return;
  }
  stream_.UseTls(security_->tls->current(), nullptr);
  reading_ = true;
  stream_.Handshake(true, [self = shared_from_this()](const boost::system::error_code& hec) {
    self->reading_ = false;
    self->handshake_deadline_.cancel();
    if (self->state_ != State::kOpen) return;
    if (hec) {
      std::string why = self->stream_.VerifyFailure();
      self->Refuse(why.empty() ? net::TlsErrorText(hec) : "its certificate: " + why);
      return;
    }
    self->authenticated_ = true;
    self->DoRead();
  });
}

void Connection::Refuse(const std::string& why) {
  security_->CountRefusal();
  LOG_WARN("refused a connection from " << peer_ << ": " << why);
  Close();
}

void Connection::Drain() {
  if (state_ != State::kOpen) return;
  state_ = State::kDraining;
  MaybeFinishDrain();
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  handshake_deadline_.cancel();
  stream_.Close();  // aborts the outstanding read/write; their handlers see kClosed
  manager_.Remove(shared_from_this());
}

void Connection::DoRead() {
  if (state_ != State::kOpen || reading_) return;
  reading_ = true;
  char* at = reader_.PrepareWrite(kReadChunk);
  stream_.ReadSome(asio::buffer(at, kReadChunk),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                     self->OnRead(ec, n);
                   });
}

void Connection::OnRead(const boost::system::error_code& ec, size_t n) {
  reading_ = false;
  if (state_ != State::kOpen) return;  // draining reads nothing more; closed is gone
  if (ec == asio::error::eof) {
    // The peer may have only half-closed: it still gets its pending answers.
    LOG_DEBUG("connection from " << peer_ << " closed by peer");
    Drain();
    return;
  }
  if (ec) {
    LOG_DEBUG("connection from " << peer_ << ": " << ec.message());
    Close();
    return;
  }
  reader_.Commit(n);
  if (!HandleFrames()) return;
  Flush();
  if (!Overloaded()) DoRead();
}

bool Connection::HandleFrames() {
  while (true) {
    Result<std::string_view> frame = reader_.Next();
    if (!frame.ok()) {
      LOG_WARN("closing connection from " << peer_ << ": " << frame.status().ToString());
      Close();
      return false;
    }
    if (frame->empty()) return true;
    Result<proto::Request> req = proto::DecodeRequest(*frame);
    if (!req.ok()) {
      LOG_WARN("closing connection from " << peer_ << ": " << req.status().ToString());
      Close();
      return false;
    }
    if (refuse_plaintext_) {
      Append(proto::Response::Error(
          req->id, Status(Code::kUnauthenticated,
                          "this node requires TLS: connect with --tls-ca, --tls-cert and "
                          "--tls-key (a certificate from the cluster's CA)")));
      Drain();
      return true;
    }
    std::optional<proto::Response> resp = handler_.Handle(std::move(*req), *this);
    if (resp) Append(*resp);
  }
}

bool Connection::MoveHome() {
  FetchHome* home = fetch_home_;
  MutexLock lock(home->mu);
  if (!home->open) return false;
  auto failed = [this](const boost::system::error_code& ec) {
    LOG_WARN("connection from " << peer_
                                << ": cannot hand it to the replication thread: " << ec.message());
  };
  boost::system::error_code ec;
  const auto protocol = stream_.socket().local_endpoint(ec).protocol();
  const int fd = ec ? -1 : stream_.socket().release(ec);
  if (ec) {
    failed(ec);
    Close();
    return true;
  }
  state_ = State::kClosed;  // the socket is the new connection's now
  handshake_deadline_.cancel();
  // Registering the descriptor with the home's reactor is thread-safe; the
  // post below orders everything built here before the home's thread uses it.
  asio::ip::tcp::socket socket(home->ctx);
  socket.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    failed(ec);
    manager_.Remove(shared_from_this());
    return true;
  }
  // Still counted: the home's manager uncounts it when it closes.
  manager_.Forget(shared_from_this());
  auto moved = std::make_shared<Connection>(std::move(socket), handler_, home->manager,
                                            reader_.max_frame(), security_, nullptr);
  moved->marked_ = true;
  asio::post(home->ctx, [home, moved = std::move(moved)] { home->manager.Start(moved); });
  return true;
}

void Connection::Append(const proto::Response& resp) { proto::EncodeResponse(resp, out_); }

void Connection::Flush() {
  if (writing_ || out_.empty() || state_ == State::kClosed) return;
  // sending_ is empty here; swapping keeps both buffers' capacity for reuse.
  std::swap(out_, sending_);
  writing_ = true;
  stream_.Write(asio::buffer(sending_),
                [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                  self->OnWritten(ec);
                });
}

void Connection::OnWritten(const boost::system::error_code& ec) {
  writing_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {
    LOG_DEBUG("connection from " << peer_ << ": write failed: " << ec.message());
    Close();
    return;
  }
  if (sending_.capacity() > kKeepBufferBytes) {
    std::string().swap(sending_);
  } else {
    sending_.clear();
  }
  Flush();
  MaybeResumeReading();
  MaybeFinishDrain();
}

ResponseSink::Reply Connection::ReplyLater() {
  ++pending_writes_;
  // Runs on the store's log thread: hop back to this connection's thread.
  // The shared_ptr keeps the connection alive even if it closes meanwhile.
  return [self = shared_from_this()](proto::Response resp) mutable {
    asio::any_io_executor ex = self->executor_;
    asio::post(ex, [self = std::move(self), resp = std::move(resp)]() mutable {
      self->OnReplyLater(std::move(resp));
    });
  };
}

void Connection::OnReplyLater(proto::Response resp) {
  --pending_writes_;
  if (state_ == State::kClosed) return;  // nobody to tell; the write itself stands
  Append(resp);
  Flush();
  MaybeResumeReading();
  MaybeFinishDrain();
}

void Connection::MaybeResumeReading() {
  if (state_ == State::kOpen && !reading_ && !Overloaded()) DoRead();
}

void Connection::MaybeFinishDrain() {
  if (state_ == State::kDraining && pending_writes_ == 0 && !writing_ && out_.empty()) Close();
}

bool Connection::Overloaded() const {
  return pending_writes_ >= kMaxPendingWrites ||
         out_.size() + sending_.size() >= kMaxBufferedOutput;
}

}  // namespace rangekv::kvnode
