#include "common/frame.h"

#include <algorithm>
#include <cstring>

namespace rangekv {

void PutFrameLength(uint32_t len, char* out4) {
  out4[0] = static_cast<char>(len >> 24);
  out4[1] = static_cast<char>(len >> 16);
  out4[2] = static_cast<char>(len >> 8);
  out4[3] = static_cast<char>(len);
}

uint32_t GetFrameLength(const char* in4) {
  const auto* p = reinterpret_cast<const unsigned char*>(in4);
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

namespace {
// A buffer this large is given back once it is empty, so one big frame does
// not pin its memory for the life of the connection.
constexpr size_t kKeepBytes = 256 * 1024;
constexpr size_t kMinBytes = 16 * 1024;
}  // namespace

// Moves the unread bytes to the front (at kHeaderSlot) of a buffer with room
// for `need` more bytes after them.
void FrameReader::Reshape(size_t need) {
  size_t pending = end_ - begin_;
  size_t want = kHeaderSlot + pending + need;
  if (want <= capacity()) {
    if (pending > 0) std::memmove(base() + kHeaderSlot, base() + begin_, pending);
  } else {
    size_t bytes = std::max(want, std::max(kMinBytes, capacity() * 2));
    size_t words = (bytes + 7) / 8;
    std::unique_ptr<uint64_t[]> fresh(new uint64_t[words]);
    if (pending > 0) {
      std::memcpy(reinterpret_cast<char*>(fresh.get()) + kHeaderSlot, base() + begin_, pending);
    }
    words_ = std::move(fresh);
    word_count_ = words;
  }
  begin_ = kHeaderSlot;
  end_ = kHeaderSlot + pending;
}

char* FrameReader::PrepareWrite(size_t want) {
  if (begin_ == end_ && capacity() > kKeepBytes && want <= kKeepBytes) {
    words_.reset();
    word_count_ = 0;
  }
  // Reclaim consumed space before growing, so a steady stream of small frames
  // keeps the buffer small.
  if (end_ + want > capacity()) Reshape(want);
  return base() + end_;
}

void FrameReader::Commit(size_t n) { end_ += n; }

void FrameReader::Append(std::string_view bytes) {
  if (bytes.empty()) return;
  std::memcpy(PrepareWrite(bytes.size()), bytes.data(), bytes.size());
  Commit(bytes.size());
}

Result<std::string_view> FrameReader::Next() {
  size_t avail = end_ - begin_;
  if (avail < kFrameHeaderBytes) return std::string_view();
  uint32_t len = GetFrameLength(base() + begin_);
  if (len > max_frame_) {
    return Status(Code::kTooLarge, "frame of " + std::to_string(len) + " bytes exceeds limit " +
                                       std::to_string(max_frame_));
  }
  if (len < 8 || len % 8 != 0) {
    return Status(Code::kBadRequest,
                  "frame length " + std::to_string(len) + " is not a whole number of words");
  }
  if (avail < kFrameHeaderBytes + len) return std::string_view();
  size_t at = begin_;
  begin_ += kFrameHeaderBytes + len;
  if ((at + kFrameHeaderBytes) % 8 != 0) {
    // Consumed bytes sit right before this frame (at >= 8 here), so sliding
    // the frame back by 4 bytes puts its payload on a word boundary without
    // touching the frames after it.
    std::memmove(base() + at - 4, base() + at, kFrameHeaderBytes + len);
    at -= 4;
  }
  return std::string_view(base() + at + kFrameHeaderBytes, len);
}

}  // namespace rangekv
