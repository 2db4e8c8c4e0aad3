// Unit tests of the hand-written ZooKeeper wire codec (common/zk/jute.h), the
// connect-string / path rules and the error mapping. Byte strings were
// captured from a ZooKeeper 3.8 server (docs/zookeeper-watch.md).
#include "common/zk/jute.h"

#include <gtest/gtest.h>

#include <random>

#include "common/zk/callback_gate.h"
#include "common/zk/connect_string.h"
#include "common/zk/errors.h"

namespace rangekv::zk {
namespace {

std::string Hex(std::string_view bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Unhex(std::string_view hex) {
  std::string out;
  std::string digits;
  for (char c : hex) {
    if (c != ' ') digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST(JuteTest, ConnectRequestIs45BytesWithFieldsInOrder) {
  jute::ConnectRequest req;
  req.last_zxid_seen = 0x1122334455667788;
  req.timeout_ms = 1000;
  req.session_id = 0x0102030405060708;
  req.password.fill(0xab);
  std::string frame = jute::EncodeConnectRequest(req);
  ASSERT_EQ(frame.size(), 4 + jute::kConnectRequestPayloadBytes);
  EXPECT_EQ(Hex(frame),
            "0000002d"          // len 45
            "00000000"          // protocolVersion
            "1122334455667788"  // lastZxidSeen
            "000003e8"          // timeOut 1000
            "0102030405060708"  // sessionId
            "00000010"
            "abababababababababababababababab"  // passwd
            "00");                              // readOnly
}

TEST(JuteTest, PingAndCloseSessionFrames) {
  EXPECT_EQ(Hex(jute::EncodePing()),
            "00000008"
            "fffffffe"
            "0000000b");
  EXPECT_EQ(Hex(jute::EncodeCloseSession(7)),
            "00000008"
            "00000007"
            "fffffff5");
}

TEST(JuteTest, AddWatchFrame) {
  EXPECT_EQ(Hex(jute::EncodeAddWatch(1, "/a", jute::kAddWatchModePersistentRecursive)),
            "00000012"
            "00000001"
            "0000006a"
            "00000002"
            "2f61"
            "00000001");
}

TEST(JuteTest, SetWatches2FrameHasFiveVectors) {
  jute::WatchLists lists;
  lists.persistent_recursive = {"/p", "/q"};
  EXPECT_EQ(Hex(jute::EncodeSetWatches2(0xde, lists)),
            "00000030"  // len 48
            "fffffff8"
            "00000069"          // xid -8, type 105
            "00000000000000de"  // relativeZxid
            "00000000"
            "00000000"
            "00000000"
            "00000000"  // data, exist, child, persistent
            "00000002"
            "000000022f70"
            "000000022f71");  // persistentRecursive
}

TEST(JuteTest, SetWatches2BatchesStayUnderTheLimit) {
  std::vector<std::string> paths;
  for (int i = 0; i < 3000; ++i) paths.push_back("/" + std::string(100, 'a') + std::to_string(i));
  auto frames = jute::EncodeSetWatches2Batches(5, paths);
  ASSERT_GT(frames.size(), 1u);
  size_t total = 0;
  for (const auto& f : frames) {
    EXPECT_LE(f.size(), jute::kSetWatchesBatchBytes + 64);
    jute::Reader r(std::string_view(f).substr(4 + 8 + 8 + 16));  // hdr, zxid, 4 empty vectors
    int32_t count = 0;
    ASSERT_TRUE(r.Int(&count));
    total += static_cast<size_t>(count);
  }
  EXPECT_EQ(total, paths.size());
  EXPECT_TRUE(jute::EncodeSetWatches2Batches(5, {}).empty());
}

TEST(JuteTest, DecodesCapturedPingReply) {
  auto f = jute::DecodeServerFrame(Unhex("fffffffe 00000000000000de 00000000"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->header.xid, jute::kXidPing);
  EXPECT_EQ(f->header.zxid, 0xde);
  EXPECT_EQ(f->header.err, 0);
  EXPECT_FALSE(f->event.has_value());
  EXPECT_TRUE(f->body.empty());
}

TEST(JuteTest, DecodesCapturedNotificationThroughFrameBuffer) {
  std::string payload = Unhex("ffffffff ffffffffffffffff 00000000 00000001 00000003 00000002 2f71");
  ASSERT_EQ(payload.size(), 28u + 2);
  std::string stream = Unhex("0000001e") + payload;
  jute::FrameBuffer fb;
  std::string_view out;
  // Byte by byte: a frame appears only once complete.
  for (size_t i = 0; i + 1 < stream.size(); ++i) {
    fb.Append(stream.substr(i, 1));
    auto r = fb.Next(&out);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(*r, jute::FrameBuffer::Outcome::kNeedMore) << "at byte " << i;
  }
  fb.Append(stream.substr(stream.size() - 1));
  auto r = fb.Next(&out);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(*r, jute::FrameBuffer::Outcome::kFrame);
  auto f = jute::DecodeServerFrame(out);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->header.xid, jute::kXidNotification);
  EXPECT_EQ(f->header.zxid, -1);
  ASSERT_TRUE(f->event.has_value());
  EXPECT_EQ(f->event->type, jute::kEventNodeCreated);
  EXPECT_EQ(f->event->state, 3);
  EXPECT_EQ(f->event->path, "/q");
  EXPECT_EQ(fb.buffered(), 0u);
}

TEST(JuteTest, ConnectResponseLiveExpiredAndWithoutReadOnly) {
  jute::Writer w;
  w.Int(0);
  w.Int(4000);
  w.Long(0x100000abc);
  w.Buffer(std::string(16, '\x05'));
  w.Bool(false);
  ASSERT_EQ(w.bytes().size(), 37u);
  auto live = jute::DecodeConnectResponse(w.bytes());
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  EXPECT_EQ(live->timeout_ms, 4000);
  EXPECT_EQ(live->session_id, 0x100000abc);
  EXPECT_EQ(live->password[15], 5);
  EXPECT_FALSE(live->expired());
  // Pre-3.4 servers omit readOnly.
  auto old = jute::DecodeConnectResponse(std::string_view(w.bytes()).substr(0, 36));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->session_id, 0x100000abc);

  jute::Writer e;
  e.Int(0);
  e.Int(0);
  e.Long(0);
  e.Buffer(std::string(16, '\0'));
  e.Bool(false);
  auto expired = jute::DecodeConnectResponse(e.bytes());
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(expired->expired());
}

TEST(JuteTest, ConnectResponseRejectsShortPasswordForLiveSession) {
  jute::Writer w;
  w.Int(0);
  w.Int(4000);
  w.Long(42);
  w.Buffer("short");
  auto r = jute::DecodeConnectResponse(w.bytes());
  EXPECT_EQ(r.status().code(), Code::kCorruption);
}

TEST(JuteTest, TruncatedAndLyingLengthsFail) {
  std::string payload = Unhex("ffffffff ffffffffffffffff 00000000 00000001 00000003 00000002 2f71");
  for (size_t n = 0; n < payload.size(); ++n) {
    auto f = jute::DecodeServerFrame(payload.substr(0, n));
    EXPECT_FALSE(f.ok()) << "prefix of " << n << " bytes decoded";
  }
  // Path length claims more bytes than there are.
  std::string lying = Unhex("ffffffff ffffffffffffffff 00000000 00000001 00000003 7fffffff 2f71");
  EXPECT_EQ(jute::DecodeServerFrame(lying).status().code(), Code::kCorruption);
  std::string negative =
      Unhex("ffffffff ffffffffffffffff 00000000 00000001 00000003 fffffffe 2f71");
  EXPECT_EQ(jute::DecodeServerFrame(negative).status().code(), Code::kCorruption);
}

TEST(JuteTest, FrameBufferChecksLengthBeforeBuffering) {
  jute::FrameBuffer fb(1024);
  std::string_view out;
  fb.Append(Unhex("00000401"));  // 1025 > limit
  EXPECT_EQ(fb.Next(&out).status().code(), Code::kTooLarge);
  jute::FrameBuffer neg;
  neg.Append(Unhex("80000000"));
  EXPECT_EQ(neg.Next(&out).status().code(), Code::kCorruption);
  jute::FrameBuffer two;
  two.Append(Unhex("00000000 00000002 abcd"));  // an empty frame, then a 2-byte one
  auto r = two.Next(&out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, jute::FrameBuffer::Outcome::kFrame);
  EXPECT_TRUE(out.empty());
  r = two.Next(&out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, jute::FrameBuffer::Outcome::kFrame);
  EXPECT_EQ(Hex(out), "abcd");
  r = two.Next(&out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, jute::FrameBuffer::Outcome::kNeedMore);
}

// Bounded random-input test of every decoder: random bytes and mutations of
// valid frames must give a value or a Status, never a crash (ASan/UBSan runs
// check reads out of bounds and overflow).
TEST(JuteTest, RandomInputNeverCrashesTheDecoders) {
  std::mt19937 rng(12345);
  jute::Writer response;
  response.Int(0);
  response.Int(4000);
  response.Long(77);
  response.Buffer(std::string(16, 'p'));
  response.Bool(false);
  const std::vector<std::string> seeds = {
      Unhex("ffffffff ffffffffffffffff 00000000 00000001 00000003 00000002 2f71"),
      Unhex("fffffffe 00000000000000de 00000000"),
      Unhex("00000001 00000000000000df 00000000 00000000"),
      response.bytes(),
  };
  size_t decoded = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string in;
    if (iter % 2 == 0) {
      in.resize(rng() % 64);
      for (auto& c : in) c = static_cast<char>(rng());
    } else {
      in = seeds[rng() % seeds.size()];
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int i = 0; i < flips && !in.empty(); ++i)
        in[rng() % in.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) in.resize(rng() % (in.size() + 1));
    }
    auto f = jute::DecodeServerFrame(in);
    if (f.ok()) {
      ++decoded;
      if (f->event) {
        EXPECT_LE(f->event->path.size(), in.size());
      }
    }
    auto c = jute::DecodeConnectResponse(in);
    if (c.ok()) {
      EXPECT_GE(c->timeout_ms, 0);
    }
    (void)jute::DecodeAddWatchReply(in).ok();
    jute::FrameBuffer fb(256);
    fb.Append(in);
    std::string_view out;
    for (int k = 0; k < 8; ++k) {
      auto r = fb.Next(&out);
      if (!r.ok() || *r == jute::FrameBuffer::Outcome::kNeedMore) break;
      EXPECT_LE(out.size(), 256u);
    }
  }
  EXPECT_GT(decoded, 0u);  // the mutations do reach the success paths
}

TEST(ConnectStringTest, ParsesServersPortsAndChroot) {
  auto cs = ParseConnectString("h1:2181,10.0.0.2:2182,[::1]:2183,h4/app/x");
  ASSERT_TRUE(cs.ok()) << cs.status().ToString();
  ASSERT_EQ(cs->servers.size(), 4u);
  EXPECT_EQ(cs->servers[0].host, "h1");
  EXPECT_EQ(cs->servers[1].port, 2182);
  EXPECT_EQ(cs->servers[2].host, "::1");
  EXPECT_EQ(cs->servers[2].ToString(), "[::1]:2183");
  EXPECT_EQ(cs->servers[3].port, kDefaultZkPort);
  EXPECT_EQ(cs->chroot, "/app/x");
  auto root = ParseConnectString("h:1/");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->chroot, "");
}

TEST(ConnectStringTest, RejectsBadStrings) {
  for (const char* bad : {"", ",", "h:", "h:0", "h:65536", "h:12x", ":2181", "h:1,", "[::1",
                          "h:1/a/", "h:1//a", "[::1]x"}) {
    auto cs = ParseConnectString(bad);
    EXPECT_FALSE(cs.ok()) << "accepted \"" << bad << "\"";
    if (!cs.ok()) {
      EXPECT_EQ(cs.status().code(), Code::kBadRequest);
    }
  }
}

TEST(ConnectStringTest, ValidatesPaths) {
  for (const char* good : {"/", "/a", "/a/b", "/rangekv/c1/ranges/00000007"}) {
    EXPECT_TRUE(ValidateZnodePath(good).ok()) << good;
  }
  for (const char* bad : {"", "probe", "/probe/", "//x", "/a//b", "/a/./b", "/.."}) {
    EXPECT_EQ(ValidateZnodePath(bad).code(), Code::kBadRequest) << bad;
  }
  EXPECT_FALSE(ValidateZnodePath(std::string("/a\0b", 4)).ok());
}

TEST(ConnectStringTest, ChrootMapping) {
  EXPECT_EQ(ToServerPath("", "/a"), "/a");
  EXPECT_EQ(ToServerPath("/c", "/"), "/c");
  EXPECT_EQ(ToServerPath("/c", "/a"), "/c/a");
  EXPECT_EQ(FromServerPath("/c", "/c"), "/");
  EXPECT_EQ(FromServerPath("/c", "/c/a"), "/a");
  EXPECT_EQ(FromServerPath("/c", "/cd/a"), std::nullopt);
  EXPECT_EQ(FromServerPath("/c", "/x"), std::nullopt);
}

TEST(ZkErrorsTest, MapsCodesAndKeepsTheName) {
  Status st = ZkStatus(-103, "set /a");
  EXPECT_EQ(st.code(), Code::kCasFailed);
  EXPECT_EQ(st.message().rfind("ZBADVERSION ", 0), 0u) << st.message();
  EXPECT_NE(st.message().find("set /a"), std::string::npos);
  EXPECT_EQ(ZkErrorOf(st), ZkError::kBadVersion);
  EXPECT_EQ(ZkStatus(-110, "create /a").code(), Code::kCasFailed);
  EXPECT_EQ(ZkErrorOf(ZkStatus(-110, "x")), ZkError::kNodeExists);
  EXPECT_EQ(ZkStatus(-101, "get /a").code(), Code::kBadRequest);
  EXPECT_EQ(ZkErrorOf(ZkStatus(-101, "x")), ZkError::kNoNode);
  EXPECT_EQ(ZkErrorOf(ZkStatus(-111, "x")), ZkError::kNotEmpty);
  EXPECT_EQ(ZkStatus(-4, "get /a").code(), Code::kUnavailable);
  EXPECT_EQ(ZkStatus(-112, "get /a").code(), Code::kUnavailable);
  EXPECT_EQ(ZkStatus(-7, "get /a").code(), Code::kTimeout);
  EXPECT_EQ(ZkStatus(-999, "x").code(), Code::kInternal);
  EXPECT_EQ(ZkErrorName(-999), "ZUNKNOWN(-999)");
  EXPECT_TRUE(ZkStatus(0, "x").ok());
  EXPECT_EQ(ZkErrorOf(Status::Ok()), ZkError::kNone);
  EXPECT_EQ(ZkErrorOf(Status(Code::kCasFailed, "not from zookeeper")), ZkError::kNone);
}

TEST(CallbackGateTest, NothingRunsAfterCloseAndCloseInsideACallbackWorks) {
  CallbackGate gate;
  int runs = 0;
  EXPECT_TRUE(gate.Run([&] { ++runs; }));
  EXPECT_TRUE(gate.Run([&] {
    ++runs;
    gate.Close();  // from inside: must not deadlock
  }));
  EXPECT_FALSE(gate.Run([&] { ++runs; }));
  EXPECT_EQ(runs, 2);
  EXPECT_TRUE(gate.closed());
}

}  // namespace
}  // namespace rangekv::zk
