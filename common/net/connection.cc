#include "common/net/connection.h"

#include <algorithm>

#include "common/log.h"
#include "common/net/stream.h"

namespace rangekv::net {

using boost::system::error_code;
using tcp = asio::ip::tcp;

namespace {
// Bytes asked of each read; the FrameReader keeps at most this plus one
// partial frame buffered.
constexpr size_t kReadChunk = 64 * 1024;

thread_local Connection* tls_dispatching = nullptr;

// Why an established link failed. Under TLS 1.3 a node that refuses this
// client's certificate says so in an alert after the client's side of the
// handshake has finished, so the refusal surfaces on the first read.
Status LinkLost(const std::string& name, const error_code& ec) {
  if (ec.category() == asio::error::get_ssl_category()) {
    return Status(Code::kUnauthenticated,
                  "node " + name + " refused this connection: " + TlsErrorText(ec) +
                      " (is this client's certificate from the cluster's CA, and current?)");
  }
  std::string why = ec == asio::error::eof ? "closed by the node" : ec.message();
  return Status(Code::kUnavailable, "connection to " + name + " lost: " + why);
}
}  // namespace

Connection* Connection::CurrentlyDispatching() { return tls_dispatching; }

// One TCP connection attempt or established connection. Handlers hold it by
// shared_ptr, so its socket and buffers stay valid until the last of them
// has run, even after the Connection dropped it.
struct Connection::Link {
  explicit Link(asio::io_context& io) : stream(io) {}
  void Close() {
    error_code ignored;
    stream.socket().close(ignored);
  }
  Stream stream;
  FrameReader reader;
  std::string wbuf;  // the bytes of the async_write in flight
  bool writing = false;
  // When the last bytes arrived (or the link was made): a request that
  // timed out with nothing read since it was sent finds the link silent.
  Clock::time_point last_read = Clock::now();
  // Scratch of OnRead, kept to reuse their capacity.
  std::vector<proto::Response> responses;
  std::vector<ResponseCallback> callbacks;
};

Connection::Connection(asio::io_context& io, HostPort target, ConnectionOptions options,
                       RetryFn retry, const void* owner)
    : io_(io),
      owner_(owner),
      target_(std::move(target)),
      name_(target_.ToString()),
      options_(options),
      retry_(std::move(retry)),
      resolver_(io),
      connect_timer_(io),
      deadline_timer_(io),
      backoff_(options.initial_backoff) {}

Connection::~Connection() = default;

void Connection::Connect(std::function<void(Status)> done) {
  bool start = false;
  {
    MutexLock lock(mu_);
    switch (state_) {
      case State::kClosed:
        asio::post(io_, [done = std::move(done)] {
          done(Status(Code::kUnavailable, "client is shutting down"));
        });
        return;
      case State::kConnected:
        asio::post(io_, [done = std::move(done)] { done(Status::Ok()); });
        return;
      case State::kIdle:
        state_ = State::kConnecting;
        start = true;
        break;
      case State::kConnecting:
        break;
    }
    connect_waiters_.push_back(std::move(done));
  }
  if (start) asio::post(io_, [this] { StartConnect(); });
}

void Connection::Send(PendingRequest req) {
  FollowUps follow;
  Status fail;
  {
    MutexLock lock(mu_);
    fail = AdmitLocked(follow);
    if (fail.ok()) QueueLocked(std::move(req), follow);
  }
  if (!fail.ok()) {
    asio::post(io_, [done = std::move(req.done), fail] { done(fail); });
    return;
  }
  if (follow.connect) asio::post(io_, [this] { StartConnect(); });
  if (follow.timer) asio::post(io_, [this] { ArmTimer(); });
  if (follow.write) {
    asio::post(io_, [this] {
      {
        MutexLock lock(mu_);
        write_posted_ = false;
      }
      if (link_ && !link_->writing) DoWrite(link_);
    });
  }
}

// OK when a request may be queued now; starts a connect when one is due.
Status Connection::AdmitLocked(FollowUps& follow) {
  switch (state_) {
    case State::kClosed: return Status(Code::kUnavailable, "client is shutting down");
    case State::kIdle:
      // Fail fast while backing off after a failed connect.
      if (Clock::now() < retry_at_) return Status(Code::kUnavailable, last_error_);
      state_ = State::kConnecting;
      follow.connect = true;
      return Status::Ok();
    case State::kConnecting: case State::kConnected: return Status::Ok();
  }
  return Status::Ok();
}

void Connection::QueueLocked(PendingRequest req, FollowUps& follow) {
  std::string frame = std::move(req.frame);
  out_.append(frame);
  if (req.retries_left > 0) req.frame = std::move(frame);  // kept for a resend
  PushDeadlineLocked(req.deadline, req.id);
  if (req.deadline < timer_at_) {
    timer_at_ = req.deadline;
    follow.timer = true;
  }
  // From inside this connection's dispatch, OnRead writes when it ends.
  if (state_ == State::kConnected && !write_posted_ && tls_dispatching != this) {
    write_posted_ = true;
    follow.write = true;
  }
  pending_.insert_or_assign(req.id, std::move(req));
}

void Connection::Shutdown() {
  std::vector<PendingRequest> reqs;
  std::vector<std::function<void(Status)>> waiters;
  {
    MutexLock lock(mu_);
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    connected_ = false;
    reqs = TakeAllLocked();
    waiters.swap(connect_waiters_);
  }
  Status st(Code::kUnavailable, "client is shutting down");
  PostFailures(std::move(reqs), st);
  for (auto& w : waiters) asio::post(io_, [w = std::move(w), st] { w(st); });
  asio::post(io_, [this] {
    ++attempt_;  // makes every connect handler in flight stale
    resolver_.cancel();
    connect_timer_.cancel();
    deadline_timer_.cancel();
    if (link_) link_->Close();
    if (connecting_link_) connecting_link_->Close();
    link_.reset();
    connecting_link_.reset();
  });
}

size_t Connection::FailRoute(uint64_t route, uint64_t epoch, const Status& st) {
  std::vector<PendingRequest> failed;
  {
    MutexLock lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.route != route || it->second.route_epoch >= epoch) {
        ++it;
        continue;
      }
      failed.push_back(std::move(it->second));
      it = pending_.erase(it);
    }
  }
  const size_t n = failed.size();
  PostFailures(std::move(failed), st);
  return n;
}

std::vector<PendingRequest> Connection::TakeAllLocked() {
  std::vector<PendingRequest> reqs;
  reqs.reserve(pending_.size());
  for (auto& [id, req] : pending_) reqs.push_back(std::move(req));
  pending_.clear();
  deadlines_.clear();
  out_.clear();
  timer_at_ = Clock::time_point::max();
  return reqs;
}

void Connection::PostFailures(std::vector<PendingRequest> reqs, const Status& st) {
  for (auto& r : reqs) asio::post(io_, [done = std::move(r.done), st] { done(st); });
}

// ---- connecting ----

void Connection::StartConnect() {
  {
    MutexLock lock(mu_);
    if (state_ == State::kClosed) return;
  }
  if (connecting_link_ || link_) return;
  const uint64_t attempt = ++attempt_;
  auto link = std::make_shared<Link>(io_);
  connecting_link_ = link;
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this, attempt](const error_code& ec) {
    if (ec) return;  // cancelled: the attempt ended first
    FinishConnect(attempt, nullptr,
                  Status(Code::kUnavailable,
                         "cannot connect to " + name_ + ": no answer within " +
                             std::to_string(options_.connect_timeout.count()) + " ms"));
  });
  resolver_.async_resolve(
      target_.host, std::to_string(target_.port),
      [this, attempt, link](const error_code& ec, tcp::resolver::results_type results) {
        if (attempt != attempt_ || connecting_link_ != link) return;
        if (ec) {
          FinishConnect(attempt, nullptr,
                        Status(Code::kUnavailable, "cannot resolve " + target_.host +
                                                       " (node " + name_ + "): " + ec.message()));
          return;
        }
        asio::async_connect(link->stream.socket(), results,
                            [this, attempt, link](const error_code& ec2, const tcp::endpoint&) {
                              if (ec2) {
                                FinishConnect(attempt, nullptr,
                                              Status(Code::kUnavailable, "cannot connect to " +
                                                                             name_ + ": " +
                                                                             ec2.message()));
                              } else {
                                StartHandshake(attempt, link);
                              }
                            });
      });
}

void Connection::StartHandshake(uint64_t attempt, std::shared_ptr<Link> link) {
  if (attempt != attempt_ || connecting_link_ != link) return;
  if (options_.fetch_stream) {
    // One byte into a socket just connected: the send buffer takes it at once.
    error_code ec;
    asio::write(link->stream.socket(), asio::buffer(&kFetchStreamMark, 1), ec);
    if (ec) {
      FinishConnect(attempt, nullptr,
                    Status(Code::kUnavailable, "cannot write to " + name_ + ": " + ec.message()));
      return;
    }
  }
  if (options_.tls) link->stream.UseTls(options_.tls->current(), &target_.host);
  link->stream.Handshake(false, [this, attempt, link](const error_code& ec) {
    if (!ec) {
      FinishConnect(attempt, link, Status::Ok());
      return;
    }
    std::string why = link->stream.VerifyFailure();
    if (!why.empty()) {
      why = "its certificate failed verification: " + why;
    } else {
      why = TlsErrorText(ec);
      if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        why += " (does it serve TLS?)";
      }
    }
    FinishConnect(
        attempt, nullptr,
        Status(Code::kUnauthenticated, "TLS handshake with " + name_ + " failed: " + why));
  });
}

void Connection::FinishConnect(uint64_t attempt, std::shared_ptr<Link> link, Status st) {
  if (attempt != attempt_ || !connecting_link_) return;  // this attempt already ended
  connect_timer_.cancel();
  resolver_.cancel();
  if (st.ok()) {
    OnConnected(std::move(link));
  } else {
    OnConnectFailed(st);
  }
}

void Connection::OnConnected(std::shared_ptr<Link> link) {
  error_code ignored;
  link->stream.socket().set_option(tcp::no_delay(true), ignored);
  connecting_link_.reset();
  std::vector<std::function<void(Status)>> waiters;
  {
    MutexLock lock(mu_);
    if (state_ == State::kClosed) {
      link->Close();
      return;
    }
    state_ = State::kConnected;
    connected_ = true;
    backoff_ = options_.initial_backoff;
    waiters.swap(connect_waiters_);
  }
  link_ = link;
  link->last_read = Clock::now();
  StartRead(link);
  DoWrite(link);  // requests queued while connecting
  for (auto& w : waiters) w(Status::Ok());
}

void Connection::OnConnectFailed(const Status& st) {
  connecting_link_->Close();
  connecting_link_.reset();
  std::vector<std::function<void(Status)>> waiters;
  std::vector<PendingRequest> failed;
  {
    MutexLock lock(mu_);
    if (state_ == State::kClosed) return;
    state_ = State::kIdle;
    retry_at_ = Clock::now() + backoff_;
    last_error_ = st.message() + " (next attempt in " + std::to_string(backoff_.count()) + " ms)";
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    failed = TakeAllLocked();
    waiters.swap(connect_waiters_);
  }
  LOG_DEBUG(st.message());
  for (auto& r : failed) r.done(st);
  for (auto& w : waiters) w(st);
}

// ---- reading and writing ----

void Connection::StartRead(const std::shared_ptr<Link>& link) {
  char* buf = link->reader.PrepareWrite(kReadChunk);
  link->stream.ReadSome(asio::buffer(buf, kReadChunk),
                        [this, link](const error_code& ec, size_t n) { OnRead(link, ec, n); });
}

void Connection::OnRead(const std::shared_ptr<Link>& link, const error_code& ec, size_t n) {
  if (link != link_) return;  // closed meanwhile
  if (ec) {
    OnLinkError(link, LinkLost(name_, ec));
    return;
  }
  link->reader.Commit(n);
  link->last_read = Clock::now();
  if (!DecodeResponses(*link)) return;
  Dispatch(link);
  StartRead(link);
}

// Decodes every whole frame buffered into link.responses; false (after
// failing the connection) on a bad frame or message.
bool Connection::DecodeResponses(Link& link) {
  link.responses.clear();
  for (;;) {
    auto frame = link.reader.Next();
    if (!frame.ok()) {
      OnLinkError(link_, Status(Code::kUnavailable,
                                "bad frame from " + name_ + ": " + frame.status().ToString()));
      return false;
    }
    if (frame->empty()) return true;
    auto resp = proto::DecodeResponse(*frame);
    if (!resp.ok()) {
      OnLinkError(link_, Status(Code::kUnavailable,
                                "bad response from " + name_ + ": " + resp.status().ToString()));
      return false;
    }
    link.responses.push_back(std::move(resp).value());
  }
}

// Matches the responses of one read under one lock, then runs their
// callbacks; requests those send to this connection leave in one write.
void Connection::Dispatch(const std::shared_ptr<Link>& link) {
  auto& responses = link->responses;
  auto& callbacks = link->callbacks;
  callbacks.clear();
  callbacks.resize(responses.size());
  {
    MutexLock lock(mu_);
    for (size_t i = 0; i < responses.size(); ++i) {
      auto it = pending_.find(responses[i].id);
      if (it == pending_.end()) continue;  // timed out earlier: drop the late answer
      callbacks[i] = std::move(it->second.done);
      pending_.erase(it);
    }
  }
  Connection* const outer = tls_dispatching;
  tls_dispatching = this;
  for (size_t i = 0; i < responses.size(); ++i) {
    if (callbacks[i]) callbacks[i](std::move(responses[i]));
  }
  tls_dispatching = outer;
  callbacks.clear();
  if (link == link_ && !link->writing) DoWrite(link);
}

void Connection::DoWrite(const std::shared_ptr<Link>& link) {
  {
    MutexLock lock(mu_);
    if (out_.empty()) {
      link->writing = false;
      return;
    }
    link->wbuf.swap(out_);  // wbuf is empty here; out_ keeps its capacity
  }
  link->writing = true;
  link->stream.Write(asio::buffer(link->wbuf), [this, link](const error_code& ec, size_t) {
    link->wbuf.clear();
    if (link != link_) return;
    if (ec) {
      OnLinkError(link,
                  Status(Code::kUnavailable, "connection to " + name_ + " lost: " + ec.message()));
      return;
    }
    DoWrite(link);
  });
}

void Connection::OnLinkError(const std::shared_ptr<Link>& link, const Status& st) {
  if (link != link_) return;
  link->Close();
  link_.reset();
  std::vector<PendingRequest> reqs;
  {
    MutexLock lock(mu_);
    if (state_ == State::kClosed) return;
    state_ = State::kIdle;
    connected_ = false;
    retry_at_ = Clock::now();  // the connection worked: reconnect on the next Send
    reqs = TakeAllLocked();
  }
  LOG_INFO(st.message());
  const auto now = Clock::now();
  for (auto& r : reqs) {
    // Reads may be resent once within their deadline; a write's outcome is
    // unknown, so it fails and the caller decides.
    if (r.retries_left > 0 && r.deadline > now) {
      --r.retries_left;
      retry_(std::move(r));
    } else {
      r.done(st);
    }
  }
}

// ---- deadlines ----

void Connection::PushDeadlineLocked(Clock::time_point at, uint64_t id) {
  if (deadlines_.size() >= 2 * pending_.size() + 64) {
    // Mostly answered requests: rebuild from the pending set. Amortised
    // over the pushes since the last rebuild, O(1) each.
    deadlines_.clear();
    for (const auto& [pid, req] : pending_) deadlines_.push_back({req.deadline, pid});
    std::make_heap(deadlines_.begin(), deadlines_.end());
  }
  deadlines_.push_back({at, id});
  std::push_heap(deadlines_.begin(), deadlines_.end());
}

void Connection::PopAnsweredLocked() {
  while (!deadlines_.empty() && pending_.find(deadlines_.front().id) == pending_.end()) {
    std::pop_heap(deadlines_.begin(), deadlines_.end());
    deadlines_.pop_back();
  }
}

void Connection::ArmTimer() {
  Clock::time_point at;
  {
    MutexLock lock(mu_);
    at = timer_at_;
  }
  if (at == Clock::time_point::max()) return;
  deadline_timer_.expires_at(at);
  deadline_timer_.async_wait([this](const error_code& ec) { OnTimer(ec); });
}

void Connection::OnTimer(const error_code& ec) {
  if (ec) return;  // re-armed or shut down
  std::vector<PendingRequest> expired;
  {
    MutexLock lock(mu_);
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.front().at <= now) {
      auto it = pending_.find(deadlines_.front().id);
      std::pop_heap(deadlines_.begin(), deadlines_.end());
      deadlines_.pop_back();
      if (it == pending_.end()) continue;
      expired.push_back(std::move(it->second));
      pending_.erase(it);
    }
    PopAnsweredLocked();
    timer_at_ = deadlines_.empty() ? Clock::time_point::max() : deadlines_.front().at;
  }
  // A link that read nothing since an expired request was sent is taken for
  // dead (a cut link, a peer gone without a reset): it is dropped so the
  // next Send connects anew, rather than waiting out TCP's retransmission
  // backoff (seconds after a few seconds' cut) once the path is back. It is
  // dropped before the expired callbacks run: a request they lead to (the
  // caller's next one) must go to a new link, not be failed with the old.
  const std::shared_ptr<Link> link = link_;
  if (link && std::any_of(expired.begin(), expired.end(), [&](const auto& r) {
        return link->last_read < r.deadline - r.timeout;
      })) {
    OnLinkError(link, Status(Code::kUnavailable, "connection to " + name_ +
                                                     " dropped: silent past a request's deadline"));
  }
  for (auto& r : expired) {
    r.done(Status(Code::kTimeout, "no response from " + name_ + " within " +
                                      std::to_string(r.timeout.count()) +
                                      " ms; the outcome is unknown"));
  }
  ArmTimer();
}

}  // namespace rangekv::net
