#include "common/frame.h"

#include <gtest/gtest.h>

#include "common/protocol.h"

namespace rangekv {
namespace {

std::string Frame(uint64_t id) {
  proto::Request r;
  r.id = id;
  r.kind = proto::OpKind::kPut;
  r.ops = {proto::WriteOp::Put("key" + std::to_string(id), std::string(id % 50, 'x'))};
  std::string out;
  proto::EncodeRequest(r, out);
  return out;
}

TEST(FrameReaderTest, SplitsStreamAtEveryByteBoundary) {
  std::string stream;
  for (uint64_t i = 1; i <= 20; ++i) stream += Frame(i);
  for (size_t chunk : {1u, 3u, 7u, 64u, 1000u}) {
    FrameReader reader;
    uint64_t next_id = 1;
    for (size_t off = 0; off < stream.size(); off += chunk) {
      reader.Append(std::string_view(stream).substr(off, chunk));
      while (true) {
        auto f = reader.Next();
        ASSERT_TRUE(f.ok()) << f.status().ToString();
        if (f->empty()) break;
        // Aligned payloads let the decoder read them in place.
        EXPECT_EQ(reinterpret_cast<uintptr_t>(f->data()) % 8, 0u);
        auto req = proto::DecodeRequest(*f);
        ASSERT_TRUE(req.ok()) << req.status().ToString();
        EXPECT_EQ(req->id, next_id++);
      }
    }
    EXPECT_EQ(next_id, 21u) << "chunk " << chunk;
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(FrameReaderTest, GivesBackMemoryAfterALargeFrame) {
  FrameReader reader;
  std::string big;
  proto::Request r;
  r.kind = proto::OpKind::kPut;
  r.ops = {proto::WriteOp::Put("k", std::string(1 << 20, 'v'))};
  proto::EncodeRequest(r, big);
  reader.Append(big);
  auto f = reader.Next();
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), big.size() - kFrameHeaderBytes);
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_GT(reader.buffer_bytes(), size_t{1} << 20);
  std::string small = Frame(3);
  reader.Append(small);
  EXPECT_LE(reader.buffer_bytes(), size_t{256} << 10);
  auto g = reader.Next();
  ASSERT_TRUE(g.ok());
  auto req = proto::DecodeRequest(*g);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->id, 3u);
}

TEST(FrameReaderTest, RejectsOversizeBeforeReadingBody) {
  FrameReader reader(1024);
  char hdr[4];
  PutFrameLength(4096, hdr);
  reader.Append(std::string_view(hdr, 4));
  auto f = reader.Next();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Code::kTooLarge);
}

TEST(FrameReaderTest, RejectsLengthsThatAreNotWords) {
  for (uint32_t len : {0u, 1u, 7u, 13u}) {
    FrameReader reader;
    char hdr[4];
    PutFrameLength(len, hdr);
    reader.Append(std::string_view(hdr, 4));
    auto f = reader.Next();
    ASSERT_FALSE(f.ok()) << len;
    EXPECT_EQ(f.status().code(), Code::kBadRequest);
  }
}

}  // namespace
}  // namespace rangekv
