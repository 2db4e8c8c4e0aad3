#include "kvnode/server/request_handler.h"

#include <chrono>
#include <utility>

namespace rangekv::kvnode {
namespace {

using Clock = std::chrono::steady_clock;

proto::Response MakeResponse(uint64_t id, proto::Response::Kind kind) {
  proto::Response r;
  r.id = id;
  r.kind = kind;
  return r;
}

// The error response for a failed route, with the owner hint if any.
proto::Response RouteError(uint64_t id, Route&& route) {
  proto::Response r = proto::Response::Error(id, std::move(route.error));
  r.hint = std::move(route.hint);
  return r;
}

Access ReadAccess(const proto::Request& req) {
  return req.consistency == proto::Consistency::kStale ? Access::kStaleRead : Access::kRead;
}

Code ResultCode(const proto::Response& r) {
  return r.kind == proto::Response::Kind::kError ? r.error.code() : Code::kOk;
}

// Interposes on ReplyLater so a write's latency is observed when the store
// answers, not when it was queued.
class TimedSink final : public ResponseSink {
 public:
  TimedSink(ResponseSink& inner, NodeMetrics& metrics, proto::OpKind op, Clock::time_point start)
      : inner_(inner), metrics_(metrics), op_(op), start_(start) {}
  Reply ReplyLater() override {
    return [reply = inner_.ReplyLater(), m = &metrics_, op = op_,
            start = start_](proto::Response resp) {
      m->RecordRequest(op, ResultCode(resp), Clock::now() - start);
      reply(std::move(resp));
    };
  }

 private:
  ResponseSink& inner_;
  NodeMetrics& metrics_;
  const proto::OpKind op_;
  const Clock::time_point start_;
};

}  // namespace

std::optional<proto::Response> RequestHandler::Handle(proto::Request&& req,
                                                      ResponseSink& sink) const {
  if (metrics_ == nullptr) return Dispatch(std::move(req), sink);
  Clock::time_point start = Clock::now();
  proto::OpKind op = req.kind;
  TimedSink timed(sink, *metrics_, op, start);
  std::optional<proto::Response> resp = Dispatch(std::move(req), timed);
  if (resp) metrics_->RecordRequest(op, ResultCode(*resp), Clock::now() - start);
  return resp;
}

std::optional<proto::Response> RequestHandler::Dispatch(proto::Request&& req,
                                                        ResponseSink& sink) const {
  if (Status st = proto::Validate(req); !st.ok()) {
    return proto::Response::Error(req.id, std::move(st));
  }
  switch (req.kind) {
    case proto::OpKind::kPing:
      return MakeResponse(req.id, proto::Response::Kind::kPong);
    case proto::OpKind::kGet:
      return Get(req);
    case proto::OpKind::kScan:
      return Scan(req);
    case proto::OpKind::kPut:
    case proto::OpKind::kDelete:
    case proto::OpKind::kCas:
    case proto::OpKind::kBatch:
      return Write(std::move(req), sink);
    case proto::OpKind::kFetch:
    case proto::OpKind::kSnapshot:
    case proto::OpKind::kRangeStatus:
    case proto::OpKind::kTransfer:
    case proto::OpKind::kSplit:
    case proto::OpKind::kMerge:
      return Replication(std::move(req), sink);
  }
  return proto::Response::Error(req.id, Status(Code::kBadRequest, "unknown request kind"));
}

proto::Response RequestHandler::Get(const proto::Request& req) const {
  const std::string& key = req.ops.front().key;  // Validate checked the arity
  Route route = node_.RouteKey(req.range, req.epoch, key, ReadAccess(req));
  if (!route.ok()) return RouteError(req.id, std::move(route));
  Result<std::optional<proto::Entry>> e = route.store->GetInBounds(key);
  if (!e.ok()) return proto::Response::Error(req.id, e.status());
  if (!*e) return MakeResponse(req.id, proto::Response::Kind::kNotFound);
  proto::Response r = MakeResponse(req.id, proto::Response::Kind::kFound);
  r.found = std::move(**e);
  return r;
}

proto::Response RequestHandler::Scan(const proto::Request& req) const {
  Route route = node_.RouteKey(req.range, req.epoch, req.scan_start, ReadAccess(req));
  if (!route.ok()) return RouteError(req.id, std::move(route));
  proto::Response r = MakeResponse(req.id, proto::Response::Kind::kEntries);
  uint32_t limit = req.scan_limit == 0 ? proto::Limits::kDefaultScanLimit : req.scan_limit;
  auto entries = route.store->ScanInBounds(req.scan_start, req.scan_end, limit, &r.more);
  if (!entries.ok()) return proto::Response::Error(req.id, entries.status());
  r.entries = std::move(*entries);
  return r;
}

// A write waiting on the node (write_parking.h), with what refused it.
struct RequestHandler::Parked {
  proto::Request req;
  Route refusal;
  ResponseSink::Reply reply;
  MonoClock::time_point deadline;
};

namespace {

// Hands a parked write's reply to the retry: the connection counted one
// reply when the write first parked, and gets exactly that one.
class ParkedSink final : public ResponseSink {
 public:
  explicit ParkedSink(Reply reply) : reply_(std::move(reply)) {}
  Reply ReplyLater() override { return std::move(reply_); }
  // The answer the retry gave at once (its reply was not taken).
  void Answer(proto::Response resp) {
    if (reply_) reply_(std::move(resp));
  }

 private:
  Reply reply_;
};

size_t RequestBytes(const proto::Request& req) {
  size_t n = sizeof req;
  for (const proto::WriteOp& op : req.ops) n += op.key.size() + op.value.size() + sizeof op;
  return n;
}

}  // namespace

std::optional<proto::Response> RequestHandler::Write(proto::Request&& req,
                                                     ResponseSink& sink) const {
  return RouteWrite(std::move(req), sink, std::nullopt);
}

std::optional<proto::Response> RequestHandler::RouteWrite(
    proto::Request&& req, ResponseSink& sink, std::optional<MonoClock::time_point> deadline) const {
  WriteParking* parking = node_.parking();
  const uint64_t wakes = parking != nullptr ? parking->wakes() : 0;
  Route route = req.kind == proto::OpKind::kBatch
                    ? node_.RouteBatch(req.range, req.epoch, req.ops)
                    : node_.RouteKey(req.range, req.epoch, req.ops.front().key);
  if (!route.ok()) {
    if (!route.wait || parking == nullptr) return RouteError(req.id, std::move(route));
    auto parked = std::make_shared<Parked>(
        Parked{std::move(req), std::move(route), sink.ReplyLater(),
               deadline.value_or(MonoClock::now() + WriteParking::kMaxWait)});
    const size_t bytes = RequestBytes(parked->req);
    if (parked->deadline <= MonoClock::now() ||
        !parking->Park(wakes, parked->deadline, bytes, [this, parked](bool expired) {
          // Expired at the node's Close, maybe after this handler is
          // gone: touches only the write.
          if (expired) return Refuse(*parked);
          Resume(parked);
        })) {
      Refuse(*parked);
    }
    return std::nullopt;
  }
  route.store->Write(std::move(req.ops), [id = req.id, reply = sink.ReplyLater(),
                                          slot = std::move(route.slot)](Result<Seq> seq) {
    if (!seq.ok()) {
      // A failed cas is a read of the key's version: answer it only under
      // the same lease as a linearizable get (an owner that was replaced
      // without knowing it yet must not report a version it may have lost).
      if (seq.status().code() == Code::kCasFailed && slot != nullptr) {
        if (Status lease = slot->Admit(Access::kRead); !lease.ok()) {
          reply(proto::Response::Error(id, std::move(lease)));
          return;
        }
      }
      reply(proto::Response::Error(id, seq.status()));
      return;
    }
    proto::Response r = MakeResponse(id, proto::Response::Kind::kWritten);
    r.written_version = seq->value();
    reply(std::move(r));
  });
  return std::nullopt;
}

void RequestHandler::Refuse(Parked& parked) {
  parked.reply(RouteError(parked.req.id, std::move(parked.refusal)));
}

void RequestHandler::Resume(const std::shared_ptr<Parked>& parked) const {
  ParkedSink sink(std::move(parked->reply));
  std::optional<proto::Response> now = RouteWrite(std::move(parked->req), sink, parked->deadline);
  if (now) sink.Answer(std::move(*now));
}

std::optional<proto::Response> RequestHandler::Replication(proto::Request&& req,
                                                           ResponseSink& sink) const {
  Replicator* rep = node_.replicator();
  if (rep == nullptr) {
    return proto::Response::Error(
        req.id, Status(Code::kBadRequest, "a standalone node does not replicate"));
  }
  switch (req.kind) {
    case proto::OpKind::kFetch: rep->HandleFetch(std::move(req), sink.ReplyLater()); break;
    case proto::OpKind::kSnapshot: rep->HandleSnapshot(std::move(req), sink.ReplyLater()); break;
    case proto::OpKind::kTransfer: rep->HandleTransfer(std::move(req), sink.ReplyLater()); break;
    case proto::OpKind::kSplit: rep->HandleSplit(std::move(req), sink.ReplyLater()); break;
    case proto::OpKind::kMerge:
      rep->HandleMerge(std::move(req), sink.ReplyLater());
      break;
    default: rep->HandleStatus(req.id, sink.ReplyLater()); break;
  }
  return std::nullopt;
}

}  // namespace rangekv::kvnode
