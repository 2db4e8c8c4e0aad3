#include "common/protocol.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>

#include "common/frame.h"
#include "protocol.capnp.h"

namespace rangekv::proto {
namespace rpc = ::rangekv::wire;
namespace {

kj::ArrayPtr<const kj::byte> Bytes(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string Str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

// First segment sized to the message, so a small message does not allocate
// and zero a large default segment.
unsigned FirstSegmentWords(size_t payload_bytes) {
  return static_cast<unsigned>(std::min<size_t>(32 + payload_bytes / 8, 1u << 17));
}

void AppendFrame(capnp::MessageBuilder& mb, std::string& out) {
  size_t words = capnp::computeSerializedSizeInWords(mb);
  size_t bytes = words * sizeof(capnp::word);
  size_t at = out.size();
  out.resize(at + kFrameHeaderBytes + bytes);
  PutFrameLength(static_cast<uint32_t>(bytes), out.data() + at);
  kj::ArrayPtr<capnp::word> dst(reinterpret_cast<capnp::word*>(out.data() + at + kFrameHeaderBytes),
                                words);
  // messageToFlatArray into our own buffer avoids a second copy.
  auto segments = mb.getSegmentsForOutput();
  // Segment table: count-1, sizes, padding to a word; then segments.
  auto* table = reinterpret_cast<uint32_t*>(dst.begin());
  size_t table_words = (segments.size() + 2) / 2;
  table[0] = static_cast<uint32_t>(segments.size() - 1);
  for (size_t i = 0; i < segments.size(); ++i) table[i + 1] = static_cast<uint32_t>(segments[i].size());
  if (segments.size() % 2 == 0) table[segments.size() + 1] = 0;
  capnp::word* p = dst.begin() + table_words;
  for (auto seg : segments) {
    std::memcpy(p, seg.begin(), seg.size() * sizeof(capnp::word));
    p += seg.size();
  }
}

// Runs a Cap'n Proto read over payload. Cap'n Proto reports malformed input
// by throwing kj::Exception; this is the edge where that becomes a Status.
template <typename T, typename Fn>
Result<T> ReadMessage(std::string_view payload, Fn&& fn) {
  if (payload.size() % sizeof(capnp::word) != 0 || payload.empty()) {
    return Status(Code::kBadRequest, "message is not a whole number of words");
  }
  kj::Array<capnp::word> copy;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(payload.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(payload.data()),
                         payload.size() / sizeof(capnp::word));
  } else {
    copy = kj::heapArray<capnp::word>(payload.size() / sizeof(capnp::word));
    std::memcpy(copy.begin(), payload.data(), payload.size());
    words = copy;
  }
  try {
    capnp::ReaderOptions opts;
    opts.traversalLimitInWords = payload.size() / sizeof(capnp::word) * 4 + 1024;
    opts.nestingLimit = 16;
    capnp::FlatArrayMessageReader reader(words, opts);
    return fn(reader);
  } catch (const kj::Exception& e) {
    return Status(Code::kBadRequest, std::string("undecodable message: ") +
                                         e.getDescription().cStr());
  }
}

void SetWriteOp(const WriteOp& op, rpc::WriteOp::Builder b) {
  switch (op.kind) {
    case WriteOp::Kind::kPut: {
      auto p = b.initPut();
      p.setKey(Bytes(op.key));
      p.setValue(Bytes(op.value));
      break;
    }
    case WriteOp::Kind::kDelete:
      b.initDelete().setKey(Bytes(op.key));
      break;
    case WriteOp::Kind::kCas: {
      auto c = b.initCas();
      c.setKey(Bytes(op.key));
      c.setExpectedVersion(op.expected_version);
      c.setValue(Bytes(op.value));
      break;
    }
  }
}

WriteOp GetWriteOp(rpc::WriteOp::Reader r) {
  switch (r.which()) {
    case rpc::WriteOp::PUT:
      return WriteOp::Put(Str(r.getPut().getKey()), Str(r.getPut().getValue()));
    case rpc::WriteOp::DELETE:
      return WriteOp::Delete(Str(r.getDelete().getKey()));
    case rpc::WriteOp::CAS: {
      auto c = r.getCas();
      return WriteOp::Cas(Str(c.getKey()), c.getExpectedVersion(), Str(c.getValue()));
    }
  }
  throw kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                      kj::str("unknown write op"));
}

void SetEntry(const Entry& e, rpc::Entry::Builder b) {
  b.setKey(Bytes(e.key));
  b.setValue(Bytes(e.value));
  b.setVersion(e.version);
}
Entry GetEntry(rpc::Entry::Reader r) { return {Str(r.getKey()), Str(r.getValue()), r.getVersion()}; }

void SetStatus(const std::vector<RangeStatus>& all, rpc::Response::Builder b) {
  auto l = b.initRangeStatus(static_cast<unsigned>(all.size()));
  for (size_t i = 0; i < all.size(); ++i) {
    const RangeStatus& s = all[i];
    auto o = l[i];
    o.setRangeId(s.range.value());
    o.setEpoch(s.epoch.value());
    o.setOwner(s.owner);
    o.setLastSeq(s.last_seq.value());
    o.setHwm(s.hwm.value());
    o.setKeys(s.keys);
    o.setBytes(s.bytes);
    o.setRequestsPerSec(s.requests_per_sec);
    auto reps = o.initReplicas(static_cast<unsigned>(s.replicas.size()));
    for (size_t j = 0; j < s.replicas.size(); ++j) {
      reps[j].setNodeId(s.replicas[j].node_id);
      reps[j].setAckedSeq(s.replicas[j].acked.value());
      reps[j].setInIsr(s.replicas[j].in_isr);
      reps[j].setSinceContactMs(s.replicas[j].since_contact_ms);
    }
  }
}

std::vector<RangeStatus> GetStatus(capnp::List<rpc::RangeStatus>::Reader l) {
  std::vector<RangeStatus> out;
  out.reserve(l.size());
  for (auto o : l) {
    RangeStatus s{RangeId(o.getRangeId()), Epoch(o.getEpoch()), o.getOwner(), Seq(o.getLastSeq()),
                  Seq(o.getHwm()), {}, o.getKeys(), o.getBytes(), o.getRequestsPerSec()};
    for (auto r : o.getReplicas()) {
      s.replicas.push_back(
          ReplicaProgress{r.getNodeId().cStr(), Seq(r.getAckedSeq()), r.getInIsr(), r.getSinceContactMs()});
    }
    out.push_back(std::move(s));
  }
  return out;
}

Status CheckKey(std::string_view key) {
  if (key.size() > Limits::kMaxKeyBytes) {
    return Status(Code::kTooLarge, "key of " + std::to_string(key.size()) +
                                       " bytes exceeds limit " +
                                       std::to_string(Limits::kMaxKeyBytes));
  }
  return Status::Ok();
}

Status CheckOp(const WriteOp& op) {
  RANGEKV_RETURN_IF_ERROR(CheckKey(op.key));
  if (op.value.size() > Limits::kMaxValueBytes) {
    return Status(Code::kTooLarge, "value of " + std::to_string(op.value.size()) +
                                       " bytes exceeds limit " +
                                       std::to_string(Limits::kMaxValueBytes));
  }
  return Status::Ok();
}

}  // namespace
}  // namespace rangekv::proto

namespace rangekv::proto {

Status Validate(const Request& req) {
  size_t want_ops = 0;
  switch (req.kind) {
    case OpKind::kGet: case OpKind::kPut: case OpKind::kDelete: case OpKind::kCas:
    case OpKind::kSplit:
      want_ops = 1;
      break;
    case OpKind::kBatch:
      if (req.ops.empty()) return Status(Code::kBadRequest, "empty batch");
      if (req.ops.size() > Limits::kMaxBatchOps) {
        return Status(Code::kTooLarge, "batch of " + std::to_string(req.ops.size()) +
                                           " ops exceeds limit " +
                                           std::to_string(Limits::kMaxBatchOps));
      }
      break;
    case OpKind::kScan:
      RANGEKV_RETURN_IF_ERROR(CheckKey(req.scan_start));
      if (req.scan_end) RANGEKV_RETURN_IF_ERROR(CheckKey(*req.scan_end));
      if (req.scan_limit > Limits::kMaxScanLimit) {
        return Status(Code::kTooLarge, "scan limit exceeds " + std::to_string(Limits::kMaxScanLimit));
      }
      return Status::Ok();
    case OpKind::kPing:
    case OpKind::kRangeStatus:
    case OpKind::kMerge:
      return Status::Ok();
    case OpKind::kTransfer:
      if (req.transfer_to.empty() || req.transfer_to.size() > 64) {
        return Status(Code::kBadRequest, "transfer target must be a node id");
      }
      return Status::Ok();
    case OpKind::kFetch:
      if (req.fetch.max_bytes > Limits::kMaxFetchBytes || req.fetch.wait_ms > Limits::kMaxFetchWaitMs) {
        return Status(Code::kBadRequest, "fetch maxBytes or waitMs out of bounds");
      }
      if (req.fetch.from.value() == 0) return Status(Code::kBadRequest, "fetch fromSeq 0");
      return Status::Ok();
    case OpKind::kSnapshot:
      if (req.snapshot.max_bytes > Limits::kMaxFetchBytes) {
        return Status(Code::kBadRequest, "snapshot maxBytes out of bounds");
      }
      return Status::Ok();
  }
  if (req.kind != OpKind::kBatch && req.ops.size() != want_ops) {
    return Status(Code::kBadRequest, "operation carries no key");
  }
  for (const auto& op : req.ops) RANGEKV_RETURN_IF_ERROR(CheckOp(op));
  return Status::Ok();
}

namespace {
// An operator's request to the owner of `range` at `epoch` (0: any).
Request ToOwner(OpKind kind, RangeId range, Epoch epoch) {
  Request req;
  req.id = 1;
  req.kind = kind;
  req.range = range;
  req.epoch = epoch;
  return req;
}
}  // namespace

Request MakeTransfer(RangeId range, Epoch epoch, std::string target) {
  Request req = ToOwner(OpKind::kTransfer, range, epoch);
  req.transfer_to = std::move(target);
  return req;
}

Request MakeSplit(RangeId range, Epoch epoch, std::string key) {
  Request req = ToOwner(OpKind::kSplit, range, epoch);
  req.ops.push_back(WriteOp::Delete(std::move(key)));  // the key alone, like a get
  return req;
}

Request MakeMerge(RangeId range, Epoch epoch) { return ToOwner(OpKind::kMerge, range, epoch); }

Status TransferOutcome(const Result<Response>& answer) {
  if (!answer.ok()) return answer.status();
  if (answer->kind == Response::Kind::kError) return answer->error;
  if (answer->kind == Response::Kind::kPong) return Status::Ok();
  return Status(Code::kInternal, "unexpected answer to a transfer");
}

void EncodeRequest(const Request& req, std::string& out) {
  size_t bytes = req.scan_start.size() + (req.scan_end ? req.scan_end->size() : 0);
  for (const auto& op : req.ops) bytes += op.key.size() + op.value.size() + 32;
  capnp::MallocMessageBuilder mb(FirstSegmentWords(bytes));
  auto b = mb.initRoot<rpc::Request>();
  b.setId(req.id);
  b.setRangeId(req.range.value());
  b.setEpoch(req.epoch.value());
  b.setConsistency(req.consistency == Consistency::kStale ? rpc::Consistency::STALE
                                                           : rpc::Consistency::LINEARIZABLE);
  static const WriteOp kEmpty;
  const WriteOp& op0 = req.ops.empty() ? kEmpty : req.ops[0];
  switch (req.kind) {
    case OpKind::kGet: b.initGet().setKey(Bytes(op0.key)); break;
    case OpKind::kDelete: b.initDelete().setKey(Bytes(op0.key)); break;
    case OpKind::kSplit: b.initSplit().setKey(Bytes(op0.key)); break;
    case OpKind::kPut: {
      auto p = b.initPut();
      p.setKey(Bytes(op0.key));
      p.setValue(Bytes(op0.value));
      break;
    }
    case OpKind::kCas: {
      auto c = b.initCas();
      c.setKey(Bytes(op0.key));
      c.setExpectedVersion(op0.expected_version);
      c.setValue(Bytes(op0.value));
      break;
    }
    case OpKind::kScan: {
      auto s = b.initScan();
      s.setStart(Bytes(req.scan_start));
      s.setHasEnd(req.scan_end.has_value());
      if (req.scan_end) s.setEnd(Bytes(*req.scan_end));
      s.setLimit(req.scan_limit);
      break;
    }
    case OpKind::kBatch: {
      auto l = b.initBatch(static_cast<unsigned>(req.ops.size()));
      for (size_t i = 0; i < req.ops.size(); ++i) SetWriteOp(req.ops[i], l[i]);
      break;
    }
    case OpKind::kPing: b.setPing(); break;
    case OpKind::kFetch: {
      auto f = b.initFetch();
      f.setReplicaId(req.fetch.replica);
      f.setFromSeq(req.fetch.from.value());
      f.setLastEpoch(req.fetch.last_epoch.value());
      f.setMaxBytes(req.fetch.max_bytes);
      f.setWaitMs(req.fetch.wait_ms);
      f.setReplicaLife(req.fetch.replica_life);
      f.setCopy(req.fetch.copy);
      break;
    }
    case OpKind::kSnapshot: {
      auto f = b.initSnapshot();
      f.setReplicaId(req.snapshot.replica);
      f.setReplayFrom(req.snapshot.replay_from.value());
      f.setOffset(req.snapshot.offset);
      f.setMaxBytes(req.snapshot.max_bytes);
      break;
    }
    case OpKind::kRangeStatus: b.setRangeStatus(); break;
    case OpKind::kTransfer: b.initTransfer().setTarget(req.transfer_to); break;
    case OpKind::kMerge:
      b.setMerge();
      break;
  }
  AppendFrame(mb, out);
}

Result<Request> DecodeRequest(std::string_view payload) {
  return ReadMessage<Request>(payload, [](capnp::MessageReader& m) -> Result<Request> {
    auto r = m.getRoot<rpc::Request>();
    Request req;
    req.id = r.getId();
    req.range = RangeId(r.getRangeId());
    req.epoch = Epoch(r.getEpoch());
    req.consistency = r.getConsistency() == rpc::Consistency::STALE ? Consistency::kStale
                                                                    : Consistency::kLinearizable;
    switch (r.which()) {
      case rpc::Request::GET:
        req.kind = OpKind::kGet;
        req.ops.push_back(WriteOp::Delete(Str(r.getGet().getKey())));
        break;
      case rpc::Request::PUT:
        req.kind = OpKind::kPut;
        req.ops.push_back(WriteOp::Put(Str(r.getPut().getKey()), Str(r.getPut().getValue())));
        break;
      case rpc::Request::DELETE:
        req.kind = OpKind::kDelete;
        req.ops.push_back(WriteOp::Delete(Str(r.getDelete().getKey())));
        break;
      case rpc::Request::CAS: {
        auto c = r.getCas();
        req.kind = OpKind::kCas;
        req.ops.push_back(WriteOp::Cas(Str(c.getKey()), c.getExpectedVersion(), Str(c.getValue())));
        break;
      }
      case rpc::Request::SCAN: {
        auto s = r.getScan();
        req.kind = OpKind::kScan;
        req.scan_start = Str(s.getStart());
        if (s.getHasEnd()) req.scan_end = Str(s.getEnd());
        req.scan_limit = s.getLimit();
        break;
      }
      case rpc::Request::BATCH: {
        req.kind = OpKind::kBatch;
        auto l = r.getBatch();
        if (l.size() > Limits::kMaxBatchOps) {
          return Status(Code::kTooLarge, "batch exceeds " + std::to_string(Limits::kMaxBatchOps) +
                                             " ops");
        }
        req.ops.reserve(l.size());
        for (auto op : l) req.ops.push_back(GetWriteOp(op));
        break;
      }
      case rpc::Request::PING:
        req.kind = OpKind::kPing;
        break;
      case rpc::Request::FETCH: {
        auto f = r.getFetch();
        req.kind = OpKind::kFetch;
        req.fetch = FetchArgs{f.getReplicaId().cStr(), Seq(f.getFromSeq()), Epoch(f.getLastEpoch()),
                              f.getMaxBytes(), f.getWaitMs(), f.getReplicaLife().cStr(),
                              f.getCopy()};
        break;
      }
      case rpc::Request::SNAPSHOT: {
        auto f = r.getSnapshot();
        req.kind = OpKind::kSnapshot;
        req.snapshot = SnapshotArgs{f.getReplicaId().cStr(), Seq(f.getReplayFrom()), f.getOffset(),
                                    f.getMaxBytes()};
        break;
      }
      case rpc::Request::RANGE_STATUS:
        req.kind = OpKind::kRangeStatus;
        break;
      case rpc::Request::SPLIT:
        req.kind = OpKind::kSplit;
        req.ops.push_back(WriteOp::Delete(Str(r.getSplit().getKey())));
        break;
      case rpc::Request::MERGE:
        req.kind = OpKind::kMerge;
        break;
      case rpc::Request::TRANSFER:
        req.kind = OpKind::kTransfer;
        req.transfer_to = r.getTransfer().getTarget().cStr();
        break;
      default:
        return Status(Code::kBadRequest, "unknown request kind");
    }
    return req;
  });
}

void EncodeResponse(const Response& resp, std::string& out) {
  size_t bytes = resp.error.message().size() + resp.found.key.size() + resp.found.value.size() +
                 resp.fetched.records.size() + resp.chunk.data.size();
  for (const auto& e : resp.entries) bytes += e.key.size() + e.value.size() + 32;
  capnp::MallocMessageBuilder mb(FirstSegmentWords(bytes));
  auto b = mb.initRoot<rpc::Response>();
  b.setId(resp.id);
  switch (resp.kind) {
    case Response::Kind::kError: {
      auto e = b.initError();
      e.setCode(static_cast<uint16_t>(resp.error.code()));
      e.setMessage(resp.error.message());
      if (resp.hint) {
        auto h = e.initOwnerHint();
        h.setNodeId(resp.hint->node_id);
        h.setAddress(resp.hint->address);
        h.setEpoch(resp.hint->epoch.value());
        h.setRangeId(resp.hint->range.value());
        if (const auto& b = resp.hint->bounds) {
          h.setHasBounds(true);
          h.setStart(Bytes(b->start()));
          if (b->end()) {
            h.setHasEnd(true);
            h.setEnd(Bytes(*b->end()));
          }
          h.setGeneration(resp.hint->generation);
        }
      }
      break;
    }
    case Response::Kind::kFound: SetEntry(resp.found, b.initFound()); break;
    case Response::Kind::kNotFound: b.setNotFound(); break;
    case Response::Kind::kWritten: b.setWritten(resp.written_version); break;
    case Response::Kind::kEntries: {
      auto l = b.initEntries(static_cast<unsigned>(resp.entries.size()));
      for (size_t i = 0; i < resp.entries.size(); ++i) SetEntry(resp.entries[i], l[i]);
      b.setMore(resp.more);
      break;
    }
    case Response::Kind::kPong: b.setPong(); break;
    case Response::Kind::kFetched: {
      auto f = b.initFetched();
      f.setRecords(Bytes(resp.fetched.records));
      f.setHwm(resp.fetched.hwm.value());
      f.setDiverged(resp.fetched.diverged);
      f.setTruncateTo(resp.fetched.truncate_to.value());
      f.setAgreedEpoch(resp.fetched.agreed_epoch.value());
      f.setSnapshotNeeded(resp.fetched.snapshot_needed);
      if (!resp.fetched.news.empty()) {
        auto l = f.initNews(static_cast<unsigned>(resp.fetched.news.size()));
        for (size_t i = 0; i < resp.fetched.news.size(); ++i) {
          l[i].setRangeId(resp.fetched.news[i].range.value());
          l[i].setRecord(resp.fetched.news[i].record);
        }
      }
      break;
    }
    case Response::Kind::kSnapshotChunk: {
      auto c = b.initSnapshotChunk();
      c.setReplayFrom(resp.chunk.replay_from.value());
      c.setEnd(resp.chunk.end.value());
      c.setEpoch(resp.chunk.epoch.value());
      c.setTotalBytes(resp.chunk.total_bytes);
      c.setOffset(resp.chunk.offset);
      c.setData(Bytes(resp.chunk.data));
      break;
    }
    case Response::Kind::kRangeStatus: SetStatus(resp.status, b); break;
  }
  AppendFrame(mb, out);
}

Result<Response> DecodeResponse(std::string_view payload) {
  return ReadMessage<Response>(payload, [](capnp::MessageReader& m) -> Result<Response> {
    auto r = m.getRoot<rpc::Response>();
    Response resp;
    resp.id = r.getId();
    switch (r.which()) {
      case rpc::Response::ERROR: {
        auto e = r.getError();
        Code code = e.getCode() <= static_cast<uint16_t>(Code::kLastCode) && e.getCode() != 0
                        ? static_cast<Code>(e.getCode())
                        : Code::kInternal;
        resp.kind = Response::Kind::kError;
        resp.error = Status(code, e.getMessage().cStr());
        if (e.hasOwnerHint()) {
          auto h = e.getOwnerHint();
          resp.hint = OwnerHint{h.getNodeId().cStr(), h.getAddress().cStr(), Epoch(h.getEpoch()),
                                RangeId(h.getRangeId())};
          if (h.getHasBounds()) {
            std::string start = Str(h.getStart());
            std::optional<std::string> end;
            if (h.getHasEnd()) end = Str(h.getEnd());
            // A hint whose bounds are empty or reversed is ignored, not trusted.
            if (!end || start < *end) {
              resp.hint->bounds = KeyRange(std::move(start), std::move(end));
              resp.hint->generation = h.getGeneration();
            }
          }
        }
        break;
      }
      case rpc::Response::FOUND:
        resp.kind = Response::Kind::kFound;
        resp.found = GetEntry(r.getFound());
        break;
      case rpc::Response::NOT_FOUND: resp.kind = Response::Kind::kNotFound; break;
      case rpc::Response::WRITTEN:
        resp.kind = Response::Kind::kWritten;
        resp.written_version = r.getWritten();
        break;
      case rpc::Response::ENTRIES: {
        resp.kind = Response::Kind::kEntries;
        auto l = r.getEntries();
        resp.entries.reserve(l.size());
        for (auto e : l) resp.entries.push_back(GetEntry(e));
        resp.more = r.getMore();
        break;
      }
      case rpc::Response::PONG: resp.kind = Response::Kind::kPong; break;
      case rpc::Response::FETCHED: {
        auto f = r.getFetched();
        resp.kind = Response::Kind::kFetched;
        resp.fetched = Fetched{Str(f.getRecords()), Seq(f.getHwm()), f.getDiverged(),
                               Seq(f.getTruncateTo()), f.getSnapshotNeeded(),
                               Epoch(f.getAgreedEpoch())};
        for (auto n : f.getNews()) {
          resp.fetched.news.push_back(RangeNews{
              RangeId(n.getRangeId()), std::string(n.getRecord().cStr(), n.getRecord().size())});
        }
        break;
      }
      case rpc::Response::SNAPSHOT_CHUNK: {
        auto c = r.getSnapshotChunk();
        resp.kind = Response::Kind::kSnapshotChunk;
        resp.chunk = SnapshotChunk{Seq(c.getReplayFrom()), Seq(c.getEnd()),
                                   Epoch(c.getEpoch()), c.getTotalBytes(), c.getOffset(),
                                   Str(c.getData())};
        break;
      }
      case rpc::Response::RANGE_STATUS:
        resp.kind = Response::Kind::kRangeStatus;
        resp.status = GetStatus(r.getRangeStatus());
        break;
      default:
        return Status(Code::kBadRequest, "unknown response kind");
    }
    return resp;
  });
}

}  // namespace rangekv::proto
