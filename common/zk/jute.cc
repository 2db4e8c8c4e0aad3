#include "common/zk/jute.h"

#include <cstring>

namespace rangekv::zk::jute {
namespace {

Status Corrupt(std::string_view what) {
  return Status(Code::kCorruption, "zookeeper frame: bad or truncated " + std::string(what));
}

void PutU32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

// Encoded size of a ustring inside a vector.
size_t UStringBytes(const std::string& s) { return 4 + s.size(); }

}  // namespace

void Writer::Int(int32_t v) { PutU32(&out_, static_cast<uint32_t>(v)); }

void Writer::Long(int64_t v) {
  auto u = static_cast<uint64_t>(v);
  PutU32(&out_, static_cast<uint32_t>(u >> 32));
  PutU32(&out_, static_cast<uint32_t>(u));
}

void Writer::Bool(bool v) { out_.push_back(v ? 1 : 0); }

void Writer::Buffer(std::string_view bytes) {
  Int(static_cast<int32_t>(bytes.size()));
  out_.append(bytes);
}

void Writer::StringVector(const std::vector<std::string>& items) {
  Int(static_cast<int32_t>(items.size()));
  for (const auto& s : items) Buffer(s);
}

std::string Writer::TakeFrame() {
  std::string frame;
  frame.reserve(4 + out_.size());
  PutU32(&frame, static_cast<uint32_t>(out_.size()));
  frame.append(out_);
  out_.clear();
  return frame;
}

bool Reader::Take(size_t n, const char** p) {
  if (!ok_ || remaining() < n) {
    ok_ = false;
    return false;
  }
  *p = in_.data() + pos_;
  pos_ += n;
  return true;
}

bool Reader::Int(int32_t* v) {
  const char* p;
  if (!Take(4, &p)) return false;
  *v = static_cast<int32_t>(GetU32(p));
  return true;
}

bool Reader::Long(int64_t* v) {
  const char* p;
  if (!Take(8, &p)) return false;
  *v = static_cast<int64_t>((uint64_t{GetU32(p)} << 32) | GetU32(p + 4));
  return true;
}

bool Reader::Bool(bool* v) {
  const char* p;
  if (!Take(1, &p)) return false;
  *v = *p != 0;
  return true;
}

bool Reader::Buffer(std::string* v, size_t max_len) {
  int32_t len;
  if (!Int(&len)) return false;
  if (len == -1) {
    v->clear();
    return true;
  }
  // Compare against what is really there before trusting the length.
  if (len < 0 || static_cast<size_t>(len) > max_len || static_cast<size_t>(len) > remaining()) {
    ok_ = false;
    return false;
  }
  const char* p;
  Take(static_cast<size_t>(len), &p);
  v->assign(p, static_cast<size_t>(len));
  return true;
}

std::string EncodeConnectRequest(const ConnectRequest& req) {
  Writer w;
  w.Int(0);  // protocolVersion
  w.Long(req.last_zxid_seen);
  w.Int(req.timeout_ms);
  w.Long(req.session_id);
  w.Buffer(
      std::string_view(reinterpret_cast<const char*>(req.password.data()), req.password.size()));
  w.Bool(false);  // readOnly: the channel never wants a read-only server
  return w.TakeFrame();
}

std::string EncodePing() {
  Writer w;
  w.Int(kXidPing);
  w.Int(kOpPing);
  return w.TakeFrame();
}

std::string EncodeAddWatch(int32_t xid, std::string_view path, int32_t mode) {
  Writer w;
  w.Int(xid);
  w.Int(kOpAddWatch);
  w.Buffer(path);
  w.Int(mode);
  return w.TakeFrame();
}

std::string EncodeSetWatches2(int64_t relative_zxid, const WatchLists& lists) {
  Writer w;
  w.Int(kXidSetWatches);
  w.Int(kOpSetWatches2);
  w.Long(relative_zxid);
  w.StringVector(lists.data);
  w.StringVector(lists.exist);
  w.StringVector(lists.child);
  w.StringVector(lists.persistent);
  w.StringVector(lists.persistent_recursive);
  return w.TakeFrame();
}

std::vector<std::string> EncodeSetWatches2Batches(int64_t relative_zxid,
                                                  const std::vector<std::string>& recursive) {
  std::vector<std::string> frames;
  WatchLists batch;
  size_t bytes = 0;
  for (const auto& path : recursive) {
    if (!batch.persistent_recursive.empty() && bytes + UStringBytes(path) > kSetWatchesBatchBytes) {
      frames.push_back(EncodeSetWatches2(relative_zxid, batch));
      batch.persistent_recursive.clear();
      bytes = 0;
    }
    batch.persistent_recursive.push_back(path);
    bytes += UStringBytes(path);
  }
  if (!batch.persistent_recursive.empty()) {
    frames.push_back(EncodeSetWatches2(relative_zxid, batch));
  }
  return frames;
}

std::string EncodeCloseSession(int32_t xid) {
  Writer w;
  w.Int(xid);
  w.Int(kOpCloseSession);
  return w.TakeFrame();
}

std::string EncodeAuth(std::string_view scheme, std::string_view auth) {
  Writer w;
  w.Int(kXidAuth);
  w.Int(kOpAuth);
  w.Int(0);  // type: unused by the server
  w.Buffer(scheme);
  w.Buffer(auth);
  return w.TakeFrame();
}

Result<ConnectResponse> DecodeConnectResponse(std::string_view payload) {
  Reader r(payload);
  ConnectResponse resp;
  std::string passwd;
  if (!r.Int(&resp.protocol_version) || !r.Int(&resp.timeout_ms) || !r.Long(&resp.session_id)) {
    return Corrupt("ConnectResponse header");
  }
  if (!r.Buffer(&passwd, kPasswordBytes)) return Corrupt("ConnectResponse passwd");
  if (resp.timeout_ms < 0) return Corrupt("ConnectResponse timeOut");
  // A live session always carries a full password; an expired reply may not.
  if (!resp.expired() && passwd.size() != kPasswordBytes) {
    return Corrupt("ConnectResponse passwd length");
  }
  std::memcpy(resp.password.data(), passwd.data(), passwd.size());
  // readOnly was added later; servers older than 3.4 omit it.
  if (r.remaining() > 0 && !r.Bool(&resp.read_only)) return Corrupt("ConnectResponse readOnly");
  return resp;
}

Result<ReplyHeader> DecodeReplyHeader(std::string_view payload) {
  Reader r(payload);
  ReplyHeader h;
  if (!r.Int(&h.xid) || !r.Long(&h.zxid) || !r.Int(&h.err)) return Corrupt("ReplyHeader");
  return h;
}

Result<WatcherEvent> DecodeWatcherEvent(std::string_view body) {
  Reader r(body);
  WatcherEvent ev;
  if (!r.Int(&ev.type) || !r.Int(&ev.state) || !r.Buffer(&ev.path)) {
    return Corrupt("WatcherEvent");
  }
  return ev;
}

Result<ServerFrame> DecodeServerFrame(std::string_view payload) {
  RANGEKV_ASSIGN_OR_RETURN(ReplyHeader h, DecodeReplyHeader(payload));
  ServerFrame f;
  f.header = h;
  f.body = payload.substr(kReplyHeaderBytes);
  if (h.xid == kXidNotification && h.err == 0) {
    RANGEKV_ASSIGN_OR_RETURN(WatcherEvent ev, DecodeWatcherEvent(f.body));
    f.event = std::move(ev);
  }
  return f;
}

Result<int32_t> DecodeAddWatchReply(std::string_view body) {
  Reader r(body);
  int32_t err;
  if (!r.Int(&err)) return Corrupt("addWatch reply");
  return err;
}

void FrameBuffer::Append(std::string_view bytes) {
  // Drop consumed bytes before growing, so the buffer stays near one frame.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= buf_.size() / 2)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<FrameBuffer::Outcome> FrameBuffer::Next(std::string_view* payload) {
  if (buffered() < 4) return Outcome::kNeedMore;
  auto len = static_cast<int32_t>(GetU32(buf_.data() + pos_));
  if (len < 0) return Status(Code::kCorruption, "zookeeper frame: negative length");
  if (static_cast<size_t>(len) > max_frame_) {
    return Status(Code::kTooLarge, "zookeeper frame: length " + std::to_string(len) +
                                       " above limit " + std::to_string(max_frame_));
  }
  if (buffered() - 4 < static_cast<size_t>(len)) return Outcome::kNeedMore;
  *payload = std::string_view(buf_).substr(pos_ + 4, static_cast<size_t>(len));
  pos_ += 4 + static_cast<size_t>(len);
  return Outcome::kFrame;
}

void FrameBuffer::Clear() {
  buf_.clear();
  pos_ = 0;
}

}  // namespace rangekv::zk::jute
