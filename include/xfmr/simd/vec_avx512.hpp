// SPDX-License-Identifier: MIT
// Vec<T, avx512_isa>: 16 floats or 8 doubles per 512-bit register, AVX-512 F/BW/VL/DQ + FMA.
#ifndef XFMR_SIMD_VEC_AVX512_HPP
#define XFMR_SIMD_VEC_AVX512_HPP

#include "vec_scalar.hpp"

#if XFMR_HAS_AVX512
#include <immintrin.h>

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Same interface and semantics as Vec<T, avx2_isa> (max/min: b when either is NaN, select_lt
/// false on NaN, round to nearest even). Tails use k-masks: the masked-off lanes of
/// load_partial/store_partial are neither read nor written (no fault past n), and read as zero.
template <>
struct Vec<float, avx512_isa> {
  using type = __m512;
  static constexpr std::size_t lanes = 16;

  /// The first n lanes (n ≤ lanes) as a k-mask.
  static XFMR_INLINE __mmask16 mask(std::size_t n) noexcept {
    return static_cast<__mmask16>((1u << n) - 1u);
  }
  static XFMR_INLINE type load(const float* p) noexcept { return _mm512_loadu_ps(p); }
  static XFMR_INLINE void store(float* p, type v) noexcept { _mm512_storeu_ps(p, v); }
  /// Non-temporal store; p aligned to 64 bytes (simd::stream_fence before others read it).
  static XFMR_INLINE void stream(float* p, type v) noexcept { _mm512_stream_ps(p, v); }
  static XFMR_INLINE type load_partial(const float* p, std::size_t n) noexcept {
    return _mm512_maskz_loadu_ps(mask(n), p);
  }
  static XFMR_INLINE void store_partial(float* p, type v, std::size_t n) noexcept {
    _mm512_mask_storeu_ps(p, mask(n), v);
  }
  static XFMR_INLINE type set1(float a) noexcept { return _mm512_set1_ps(a); }
  static XFMR_INLINE type zero() noexcept { return _mm512_setzero_ps(); }
  static XFMR_INLINE type add(type a, type b) noexcept { return _mm512_add_ps(a, b); }
  static XFMR_INLINE type sub(type a, type b) noexcept { return _mm512_sub_ps(a, b); }
  static XFMR_INLINE type mul(type a, type b) noexcept { return _mm512_mul_ps(a, b); }
  static XFMR_INLINE type fmadd(type a, type b, type c) noexcept {
    return _mm512_fmadd_ps(a, b, c);
  }
  static XFMR_INLINE type fnmadd(type a, type b, type c) noexcept {
    return _mm512_fnmadd_ps(a, b, c);
  }
  static XFMR_INLINE type fmsub(type a, type b, type c) noexcept {
    return _mm512_fmsub_ps(a, b, c);
  }
  /// Even lanes a·b − c, odd lanes a·b + c.
  static XFMR_INLINE type fmaddsub(type a, type b, type c) noexcept {
    return _mm512_fmaddsub_ps(a, b, c);
  }
  /// Even lanes a·b + c, odd lanes a·b − c.
  static XFMR_INLINE type fmsubadd(type a, type b, type c) noexcept {
    return _mm512_fmsubadd_ps(a, b, c);
  }
  static XFMR_INLINE type div(type a, type b) noexcept { return _mm512_div_ps(a, b); }
  static XFMR_INLINE type abs(type a) noexcept {
    return _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
  }
  static XFMR_INLINE type select_lt(type a, type b, type t, type f) noexcept {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t);
  }
  static XFMR_INLINE type max(type a, type b) noexcept { return _mm512_max_ps(a, b); }
  static XFMR_INLINE type min(type a, type b) noexcept { return _mm512_min_ps(a, b); }
  static XFMR_INLINE type round(type a) noexcept {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static XFMR_INLINE type pow2i(type n) noexcept {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  /// t's bits shifted left by the mantissa width 23: 2^n for t = n + 127 + 1.5·2^23 (the integer
  /// n + 127 in t's low mantissa bits, as exp's rounding leaves it; +0 for n = −127).
  static XFMR_INLINE type shift_to_exponent(type t) noexcept {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(t), 23));
  }
  /// [a1, a0, a3, a2, ...]
  static XFMR_INLINE type swap_pairs(type a) noexcept {
    return _mm512_permute_ps(a, _MM_SHUFFLE(2, 3, 0, 1));
  }
  /// Loads lanes/2 values and repeats each: [p0, p0, p1, p1, …, p7, p7].
  static XFMR_INLINE type load_dup_pairs(const float* p) noexcept {
    const __m512 v = _mm512_castps256_ps512(_mm256_loadu_ps(p));
    return _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), v);
  }
  /// As load_dup_pairs for the first n < lanes/2 values; lanes past 2n are zero.
  static XFMR_INLINE type load_dup_pairs_partial(const float* p, std::size_t n) noexcept {
    const __m512 v = _mm512_maskz_loadu_ps(mask(n), p);
    return _mm512_permutexvar_ps(
        _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), v);
  }
  static XFMR_INLINE float reduce_add(type a) noexcept {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static XFMR_INLINE float reduce_max(type a) noexcept {
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(a),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static XFMR_INLINE void reduce_add4(type a, type b, type c, type e, float* out) noexcept {
    // Each to 256 bits (low half + high half), then the AVX2 tree: per 128-bit half
    // ab = (a0+a2, b0+b2, a1+a3, b1+b3), ce likewise, then (a, b, c, e); the halves last.
    const auto half = [](__m512 x) {
      return _mm256_add_ps(_mm512_castps512_ps256(x),
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    };
    const __m256 a8 = half(a), b8 = half(b), c8 = half(c), e8 = half(e);
    const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a8, b8), _mm256_unpackhi_ps(a8, b8));
    const __m256 ce = _mm256_add_ps(_mm256_unpacklo_ps(c8, e8), _mm256_unpackhi_ps(c8, e8));
    const __m256 s =
        _mm256_add_ps(_mm256_shuffle_ps(ab, ce, 0x44), _mm256_shuffle_ps(ab, ce, 0xEE));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }
};

template <>
struct Vec<double, avx512_isa> {
  using type = __m512d;
  static constexpr std::size_t lanes = 8;

  static XFMR_INLINE __mmask8 mask(std::size_t n) noexcept {
    return static_cast<__mmask8>((1u << n) - 1u);
  }
  static XFMR_INLINE type load(const double* p) noexcept { return _mm512_loadu_pd(p); }
  static XFMR_INLINE void store(double* p, type v) noexcept { _mm512_storeu_pd(p, v); }
  static XFMR_INLINE void stream(double* p, type v) noexcept { _mm512_stream_pd(p, v); }
  static XFMR_INLINE type load_partial(const double* p, std::size_t n) noexcept {
    return _mm512_maskz_loadu_pd(mask(n), p);
  }
  static XFMR_INLINE void store_partial(double* p, type v, std::size_t n) noexcept {
    _mm512_mask_storeu_pd(p, mask(n), v);
  }
  static XFMR_INLINE type set1(double a) noexcept { return _mm512_set1_pd(a); }
  static XFMR_INLINE type zero() noexcept { return _mm512_setzero_pd(); }
  static XFMR_INLINE type add(type a, type b) noexcept { return _mm512_add_pd(a, b); }
  static XFMR_INLINE type sub(type a, type b) noexcept { return _mm512_sub_pd(a, b); }
  static XFMR_INLINE type mul(type a, type b) noexcept { return _mm512_mul_pd(a, b); }
  static XFMR_INLINE type fmadd(type a, type b, type c) noexcept {
    return _mm512_fmadd_pd(a, b, c);
  }
  static XFMR_INLINE type fnmadd(type a, type b, type c) noexcept {
    return _mm512_fnmadd_pd(a, b, c);
  }
  static XFMR_INLINE type fmsub(type a, type b, type c) noexcept {
    return _mm512_fmsub_pd(a, b, c);
  }
  static XFMR_INLINE type fmaddsub(type a, type b, type c) noexcept {
    return _mm512_fmaddsub_pd(a, b, c);
  }
  static XFMR_INLINE type fmsubadd(type a, type b, type c) noexcept {
    return _mm512_fmsubadd_pd(a, b, c);
  }
  static XFMR_INLINE type div(type a, type b) noexcept { return _mm512_div_pd(a, b); }
  static XFMR_INLINE type abs(type a) noexcept {
    return _mm512_castsi512_pd(
        _mm512_and_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(0x7fffffffffffffffLL)));
  }
  static XFMR_INLINE type select_lt(type a, type b, type t, type f) noexcept {
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(a, b, _CMP_LT_OQ), f, t);
  }
  static XFMR_INLINE type max(type a, type b) noexcept { return _mm512_max_pd(a, b); }
  static XFMR_INLINE type min(type a, type b) noexcept { return _mm512_min_pd(a, b); }
  static XFMR_INLINE type round(type a) noexcept {
    return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  /// AVX-512DQ converts double → int64 directly.
  static XFMR_INLINE type pow2i(type n) noexcept {
    const __m512i e = _mm512_add_epi64(_mm512_cvtpd_epi64(n), _mm512_set1_epi64(1023));
    return _mm512_castsi512_pd(_mm512_slli_epi64(e, 52));
  }
  /// t's bits shifted left by the mantissa width 52: 2^n for t = n + 1023 + 1.5·2^52 (the integer
  /// n + 1023 in t's low mantissa bits, as exp's rounding leaves it; +0 for n = −1023).
  static XFMR_INLINE type shift_to_exponent(type t) noexcept {
    return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(t), 52));
  }
  static XFMR_INLINE type swap_pairs(type a) noexcept { return _mm512_permute_pd(a, 0b01010101); }
  static XFMR_INLINE type load_dup_pairs(const double* p) noexcept {
    const __m512d v = _mm512_castpd256_pd512(_mm256_loadu_pd(p));
    return _mm512_permutexvar_pd(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3), v);
  }
  static XFMR_INLINE type load_dup_pairs_partial(const double* p, std::size_t n) noexcept {
    const __m512d v = _mm512_maskz_loadu_pd(mask(n), p);
    return _mm512_permutexvar_pd(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3), v);
  }
  static XFMR_INLINE double reduce_add(type a) noexcept {
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static XFMR_INLINE double reduce_max(type a) noexcept {
    const __m256d h = _mm256_max_pd(_mm512_castpd512_pd256(a), _mm512_extractf64x4_pd(a, 1));
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static XFMR_INLINE void reduce_add4(type a, type b, type c, type e, double* out) noexcept {
    // Each to 256 bits (low half + high half), then the AVX2 tree: ab = (a0+a1, b0+b1, a2+a3,
    // b2+b3), ce likewise; the low halves plus the high ones.
    const auto half = [](__m512d x) {
      return _mm256_add_pd(_mm512_castpd512_pd256(x), _mm512_extractf64x4_pd(x, 1));
    };
    const __m256d ab = _mm256_hadd_pd(half(a), half(b)), ce = _mm256_hadd_pd(half(c), half(e));
    _mm256_storeu_pd(out, _mm256_add_pd(_mm256_permute2f128_pd(ab, ce, 0x20),
                                        _mm256_permute2f128_pd(ab, ce, 0x31)));
  }
};

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_HAS_AVX512
#endif  // XFMR_SIMD_VEC_AVX512_HPP
