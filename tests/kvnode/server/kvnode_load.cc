// kvnode_load — closed-loop load on one kvnode, for measuring the serving
// path (run by hand; not a test):
//
//   kvnode_load --port P [--connections 50] [--seconds 5] [--op get|put|ping]
//               [--value-bytes 3] [--depth 1]
//
// One thread drives every connection, like redis-benchmark does, so the two
// can be compared side by side on the same machine. Each connection keeps
// `depth` identical requests in flight and sends the next when an answer
// arrives. Requests are encoded once up front; answers are counted by frame
// (the first answer of each connection is decoded and checked).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/frame.h"
#include "common/protocol.h"

namespace rangekv {
namespace {

using tcp = asio::ip::tcp;

struct Config {
  int port = 0;
  int connections = 50;
  int seconds = 5;
  std::string op = "get";
  size_t value_bytes = 3;
  int depth = 1;
};

class LoadConnection : public std::enable_shared_from_this<LoadConnection> {
 public:
  LoadConnection(asio::io_context& io, const std::string& request, int depth, uint64_t& done,
                 int& errors)
      : socket_(io), request_(request), depth_(depth), done_(done), errors_(errors) {}

  void Start(const tcp::endpoint& ep) {
    socket_.connect(ep);
    socket_.set_option(tcp::no_delay(true));
    std::string burst;
    for (int i = 0; i < depth_; ++i) burst += request_;
    Send(std::move(burst));
    Read();
  }

 private:
  void Send(std::string bytes) {
    auto buf = std::make_shared<std::string>(std::move(bytes));
    asio::async_write(socket_, asio::buffer(*buf),
                      [buf](const boost::system::error_code&, size_t) {});
  }
  void Read() {
    char* at = reader_.PrepareWrite(64 * 1024);
    socket_.async_read_some(
        asio::buffer(at, 64 * 1024),
        [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
          if (ec) return;
          self->reader_.Commit(n);
          self->OnData();
        });
  }
  void OnData() {
    std::string next;
    while (true) {
      auto f = reader_.Next();
      if (!f.ok() || f->empty()) break;
      if (!checked_) {
        checked_ = true;
        auto r = proto::DecodeResponse(*f);
        if (!r.ok() || r->kind == proto::Response::Kind::kError) {
          ++errors_;
          std::fprintf(stderr, "bad answer: %s\n",
                       r.ok() ? r->error.ToString().c_str() : r.status().ToString().c_str());
        }
      }
      ++done_;
      next += request_;
    }
    if (!next.empty()) Send(std::move(next));
    Read();
  }

  tcp::socket socket_;
  const std::string& request_;
  int depth_;
  uint64_t& done_;
  int& errors_;
  FrameReader reader_;
  bool checked_ = false;
};

int Run(const Config& cfg) {
  asio::io_context io(1);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(cfg.port));
  std::string value(cfg.value_bytes, 'x');
  proto::Request req;
  req.id = 1;
  req.ops.push_back(proto::WriteOp::Put("load-key", value));
  std::string preload;
  req.kind = proto::OpKind::kPut;
  proto::EncodeRequest(req, preload);
  {
    tcp::socket s(io);
    s.connect(ep);
    asio::write(s, asio::buffer(preload));
    char buf[256];
    s.read_some(asio::buffer(buf));
  }
  req.kind = cfg.op == "put"    ? proto::OpKind::kPut
             : cfg.op == "ping" ? proto::OpKind::kPing
                                : proto::OpKind::kGet;
  if (req.kind == proto::OpKind::kPing) req.ops.clear();
  std::string request;
  proto::EncodeRequest(req, request);

  uint64_t done = 0;
  int errors = 0;
  for (int i = 0; i < cfg.connections; ++i) {
    std::make_shared<LoadConnection>(io, request, cfg.depth, done, errors)->Start(ep);
  }
  auto start = std::chrono::steady_clock::now();
  io.run_for(std::chrono::seconds(cfg.seconds));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %d connections, depth %d, %zu-byte values: %.0f requests/s (%llu in %.1f s)\n",
              cfg.op.c_str(), cfg.connections, cfg.depth, cfg.value_bytes, done / secs,
              static_cast<unsigned long long>(done), secs);
  return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace rangekv

int main(int argc, char** argv) {
  rangekv::Config cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    std::string v = argv[i + 1];
    if (f == "--port")
      cfg.port = std::atoi(v.c_str());
    else if (f == "--connections")
      cfg.connections = std::atoi(v.c_str());
    else if (f == "--seconds")
      cfg.seconds = std::atoi(v.c_str());
    else if (f == "--op")
      cfg.op = v;
    else if (f == "--value-bytes")
      cfg.value_bytes = std::strtoul(v.c_str(), nullptr, 10);
    else if (f == "--depth")
      cfg.depth = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "kvnode_load: unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  if (cfg.port <= 0) {
    std::fprintf(stderr,
                 "usage: kvnode_load --port P [--connections N] [--seconds S] "
                 "[--op get|put|ping] [--value-bytes B] [--depth D]\n");
    return 2;
  }
  try {
    return rangekv::Run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvnode_load: %s\n", e.what());
    return 1;
  }
}
