#include "tests/common/zk/zk_test_util.h"

#include <array>
#include <future>

#include "tests/testutil/testutil.h"

namespace rangekv::testing {

using asio::ip::tcp;

IoThread::IoThread() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

IoThread::~IoThread() {
  guard_.reset();
  io_.stop();
  thread_.join();
}

void IoThread::RunSync(const std::function<void()>& f) {
  std::promise<void> done;
  asio::post(io_, [&] {
    f();
    done.set_value();
  });
  done.get_future().wait();
}

zk::WatchChannel::EventCallback EventRecorder::Callback() {
  return [this](const zk::WatchEvent& ev) { Record(ev); };
}

void EventRecorder::Record(const zk::WatchEvent& ev) {
  std::lock_guard lock(mu_);
  events_.push_back(TimedEvent{ev, std::chrono::steady_clock::now()});
}

std::vector<TimedEvent> EventRecorder::Events() const {
  std::lock_guard lock(mu_);
  return events_;
}

size_t EventRecorder::Count(zk::WatchEventType type, const std::string& path) const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& e : events_) n += e.event.type == type && e.event.path == path;
  return n;
}

bool EventRecorder::WaitCount(zk::WatchEventType type, const std::string& path, size_t n,
                              std::chrono::milliseconds timeout) const {
  return WaitFor([&] { return Count(type, path) >= n; }, timeout, std::chrono::milliseconds(2));
}

int EventRecorder::Find(zk::WatchEventType type, const std::string& path, size_t from) const {
  std::lock_guard lock(mu_);
  for (size_t i = from; i < events_.size(); ++i) {
    if (events_[i].event.type == type && events_[i].event.path == path) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> EventRecorder::Lines(size_t from) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (size_t i = from; i < events_.size(); ++i) {
    out.push_back(std::string(zk::WatchEventTypeName(events_[i].event.type)) + " " +
                  events_[i].event.path);
  }
  return out;
}

void EventRecorder::Clear() {
  std::lock_guard lock(mu_);
  events_.clear();
}

// ---- TcpProxy: everything runs on its own io thread ----

namespace {

struct Pipe : std::enable_shared_from_this<Pipe> {
  Pipe(tcp::socket client, asio::any_io_executor ex) : a(std::move(client)), b(ex) {}
  tcp::socket a, b;
  std::array<char, 16384> ab{}, ba{};
  bool drop_ab = false;  // stalled: what the client sends is read and dropped

  void Close() {
    boost::system::error_code ignored;
    a.close(ignored);
    b.close(ignored);
  }
  void Pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf) {
    from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](
                                                boost::system::error_code ec, size_t n) {
      if (ec) return self->Close();
      if (&from == &self->a && self->drop_ab) return self->Pump(from, to, buf);
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [self, &from, &to, &buf](boost::system::error_code ec2, size_t) {
                          if (ec2) return self->Close();
                          self->Pump(from, to, buf);
                        });
    });
  }
};

}  // namespace

class TcpProxy::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor ex, int upstream)
      : ex_(ex),
        acceptor_(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        upstream_(upstream) {}

  int port() const { return acceptor_.local_endpoint().port(); }

  void Accept() {
    acceptor_.async_accept([self = shared_from_this()](boost::system::error_code ec,
                                                       tcp::socket s) {
      if (ec) return;  // the acceptor closed: the proxy is going away
      self->Serve(std::move(s));
      self->Accept();
    });
  }

  // The listener stays bound while disabled: a proxy that re-binds its port
  // after a cut can find it taken by another socket meanwhile.
  void Disable() {
    cut_ = true;
    for (auto& w : pipes_) {
      if (auto p = w.lock()) p->Close();
    }
    pipes_.clear();
  }
  void Enable() { cut_ = false; }
  void Stall() {
    stalled_ = true;
    for (auto& w : pipes_) {
      if (auto p = w.lock()) p->drop_ab = true;
    }
  }
  void Shutdown() {
    Disable();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Serve(tcp::socket s) {
    if (cut_) {
      boost::system::error_code ignored;
      s.close(ignored);  // the client sees the server vanish
      return;
    }
    auto pipe = std::make_shared<Pipe>(std::move(s), ex_);
    pipe->drop_ab = stalled_;
    pipes_.push_back(pipe);
    tcp::endpoint up(asio::ip::address_v4::loopback(), static_cast<uint16_t>(upstream_));
    pipe->b.async_connect(up, [pipe](boost::system::error_code ec) {
      if (ec) return pipe->Close();
      pipe->Pump(pipe->a, pipe->b, pipe->ab);
      pipe->Pump(pipe->b, pipe->a, pipe->ba);
    });
  }

  asio::any_io_executor ex_;
  tcp::acceptor acceptor_;
  int upstream_;
  bool cut_ = false;
  bool stalled_ = false;
  std::vector<std::weak_ptr<Pipe>> pipes_;
};

TcpProxy::TcpProxy(int upstream_port)
    : impl_(std::make_shared<Impl>(io_.executor(), upstream_port)), port_(impl_->port()) {
  io_.RunSync([&] { impl_->Accept(); });
}

TcpProxy::~TcpProxy() {
  io_.RunSync([&] { impl_->Shutdown(); });
}

void TcpProxy::Enable() {
  io_.RunSync([&] { impl_->Enable(); });
}

void TcpProxy::Disable() {
  io_.RunSync([&] { impl_->Disable(); });
}

void TcpProxy::Stall() {
  io_.RunSync([&] { impl_->Stall(); });
}

}  // namespace rangekv::testing
