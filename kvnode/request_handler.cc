#include "kvnode/request_handler.h"

#include <utility>

namespace rangekv::kvnode {
namespace {

proto::Response MakeResponse(uint64_t id, proto::Response::Kind kind) {
  proto::Response r;
  r.id = id;
  r.kind = kind;
  return r;
}

}  // namespace

std::optional<proto::Response> RequestHandler::Handle(proto::Request&& req,
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
  }
  return proto::Response::Error(req.id, Status(Code::kBadRequest, "unknown request kind"));
}

proto::Response RequestHandler::Get(const proto::Request& req) const {
  const std::string& key = req.ops.front().key;  // Validate checked the arity
  auto store = node_.RangeForKey(req.range, key);
  if (!store.ok()) return proto::Response::Error(req.id, store.status());
  std::optional<proto::Entry> e = (*store)->Get(key);
  if (!e) return MakeResponse(req.id, proto::Response::Kind::kNotFound);
  proto::Response r = MakeResponse(req.id, proto::Response::Kind::kFound);
  r.found = std::move(*e);
  return r;
}

proto::Response RequestHandler::Scan(const proto::Request& req) const {
  auto store = node_.RangeForKey(req.range, req.scan_start);
  if (!store.ok()) return proto::Response::Error(req.id, store.status());
  proto::Response r = MakeResponse(req.id, proto::Response::Kind::kEntries);
  // Stop at the range's end; `more` then tells the caller to go on there.
  const std::optional<std::string>& range_end = (*store)->bounds().end();
  bool clamped = range_end && (!req.scan_end || *range_end < *req.scan_end);
  const std::optional<std::string>& end = clamped ? range_end : req.scan_end;
  if (end && *end <= req.scan_start) return r;  // empty span: nothing to ask the store
  uint32_t limit = req.scan_limit == 0 ? proto::Limits::kDefaultScanLimit : req.scan_limit;
  r.entries = (*store)->Scan(req.scan_start, end, limit, &r.more);
  if (clamped) r.more = true;
  return r;
}

std::optional<proto::Response> RequestHandler::Write(proto::Request&& req,
                                                     ResponseSink& sink) const {
  Result<RangeStore*> store = req.kind == proto::OpKind::kBatch
                                  ? node_.RangeForBatch(req.range, req.ops)
                                  : node_.RangeForKey(req.range, req.ops.front().key);
  if (!store.ok()) return proto::Response::Error(req.id, store.status());
  (*store)->Write(std::move(req.ops), [id = req.id, reply = sink.ReplyLater()](Result<Seq> seq) {
    if (!seq.ok()) {
      reply(proto::Response::Error(id, seq.status()));
      return;
    }
    proto::Response r = MakeResponse(id, proto::Response::Kind::kWritten);
    r.written_version = seq->value();
    reply(std::move(r));
  });
  return std::nullopt;
}

}  // namespace rangekv::kvnode
