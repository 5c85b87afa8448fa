// SPDX-License-Identifier: MIT
// Vec<T, scalar_isa>: the one-lane reference implementation of the vector vocabulary.
#ifndef XFMR_SIMD_VEC_SCALAR_HPP
#define XFMR_SIMD_VEC_SCALAR_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "isa.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

template <typename T, class Isa>
struct Vec;

/// One lane. max/min follow the x86 rule `max(a, b) = a > b ? a : b` (b when either is NaN), so
/// kernels written once behave the same on every ISA.
template <typename T>
struct Vec<T, scalar_isa> {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "xfmr::simd::Vec<T, Isa>: T must be float or double");
  using type = T;
  static constexpr std::size_t lanes = 1;

  static XFMR_INLINE type load(const T* p) noexcept { return *p; }
  static XFMR_INLINE void store(T* p, type v) noexcept { *p = v; }
  /// Non-temporal store of a whole vector (SIMD tiers: p aligned to sizeof(type); the line
  /// goes to memory without being read first). One lane: a plain store.
  static XFMR_INLINE void stream(T* p, type v) noexcept { *p = v; }
  /// First n lanes (n < lanes); the rest are zero. Never touches p[n] or beyond.
  static XFMR_INLINE type load_partial(const T* p, std::size_t n) noexcept {
    return n ? *p : T(0);
  }
  static XFMR_INLINE void store_partial(T* p, type v, std::size_t n) noexcept {
    if (n) *p = v;
  }
  static XFMR_INLINE type set1(T a) noexcept { return a; }
  static XFMR_INLINE type zero() noexcept { return T(0); }
  static XFMR_INLINE type add(type a, type b) noexcept { return a + b; }
  static XFMR_INLINE type sub(type a, type b) noexcept { return a - b; }
  static XFMR_INLINE type mul(type a, type b) noexcept { return a * b; }
  /// a·b + c, c − a·b and a·b − c: one rounding where the target has FMA (std::fma: one
  /// instruction), else two. Not left to the compiler's contraction of a·b + c, which depends on
  /// the inlining context: the same values rounded differently in different kernels (a LayerNorm
  /// row's bits moved with its place in a multi-row call).
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
  static XFMR_INLINE type fmadd(type a, type b, type c) noexcept { return std::fma(a, b, c); }
  static XFMR_INLINE type fnmadd(type a, type b, type c) noexcept { return std::fma(-a, b, c); }
  static XFMR_INLINE type fmsub(type a, type b, type c) noexcept { return std::fma(a, b, -c); }
#else
  static XFMR_INLINE type fmadd(type a, type b, type c) noexcept { return a * b + c; }
  static XFMR_INLINE type fnmadd(type a, type b, type c) noexcept { return c - a * b; }
  static XFMR_INLINE type fmsub(type a, type b, type c) noexcept { return a * b - c; }
#endif
  static XFMR_INLINE type div(type a, type b) noexcept { return a / b; }
  /// |a| (sign bit cleared, so abs(−0) = +0 and abs(NaN) is a NaN).
  static XFMR_INLINE type abs(type a) noexcept { return std::fabs(a); }
  /// a < b ? t : f lane by lane (false when either is NaN, as an ordered x86 compare).
  static XFMR_INLINE type select_lt(type a, type b, type t, type f) noexcept {
    return a < b ? t : f;
  }
  static XFMR_INLINE type max(type a, type b) noexcept { return a > b ? a : b; }
  static XFMR_INLINE type min(type a, type b) noexcept { return a < b ? a : b; }
  /// Round to nearest, ties to even (the default floating-point environment).
  static XFMR_INLINE type round(type a) noexcept { return std::nearbyint(a); }
  /// 2^n for an integer-valued n inside the normal exponent range; anything else (NaN included)
  /// gives an unspecified value on every ISA (here NaN, to keep the cast defined).
  static XFMR_INLINE type pow2i(type n) noexcept {
    if (!(n == n)) return n;
    using Bits = std::conditional_t<std::is_same_v<T, float>, std::int32_t, std::int64_t>;
    constexpr int mantissa = std::is_same_v<T, float> ? 23 : 52;
    constexpr Bits bias = std::is_same_v<T, float> ? 127 : 1023;
    const Bits bits = (static_cast<Bits>(n) + bias) << mantissa;
    T out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
  }
  /// t's bits shifted left by the mantissa width p (23 / 52): 2^n for t = n + bias + 1.5·2^p
  /// (bias 127 / 1023; the integer n + bias in t's low mantissa bits, as exp's rounding leaves
  /// it; +0 for n = −bias).
  static XFMR_INLINE type shift_to_exponent(type t) noexcept {
    using Bits = std::conditional_t<std::is_same_v<T, float>, std::uint32_t, std::uint64_t>;
    constexpr int mantissa = std::is_same_v<T, float> ? 23 : 52;
    Bits bits;
    std::memcpy(&bits, &t, sizeof bits);
    bits <<= mantissa;
    T out;
    std::memcpy(&out, &bits, sizeof out);
    return out;
  }
  static XFMR_INLINE T reduce_add(type a) noexcept { return a; }
  static XFMR_INLINE T reduce_max(type a) noexcept { return a; }
  /// out[0..3] = the lane sums of a, b, c, e: one transposing add tree for the four (the SIMD
  /// tiers add the lanes in another order than reduce_add: the sums differ by rounding only).
  static XFMR_INLINE void reduce_add4(type a, type b, type c, type e, T* out) noexcept {
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = e;
  }
};

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_VEC_SCALAR_HPP
