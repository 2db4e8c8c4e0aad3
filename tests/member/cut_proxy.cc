#include "tests/member/cut_proxy.h"

#include <array>
#include <vector>

namespace rangekv::testing {
namespace {

using asio::ip::tcp;

// Two sockets pumped into each other; Close ends both directions.
struct Link : std::enable_shared_from_this<Link> {
  Link(tcp::socket client, asio::any_io_executor ex) : down(std::move(client)), up(ex) {}
  tcp::socket down, up;
  std::array<char, 16384> down_buf{}, up_buf{};

  void Close() {
    boost::system::error_code ignored;
    down.close(ignored);
    up.close(ignored);
  }
  void Pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf) {
    from.async_read_some(asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](
                                                boost::system::error_code ec, size_t n) {
      if (ec) return self->Close();
      asio::async_write(to, asio::buffer(buf.data(), n),
                        [self, &from, &to, &buf](boost::system::error_code ec2, size_t) {
                          if (ec2) return self->Close();
                          self->Pump(from, to, buf);
                        });
    });
  }
};

}  // namespace

class CutProxy::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor ex, int upstream)
      : ex_(ex),
        acceptor_(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        upstream_(upstream) {}

  int port() const { return acceptor_.local_endpoint().port(); }

  void Accept() {
    acceptor_.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
          if (ec) return;  // the acceptor closed: the proxy is going away
          self->Serve(std::move(s));
          self->Accept();
        });
  }

  void Cut() {
    cut_ = true;
    for (auto& weak : links_) {
      if (auto l = weak.lock()) l->Close();
    }
    links_.clear();
  }
  void Heal() { cut_ = false; }
  void Shutdown() {
    Cut();
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

 private:
  void Serve(tcp::socket s) {
    if (cut_) {
      boost::system::error_code ignored;
      s.close(ignored);
      return;
    }
    auto link = std::make_shared<Link>(std::move(s), ex_);
    links_.push_back(link);
    tcp::endpoint up(asio::ip::address_v4::loopback(), static_cast<uint16_t>(upstream_));
    link->up.async_connect(up, [link](boost::system::error_code ec) {
      if (ec) return link->Close();
      link->Pump(link->down, link->up, link->down_buf);
      link->Pump(link->up, link->down, link->up_buf);
    });
  }

  asio::any_io_executor ex_;
  tcp::acceptor acceptor_;
  int upstream_;
  bool cut_ = false;
  std::vector<std::weak_ptr<Link>> links_;
};

CutProxy::CutProxy(int upstream_port)
    : impl_(std::make_shared<Impl>(io_.executor(), upstream_port)), port_(impl_->port()) {
  io_.RunSync([&] { impl_->Accept(); });
}

CutProxy::~CutProxy() {
  io_.RunSync([&] { impl_->Shutdown(); });
}

void CutProxy::Cut() {
  io_.RunSync([&] { impl_->Cut(); });
}

void CutProxy::Heal() {
  io_.RunSync([&] { impl_->Heal(); });
}

}  // namespace rangekv::testing
