// SPDX-License-Identifier: MIT
// bfloat16 storage: the type xfmr::bf16, float -> bf16 round-to-nearest-even and bf16 -> float
// (exact), one value at a time and vectorised over rows on every ISA. Storage only: arithmetic
// always widens to float (DESIGN.md §2).
#ifndef XFMR_SIMD_BF16_HPP
#define XFMR_SIMD_BF16_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../config.hpp"
#include "isa.hpp"
#include "vec.hpp"

#if XFMR_HAS_AVX2
#include <immintrin.h>
#endif

XFMR_NAMESPACE_BEGIN

/// A bfloat16 value: the upper 16 bits of an IEEE binary32 (sign, 8 exponent bits, 7 mantissa
/// bits; 8 significant bits). A trivial 2-byte struct (arrays of it are the bytes of a BF16
/// tensor on a little-endian host); convert with to_bf16 / to_float, or the row conversions
/// simd::convert_row. Two bf16 compare equal when their bits do (so NaN == NaN of equal bits,
/// +0 != −0): storage identity, not arithmetic.
struct bf16 {
  std::uint16_t bits;

  static constexpr bf16 from_bits(std::uint16_t b) noexcept { return bf16{b}; }
  friend constexpr bool operator==(bf16 a, bf16 b) noexcept { return a.bits == b.bits; }
  friend constexpr bool operator!=(bf16 a, bf16 b) noexcept { return a.bits != b.bits; }
};
static_assert(sizeof(bf16) == 2, "xfmr::bf16 must be 2 bytes");

namespace detail {
/// Round-to-nearest-even of float bits u to the upper 16 bits, in integer arithmetic: add half
/// an ulp of bf16 (0x7fff) plus the lowest kept bit (ties go to even), keep the upper half. Exact
/// for every finite input, subnormals included (bit patterns of one sign are ordered as the
/// values, and a carry into the exponent is the correct next binade); values at or past the
/// largest bf16 + half an ulp round to ±inf, ±inf stay. NaN (exponent all ones, mantissa ≠ 0):
/// sign and the upper 6 payload bits kept, the quiet bit (0x0040) set, so a NaN stays a NaN and
/// a signalling one becomes quiet (as vcvtneps2bf16 does).
constexpr std::uint16_t float_bits_to_bf16_bits(std::uint32_t u) noexcept {
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u | 0x00400000u) >> 16);
  return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
}  // namespace detail

/// f rounded to the nearest bf16, ties to even (relative error ≤ 2^-8 for normal results:
/// 8 significant bits); NaN stays NaN (quiet), ±inf stay, finite values ≥ 0x1.ffp127 (the largest
/// bf16 plus half its ulp) become ±inf, subnormals round like normals (no flush to zero).
inline bf16 to_bf16(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return bf16{detail::float_bits_to_bf16_bits(u)};
}

/// The float of equal value (exact: every bf16 is a float).
inline float to_float(bf16 h) noexcept {
  const std::uint32_t u = std::uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

namespace simd {
namespace detail {

#if XFMR_HAS_AVX2
/// 8 floats → 8 bf16 bits (RNE, as float_bits_to_bf16_bits), in the low 16 bits of each 32.
XFMR_INLINE __m256i bf16_round_avx2(__m256 x) noexcept {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
  const __m256i q = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
  return _mm256_srli_epi32(_mm256_blendv_epi8(r, q, nan), 16);
}
/// 8 bf16 rounded values (low halves of r) packed into 8 × 16 bits.
XFMR_INLINE __m128i bf16_pack_avx2(__m256i r) noexcept {
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
/// 8 × 16 bits (bf16) → 8 floats.
XFMR_INLINE __m256 bf16_widen_avx2(__m128i h) noexcept {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
#endif

#if XFMR_HAS_AVX512
/// 16 floats → 16 bf16 (RNE, as float_bits_to_bf16_bits). Integer arithmetic rather than
/// vcvtneps2bf16: the instruction treats subnormal inputs as zero (measured on Sapphire Rapids:
/// 0x00018000 → 0x0000 instead of 0x0002), and the conversion must give the same bits on every
/// ISA.
XFMR_INLINE __m256i bf16_round_avx512(__m512 x) noexcept {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}
XFMR_INLINE __m512 bf16_widen_avx512(__m256i h) noexcept {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
#endif

}  // namespace detail

/// out[i] = to_bf16(in[i]) for i < n (RNE, the same bits on every ISA). n >= 0; no alignment
/// required; nothing past out[n−1] written or in[n−1] read; in and out must not overlap.
/// noexcept, no allocation.
template <class Isa = native_isa>
void convert_row(const float* in, bf16* out, Index n) noexcept {
  Index i = 0;
#if XFMR_HAS_AVX512
  if constexpr (std::is_same_v<Isa, avx512_isa>) {
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                          detail::bf16_round_avx512(_mm512_loadu_ps(in + i)));
    if (i < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
      _mm256_mask_storeu_epi16(out + i, m,
                               detail::bf16_round_avx512(_mm512_maskz_loadu_ps(m, in + i)));
    }
    return;
  }
#endif
#if XFMR_HAS_AVX2
  if constexpr (std::is_same_v<Isa, avx2_isa>) {
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                       detail::bf16_pack_avx2(detail::bf16_round_avx2(_mm256_loadu_ps(in + i))));
    if (i < n) {  // masked load, then only n − i values leave the register
      const auto w = static_cast<std::size_t>(n - i);
      const __m128i h = detail::bf16_pack_avx2(
          detail::bf16_round_avx2(Vec<float, avx2_isa>::load_partial(in + i, w)));
      std::uint16_t tmp[8];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), h);
      std::memcpy(out + i, tmp, w * sizeof(bf16));
    }
    return;
  }
#endif
  for (; i < n; ++i) out[i] = to_bf16(in[i]);
}

/// out[i] = to_float(in[i]) for i < n (exact). Same contract as the other direction.
template <class Isa = native_isa>
void convert_row(const bf16* in, float* out, Index n) noexcept {
  Index i = 0;
#if XFMR_HAS_AVX512
  if constexpr (std::is_same_v<Isa, avx512_isa>) {
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(out + i, detail::bf16_widen_avx512(_mm256_loadu_si256(
                                    reinterpret_cast<const __m256i*>(in + i))));
    if (i < n) {
      const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
      _mm512_mask_storeu_ps(out + i, m,
                            detail::bf16_widen_avx512(_mm256_maskz_loadu_epi16(m, in + i)));
    }
    return;
  }
#endif
#if XFMR_HAS_AVX2
  if constexpr (std::is_same_v<Isa, avx2_isa>) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(out + i, detail::bf16_widen_avx2(_mm_loadu_si128(
                                    reinterpret_cast<const __m128i*>(in + i))));
    if (i < n) {  // the tail through a small buffer: nothing past in[n−1] read
      const auto w = static_cast<std::size_t>(n - i);
      std::uint16_t tmp[8] = {};
      std::memcpy(tmp, in + i, w * sizeof(bf16));
      Vec<float, avx2_isa>::store_partial(
          out + i, detail::bf16_widen_avx2(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp))),
          w);
    }
    return;
  }
#endif
  for (; i < n; ++i) out[i] = to_float(in[i]);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_BF16_HPP
