// Random and mutated frames through the frame reader and both decoders:
// nothing may crash, hang or read out of bounds (run it under ASan too).
// Bounded by an iteration count, not by time, so it is deterministic.
#include <gtest/gtest.h>

#include <random>

#include "common/frame.h"
#include "common/protocol.h"

namespace rangekv {
namespace {

// Feeds bytes through a FrameReader and decodes whatever frames come out.
// Returns the number of frames that decoded.
int Drive(std::string_view bytes) {
  FrameReader reader(1 << 20);
  reader.Append(bytes);
  int decoded = 0;
  for (int i = 0; i < 1000; ++i) {
    auto f = reader.Next();
    if (!f.ok() || f->empty()) break;
    if (proto::DecodeRequest(*f).ok()) ++decoded;
    if (proto::DecodeResponse(*f).ok()) ++decoded;
  }
  return decoded;
}

std::string ValidFrames() {
  std::string s;
  proto::Request r;
  r.id = 1;
  r.kind = proto::OpKind::kBatch;
  r.ops = {proto::WriteOp::Put("a", "1"), proto::WriteOp::Cas("b", 3, "2"),
           proto::WriteOp::Delete("c")};
  proto::EncodeRequest(r, s);
  proto::Response resp;
  resp.kind = proto::Response::Kind::kEntries;
  resp.entries = {{"a", "1", 1}, {"b", "2", 2}};
  proto::EncodeResponse(resp, s);
  return s;
}

TEST(DecoderRobustnessTest, RandomBytes) {
  std::mt19937_64 rng(12345);
  for (int iter = 0; iter < 20000; ++iter) {
    size_t len = rng() % 256;
    std::string bytes(len, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    // Give half of the inputs a plausible length prefix so the decoders,
    // not just the length check, see the garbage.
    if (len >= 12 && iter % 2 == 0) PutFrameLength(static_cast<uint32_t>((len - 4) & ~7u), bytes.data());
    Drive(bytes);
  }
  SUCCEED();
}

TEST(DecoderRobustnessTest, MutatedValidFrames) {
  const std::string base = ValidFrames();
  ASSERT_EQ(Drive(base), 2);  // the unmutated stream decodes as one request + one response
  std::mt19937_64 rng(777);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = base;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < flips; ++i) {
      s[rng() % s.size()] = static_cast<char>(rng());
    }
    Drive(s);
  }
  SUCCEED();
}

TEST(DecoderRobustnessTest, EveryTruncation) {
  const std::string base = ValidFrames();
  for (size_t n = 0; n < base.size(); ++n) {
    int decoded = Drive(std::string_view(base).substr(0, n));
    EXPECT_LE(decoded, 1) << n;  // at most the first whole frame
  }
}

}  // namespace
}  // namespace rangekv
