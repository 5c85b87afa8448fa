// SPDX-License-Identifier: MIT
// Out-of-place matrix transpose in register blocks (8×8 floats / 4×4 doubles with AVX2 and
// AVX-512).
#ifndef XFMR_SIMD_TRANSPOSE_HPP
#define XFMR_SIMD_TRANSPOSE_HPP

#include <cstddef>
#include <type_traits>

#include "../config.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {

#if XFMR_HAS_AVX2
/// Columns t of the 8×8 (float) block whose rows are r[0..7]: r[i] becomes column i.
XFMR_INLINE void transpose8(__m256 r[8]) noexcept {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
/// The same for a 4×4 block of doubles.
XFMR_INLINE void transpose4(__m256d r[4]) noexcept {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

#endif

}  // namespace detail

/// dst[c·ldd + r] = src[r·lds + c] for r < rows, c < cols. No alignment required; src and dst
/// must not overlap; nothing outside the rows × cols (dst: cols × rows) blocks is touched.
template <class Isa, typename T>
void transpose(std::size_t rows, std::size_t cols, const T* src, std::ptrdiff_t lds, T* dst,
               std::ptrdiff_t ldd) noexcept {
  std::size_t r0 = 0;
#if XFMR_HAS_AVX2
  // The AVX-512 tier runs the same 256-bit register blocks (AVX2 is part of it).
  if constexpr (std::is_same_v<Isa, avx2_isa> || std::is_same_v<Isa, avx512_isa>) {
    using V = Vec<T, avx2_isa>;
    constexpr std::size_t L = V::lanes;
    for (; r0 + L <= rows; r0 += L) {
      std::size_t c0 = 0;
      for (; c0 + L <= cols; c0 += L) {
        typename V::type x[L];
        for (std::size_t i = 0; i < L; ++i) x[i] = V::load(src + std::ptrdiff_t(r0 + i) * lds + c0);
        if constexpr (std::is_same_v<T, float>)
          detail::transpose8(x);
        else
          detail::transpose4(x);
        for (std::size_t i = 0; i < L; ++i) V::store(dst + std::ptrdiff_t(c0 + i) * ldd + r0, x[i]);
      }
      for (; c0 < cols; ++c0)
        for (std::size_t i = 0; i < L; ++i)
          dst[std::ptrdiff_t(c0) * ldd + r0 + i] = src[std::ptrdiff_t(r0 + i) * lds + c0];
    }
  }
#endif
  for (; r0 < rows; ++r0)
    for (std::size_t c = 0; c < cols; ++c)
      dst[std::ptrdiff_t(c) * ldd + r0] = src[std::ptrdiff_t(r0) * lds + c];
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_TRANSPOSE_HPP
