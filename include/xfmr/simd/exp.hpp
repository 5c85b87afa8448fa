// SPDX-License-Identifier: MIT
// Vectorised exp for float and double, written once over Vec<T, Isa>.
#ifndef XFMR_SIMD_EXP_HPP
#define XFMR_SIMD_EXP_HPP

#include <cstddef>
#include <type_traits>

#include "vec.hpp"
#include "vec_interleaved.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {

template <typename T>
struct ExpConstants;

// Cephes expf: degree-5 minimax polynomial for (e^r − 1 − r)/r² on |r| ≤ ln2/2.
template <>
struct ExpConstants<float> {
  static constexpr float lo = -104.0f;  // e^-104 < 2^-150: rounds to +0
  static constexpr float hi = 89.0f;    // e^89 > FLT_MAX: rounds to +inf
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;  // few mantissa bits: n·ln2_hi is exact
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float bias = 127.0f;
  static constexpr float shifter = 12583039.0f;  // 1.5·2^23 + bias (exp_nonpositive)
  static constexpr int degree = 5;
  static constexpr float poly[degree + 1] = {1.9875691500e-4f, 1.3981999507e-3f,
                                             8.3334519073e-3f, 4.1665795894e-2f,
                                             1.6666665459e-1f, 5.0000001201e-1f};
};

// Taylor coefficients 1/k!, k = 13 … 2: truncation error (ln2/2)^14/14! < 5e-18 on |r| ≤ ln2/2.
template <>
struct ExpConstants<double> {
  static constexpr double lo = -746.0;  // e^-746 < 2^-1075: rounds to +0
  static constexpr double hi = 710.0;   // e^710 > DBL_MAX: rounds to +inf
  static constexpr double log2e = 1.4426950408889634074;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;  // fdlibm split of ln 2
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double bias = 1023.0;
  static constexpr double shifter = 6755399441056767.0;  // 1.5·2^52 + bias (exp_nonpositive)
  static constexpr int degree = 11;
  static constexpr double poly[degree + 1] = {
      1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
      1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,      1.0 / 720.0,
      1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,         1.0 / 2.0};
};

/// e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2.
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type exp_poly(typename Vec<T, Isa>::type r) noexcept {
  using V = Vec<T, Isa>;
  using C = ExpConstants<T>;
  auto p = V::set1(C::poly[0]);
  for (int k = 1; k <= C::degree; ++k) p = V::fmadd(p, r, V::set1(C::poly[k]));
  return V::add(V::fmadd(V::mul(p, r), r, r), V::set1(T(1)));
}

/// e·2^n as e·2^n1·2^n2 with n1 = round(n/2), n2 = n − n1: each factor a normal number, so a
/// result below the normal range still comes from a single final rounding.
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type scale_pow2(typename Vec<T, Isa>::type e,
                                                  typename Vec<T, Isa>::type n) noexcept {
  using V = Vec<T, Isa>;
  const auto n1 = V::round(V::mul(n, V::set1(T(0.5))));
  return V::mul(V::mul(e, V::pow2i(n1)), V::pow2i(V::sub(n, n1)));
}

/// The common core of exp() and exp_nonpositive(): e^r for x already clamped to the finite
/// range and n = x·log2e rounded to an integer, r = x − n·ln2 (|r| ≤ ln2/2; Cody–Waite
/// two-constant reduction).
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type exp_reduced(typename Vec<T, Isa>::type x,
                                                   typename Vec<T, Isa>::type n) noexcept {
  using V = Vec<T, Isa>;
  using C = ExpConstants<T>;
  auto r = V::fnmadd(n, V::set1(C::ln2_hi), x);
  r = V::fnmadd(n, V::set1(C::ln2_lo), r);
  return exp_poly<Isa, T>(r);
}

/// y[i] = f(x[i]) for i < n, f(isa, v) a lane-wise function of a Vec<T, decltype(isa)>::type;
/// masked tail. Two vectors per step on interleaved<Isa, 2> (GELU, SiLU, erf: one long dependency
/// chain per vector; two side by side ran 1.2–1.4× faster on Zen 3, with the same bits).
template <class Isa, typename T, class F>
XFMR_INLINE void map_row(const T* x, T* y, std::size_t n, F f) noexcept {
  using V = Vec<T, Isa>;
  using V2 = Vec<T, interleaved<Isa, 2>>;
  std::size_t i = 0;
  for (; i + V2::lanes <= n; i += V2::lanes)
    V2::store(y + i, f(interleaved<Isa, 2>{}, V2::load(x + i)));
  if (i + V::lanes <= n) V::store(y + i, f(Isa{}, V::load(x + i))), i += V::lanes;
  if (i < n) V::store_partial(y + i, f(Isa{}, V::load_partial(x + i, n - i)), n - i);
}

}  // namespace detail

/// e^x lane by lane.
///   x = n·ln2 + r, |r| ≤ ln2/2 (Cody–Waite two-constant reduction)
///   e^x = 2^n1 · 2^n2 · (1 + r + r²·P(r)),  n1 + n2 = n
/// Splitting 2^n in two keeps each factor a normal number, so results that are subnormal
/// are still produced with a single final rounding.
/// Accuracy (tested over the whole range against std::exp in double): float ≤ 2 ulp on
/// [−87, 88], double ≤ 2 ulp on [−708, 709]. x above the overflow threshold gives +inf, below the
/// underflow threshold +0 (subnormal results in between), NaN gives NaN, ±inf give +inf / +0.
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type exp(typename Vec<T, Isa>::type x) noexcept {
  using V = Vec<T, Isa>;
  using C = detail::ExpConstants<T>;
  // max(lo, x) and min(hi, x) return x when x is NaN (x86 operand rule, kept by scalar_isa).
  x = V::min(V::set1(C::hi), V::max(V::set1(C::lo), x));
  const auto n = V::round(V::mul(x, V::set1(C::log2e)));
  return detail::scale_pow2<Isa, T>(detail::exp_reduced<Isa, T>(x, n), n);
}

/// y[i] = e^{x[i]} for i < n. y may be x; partial overlap is not allowed. No alignment needed.
template <class Isa, typename T>
void exp(const T* x, T* y, std::size_t n) noexcept {
  detail::map_row<Isa, T>(x, y, n, [](auto isa, auto v) XFMR_INLINE_LAMBDA {
    return exp<decltype(isa), T>(v);
  });
}

/// e^x for x ≤ 0, the exponential of softmax scores minus their running maximum and of the
/// negative side of elu+1: the reduction and polynomial of exp() with ONE scaling by 2^n
/// (exp() needs two to produce subnormals), so it is cheaper and
///   - for x ≥ −87.33 (float) / −708.39 (double), where e^x is a normal number: ≤ 2 ulp, as exp();
///   - below, y is either a correctly scaled value under the smallest normal (a band about
///     0.35 wide, n = −126 / −1022) or +0: |y − e^x| < FLT_MIN (2^-126) / DBL_MIN (2^-1022), and
///     y = +0 exactly for x < −87.7 / −708.8 (flush to zero instead of gradual underflow);
///   - −inf gives exactly +0 (masked scores contribute nothing); NaN gives NaN;
///   - x > 0 is treated as 0 (gives 1): callers pass min(x, 0) or scores minus their maximum.
/// y is non-decreasing in x. Tested over the whole range against expl (tests/simd/exp.test.cpp).
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type exp_nonpositive(typename Vec<T, Isa>::type x) noexcept {
  using V = Vec<T, Isa>;
  using C = detail::ExpConstants<T>;
  x = V::max(V::set1(C::lo), V::min(V::zero(), x));  // NaN stays NaN (x86 operand rule)
  // n = x·log2e rounded by adding the shifter 1.5·2^p + bias in the FMA (p = 23 / 52: the sum's
  // ulp is 1), which leaves n + bias in t's low mantissa bits, where V::shift_to_exponent turns
  // it into 2^n: no round, no integer conversion. (exp() keeps the round: its two-factor
  // scaling needs n as a float, and there the FMA's longer latency measured 2–5 % slower.)
  const auto t = V::fmadd(x, V::set1(C::log2e), V::set1(C::shifter));
  const auto n = V::sub(t, V::set1(C::shifter));
  const auto e = detail::exp_reduced<Isa, T>(x, n);
#if XFMR_HAS_AVX512
  // The same value in 2 instructions instead of 3 (the softmax pass is bound by these): vscalef
  // gives e·2^n with one rounding, as the product below; the k-mask zeroes the lanes with n
  // below the normal range (the clamp's +0 below); a NaN n compares unordered and stays in.
  if constexpr (std::is_same_v<Isa, avx512_isa>) {
    if constexpr (std::is_same_v<T, float>)
      return _mm512_maskz_scalef_ps(
          _mm512_cmp_ps_mask(n, _mm512_set1_ps(1 - C::bias), _CMP_NLT_UQ), e, n);
    else
      return _mm512_maskz_scalef_pd(
          _mm512_cmp_pd_mask(n, _mm512_set1_pd(1 - C::bias), _CMP_NLT_UQ), e, n);
  } else
#endif
  {
    // t clamped to n ≥ −bias: n = −bias shifts to an all-zero pattern, +0, and so does every
    // n below the normal range. A NaN t gives a number here, but e is NaN then (NaN out).
    return V::mul(e, V::shift_to_exponent(V::max(t, V::set1(C::shifter - C::bias))));
  }
}

/// y[i] = exp_nonpositive(x[i]) for i < n (the bounds above). y may be x; partial overlap is not
/// allowed. No alignment needed.
template <class Isa, typename T>
void exp_nonpositive(const T* x, T* y, std::size_t n) noexcept {
  detail::map_row<Isa, T>(x, y, n, [](auto isa, auto v) XFMR_INLINE_LAMBDA {
    return exp_nonpositive<decltype(isa), T>(v);
  });
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_EXP_HPP
