#include "common/crc32c.h"

#include <array>

#if defined(__x86_64__) && defined(__SSE4_2__)
#include <nmmintrin.h>
#define RANGEKV_CRC32C_HW 1
#elif defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#define RANGEKV_CRC32C_DISPATCH 1
#endif

namespace rangekv::crc32c {
namespace {

// Slicing-by-8 tables for the reflected Castagnoli polynomial 0x82F63B78.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  constexpr Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};
constexpr Tables kTables;

uint32_t ExtendPortable(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  uint32_t c = ~crc;
  while (n >= 8) {
    uint32_t lo = c ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                       uint32_t(p[3]) << 24);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

#if defined(RANGEKV_CRC32C_HW) || defined(RANGEKV_CRC32C_DISPATCH)
#if defined(RANGEKV_CRC32C_DISPATCH)
__attribute__((target("sse4.2")))
#endif
uint32_t ExtendHw(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = ~crc;
  while (n >= 8) {
    uint64_t v;
    __builtin_memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
#endif

bool HaveHw() {
#if defined(RANGEKV_CRC32C_HW)
  return true;
#elif defined(RANGEKV_CRC32C_DISPATCH)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_SSE4_2) != 0;
#else
  return false;
#endif
}

}  // namespace

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  static const bool hw = HaveHw();
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(RANGEKV_CRC32C_HW) || defined(RANGEKV_CRC32C_DISPATCH)
  if (hw) return ExtendHw(crc, p, n);
#endif
  (void)hw;
  return ExtendPortable(crc, p, n);
}

}  // namespace rangekv::crc32c
