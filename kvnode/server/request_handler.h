// kvnode/server/request_handler.h — turns one client Request into store calls and a
// Response. I/O-free: it never touches a socket, so it is unit tested with a
// real RangeStore and no network.
//
// | request        | store call                        | response                     |
// |----------------|-----------------------------------|------------------------------|
// | ping           | none                              | kPong (now)                  |
// | get            | RangeStore::Get                   | kFound / kNotFound (now)     |
// | scan           | RangeStore::Scan                  | kEntries + more (now)        |
// | put/delete/cas | RangeStore::Write, one op         | kWritten Seq (later)         |
// | batch          | RangeStore::Write, all ops at once| kWritten Seq (later)         |
// | fetch/snapshot | Replicator (kvnode/replication/)  | kFetched / kSnapshotChunk    |
// | rangeStatus    | Replicator                        | kRangeStatus (later)         |
// | any, invalid   | none (proto::Validate)            | kError TOO_LARGE/BAD_REQUEST |
// | key not here   | none (Node routing)               | kError NOT_OWNER + OwnerHint |
// | batch, 2 ranges| none (Node routing)               | kError CROSS_RANGE           |
// | not servable   | none (Node routing)               | kError RANGE_UNAVAILABLE,    |
// |                |                                   | STALE_EPOCH                  |
//
// Routing rules (epochs, hints, "not yet joined"): kvnode/server/routing.h.
//
// "now": Handle returns the Response. "later": the write was handed to the
// store; the Response arrives through the ResponseSink's callback. Store
// errors (CAS_FAILED, IO_ERROR, ...) come back the same way, as kError.
//
// Scan: limit 0 means Limits::kDefaultScanLimit. A scan is served by the
// range holding its start key and stops at that range's end; when the range
// ends before the scan's end, `more` is set so the caller continues there.
// An end at or before the start is an empty result.
//
// Parking: a write refused for a reason that ends by itself within
// milliseconds (a split, merge or transfer fencing the range, a range
// split off or merged not built here yet; routing.h Route::wait) waits on
// the node (write_parking.h) and is routed again whenever the routing
// table or the range's fence changes, for at most WriteParking::kMaxWait;
// then it gets the refusal it waited on. Its response is "later".
//
// Metrics: with a NodeMetrics, every request is counted by op and result
// code, and its latency observed (writes: when the store's answer arrives).
//
// Thread-safety: Handle may run on many threads at once (it keeps no state
// of its own; parked writes are the Node's; Node, RangeStore and
// NodeMetrics are thread-safe). The Node and the metrics must outlive the
// handler and every write it started.
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "common/clock.h"
#include "common/protocol.h"
#include "kvnode/server/metrics.h"
#include "kvnode/server/node.h"

namespace rangekv::kvnode {

// Where the handler sends the responses it cannot give at once.
class ResponseSink {
 public:
  // Delivers one response; callable from any thread, called exactly once.
  using Reply = std::function<void(proto::Response)>;

  virtual ~ResponseSink() = default;
  // Called once per write request, on the thread running Handle, just
  // before the write goes to the store. The returned Reply runs on the
  // store's log thread, or inline (before Handle returns) for an error the
  // store reports at once, e.g. CAS_FAILED.
  virtual Reply ReplyLater() = 0;
};

class RequestHandler {
 public:
  // metrics may be null (nothing is recorded).
  explicit RequestHandler(const Node& node, NodeMetrics* metrics = nullptr)
      : node_(node), metrics_(metrics) {}

  // Handles one decoded request (validated here). Returns the response when
  // it is known now; returns nullopt after starting a write, whose response
  // goes to sink.ReplyLater()'s callback.
  std::optional<proto::Response> Handle(proto::Request&& req, ResponseSink& sink) const;

 private:
  proto::Response Get(const proto::Request& req) const;
  proto::Response Scan(const proto::Request& req) const;
  std::optional<proto::Response> Write(proto::Request&& req, ResponseSink& sink) const;
  // Write, routed; a refusal that ends soon (Route::wait) parks the write
  // on the node until deadline (set: a parked write routed again).
  struct Parked;
  std::optional<proto::Response> RouteWrite(proto::Request&& req, ResponseSink& sink,
                                            std::optional<MonoClock::time_point> deadline) const;
  // Routes a parked write again.
  void Resume(const std::shared_ptr<Parked>& parked) const;
  // Answers the refusal a parked write waited on.
  static void Refuse(Parked& parked);
  // fetch / snapshot / rangeStatus: answered by the node's Replicator.
  std::optional<proto::Response> Replication(proto::Request&& req, ResponseSink& sink) const;
  std::optional<proto::Response> Dispatch(proto::Request&& req, ResponseSink& sink) const;

  const Node& node_;
  NodeMetrics* const metrics_;
};

}  // namespace rangekv::kvnode
