// libFuzzer target: arbitrary bytes as the server side of a watch channel's
// connection (frames, then each payload through every decoder).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/zk/jute.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rangekv::zk::jute;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)DecodeConnectResponse(in);
  (void)DecodeServerFrame(in);
  (void)DecodeAddWatchReply(in);
  FrameBuffer frames(1 << 16);
  // Two appends so that partial frames are exercised too.
  frames.Append(in.substr(0, size / 2));
  for (int pass = 0; pass < 2; ++pass) {
    std::string_view payload;
    while (true) {
      auto r = frames.Next(&payload);
      if (!r.ok() || *r == FrameBuffer::Outcome::kNeedMore) break;
      (void)DecodeServerFrame(payload);
      (void)DecodeConnectResponse(payload);
    }
    if (pass == 0) frames.Append(in.substr(size / 2));
  }
  return 0;
}
