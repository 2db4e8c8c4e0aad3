// common/zk/jute.h — the subset of the ZooKeeper client wire protocol that the
// watch channel speaks, encoded and decoded by hand (I/O-free, bounds-checked).
//
// The ZooKeeper C client exports no serializers, so these few messages are
// written here. Every decoder takes untrusted bytes and either returns a value
// or a Status; none reads past its input or allocates more than its input
// holds, so they can be fed random bytes (tests/common/zk/jute_test.cc does).
//
// Primitive encoding (all big-endian):
//
// | type         | bytes                                                     |
// |--------------|-----------------------------------------------------------|
// | int          | 4                                                         |
// | long         | 8                                                         |
// | bool         | 1 (0 or 1)                                                |
// | buffer       | int len (-1 = null) + len bytes                           |
// | ustring      | same as buffer (UTF-8 text)                               |
// | vector<T>    | int count (-1 = null) + count items                       |
//
// Frames and messages (client -> server unless noted):
//
// | message            | layout                                                        |
// |--------------------|---------------------------------------------------------------|
// | frame              | int len (bytes that follow, 0..kMaxFrameBytes) + payload      |
// | ConnectRequest     | int protocolVersion=0, long lastZxidSeen, int timeOut (ms),   |
// |   (payload 45 B)   | long sessionId (0 = new), buffer passwd (16 B), bool readOnly |
// | ConnectResponse    | int protocolVersion, int timeOut, long sessionId,             |
// |   (server, 36/37 B)| buffer passwd, [bool readOnly]. timeOut=0 && sessionId=0:     |
// |                    | the session expired (or the password was wrong)               |
// | RequestHeader      | int xid, int type                                             |
// | ReplyHeader (srv)  | int xid, long zxid, int err; a body follows only if err == 0  |
// | ping               | RequestHeader{xid=-2, type=11}; reply: header only            |
// | addWatch           | RequestHeader{xid>0, type=106}, ustring path, int mode        |
// |                    | (0 persistent, 1 persistent recursive); reply body int err    |
// | setWatches2        | RequestHeader{xid=-8, type=105}, long relativeZxid,           |
// |                    | vector<ustring> data, exist, child, persistent,               |
// |                    | persistentRecursive; reply: header only                       |
// | closeSession       | RequestHeader{xid>0, type=-11}; reply: header, then EOF       |
// | AuthPacket         | RequestHeader{xid=-4, type=100}, int type=0, ustring scheme,  |
// |                    | buffer auth ("user:password" for digest); reply: header only, |
// |                    | err 0, or -115 AUTHFAILED and the server closes the socket    |
// | notification (srv) | ReplyHeader{xid=-1, zxid, err=0} + WatcherEvent{int type,     |
// |                    | int state, ustring path}; frame len = 28 + len(path)          |
//
// Reserved xids: -1 notification, -2 ping, -4 auth, -8 setWatches. Replies to
// requests come back in request order. Credentials belong to the TCP
// connection, not to the session: an AuthPacket is sent after every
// ConnectResponse, before anything that needs them. The server handles it
// as it reads it, ahead of any request read after it. Event types on the wire: 1 NodeCreated,
// 2 NodeDeleted, 3 NodeDataChanged, 4 NodeChildrenChanged.
//
// Worked example (captured from ZooKeeper 3.8), a notification for "/q":
//   len 0000001e | xid ffffffff | zxid ffffffffffffffff | err 00000000 |
//   type 00000001 | state 00000003 | path len 00000002 | "/q" 2f71
//
// Thread-safety: free functions are pure; Writer/Reader/FrameBuffer objects
// are not shared between threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/status.h"

namespace rangekv::zk::jute {

inline constexpr int32_t kXidNotification = -1;
inline constexpr int32_t kXidPing = -2;
inline constexpr int32_t kXidAuth = -4;
inline constexpr int32_t kXidSetWatches = -8;

inline constexpr int32_t kOpPing = 11;
inline constexpr int32_t kOpSetWatches2 = 105;
inline constexpr int32_t kOpAddWatch = 106;
inline constexpr int32_t kOpCloseSession = -11;
inline constexpr int32_t kOpAuth = 100;

inline constexpr int32_t kErrNoAuth = -102;      // ZNOAUTH
inline constexpr int32_t kErrAuthFailed = -115;  // ZAUTHFAILED

inline constexpr int32_t kAddWatchModePersistent = 0;
inline constexpr int32_t kAddWatchModePersistentRecursive = 1;

// WatcherEvent.type values that the server sends.
inline constexpr int32_t kEventNodeCreated = 1;
inline constexpr int32_t kEventNodeDeleted = 2;
inline constexpr int32_t kEventNodeDataChanged = 3;
inline constexpr int32_t kEventNodeChildrenChanged = 4;

inline constexpr size_t kPasswordBytes = 16;
inline constexpr size_t kConnectRequestPayloadBytes = 45;
inline constexpr size_t kReplyHeaderBytes = 16;
// The server's own limit (jute.maxbuffer) is about 1 MiB; the channel never
// asks for data, so anything larger than this is a broken stream.
inline constexpr size_t kMaxFrameBytes = 1u << 20;
// SetWatches2 requests are split so that no frame exceeds this (the Java
// client uses the same 128 KiB bound).
inline constexpr size_t kSetWatchesBatchBytes = 128u << 10;

using Password = std::array<uint8_t, kPasswordBytes>;

// Appends big-endian primitives to a byte string.
class Writer {
 public:
  void Int(int32_t v);
  void Long(int64_t v);
  void Bool(bool v);
  void Buffer(std::string_view bytes);  // also ustring
  void StringVector(const std::vector<std::string>& items);
  const std::string& bytes() const { return out_; }
  // Returns the bytes written so far, prefixed with their 4-byte length.
  std::string TakeFrame();

 private:
  std::string out_;
};

// Reads big-endian primitives from a borrowed byte range. Every read checks
// the remaining length; after the first failure ok() is false and every
// further read fails too.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool Int(int32_t* v);
  bool Long(int64_t* v);
  bool Bool(bool* v);
  // A null buffer (len -1) reads as empty. Lengths above max_len fail.
  bool Buffer(std::string* v, size_t max_len = kMaxFrameBytes);
  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size() - pos_; }
  std::string_view rest() const { return in_.substr(pos_); }

 private:
  bool Take(size_t n, const char** p);
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

struct ConnectRequest {
  int64_t last_zxid_seen = 0;
  int32_t timeout_ms = 0;
  int64_t session_id = 0;  // 0 asks for a new session
  Password password{};     // zeros for a new session
};

struct ConnectResponse {
  int32_t protocol_version = 0;
  int32_t timeout_ms = 0;
  int64_t session_id = 0;
  Password password{};
  bool read_only = false;
  // The server's way of saying "that session is gone": timeOut=0, id=0.
  bool expired() const { return timeout_ms == 0 && session_id == 0; }
};

struct ReplyHeader {
  int32_t xid = 0;
  int64_t zxid = 0;
  int32_t err = 0;
};

struct WatcherEvent {
  int32_t type = 0;
  int32_t state = 0;
  std::string path;  // full server path (chroot included)
};

// One decoded server frame. For a notification (xid -1, err 0) `event` is set;
// otherwise `body` views the bytes after the header (inside the payload that
// was decoded, so it lives as long as that payload).
struct ServerFrame {
  ReplyHeader header;
  std::optional<WatcherEvent> event;
  std::string_view body;
};

// The five watch lists of setWatches2, as full server paths.
struct WatchLists {
  std::vector<std::string> data;
  std::vector<std::string> exist;
  std::vector<std::string> child;
  std::vector<std::string> persistent;
  std::vector<std::string> persistent_recursive;
};

// Encoders return a whole frame: 4-byte length + payload.
std::string EncodeConnectRequest(const ConnectRequest& req);
std::string EncodePing();
std::string EncodeAddWatch(int32_t xid, std::string_view path, int32_t mode);
std::string EncodeSetWatches2(int64_t relative_zxid, const WatchLists& lists);
std::string EncodeCloseSession(int32_t xid);
// AuthPacket{type=0, scheme, auth}, with xid -4.
std::string EncodeAuth(std::string_view scheme, std::string_view auth);

// Splits persistent-recursive paths into setWatches2 frames of at most about
// kSetWatchesBatchBytes each (a single path longer than that gets its own
// frame). Empty input gives no frames.
std::vector<std::string> EncodeSetWatches2Batches(int64_t relative_zxid,
                                                  const std::vector<std::string>& recursive);

// Decoders take a payload (without the 4-byte length). Errors are
// kCorruption with a message naming the field that failed.
Result<ConnectResponse> DecodeConnectResponse(std::string_view payload);
Result<ReplyHeader> DecodeReplyHeader(std::string_view payload);
Result<WatcherEvent> DecodeWatcherEvent(std::string_view body);
Result<ServerFrame> DecodeServerFrame(std::string_view payload);
// addWatch reply body: int err.
Result<int32_t> DecodeAddWatchReply(std::string_view body);

// Reassembles frames from a byte stream. The length prefix is checked
// (0..max_frame) before any byte of the payload is buffered beyond what was
// received, so a hostile length cannot make it allocate.
class FrameBuffer {
 public:
  explicit FrameBuffer(size_t max_frame = kMaxFrameBytes) : max_frame_(max_frame) {}
  enum class Outcome { kNeedMore, kFrame };
  void Append(std::string_view bytes);
  // On a complete frame stores its payload in *payload (valid until the next
  // call of Append or Next) and returns kFrame; returns kNeedMore when more
  // bytes are needed; returns kTooLarge / kCorruption for a bad length prefix
  // (the stream cannot be resynchronised after that: close the connection).
  Result<Outcome> Next(std::string_view* payload);
  size_t buffered() const { return buf_.size() - pos_; }
  void Clear();

 private:
  size_t max_frame_;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace rangekv::zk::jute
