// kvnode/server/server.h — the kvnode's TCP server: acceptor and I/O threads.
//
// Threading (io_context per thread):
//
//   thread 0: io_context 0  <- acceptor; hands each socket round-robin to
//   thread k: io_context k  <- its connections (ConnectionManager k)
//
// A connection lives on one io_context run by one thread, so its state needs
// no strand and no lock. Reads (get/scan) are answered inline on that
// thread; writes go to the range's log thread, whose completions are posted
// back. Replication will follow the same shape: a range's replication state
// gets its own strand, and peers' acks are posted to it like store
// completions are posted to connections here.
//
// Lifecycle:
//
//   Bind --> bound --Start()--> serving --Stop()--> drained --(node closed)--> ~Server
//
// Stop(): closes the acceptor, drains every connection (no new requests;
// writes already started are answered and sent), waits up to the drain
// timeout, then closes what is left and joins the threads. The io_contexts
// live until ~Server, so a store completion that arrives after Stop() is
// queued and dropped, never run against freed memory: close the Node (which
// joins the store threads) after Stop() and before ~Server.
//
// Thread-safety: Bind/Start/Stop/~Server from one controlling thread (main).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/frame.h"
#include "common/net/tls.h"
#include "kvnode/server/node_options.h"
#include "kvnode/server/request_handler.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

class ConnectionCount;
class ConnectionManager;
struct ConnectionSecurity;
struct FetchHome;

struct ServerOptions {
  HostPort listen;     // port 0: any free port
  int io_threads = 0;  // 0: std::thread::hardware_concurrency()
  size_t max_frame = kDefaultMaxFrame;
  // TLS (server role, common/net/tls.h): every connection must complete a
  // mutually authenticated handshake before a request is read. Null:
  // plaintext.
  std::shared_ptr<net::TlsContext> tls;
  metrics::Counter refused;  // counts every refusal too
};

class Server {
 public:
  // Resolves and binds opts.listen (a blocking DNS lookup: call before
  // serving). UNAVAILABLE with a one-line message for an unresolvable host
  // or an address that cannot be bound (e.g. already in use). Binding comes
  // first so a bad address fails fast, before stores are recovered;
  // connections arriving before Start() wait in the kernel's backlog.
  static Result<std::unique_ptr<Server>> Bind(const ServerOptions& opts);

  // Starts the I/O threads and accepting. Call once. handler must outlive
  // the Server. INTERNAL when a thread cannot be created.
  Status Start(const RequestHandler& handler);

  // Before Start: connections that open with the fetch-stream mark move
  // to ctx (connection.h, "Fetch connections move"), the replication
  // thread's io_context, run by one thread.
  void ServeFetchesOn(asio::io_context& ctx);
  // Closes the connections moved there and moves no more; returns once
  // ctx's thread closed them (or after a few seconds, if it is stuck).
  // Call while that thread runs: before the Node's Close, which ends it.
  // Stop() calls it first. Idempotent.
  void CloseFetches();

  ~Server();  // Stop() if not yet stopped
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound address, with the real port when 0 was asked for.
  asio::ip::tcp::endpoint local_endpoint() const { return local_; }
  // local_endpoint() as "HOST:PORT" ("[::1]:7000" for IPv6).
  std::string local_address() const;
  int io_threads() const { return static_cast<int>(workers_.size()); }

  // See the lifecycle above. Idempotent.
  void Stop(std::chrono::milliseconds drain_timeout = std::chrono::seconds(10));

 private:
  struct Worker;
  Server(const ServerOptions& opts, int threads);
  Status Listen(const HostPort& listen);
  bool TryListen(const asio::ip::tcp::endpoint& ep, boost::system::error_code& ec);
  void Accept();
  // Gives an accepted socket to its thread's ConnectionManager.
  void HandOff(Worker& w, asio::ip::tcp::socket socket);
  // Queues the next accept, or retries later after an error.
  void OnAccept(const boost::system::error_code& ec);

  const RequestHandler* handler_ = nullptr;  // set by Start
  const size_t max_frame_;
  const std::shared_ptr<ConnectionSecurity> security_;
  // Declaration order matters: the count outlives the managers that use it,
  // and the acceptor and timer go before the io_context they belong to.
  std::unique_ptr<ConnectionCount> count_;
  std::vector<std::unique_ptr<Worker>> workers_;
  // ServeFetchesOn's io_context and the manager of the connections moved
  // there; null when not asked.
  std::unique_ptr<ConnectionManager> home_manager_;
  std::unique_ptr<FetchHome> fetch_home_;
  asio::ip::tcp::acceptor acceptor_;                  // on workers_[0]
  std::unique_ptr<asio::steady_timer> accept_retry_;  // backs off after e.g. EMFILE
  asio::ip::tcp::endpoint local_;
  size_t next_worker_ = 0;  // round-robin; touched only by workers_[0]'s thread
  bool stopped_ = false;
};

}  // namespace rangekv::kvnode
