// common/crc32c.h — CRC-32C (Castagnoli), as used by every on-disk record.
//
// Stored checksums are masked (rotated and offset) so that a CRC computed
// over data that itself embeds a CRC does not degenerate; Unmask(Mask(x)) == x.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rangekv::crc32c {

// Extends crc with data. Value(data) == Extend(0, data).
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace rangekv::crc32c
