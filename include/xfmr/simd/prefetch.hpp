// SPDX-License-Identifier: MIT
// Software prefetch for kernels whose next rows the hardware prefetchers cannot see coming:
// rows further apart than a page (one head's slice of a K/V cache row) or L2-resident rows
// streamed into L1 behind other work (the norm row pipeline).
#ifndef XFMR_SIMD_PREFETCH_HPP
#define XFMR_SIMD_PREFETCH_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Prefetches (into all cache levels) the `bytes` bytes that start `ahead` bytes past p, one
/// request per 64-byte line. The address is formed as an integer: it may lie past the end of
/// the array (a prefetch never faults), which pointer arithmetic may not. noexcept, no effect
/// on results.
XFMR_INLINE void prefetch_bytes(const void* p, std::ptrdiff_t ahead, std::size_t bytes) noexcept {
  const std::uintptr_t base =
      reinterpret_cast<std::uintptr_t>(p) + static_cast<std::uintptr_t>(ahead);
  for (std::size_t off = 0; off < bytes; off += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(base + off));
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_PREFETCH_HPP
