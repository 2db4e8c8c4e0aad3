// common/frame.h — length-prefixed frames, I/O-free.
//
// Frame layout (every connection of rangekv, both directions):
//
//   | field   | size | encoding                                     |
//   |---------|------|----------------------------------------------|
//   | length  | 4 B  | unsigned, big-endian: bytes of payload       |
//   | payload | len  | one Cap'n Proto flat message (protocol.capnp)|
//
// Invariants: 8 <= length <= max_frame (default kDefaultMaxFrame) and
// length % 8 == 0 (a flat Cap'n Proto message is whole words). A length
// outside that is a protocol error: the reader stops and the connection is
// closed with the reason; nothing is allocated for a length before it is
// checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rangekv/status.h"

namespace rangekv {

inline constexpr size_t kFrameHeaderBytes = 4;
// Big enough for a batch of large values; a single value is capped at 1 MiB.
inline constexpr size_t kDefaultMaxFrame = 64 * 1024 * 1024;

void PutFrameLength(uint32_t len, char* out4);
uint32_t GetFrameLength(const char* in4);

// Accumulates bytes from a stream and yields whole frames.
//
//   FrameReader r;
//   r.Append(bytes_read);
//   while (true) {
//     auto f = r.Next();             // Result<std::string_view>
//     if (!f.ok()) -> close the connection with f.status()
//     if (f->empty()) break;         // need more bytes
//     handle(*f);                    // valid until the next Append/Next
//   }
class FrameReader {
 public:
  explicit FrameReader(size_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}

  // Where the next read may put up to `want` bytes; call Commit(n) after.
  char* PrepareWrite(size_t want);
  void Commit(size_t n);
  void Append(std::string_view bytes);

  // The next complete payload, an empty view when more bytes are needed, or
  // BAD_REQUEST / TOO_LARGE for an invalid length. The payload is 8-byte
  // aligned, so a Cap'n Proto reader uses it in place; it stays valid until
  // the next call of any method.
  Result<std::string_view> Next();

  size_t buffered() const { return end_ - begin_; }
  size_t max_frame() const { return max_frame_; }
  // Bytes of memory the reader holds (for tests and metrics).
  size_t buffer_bytes() const { return capacity(); }

 private:
  // The buffer is made of words and its data starts at offset 4, so the
  // first payload is word-aligned; every second frame after it would start
  // 4 bytes off, and Next() slides such a frame back by 4 bytes.
  static constexpr size_t kHeaderSlot = 4;
  char* base() { return reinterpret_cast<char*>(words_.get()); }
  size_t capacity() const { return word_count_ * 8; }
  void Reshape(size_t need);

  std::unique_ptr<uint64_t[]> words_;
  size_t word_count_ = 0;
  size_t begin_ = kHeaderSlot;
  size_t end_ = kHeaderSlot;
  size_t max_frame_;
};

}  // namespace rangekv
