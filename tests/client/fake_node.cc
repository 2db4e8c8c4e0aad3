#include "tests/client/fake_node.h"

#include <algorithm>

namespace rangekv::testing {

using boost::system::error_code;
using tcp = asio::ip::tcp;

struct FakeNode::Session {
  explicit Session(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  FrameReader reader;
  std::string out;
  std::string writing_buf;
  bool writing = false;
};

FakeNode::FakeNode() : acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
  port_ = acceptor_.local_endpoint().port();
  Accept();
  thread_ = std::thread([this] { io_.run(); });
}

FakeNode::~FakeNode() {
  io_.stop();
  thread_.join();
}

void FakeNode::ReleaseHeld() {
  asio::post(io_, [this] {
    auto held = std::move(held_);
    held_.clear();
    for (auto& [weak, req] : held) {
      if (auto s = weak.lock()) Send(s, Handle(req));
    }
  });
}

void FakeNode::Accept() {
  acceptor_.async_accept([this](const error_code& ec, tcp::socket socket) {
    if (ec) return;
    ++accepted_;
    Read(std::make_shared<Session>(std::move(socket)));
    Accept();
  });
}

void FakeNode::Read(std::shared_ptr<Session> s) {
  char* buf = s->reader.PrepareWrite(4096);
  s->socket.async_read_some(asio::buffer(buf, 4096), [this, s](const error_code& ec, size_t n) {
    if (ec) return;
    s->reader.Commit(n);
    std::vector<proto::Request> reqs;
    for (;;) {
      auto f = s->reader.Next();
      if (!f.ok() || f->empty()) break;
      auto req = proto::DecodeRequest(*f);
      if (req.ok()) reqs.push_back(std::move(req).value());
    }
    // Answer the requests of one read last-first: responses out of order.
    std::reverse(reqs.begin(), reqs.end());
    for (auto& req : reqs) {
      ++requests_;
      if (req.consistency == proto::Consistency::kStale) ++stale_requests_;
      switch (mode_.load()) {
        case Mode::kServe: Send(s, Handle(req)); break;
        case Mode::kHold: held_.emplace_back(s, req); break;
        case Mode::kRefuse: {
          proto::Response refused =
              proto::Response::Error(req.id, Status(Code::kNotOwner, "fake node refuses"));
          refused.hint = RefusalHint();
          Send(s, refused);
          break;
        }
        case Mode::kCloseOnRequest: {
          mode_ = Mode::kServe;
          error_code ignored;
          s->socket.close(ignored);
          return;
        }
      }
    }
    Read(s);
  });
}

void FakeNode::Send(const std::shared_ptr<Session>& s, const proto::Response& resp) {
  proto::EncodeResponse(resp, s->out);
  ++responses_sent_;
  if (!s->writing) Write(s);
}

void FakeNode::Write(std::shared_ptr<Session> s) {
  if (s->out.empty()) {
    s->writing = false;
    return;
  }
  s->writing = true;
  s->writing_buf.clear();
  s->writing_buf.swap(s->out);
  asio::async_write(s->socket, asio::buffer(s->writing_buf),
                    [this, s](const error_code& ec, size_t) {
                      if (ec) return;
                      Write(s);
                    });
}

proto::Response FakeNode::Handle(const proto::Request& req) {
  proto::Response r;
  r.id = req.id;
  auto written = [&] {
    r.kind = proto::Response::Kind::kWritten;
    r.written_version = seq_;
  };
  switch (req.kind) {
    case proto::OpKind::kPing: r.kind = proto::Response::Kind::kPong; break;
    case proto::OpKind::kGet: {
      auto it = data_.find(req.ops[0].key);
      if (it == data_.end()) {
        r.kind = proto::Response::Kind::kNotFound;
      } else {
        r.kind = proto::Response::Kind::kFound;
        r.found = it->second;
      }
      break;
    }
    case proto::OpKind::kCas: {
      const auto& op = req.ops[0];
      auto it = data_.find(op.key);
      uint64_t have = it == data_.end() ? 0 : it->second.version;
      if (have != op.expected_version) {
        return proto::Response::Error(req.id, Status(Code::kCasFailed, "version is " +
                                                                           std::to_string(have)));
      }
      data_[op.key] = proto::Entry{op.key, op.value, ++seq_};
      written();
      break;
    }
    case proto::OpKind::kPut: case proto::OpKind::kDelete: case proto::OpKind::kBatch:
      ++seq_;
      for (const auto& op : req.ops) {
        if (op.kind == proto::WriteOp::Kind::kDelete) {
          data_.erase(op.key);
        } else {
          data_[op.key] = proto::Entry{op.key, op.value, seq_};
        }
      }
      written();
      break;
    case proto::OpKind::kScan: {
      r.kind = proto::Response::Kind::kEntries;
      uint32_t limit = req.scan_limit == 0 ? proto::Limits::kDefaultScanLimit : req.scan_limit;
      for (auto it = data_.lower_bound(req.scan_start); it != data_.end(); ++it) {
        if (req.scan_end && it->first >= *req.scan_end) break;
        if (r.entries.size() == limit) {
          r.more = true;
          break;
        }
        r.entries.push_back(it->second);
      }
      break;
    }
    case proto::OpKind::kFetch: case proto::OpKind::kSnapshot: case proto::OpKind::kRangeStatus:
    case proto::OpKind::kTransfer:
    case proto::OpKind::kSplit:
    case proto::OpKind::kMerge:
      return proto::Response::Error(req.id, Status(Code::kBadRequest, "not a client request"));
  }
  return r;
}

}  // namespace rangekv::testing
