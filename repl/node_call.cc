#include "repl/node_call.h"

#include <charconv>
#include <optional>
#include <utility>

#include "common/asio.h"
#include "common/frame.h"

namespace rangekv::repl {
namespace {

using asio::ip::tcp;
using boost::system::error_code;

constexpr size_t kReadChunk = 64 * 1024;

struct Target {
  std::string host;  // without brackets
  std::string port;
};

Result<Target> ParseTarget(const std::string& address) {
  auto bad = [&] { return Status(Code::kBadRequest, "bad node address '" + address + "'"); };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad();
  Target t{address.substr(0, colon), address.substr(colon + 1)};
  if (t.host.front() == '[') {
    if (t.host.size() < 3 || t.host.back() != ']') return bad();
    t.host = t.host.substr(1, t.host.size() - 2);
  } else if (t.host.find(':') != std::string::npos) {
    return bad();  // an IPv6 address needs brackets
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(t.port.data(), t.port.data() + t.port.size(), port);
  if (ec != std::errc() || end != t.port.data() + t.port.size() || port == 0 || port > 65535) {
    return bad();
  }
  return t;
}

Status Unreachable(const std::string& address, const error_code& ec) {
  return Status(Code::kUnavailable, "cannot reach " + address + ": " + ec.message());
}

// The whole exchange; its result goes to out (a coroutine result would
// need Result to be default-constructible).
asio::awaitable<void> Exchange(tcp::resolver& resolver, tcp::socket& socket,
                               const std::string& address, const Target& target,
                               std::string frame, uint64_t id,
                               std::optional<Result<proto::Response>>& out) {
  error_code ec;
  auto endpoints = co_await resolver.async_resolve(
      target.host, target.port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out = Unreachable(address, ec);
    co_return;
  }
  co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) {
    co_await asio::async_write(socket, asio::buffer(frame),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec) {
    out = Unreachable(address, ec);
    co_return;
  }
  FrameReader reader;
  while (true) {
    Result<std::string_view> next = reader.Next();
    if (!next.ok()) {
      out = next.status().WithContext("response from " + address);
      co_return;
    }
    if (!next->empty()) {
      Result<proto::Response> resp = proto::DecodeResponse(*next);
      // Only this call's request is in flight, but a node is free to
      // interleave anything else it sends; keep reading until ours.
      if (!resp.ok() || resp->id == id) {
        out = std::move(resp);
        co_return;
      }
      continue;
    }
    char* buf = reader.PrepareWrite(kReadChunk);
    size_t n = co_await socket.async_read_some(asio::buffer(buf, kReadChunk),
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      out = Status(Code::kUnavailable, address + " closed the connection before answering: " +
                                           ec.message());
      co_return;
    }
    reader.Commit(n);
  }
}

}  // namespace

Result<proto::Response> CallNode(const std::string& address, const proto::Request& req,
                                 std::chrono::milliseconds timeout) {
  RANGEKV_ASSIGN_OR_RETURN(Target target, ParseTarget(address));
  std::string frame;
  proto::EncodeRequest(req, frame);

  asio::io_context io;
  tcp::resolver resolver(io);
  tcp::socket socket(io);
  std::optional<Result<proto::Response>> out;
  asio::co_spawn(io, Exchange(resolver, socket, address, target, std::move(frame), req.id, out),
                 [&out](std::exception_ptr e) {
                   if (e && !out) out = Status(Code::kInternal, "node call failed unexpectedly");
                 });
  io.run_for(timeout);
  if (out) return std::move(*out);
  // Deadline: abort whatever step is pending and let the coroutine finish
  // (it only sees operation_aborted now) before its state goes away.
  resolver.cancel();
  error_code ignored;
  socket.close(ignored);
  io.restart();
  io.run();
  return Status(Code::kTimeout, address + " did not answer within " +
                                    std::to_string(timeout.count()) + " ms");
}

}  // namespace rangekv::repl
