// libFuzzer target: arbitrary bytes as a connection's byte stream.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/frame.h"
#include "common/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rangekv::FrameReader reader(1 << 20);
  // Split the input in two appends so partial frames are exercised too.
  size_t half = size / 2;
  reader.Append(std::string_view(reinterpret_cast<const char*>(data), half));
  for (int pass = 0; pass < 2; ++pass) {
    while (true) {
      auto f = reader.Next();
      if (!f.ok() || f->empty()) break;
      (void)rangekv::proto::DecodeRequest(*f);
      (void)rangekv::proto::DecodeResponse(*f);
    }
    if (pass == 0) {
      reader.Append(std::string_view(reinterpret_cast<const char*>(data) + half, size - half));
    }
  }
  return 0;
}
