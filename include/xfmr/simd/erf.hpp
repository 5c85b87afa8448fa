// SPDX-License-Identifier: MIT
// Vectorised erf and erfc for float and double, written once over Vec<T, Isa>: W. J. Cody's
// rational Chebyshev approximations ("Rational Chebyshev approximations for the error
// function", Math. Comp. 23 (1969) 631–637; the coefficients of his CALERF, netlib specfun),
// evaluated branch-free: the three intervals are computed for every lane and selected.
#ifndef XFMR_SIMD_ERF_HPP
#define XFMR_SIMD_ERF_HPP

#include <type_traits>

#include "exp.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {

/// Cody's coefficients (double; rounded to T). Numerators and denominators in Horner order,
/// highest power first; the denominators' leading coefficient is 1.
struct ErfCoefficients {
  // erf(x) = x·A(x²)/B(x²) for |x| <= 0.46875.
  static constexpr double a[5] = {1.85777706184603153e-1, 3.16112374387056560e00,
                                  1.13864154151050156e02, 3.77485237685302021e02,
                                  3.20937758913846947e03};
  static constexpr double b[5] = {1.0, 2.36012909523441209e01, 2.44024637934444173e02,
                                  1.28261652607737228e03, 2.84423683343917062e03};
  // erfc(y) = e^{−y²}·C(y)/D(y) for 0.46875 < y <= 4.
  static constexpr double c[9] = {2.15311535474403846e-8, 5.64188496988670089e-1,
                                  8.88314979438837594e00, 6.61191906371416295e01,
                                  2.98635138197400131e02, 8.81952221241769090e02,
                                  1.71204761263407058e03, 2.05107837782607147e03,
                                  1.23033935479799725e03};
  static constexpr double d[9] = {1.0,
                                  1.57449261107098347e01, 1.17693950891312499e02,
                                  5.37181101862009858e02, 1.62138957456669019e03,
                                  3.29079923573345963e03, 4.36261909014324716e03,
                                  3.43936767414372164e03, 1.23033935480374942e03};
  // erfc(y) = e^{−y²}/y·(1/√π − z·P(z)/Q(z)), z = 1/y², for y > 4.
  static constexpr double p[6] = {1.63153871373020978e-2, 3.05326634961232344e-1,
                                  3.60344899949804439e-1, 1.25781726111229246e-1,
                                  1.60837851487422766e-2, 6.58749161529837803e-4};
  static constexpr double q[6] = {1.0,
                                  2.56852019228982242e00, 1.87295284992346047e00,
                                  5.27905102951428412e-1, 6.05183413124413191e-2,
                                  2.33520497626869185e-3};
  static constexpr double rsqrtpi = 0.56418958354775628694807945156077259;
  static constexpr double small = 0.46875;
  static constexpr double mid = 4.0;
};

/// Σ c[i]·x^(N−1−i) by Horner with FMA.
template <class V, typename T, int N>
XFMR_INLINE typename V::type horner(typename V::type x, const double (&c)[N]) noexcept {
  auto r = V::set1(static_cast<T>(c[0]));
  for (int i = 1; i < N; ++i) r = V::fmadd(r, x, V::set1(static_cast<T>(c[i])));
  return r;
}

/// e^{hi + lo} for hi = −s²·c exactly representable (s a multiple of 1/16, c = 1 or ½) and a
/// moderate lo: hi never rounds into the sum, because hi − n·ln2_hi is exact (both are multiples
/// of a power of two and their difference is small), so the only rounding is that of a reduced
/// argument below ln2/2 in magnitude. Same polynomial and two-factor scaling as exp(), so results
/// in the subnormal range keep a single final rounding. hi >= −760 (double) / −112 (float).
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type exp_hi_lo(typename Vec<T, Isa>::type hi,
                                                 typename Vec<T, Isa>::type lo) noexcept {
  using V = Vec<T, Isa>;
  using C = ExpConstants<T>;
  const auto n = V::round(V::mul(V::add(hi, lo), V::set1(C::log2e)));
  auto r = V::fnmadd(n, V::set1(C::ln2_hi), hi);
  r = V::add(V::fnmadd(n, V::set1(C::ln2_lo), r), lo);
  auto p = V::set1(C::poly[0]);
  for (int k = 1; k <= C::degree; ++k) p = V::fmadd(p, r, V::set1(C::poly[k]));
  const auto e = V::add(V::fmadd(V::mul(p, r), r, r), V::set1(T(1)));
  const auto n1 = V::round(V::mul(n, V::set1(T(0.5))));
  return V::mul(V::mul(e, V::pow2i(n1)), V::pow2i(V::sub(n, n1)));
}

/// Where erfc underflows to +0 (double 2^-1074 at y ≈ 27.2; float 2^-149 at y ≈ 10.05), with a
/// margin: arguments are clamped there, which keeps y² finite and (y − s)(y + s) free of 0·inf.
template <typename T>
inline constexpr T kErfcZero = std::is_same_v<T, float> ? T(10.5) : T(27.5);

/// −c·v² as hi + lo (hi exact, see exp_hi_lo) for v in [0, kErfcZero·√2] (or NaN):
/// s = v rounded to a multiple of 1/16, hi = −c·s², lo = −c·(v − s)(v + s).
template <class Isa, typename T>
XFMR_INLINE void neg_square_split(typename Vec<T, Isa>::type v, T c, typename Vec<T, Isa>::type& hi,
                                  typename Vec<T, Isa>::type& lo) noexcept {
  using V = Vec<T, Isa>;
  const auto s = V::mul(V::round(V::mul(v, V::set1(T(16)))), V::set1(T(1.0 / 16)));
  hi = V::mul(V::mul(s, s), V::set1(-c));
  lo = V::mul(V::mul(V::sub(v, s), V::add(v, s)), V::set1(-c));
}

/// Σ c[i]·x^i (c[0] the constant term) by Horner with FMA: the polynomial of c reversed, i.e.
/// x^(N−1)·P(1/x) for P = horner's polynomial.
template <class V, typename T, int N>
XFMR_INLINE typename V::type horner_reversed(typename V::type x, const double (&c)[N]) noexcept {
  auto r = V::set1(static_cast<T>(c[N - 1]));
  for (int i = N - 2; i >= 0; --i) r = V::fmadd(r, x, V::set1(static_cast<T>(c[i])));
  return r;
}

/// The one quotient of Cody's approximation for y = |x| (y >= 0 or NaN) and e = e^{−y²}
/// (computed by the caller from an exact split): erf(x) (sign kept) where y <= 0.46875, erfc(y)
/// above. The three intervals' numerators and denominators are selected per lane before a single
/// division (a division costs as much as several FMAs); the outer one is rewritten without 1/y²:
///   e^{−y²}/y·(1/√π − z·P(z)/Q(z)), z = 1/y², w = y², P̃(w) = w⁵·P(1/w), Q̃(w) = w⁵·Q(1/w):
///   = e^{−y²}·(w·Q̃(w)/√π − P̃(w)) / (y·w·Q̃(w))   (no cancellation: z·P/Q < 0.014 for y > 4).
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type erf_quotient(typename Vec<T, Isa>::type x,
                                                    typename Vec<T, Isa>::type y,
                                                    typename Vec<T, Isa>::type e) noexcept {
  using V = Vec<T, Isa>;
  using C = ErfCoefficients;
  const auto x2 = V::mul(x, x);
  const auto yc = V::min(V::set1(kErfcZero<T>), y);  // min() keeps a NaN
  const auto w = V::mul(yc, yc);
  const auto wq = V::mul(w, horner_reversed<V, T>(w, C::q));
  const auto pw = horner_reversed<V, T>(w, C::p);
  const auto large_num = V::mul(e, V::sub(V::mul(wq, V::set1(static_cast<T>(C::rsqrtpi))), pw));
  const auto is_large = [&](auto a, auto b) {
    return V::select_lt(V::set1(static_cast<T>(C::mid)), yc, a, b);
  };
  auto num = is_large(large_num, V::mul(e, horner<V, T>(yc, C::c)));
  auto den = is_large(V::mul(yc, wq), horner<V, T>(yc, C::d));
  // y > 0.46875 is false for NaN: the small interval's x·A/B carries the NaN.
  const auto small_edge = V::set1(static_cast<T>(C::small));
  num = V::select_lt(small_edge, y, num, V::mul(x, horner<V, T>(x2, C::a)));
  den = V::select_lt(small_edge, y, den, horner<V, T>(x2, C::b));
  return V::div(num, den);
}

/// erfc(x) given e = e^{−x²} (from an exact split of the square).
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type erfc_with(typename Vec<T, Isa>::type x,
                                                 typename Vec<T, Isa>::type e) noexcept {
  using V = Vec<T, Isa>;
  const auto y = V::abs(x);
  const auto q = erf_quotient<Isa, T>(x, y, e);  // erf(x) (small y) or erfc(|x|)
  const auto outer = V::select_lt(x, V::zero(), V::sub(V::set1(T(2)), q), q);
  return V::select_lt(V::set1(static_cast<T>(ErfCoefficients::small)), y, outer,
                      V::sub(V::set1(T(1)), q));
}

/// e^{−c·v²} for v >= 0 (or NaN), c = 1 or ½, v clamped where the result is +0 anyway.
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type exp_neg_square(typename Vec<T, Isa>::type v, T c) noexcept {
  using V = Vec<T, Isa>;
  auto hi = V::zero(), lo = V::zero();
  // c = ½ (the GELU's e^{−x²/2}): the same zero point, kErfcZero·√2 in v.
  const T limit = c < T(1) ? kErfcZero<T> * T(1.4142135623730951) : kErfcZero<T>;
  neg_square_split<Isa, T>(V::min(V::set1(limit), v), c, hi, lo);
  return exp_hi_lo<Isa, T>(hi, lo);
}

}  // namespace detail

/// erf(x) lane by lane, branch-free (Cody's three intervals computed, selected, one division).
/// Accuracy (tests/simd/activation.test.cpp, against erfl over a dense sweep and the extremes):
/// ≤ 5 ulp of the exact value for float and double over the whole range, subnormals included
/// (double: relative error ≤ 1.1e-15) on the FMA paths; ≤ 7 ulp on scalar_isa where the
/// compiler does not contract a·b + c into an FMA. erf(±0) = ±0, erf(±inf) = ±1,
/// NaN gives NaN. Odd: erf(−x) = −erf(x) exactly.
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type erf(typename Vec<T, Isa>::type x) noexcept {
  using V = Vec<T, Isa>;
  const auto y = V::abs(x);
  const auto e = detail::exp_neg_square<Isa, T>(y, T(1));
  const auto q = detail::erf_quotient<Isa, T>(x, y, e);  // erf(x) (small y) or erfc(|x|)
  const auto outer = V::sub(V::set1(T(1)), q);         // erf(|x|)
  const auto signed_outer = V::select_lt(x, V::zero(), V::sub(V::zero(), outer), outer);
  // y > 0.46875 is false for NaN: q carries it.
  return V::select_lt(V::set1(static_cast<T>(detail::ErfCoefficients::small)), y, signed_outer,
                      q);
}

/// erfc(x) = 1 − erf(x) lane by lane, with relative accuracy in the tail (no cancellation):
/// ≤ 5 ulp of the exact value (double: relative error ≤ 1.1e-15; 7 ulp on an uncontracted
/// scalar_isa, as erf) wherever it is a normal
/// number, and within a few subnormal spacings below; e^{−x²} comes from an exact split of x²
/// (s = x rounded to 1/16, s² exact), so the rounding of x² never enters.
/// erfc(+inf) = +0, erfc(−inf) = 2, NaN gives NaN. Flushes to +0 past x ≈ 27.2 (double) /
/// 10.05 (float), where the exact value underflows.
template <class Isa, typename T>
XFMR_INLINE typename Vec<T, Isa>::type erfc(typename Vec<T, Isa>::type x) noexcept {
  return detail::erfc_with<Isa, T>(x, detail::exp_neg_square<Isa, T>(Vec<T, Isa>::abs(x), T(1)));
}

/// y[i] = erf(x[i]) for i < n. y may be x; partial overlap is not allowed. No alignment needed.
template <class Isa, typename T>
void erf(const T* x, T* y, std::size_t n) noexcept {
  detail::map_row<Isa, T>(x, y, n, [](typename Vec<T, Isa>::type v) { return erf<Isa, T>(v); });
}

/// y[i] = erfc(x[i]) for i < n. y may be x; partial overlap is not allowed. No alignment needed.
template <class Isa, typename T>
void erfc(const T* x, T* y, std::size_t n) noexcept {
  detail::map_row<Isa, T>(x, y, n, [](typename Vec<T, Isa>::type v) { return erfc<Isa, T>(v); });
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_ERF_HPP
