// SPDX-License-Identifier: MIT
// Taylor softmax of even order (kexue 7919; arXiv 2011.11538) and the compressed order-2 Taylor
// features of Taylor linear attention (kexue 8601, 7546; SPEC §7). Taylor linear attention itself
// is LinearAttention with FeatureMap::Taylor2: taylor_linear_attention_config in linear.hpp.
#ifndef XFMR_ATTENTION_TAYLOR_HPP
#define XFMR_ATTENTION_TAYLOR_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/isa.hpp"
#include "../simd/row.hpp"
#include "../simd/taylor.hpp"
#include "../types.hpp"
#include "feature_map.hpp"

XFMR_NAMESPACE_BEGIN

/// Plain: f_n(x). Monotone: f_n(max(x, x*_n)), constant f_n(x*_n) left of the minimum x*_n, so
/// larger scores never get smaller weights (SPEC §7.1).
enum class TaylorVariant { Plain, Monotone };

/// Largest supported order (the Horner loop and the argmin search are exact enough far beyond).
inline constexpr int kTaylorMaxOrder = simd::kTaylorExpMaxOrder;

/// f_n(x) = Σ_{k=0}^n x^k / k!, by Horner: f = 1 + x(1 + x/2(1 + x/3(… (1 + x/n)))).
/// For even n, f_n(x) > 0 for every real x (SPEC §7.1); no check on n here.
template <typename T>
T taylor_exp(T x, int order) noexcept {
  T f = T(1);
  for (int k = order; k >= 1; --k) f = T(1) + f * x / T(k);
  return f;
}

/// x*_n, the minimiser of f_n for even n >= 2 (the root of f_n' = f_{n−1}, which is increasing):
/// bisection in double to the last bit. x*_2 = −1, x*_4 = −1.59607, … (SPEC §7.1 table).
/// \throws std::invalid_argument unless order is even and in [2, kTaylorMaxOrder].
inline double taylor_exp_argmin(int order) {
  detail::require(order >= 2 && order % 2 == 0 && order <= kTaylorMaxOrder, "taylor_exp_argmin",
                  "order must be even and in [2, ", kTaylorMaxOrder, "] (got order=", order, ")");
  double lo = -1, hi = 0;  // f_{n−1}(0) = 1 > 0
  while (taylor_exp(lo, order - 1) > 0) lo *= 2;
  for (int it = 0; it < 200 && hi - lo > 0; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    (taylor_exp(mid, order - 1) > 0 ? hi : lo) = mid;
  }
  return 0.5 * (lo + hi);
}

namespace detail {

inline void require_taylor_order(int order, const char* where) {
  require(order >= 2 && order % 2 == 0 && order <= kTaylorMaxOrder, where,
          "order must be even and in [2, ", kTaylorMaxOrder,
          "] (odd orders are not positive) (got order=", order, ")");
}

template <typename T>
void taylor_map_impl(ConstMatrixRef<T> x, MatrixRef<T> out, int order, TaylorVariant variant,
                     bool normalise, const char* where) {
  require_taylor_order(order, where);
  require(out.rows() == x.rows() && out.cols() == x.cols(), where, "out must be ", x.rows(), "x",
          x.cols(), " (got ", out.rows(), "x", out.cols(), ")");
  require_same_or_disjoint(x.data(), x.outerStride(), out.data(), out.outerStride(), x.rows(),
                           x.cols(), where);
  const T floor = variant == TaylorVariant::Monotone ? static_cast<T>(taylor_exp_argmin(order))
                                                     : -std::numeric_limits<T>::infinity();
  const auto n = static_cast<std::size_t>(x.cols());
  for (Index r = 0; r < x.rows(); ++r) {
    T* y = out.data() + r * out.outerStride();
    const T sum =
        simd::taylor_exp_row<simd::native_isa, T>(x.data() + r * x.outerStride(), y, n, order, floor);
    if (normalise && n > 0) simd::scale_row<simd::native_isa, T>(y, n, T(1) / sum);
  }
}

}  // namespace detail

/// Element-wise f_n (the drop-in for exp on a score matrix): out = f_n(x), or f_n(max(x, x*_n))
/// for TaylorVariant::Monotone. out may be x (same data and stride). Even order only, so every
/// value is >= f_n(x*_n) > 0 (f_2 >= 1/2). Accuracy: Horner in T; the error is a few ulp of
/// f_n(|x|) = Σ|x^k/k!| (tested), so relative to f_n(x) it grows near the minimum, where the
/// terms cancel.
/// \throws std::invalid_argument if order is odd or outside [2, 64], on a shape mismatch, or a
///         partial overlap of out and x.
inline void taylor_exp(ConstMatrixRef<float> x, MatrixRef<float> out, int order = 2,
                       TaylorVariant variant = TaylorVariant::Plain) {
  detail::taylor_map_impl<float>(x, out, order, variant, false, "taylor_exp");
}
inline void taylor_exp(ConstMatrixRef<double> x, MatrixRef<double> out, int order = 2,
                       TaylorVariant variant = TaylorVariant::Plain) {
  detail::taylor_map_impl<double>(x, out, order, variant, false, "taylor_exp");
}

/// Taylor softmax over each row of a score matrix: p_ij = f_n(s_ij) / Σ_j' f_n(s_ij')
/// (arXiv 2011.11538; kexue 7919). Rows sum to 1 and every weight is > 0 for even n; unlike
/// softmax no max is subtracted (f_n is not shift-covariant), and polynomial growth means huge
/// scores (|s| ≳ 10^(38/n) in float) overflow. out may be scores.
/// \throws std::invalid_argument as taylor_exp.
inline void taylor_softmax(ConstMatrixRef<float> scores, MatrixRef<float> out, int order = 2,
                           TaylorVariant variant = TaylorVariant::Plain) {
  detail::taylor_map_impl<float>(scores, out, order, variant, true, "taylor_softmax");
}
inline void taylor_softmax(ConstMatrixRef<double> scores, MatrixRef<double> out, int order = 2,
                           TaylorVariant variant = TaylorVariant::Plain) {
  detail::taylor_map_impl<double>(scores, out, order, variant, true, "taylor_softmax");
}

/// m = 1 + d + d(d+1)/2, the compressed order-2 Taylor feature dimension (2145 for d = 64).
inline Index taylor2_feature_dim(Index d) noexcept { return 1 + d + d * (d + 1) / 2; }

namespace detail {
template <typename T>
void taylor2_features_impl(ConstMatrixRef<T> x, MatrixRef<T> out, double scale) {
  const Index d = x.cols(), m = taylor2_feature_dim(d);
  require(std::isfinite(scale), "taylor2_features", "scale must be finite (got ", scale, ")");
  require(out.rows() == x.rows() && out.cols() == m, "taylor2_features", "out must be ", x.rows(),
          "x", m, " (got ", out.rows(), "x", out.cols(), ")");
  for (Index r = 0; r < x.rows(); ++r)
    simd::taylor2_row<simd::native_isa, T>(x.data() + r * x.outerStride(),
                                     out.data() + r * out.outerStride(),
                                     static_cast<std::size_t>(d), static_cast<T>(scale));
}
}  // namespace detail

/// Compressed order-2 Taylor features of x' = scale·x, row by row (SPEC §7.2):
///   φ(x) = [1, x'_0 … x'_{d−1}, x'_0²/√2, x'_0 x'_1, …, x'_0 x'_{d−1}, x'_1²/√2, x'_1 x'_2, …]
/// so that φ(q)·φ(k) = f_2(q'·k') = 1 + q'·k' + (q'·k')²/2. x: (n × d), out: (n × (1+d+d(d+1)/2)).
/// \throws std::invalid_argument on a shape mismatch or a non-finite scale.
inline void taylor2_features(ConstMatrixRef<float> x, MatrixRef<float> out, double scale = 1) {
  detail::taylor2_features_impl<float>(x, out, scale);
}
inline void taylor2_features(ConstMatrixRef<double> x, MatrixRef<double> out, double scale = 1) {
  detail::taylor2_features_impl<double>(x, out, scale);
}

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_TAYLOR_HPP
