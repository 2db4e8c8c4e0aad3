// client/src/router.h — request routing of a cluster client (Connect).
//
// The Router sends each request to the owner of its key's range per the
// ClusterView's current map (a stale get/scan: to a live replica, see
// client/src/replica_choice.h), over per-node connection pools, and retries
// within the request's deadline as rangekv/client.h documents for Connect:
//
//   | outcome of one attempt              | action                              |
//   |-------------------------------------|-------------------------------------|
//   | NOT_OWNER with the range's layout   | correct map (ClusterView::Learn),   |
//   |                                     | refresh it, re-route at once        |
//   | NOT_OWNER with a hint elsewhere     | refresh map, resend to hint at once |
//   | NOT_OWNER without usable hint,      | refresh map, back off, re-route     |
//   | RANGE_UNAVAILABLE, STALE_EPOCH, no  |                                     |
//   | range/owner/live owner in the map,  |                                     |
//   | connect failed                      |                                     |
//   | UNAVAILABLE after send (read)       | refresh map, back off, re-route     |
//   | UNAVAILABLE after send (write)      | return it (outcome unknown)         |
//   | the map's range failed over while   | UNAVAILABLE at once (OnMapRead), as |
//   | the attempt waited on the old owner | above                               |
//   | anything else                       | return it                           |
//
// A stale read does not back off after a failed attempt (any row above
// but "anything else", and NOT_OWNER without following its hint) while a
// live replica it has not tried since its last backoff remains: it goes to
// that replica at once. Once every live replica failed, it backs off, and
// the next round tries them all again, in order.
//
// Each attempt of a stale read at one node is bounded by
// min(remaining, max(200 ms, timeout / 4)); an attempt that runs out
// (TIMEOUT) before the request's deadline counts as a failed attempt
// above, so a node that accepts requests but never answers (paused) does
// not eat the whole deadline before another replica is tried. A late
// answer from it is dropped. Other requests get one deadline for all
// attempts (a write retried after an unknown outcome could apply twice).
//
// Backoff: 2 ms doubling to 100 ms, never past the deadline. Nodes hold
// writes through a split, merge or transfer (kvnode/server/write_parking.h)
// and refuse them only after a second; when such a fence did refuse a
// range's writes for tens of milliseconds, a client
// that backs off further than that adds its own wait to theirs (a 500 ms
// cap put 300 ms retries into kvbench's p999 across splits). When the
// deadline passes while backing off, the caller gets the last error seen
// (TIMEOUT if there was none). Writes are sent only on an established
// connection, so "connect failed" always means "not sent".
//
// Pools: one per node address, connections_per_node connections each,
// created on first use and kept until the Router is destroyed (a node that
// moved leaves an idle pool behind).
//
// Threads: every method is thread-safe; callbacks run on the client's I/O
// threads. Teardown: Shutdown() (pending requests fail with UNAVAILABLE,
// backoff timers end within 100 ms), then drain and join the I/O threads,
// then destroy the Router (its connections need the io_contexts drained).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/src/cluster_view.h"
#include "common/net/connection.h"
#include "common/asio.h"
#include "common/mutex.h"
#include "common/protocol.h"
#include "rangekv/client.h"
#include "rangekv/cluster_info.h"

namespace rangekv::client_internal {

using net::Clock;
using net::Connection;
using net::ConnectionOptions;
using net::HostPort;
using net::ParseHostPort;
using net::PendingRequest;
using net::ResponseCallback;

class Router {
 public:
  // ios: the client's io_contexts (outlive the Router).
  // tls: the client's TLS context (null: plaintext).
  Router(std::vector<asio::io_context*> ios, std::unique_ptr<ClusterView> view,
         ClientOptions options, std::shared_ptr<net::TlsContext> tls = nullptr);
  ~Router();

  // Validated request; done runs exactly once on an I/O thread.
  void Submit(proto::Request req, Clock::time_point deadline, std::chrono::milliseconds timeout,
              ResponseCallback done);
  // Multi-range scan (see client.h); done gets the merged response.
  void Scan(proto::Request req, Clock::time_point deadline, std::chrono::milliseconds timeout,
            ResponseCallback done);

  // Fails everything pending with UNAVAILABLE; further Submits fail.
  void Shutdown() EXCLUDES(mu_);

  std::vector<NodeStatus> Nodes() const;
  std::vector<RangeStatus> Ranges() const;
  Result<RangeStatus> Locate(std::string_view key) const;

  struct Call;

 private:
  struct Pool;
  void Dispatch(std::shared_ptr<Call> call);
  // A read of ZooKeeper moved ranges to new owners by a failover: the
  // requests still waiting on an old owner (stopped, or cut off, its
  // connection alive) end now, as UNAVAILABLE (a read is re-routed, a
  // write's outcome is unknown), instead of when it resumes or at their
  // deadline.
  void OnMapRead(const cluster::ClusterMap& before, const cluster::ClusterMap& after) EXCLUDES(mu_);
  void Send(std::shared_ptr<Call> call, Connection& conn);
  void OnResponse(std::shared_ptr<Call> call, Result<proto::Response>& r);
  void RetryLater(std::shared_ptr<Call> call, Status why);
  // After an attempt failed with why: a stale read goes at once to the
  // next live replica it has not tried since its last backoff (RetryLater
  // once every one was tried); anything else is RetryLater.
  void TryElsewhere(std::shared_ptr<Call> call, Status why);
  // A connection of address's pool (created on first use), preferring one
  // that is up; UNAVAILABLE when address does not parse (ParseHostPort).
  Result<Connection*> PickConnection(const std::string& address) EXCLUDES(mu_);
  asio::io_context& NextIo();

  const std::vector<asio::io_context*> ios_;
  const std::unique_ptr<ClusterView> view_;
  const ClientOptions options_;
  const std::shared_ptr<net::TlsContext> tls_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<size_t> rr_{0};
  std::atomic<bool> closed_{false};

  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<Pool>> pools_ GUARDED_BY(mu_);
};

}  // namespace rangekv::client_internal
