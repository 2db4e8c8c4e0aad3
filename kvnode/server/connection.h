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
// TLS (common/net/tls.h): the first byte a client sends tells a TLS
// handshake from a plaintext frame. On a TLS node a TLS client must finish
// a mutually authenticated handshake before anything is read; a failed
// one is refused (WARN log with the peer and OpenSSL's reason, counted in
// rangekv_kvnode_connections_refused_total, connection closed). A
// plaintext client there gets one UNAUTHENTICATED answer to its first request, saying that the
// node requires TLS, and the connection closes. On a plaintext node a TLS
// client is refused the same way (its handshake cannot be answered). On a
// TLS node the first byte and the handshake must come within
// kTlsHandshakeTimeout, or the connection is refused: a peer that opens
// connections and says nothing cannot hold the node's sockets.
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
//
// Fetch connections move (Server::ServeFetchesOn): a connection that opens
// with the fetch-stream mark (common/net/tls.h: another node's replication
// connection, carrying its fetches and snapshot reads) is handed, socket
// only, to the fetch home's io_context, the replication thread that
// answers fetches, before its TLS handshake or first frame is read; it is
// served there from then on, TLS included. The fetch, its parked answer
// and the follower's next fetch then never hop between an I/O thread and
// that thread; each hop is a wake-up, and a put acknowledged by every
// in-sync replica waits on several of them. Without a fetch home the mark
// is read and the connection served where it is.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "common/asio.h"
#include "common/frame.h"
#include "common/metrics/metrics.h"
#include "common/mutex.h"
#include "common/net/stream.h"
#include "kvnode/server/request_handler.h"

namespace rangekv::kvnode {

class ConnectionManager;

// Where fetch connections move (see "Fetch connections move" above): an
// io_context run by one thread, and the manager of the connections there.
// Closing the home (Server::CloseFetches) and every move are ordered by mu:
// a move either posts its connection before the close posts its CloseAll
// (which then closes it there) or finds the home closed and stays.
struct FetchHome {
  FetchHome(asio::io_context& c, ConnectionManager& m) : ctx(c), manager(m) {}
  asio::io_context& ctx;
  ConnectionManager& manager;  // touched only on ctx's thread
  Mutex mu;
  bool open GUARDED_BY(mu) = true;
};

// What the connections of one server share about TLS.
struct ConnectionSecurity {
  ConnectionSecurity(std::shared_ptr<net::TlsContext> t, metrics::Counter m)
      : tls(std::move(t)), refused_metric(m) {}
  void CountRefusal() const { refused_metric.Inc(); }
  const std::shared_ptr<net::TlsContext> tls;  // null: plaintext
  const metrics::Counter refused_metric;       // rangekv_kvnode_connections_refused_total
};

class Connection : public std::enable_shared_from_this<Connection>, private ResponseSink {
 public:
  static constexpr size_t kReadChunk = 16 * 1024;
  static constexpr size_t kMaxPendingWrites = 4096;
  static constexpr size_t kMaxBufferedOutput = 8u << 20;

  // handler and manager must outlive the connection's use of its thread.
  // fetch_home: where the connection moves if it opens with the
  // fetch-stream mark (null: it stays); it must outlive the connection's
  // use of its thread.
  Connection(asio::ip::tcp::socket socket, const RequestHandler& handler,
             ConnectionManager& manager, size_t max_frame,
             std::shared_ptr<ConnectionSecurity> security, FetchHome* fetch_home = nullptr);
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

  void PeekFirstByte();
  // Looks at the first byte the client sent (tls.h) and starts the
  // handshake, the read loop, or the refusal; or takes the fetch-stream
  // mark off and moves to the fetch home (or peeks again).
  void OnFirstByte(const boost::system::error_code& ec);
  void Refuse(const std::string& why);
  // On a TLS node: refuses the connection unless its handshake is done by then.
  void StartHandshakeDeadline();

  void DoRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // Handles every whole frame buffered; false after a protocol error
  // (the connection is then closed).
  bool HandleFrames();
  // Hands the socket to a new connection on the fetch home and returns
  // true: this one is done (the count moves with the socket; on a failure
  // it is closed). False when the home is closed.
  bool MoveHome();
  void Append(const proto::Response& resp);
  void Flush();
  void OnWritten(const boost::system::error_code& ec);
  void OnReplyLater(proto::Response resp);
  // Re-arms the read loop after back-pressure eased.
  void MaybeResumeReading();
  void MaybeFinishDrain();
  bool Overloaded() const;

  Reply ReplyLater() override;

  net::Stream stream_;
  const asio::any_io_executor executor_;
  const std::shared_ptr<ConnectionSecurity> security_;
  unsigned char first_byte_ = 0;
  asio::steady_timer handshake_deadline_;
  bool authenticated_ = false;  // plaintext node, or the TLS handshake succeeded
  // A plaintext client on a TLS node: its first request is answered with
  // the refusal, then the connection closes.
  bool refuse_plaintext_ = false;  // the owning thread's; safe to copy from anywhere
  const RequestHandler& handler_;
  ConnectionManager& manager_;
  FetchHome* const fetch_home_;  // null once moved, or when none
  bool marked_ = false;  // the fetch-stream mark was read
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
