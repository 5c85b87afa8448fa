// SPDX-License-Identifier: MIT
// Vec<T, avx2_isa>: 8 floats or 4 doubles per 256-bit register, AVX2 + FMA.
#ifndef XFMR_SIMD_VEC_AVX2_HPP
#define XFMR_SIMD_VEC_AVX2_HPP

#include "vec_scalar.hpp"

#if XFMR_HAS_AVX2
#include <immintrin.h>

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {
// Tails by mask table (XNNPACK): loadu(table + lanes - n) gives n all-ones lanes, then zeros.
// maskload/maskstore never touch the masked-off lanes, so nothing past n is read or written.
alignas(64) inline constexpr std::int32_t kMask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                         0,  0,  0,  0,  0,  0,  0,  0};
alignas(64) inline constexpr std::int64_t kMask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
}  // namespace detail

template <>
struct Vec<float, avx2_isa> {
  using type = __m256;
  static constexpr std::size_t lanes = 8;

  static XFMR_INLINE __m256i mask(std::size_t n) noexcept {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(detail::kMask32 + 8 - n));
  }
  static XFMR_INLINE type load(const float* p) noexcept { return _mm256_loadu_ps(p); }
  static XFMR_INLINE void store(float* p, type v) noexcept { _mm256_storeu_ps(p, v); }
  /// Non-temporal store; p aligned to 32 bytes (simd::stream_fence before others read it).
  static XFMR_INLINE void stream(float* p, type v) noexcept { _mm256_stream_ps(p, v); }
  static XFMR_INLINE type load_partial(const float* p, std::size_t n) noexcept {
    return _mm256_maskload_ps(p, mask(n));
  }
  static XFMR_INLINE void store_partial(float* p, type v, std::size_t n) noexcept {
    _mm256_maskstore_ps(p, mask(n), v);
  }
  static XFMR_INLINE type set1(float a) noexcept { return _mm256_set1_ps(a); }
  static XFMR_INLINE type zero() noexcept { return _mm256_setzero_ps(); }
  static XFMR_INLINE type add(type a, type b) noexcept { return _mm256_add_ps(a, b); }
  static XFMR_INLINE type sub(type a, type b) noexcept { return _mm256_sub_ps(a, b); }
  static XFMR_INLINE type mul(type a, type b) noexcept { return _mm256_mul_ps(a, b); }
  static XFMR_INLINE type fmadd(type a, type b, type c) noexcept { return _mm256_fmadd_ps(a, b, c); }
  static XFMR_INLINE type fnmadd(type a, type b, type c) noexcept {
    return _mm256_fnmadd_ps(a, b, c);
  }
  static XFMR_INLINE type fmsub(type a, type b, type c) noexcept {
    return _mm256_fmsub_ps(a, b, c);
  }
  /// Even lanes a·b − c, odd lanes a·b + c.
  static XFMR_INLINE type fmaddsub(type a, type b, type c) noexcept {
    return _mm256_fmaddsub_ps(a, b, c);
  }
  /// Even lanes a·b + c, odd lanes a·b − c.
  static XFMR_INLINE type fmsubadd(type a, type b, type c) noexcept {
    return _mm256_fmsubadd_ps(a, b, c);
  }
  static XFMR_INLINE type div(type a, type b) noexcept { return _mm256_div_ps(a, b); }
  static XFMR_INLINE type abs(type a) noexcept {
    return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  }
  static XFMR_INLINE type select_lt(type a, type b, type t, type f) noexcept {
    return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ));
  }
  static XFMR_INLINE type max(type a, type b) noexcept { return _mm256_max_ps(a, b); }
  static XFMR_INLINE type min(type a, type b) noexcept { return _mm256_min_ps(a, b); }
  static XFMR_INLINE type round(type a) noexcept {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static XFMR_INLINE type pow2i(type n) noexcept {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  /// t's bits shifted left by the mantissa width 23: 2^n for t = n + 127 + 1.5·2^23 (the integer
  /// n + 127 in t's low mantissa bits, as exp's rounding leaves it; +0 for n = −127).
  static XFMR_INLINE type shift_to_exponent(type t) noexcept {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23));
  }
  /// [a1, a0, a3, a2, ...]
  static XFMR_INLINE type swap_pairs(type a) noexcept {
    return _mm256_permute_ps(a, _MM_SHUFFLE(2, 3, 0, 1));
  }
  /// Loads lanes/2 values and repeats each: [p0, p0, p1, p1, p2, p2, p3, p3].
  static XFMR_INLINE type load_dup_pairs(const float* p) noexcept {
    const __m256 v = _mm256_castps128_ps256(_mm_loadu_ps(p));
    return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
  }
  /// As load_dup_pairs for the first n < lanes/2 values; lanes past 2n are zero.
  static XFMR_INLINE type load_dup_pairs_partial(const float* p, std::size_t n) noexcept {
    const __m256 v = _mm256_castps128_ps256(
        _mm_maskload_ps(p, _mm_loadu_si128(reinterpret_cast<const __m128i*>(
                               detail::kMask32 + 8 - n))));
    return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
  }
  static XFMR_INLINE float reduce_add(type a) noexcept {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static XFMR_INLINE float reduce_max(type a) noexcept {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static XFMR_INLINE void reduce_add4(type a, type b, type c, type e, float* out) noexcept {
    // Per 128-bit half: ab = (a0+a2, b0+b2, a1+a3, b1+b3), ce likewise, then the pairs of
    // those: (a, b, c, e) partial sums; the two halves added last.
    const __m256 ab = _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    const __m256 ce = _mm256_add_ps(_mm256_unpacklo_ps(c, e), _mm256_unpackhi_ps(c, e));
    const __m256 s =
        _mm256_add_ps(_mm256_shuffle_ps(ab, ce, 0x44), _mm256_shuffle_ps(ab, ce, 0xEE));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
  }
};

template <>
struct Vec<double, avx2_isa> {
  using type = __m256d;
  static constexpr std::size_t lanes = 4;

  static XFMR_INLINE __m256i mask(std::size_t n) noexcept {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(detail::kMask64 + 4 - n));
  }
  static XFMR_INLINE type load(const double* p) noexcept { return _mm256_loadu_pd(p); }
  static XFMR_INLINE void store(double* p, type v) noexcept { _mm256_storeu_pd(p, v); }
  static XFMR_INLINE void stream(double* p, type v) noexcept { _mm256_stream_pd(p, v); }
  static XFMR_INLINE type load_partial(const double* p, std::size_t n) noexcept {
    return _mm256_maskload_pd(p, mask(n));
  }
  static XFMR_INLINE void store_partial(double* p, type v, std::size_t n) noexcept {
    _mm256_maskstore_pd(p, mask(n), v);
  }
  static XFMR_INLINE type set1(double a) noexcept { return _mm256_set1_pd(a); }
  static XFMR_INLINE type zero() noexcept { return _mm256_setzero_pd(); }
  static XFMR_INLINE type add(type a, type b) noexcept { return _mm256_add_pd(a, b); }
  static XFMR_INLINE type sub(type a, type b) noexcept { return _mm256_sub_pd(a, b); }
  static XFMR_INLINE type mul(type a, type b) noexcept { return _mm256_mul_pd(a, b); }
  static XFMR_INLINE type fmadd(type a, type b, type c) noexcept { return _mm256_fmadd_pd(a, b, c); }
  static XFMR_INLINE type fnmadd(type a, type b, type c) noexcept {
    return _mm256_fnmadd_pd(a, b, c);
  }
  static XFMR_INLINE type fmsub(type a, type b, type c) noexcept {
    return _mm256_fmsub_pd(a, b, c);
  }
  static XFMR_INLINE type fmaddsub(type a, type b, type c) noexcept {
    return _mm256_fmaddsub_pd(a, b, c);
  }
  static XFMR_INLINE type fmsubadd(type a, type b, type c) noexcept {
    return _mm256_fmsubadd_pd(a, b, c);
  }
  static XFMR_INLINE type div(type a, type b) noexcept { return _mm256_div_pd(a, b); }
  static XFMR_INLINE type abs(type a) noexcept {
    return _mm256_and_pd(a, _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL)));
  }
  static XFMR_INLINE type select_lt(type a, type b, type t, type f) noexcept {
    return _mm256_blendv_pd(f, t, _mm256_cmp_pd(a, b, _CMP_LT_OQ));
  }
  static XFMR_INLINE type max(type a, type b) noexcept { return _mm256_max_pd(a, b); }
  static XFMR_INLINE type min(type a, type b) noexcept { return _mm256_min_pd(a, b); }
  static XFMR_INLINE type round(type a) noexcept {
    return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  /// AVX2 has no double → int64 conversion: adding 1.5·2^52 puts the integer in the low
  /// mantissa bits, where 64-bit integer arithmetic can move it into the exponent field.
  static XFMR_INLINE type pow2i(type n) noexcept {
    const __m256d magic = _mm256_set1_pd(6755399441055744.0);  // 1.5 * 2^52
    const __m256i i = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(n, magic)),
                                       _mm256_castpd_si256(magic));
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(i, _mm256_set1_epi64x(1023)), 52));
  }
  /// t's bits shifted left by the mantissa width 52: 2^n for t = n + 1023 + 1.5·2^52 (the integer
  /// n + 1023 in t's low mantissa bits, as exp's rounding leaves it; +0 for n = −1023).
  static XFMR_INLINE type shift_to_exponent(type t) noexcept {
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(t), 52));
  }
  static XFMR_INLINE type swap_pairs(type a) noexcept { return _mm256_permute_pd(a, 0b0101); }
  static XFMR_INLINE type load_dup_pairs(const double* p) noexcept {
    const __m256d v = _mm256_castpd128_pd256(_mm_loadu_pd(p));
    return _mm256_permute4x64_pd(v, _MM_SHUFFLE(1, 1, 0, 0));
  }
  static XFMR_INLINE type load_dup_pairs_partial(const double* p, std::size_t n) noexcept {
    const __m256d v = _mm256_castpd128_pd256(_mm_maskload_pd(
        p, _mm_loadu_si128(reinterpret_cast<const __m128i*>(detail::kMask64 + 4 - n))));
    return _mm256_permute4x64_pd(v, _MM_SHUFFLE(1, 1, 0, 0));
  }
  static XFMR_INLINE double reduce_add(type a) noexcept {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static XFMR_INLINE double reduce_max(type a) noexcept {
    __m128d s = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    s = _mm_max_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
  static XFMR_INLINE void reduce_add4(type a, type b, type c, type e, double* out) noexcept {
    // ab = (a0+a1, b0+b1, a2+a3, b2+b3), ce likewise; then the low halves plus the high ones.
    const __m256d ab = _mm256_hadd_pd(a, b), ce = _mm256_hadd_pd(c, e);
    _mm256_storeu_pd(out, _mm256_add_pd(_mm256_permute2f128_pd(ab, ce, 0x20),
                                        _mm256_permute2f128_pd(ab, ce, 0x31)));
  }
};

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_HAS_AVX2
#endif  // XFMR_SIMD_VEC_AVX2_HPP
