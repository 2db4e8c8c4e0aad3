#include "tests/coordinator/stall_proxy.h"

#include <array>
#include <functional>
#include <vector>

namespace rangekv::testing {

using asio::ip::tcp;

namespace {

// Shared by the proxy and its pipes (a pipe's handler may run after the
// proxy let go of it).
struct StallState {
  bool stalled = false;
  std::vector<std::function<void()>> parked;  // forwards held back by a stall
};

// One direction of one connection: reads from `from`, writes to `to`.
struct Pipe : std::enable_shared_from_this<Pipe> {
  Pipe(std::shared_ptr<tcp::socket> f, std::shared_ptr<tcp::socket> t,
       std::shared_ptr<StallState> st)
      : from(std::move(f)), to(std::move(t)), state(std::move(st)) {}

  void Read() {
    from->async_read_some(asio::buffer(buf),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            if (ec) return self->Close();
                            self->Forward(n);
                          });
  }
  void Forward(size_t n) {
    if (state->stalled) {
      state->parked.push_back([self = shared_from_this(), n] { self->Forward(n); });
      return;
    }
    asio::async_write(*to, asio::buffer(buf, n),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        if (ec) return self->Close();
                        self->Read();
                      });
  }
  void Close() {
    boost::system::error_code ignored;
    from->close(ignored);
    to->close(ignored);
  }

  std::shared_ptr<tcp::socket> from, to;
  std::shared_ptr<StallState> state;
  std::array<char, 16384> buf;
};

}  // namespace

class StallProxy::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor ex, int upstream)
      : ex_(ex),
        acceptor_(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        upstream_(upstream) {}

  int port() const { return acceptor_.local_endpoint().port(); }

  void Accept() {
    acceptor_.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
          if (ec) return;  // closed: the proxy is going away
          self->Serve(std::move(s));
          self->Accept();
        });
  }

  void Serve(tcp::socket client) {
    auto down = std::make_shared<tcp::socket>(std::move(client));
    auto up = std::make_shared<tcp::socket>(ex_);
    boost::system::error_code ec;
    // Loopback: a blocking connect on the proxy's own thread is instant.
    up->connect(tcp::endpoint(asio::ip::address_v4::loopback(), upstream_), ec);
    if (ec) return down->close(ec);
    sockets_.push_back(down);
    sockets_.push_back(up);
    std::make_shared<Pipe>(down, up, state_)->Read();
    std::make_shared<Pipe>(up, down, state_)->Read();
  }

  void Stall() { state_->stalled = true; }
  void Resume() {
    state_->stalled = false;
    std::vector<std::function<void()>> parked = std::move(state_->parked);
    state_->parked.clear();
    for (auto& f : parked) f();
  }
  void Shutdown() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& w : sockets_) {
      if (auto s = w.lock()) s->close(ignored);
    }
    state_->parked.clear();
  }
  size_t parked() const { return state_->parked.size(); }

 private:
  asio::any_io_executor ex_;
  tcp::acceptor acceptor_;
  int upstream_;
  std::shared_ptr<StallState> state_ = std::make_shared<StallState>();
  std::vector<std::weak_ptr<tcp::socket>> sockets_;
};

StallProxy::StallProxy(int upstream_port) {
  io_.RunSync([&] {
    impl_ = std::make_shared<Impl>(io_.executor(), upstream_port);
    port_ = impl_->port();
    impl_->Accept();
  });
}

StallProxy::~StallProxy() {
  io_.RunSync([&] { impl_->Shutdown(); });
}

void StallProxy::Stall() {
  io_.RunSync([&] { impl_->Stall(); });
}

void StallProxy::Resume() {
  io_.RunSync([&] { impl_->Resume(); });
}

size_t StallProxy::parked() {
  size_t n = 0;
  io_.RunSync([&] { n = impl_->parked(); });
  return n;
}

}  // namespace rangekv::testing
