// kvnode/server/connection.h — one client TCP connection of a kvnode.
//
// Read loop: bytes -> FrameReader (common/frame.h) -> proto::DecodeRequest ->
// RequestHandler. Requests are pipelined: the next request is read and
// handled without waiting for earlier answers, and responses go out in the
// order they complete, each echoing its request id.
//
// Writes are coalesced: responses are encoded into `out_`; one async_write
// at a time sends everything gathered so far (a whole read's worth of gets
// leaves in one write).
//
// Errors:
//   - a frame over the size limit, a bad frame length, or a message that
//     does not decode: WARN log with the peer and reason, close this
//     connection only;
//   - a request that fails validation: an error Response; the connection
//     stays open (the handler does this).
//
// Back-pressure: while kMaxPendingWrites writes are with the store, or
// kMaxBufferedOutput bytes wait to be sent, the connection stops reading; it
// resumes once below. The bound is soft (the frames of the last read are all
// handled), but a client that pipelines without reading its answers cannot
// grow the node's memory without bound.
//
// States:
//
//   kOpen --Drain() or peer EOF--> kDraining --no writes pending, all sent--> kClosed
//     |                                                                        ^
//     +--------- protocol error, socket error, Close() ------------------------+
//
// kDraining reads nothing more but answers the writes already started, so a
// shutdown finishes in-flight writes and a half-closed client gets its
// answers.
//
// Threading: a connection belongs to one io_context run by one thread; every
// method runs on that thread. Store completions (on the store's log thread)
// are posted back to it. Lifetime: shared_ptr; the manager and pending
// handlers (reads, writes, store completions) hold references, so a
// connection closed while writes are pending lives until their answers
// arrive and are dropped.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/frame.h"
#include "kvnode/server/request_handler.h"

namespace rangekv::kvnode {

class ConnectionManager;

class Connection : public std::enable_shared_from_this<Connection>, private ResponseSink {
 public:
  static constexpr size_t kReadChunk = 16 * 1024;
  static constexpr size_t kMaxPendingWrites = 4096;
  static constexpr size_t kMaxBufferedOutput = 8u << 20;

  // handler and manager must outlive the connection's use of its thread.
  Connection(asio::ip::tcp::socket socket, const RequestHandler& handler,
             ConnectionManager& manager, size_t max_frame);
  ~Connection() override;

  // Starts the read loop. Call once, after the manager added it.
  void Start();
  // Stops reading; closes once pending writes are answered and sent.
  void Drain();
  // Closes now; answers of pending writes are dropped when they arrive.
  void Close();

  const std::string& peer() const { return peer_; }

 private:
  enum class State { kOpen, kDraining, kClosed };

  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // Handles every whole frame buffered; false after a protocol error
  // (the connection is then closed).
  bool HandleFrames();
  void Append(const proto::Response& resp);
  void Flush();
  void OnWritten(const boost::system::error_code& ec);
  void OnReplyLater(proto::Response resp);
  // Re-arms the read loop after back-pressure eased.
  void MaybeResumeReading();
  void MaybeFinishDrain();
  bool Overloaded() const;

  Reply ReplyLater() override;

  asio::ip::tcp::socket socket_;
  const asio::any_io_executor executor_;  // the owning thread's; safe to copy from anywhere
  const RequestHandler& handler_;
  ConnectionManager& manager_;
  std::string peer_;
  State state_ = State::kOpen;
  FrameReader reader_;
  bool reading_ = false;  // an async_read_some is outstanding
  std::string out_;       // encoded responses not yet handed to the socket
  std::string sending_;   // the buffer of the async_write in flight
  bool writing_ = false;
  size_t pending_writes_ = 0;  // writes with the store, answers not yet back
};

}  // namespace rangekv::kvnode
