// SPDX-License-Identifier: MIT
// Row kernels for LayerNorm and RMSNorm: fused statistics and affine, raw pointers, masked tails.
#ifndef XFMR_SIMD_NORM_HPP
#define XFMR_SIMD_NORM_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../config.hpp"
#include "prefetch.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {

/// Σ x_i over i < n. Eight vectors per step folded pairwise into four accumulators: the add
/// latency, not the loads, bounds the chains, so a chain advances once per two vectors.
template <class V, typename T>
XFMR_INLINE T row_sum(const T* x, std::size_t n) noexcept {
  constexpr std::size_t W = V::lanes;
  typename V::type s[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  std::size_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W)
    for (std::size_t u = 0; u < 4; ++u)
      s[u] = V::add(s[u], V::add(V::load(x + i + 2 * u * W), V::load(x + i + (2 * u + 1) * W)));
  for (; i + W <= n; i += W) s[0] = V::add(s[0], V::load(x + i));
  if (i < n) s[1] = V::add(s[1], V::load_partial(x + i, n - i));
  return V::reduce_add(V::add(V::add(s[0], s[1]), V::add(s[2], s[3])));
}

/// Σ (x_i − m) and Σ (x_i − m)² over i < n (m = 0: Σx and Σx²). Eight vectors per step, folded
/// pairwise into four accumulators of each sum (see row_sum). The tail's shift is loaded with
/// the same mask as x, so the pad lanes contribute 0 − 0.
template <class V, typename T>
XFMR_INLINE void shifted_sums(const T* x, std::size_t n, T m, T& sum, T& sum_sq) noexcept {
  constexpr std::size_t W = V::lanes;
  const auto mv = V::set1(m);
  typename V::type s[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  typename V::type q[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  std::size_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W)
    for (std::size_t u = 0; u < 4; ++u) {
      const auto a = V::sub(V::load(x + i + 2 * u * W), mv);
      const auto b = V::sub(V::load(x + i + (2 * u + 1) * W), mv);
      s[u] = V::add(s[u], V::add(a, b));
      q[u] = V::add(q[u], V::fmadd(a, a, V::mul(b, b)));
    }
  for (; i + W <= n; i += W) {  // constant indices only: keeps s and q in registers
    const auto d = V::sub(V::load(x + i), mv);
    s[0] = V::add(s[0], d), q[0] = V::fmadd(d, d, q[0]);
  }
  if (i < n) {
    T shift[W];
    for (auto& v : shift) v = m;
    const auto d = V::sub(V::load_partial(x + i, n - i), V::load_partial(shift, n - i));
    s[1] = V::add(s[1], d), q[1] = V::fmadd(d, d, q[1]);
  }
  sum = V::reduce_add(V::add(V::add(s[0], s[1]), V::add(s[2], s[3])));
  sum_sq = V::reduce_add(V::add(V::add(q[0], q[1]), V::add(q[2], q[3])));
}

/// Σ x_i² over i < n, as shifted_sums without the plain sum.
template <class V, typename T>
XFMR_INLINE T row_sum_squares(const T* x, std::size_t n) noexcept {
  constexpr std::size_t W = V::lanes;
  typename V::type q[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  std::size_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W)
    for (std::size_t u = 0; u < 4; ++u) {
      const auto a = V::load(x + i + 2 * u * W), b = V::load(x + i + (2 * u + 1) * W);
      q[u] = V::add(q[u], V::fmadd(a, a, V::mul(b, b)));
    }
  for (; i + W <= n; i += W) {
    const auto a = V::load(x + i);
    q[0] = V::fmadd(a, a, q[0]);
  }
  if (i < n) {
    const auto a = V::load_partial(x + i, n - i);
    q[1] = V::fmadd(a, a, q[1]);
  }
  return V::reduce_add(V::add(V::add(q[0], q[1]), V::add(q[2], q[3])));
}

/// How a normalising pass forms (x − μ)·r, μ = m + δ: kScale x·r (μ = 0: RMSNorm, L2);
/// kFolded x·r − μ·r in one FMA (used when |μ|·r <= 4, so the rounding of μ·r costs at most
/// 4 ulp of 1, a few ulp of y); kCentred ((x − m) − δ)·r (x − m is exact when m is close to
/// the row's values, so the centred values keep their last bits under a large common offset).
enum class NormForm { kScale, kFolded, kCentred };

/// One vector of y = (x − μ)·r·γ + β at offset i, formed as Form says, with γ and β present as
/// the flags say (absent: 1 and 0).
template <class V, NormForm Form, bool HasGamma, bool HasBeta, typename T>
struct NormalizeStep {
  typename V::type mv, rv, bv;
  const T *x, *gamma, *beta;
  T* y;
  NormalizeStep(const T* x_, T* y_, T m, T delta, T r, const T* g, const T* b) noexcept
      : mv(V::set1(m)),
        rv(V::set1(r)),
        bv(V::set1(Form == NormForm::kFolded ? -(m + delta) * r : -delta * r)),
        x(x_),
        gamma(g),
        beta(b),
        y(y_) {}
  template <class Load, class Store>
  XFMR_INLINE void operator()(std::size_t i, Load load, Store store) const noexcept {
    auto v = Form == NormForm::kCentred  ? V::fmadd(V::sub(load(x + i), mv), rv, bv)
             : Form == NormForm::kFolded ? V::fmadd(load(x + i), rv, bv)
                                         : V::mul(load(x + i), rv);
    if (HasGamma && HasBeta)
      v = V::fmadd(v, load(gamma + i), load(beta + i));
    else if (HasGamma)
      v = V::mul(v, load(gamma + i));
    else if (HasBeta)
      v = V::add(v, load(beta + i));
    store(y + i, v);
  }
};

/// NormalizeStep over a whole row of n values. y may equal x.
template <class V, NormForm Form, bool HasGamma, bool HasBeta, typename T>
XFMR_INLINE void normalize_impl(const T* x, T* y, std::size_t n, T m, T delta, T r,
                                const T* gamma, const T* beta) noexcept {
  constexpr std::size_t W = V::lanes;
  const NormalizeStep<V, Form, HasGamma, HasBeta, T> step(x, y, m, delta, r, gamma, beta);
  const FullOps<V, T> full;
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) step(i, full, full), step(i + W, full, full);
  if (i + W <= n) step(i, full, full), i += W;
  if (i < n) step(i, PartialOps<V, T>{n - i}, PartialOps<V, T>{n - i});
}

/// Shift for the one-pass LayerNorm statistics: the mean of a sample of the row, four vectors
/// spread over it (the whole row when it is shorter than four vectors).
template <class V, typename T>
XFMR_INLINE T pilot_mean(const T* x, std::size_t n) noexcept {
  constexpr std::size_t W = V::lanes;
  if (n < 4 * W) return row_sum<V>(x, n) / static_cast<T>(n);
  const std::size_t step = (n - W) / 3;
  const auto s = V::add(V::add(V::load(x), V::load(x + step)),
                        V::add(V::load(x + 2 * step), V::load(x + 3 * step)));
  return V::reduce_add(s) / static_cast<T>(4 * W);
}

/// LayerNorm statistics of a row: shift m (μ = m + δ) and r = 1/√(σ² + ε).
template <typename T>
struct LayerNormStats {
  T m, delta, r;
};

/// The statistics from the sums about a shift m: s = Σ(x − m), q = Σ(x − m)², so δ = s/n and
/// σ² = (q − s·δ)/n. When m is far from the mean (s² > q·n/2, where the subtraction could lose
/// more than one bit; also any NaN or infinity), s and q are summed again about m + s/n: the
/// corrected two-pass formula, never worse than one bit of cancellation.
template <class V, typename T>
XFMR_INLINE LayerNormStats<T> layer_norm_stats(const T* x, std::size_t n, T m, T s, T q,
                                               T eps) noexcept {
  const T nt = static_cast<T>(n);
  if (!(s * s <= T(0.5) * nt * q)) {
    m += s / nt;
    shifted_sums<V>(x, n, m, s, q);
  }
  const T delta = s / nt;
  const T var = std::max(T(0), (q - s * delta) / nt);
  return {m, delta, T(1) / std::sqrt(var + eps)};
}

/// Σ(x − m) and Σ(x − m)² of one row (into s, q) while normalising another (step): the fused
/// pass of the row pipeline, so the latency of one row's sums hides under the other's stores.
template <class V, class Step, typename T>
XFMR_INLINE void fused_pass(const Step& step, const T* xs, std::size_t n, T m, bool squares_only,
                            T& s_out, T& q_out) noexcept {
  constexpr std::size_t W = V::lanes;
  const FullOps<V, T> full;
  const auto mv = V::set1(m);
  typename V::type s[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  typename V::type q[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  const auto stat = [&](std::size_t u, typename V::type d) {
    if (!squares_only) s[u] = V::add(s[u], d);
    q[u] = V::fmadd(d, d, q[u]);
  };
  const auto centre = [&](std::size_t j) {
    return squares_only ? V::load(xs + j) : V::sub(V::load(xs + j), mv);
  };
  std::size_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W) {
    // L2-resident rows reach L1 too late for this pass otherwise (+20-30% measured).
    prefetch_bytes(xs + i, 2048, 8 * W * sizeof(T));
    for (std::size_t u = 0; u < 4; ++u) {  // pairs: one add per chain per two vectors
      step(i + 2 * u * W, full, full);
      step(i + (2 * u + 1) * W, full, full);
      const auto a = centre(i + 2 * u * W), b = centre(i + (2 * u + 1) * W);
      if (!squares_only) s[u] = V::add(s[u], V::add(a, b));
      q[u] = V::add(q[u], V::fmadd(a, a, V::mul(b, b)));
    }
  }
  for (; i + W <= n; i += W) {
    step(i, full, full);
    stat(0, squares_only ? V::load(xs + i) : V::sub(V::load(xs + i), mv));
  }
  if (i < n) {
    const PartialOps<V, T> part{n - i};
    step(i, part, part);
    T shift[V::lanes];
    for (auto& v : shift) v = m;
    const auto v = V::load_partial(xs + i, n - i);
    stat(1, squares_only ? v : V::sub(v, V::load_partial(shift, n - i)));
  }
  s_out = V::reduce_add(V::add(V::add(s[0], s[1]), V::add(s[2], s[3])));
  q_out = V::reduce_add(V::add(V::add(q[0], q[1]), V::add(q[2], q[3])));
}

template <class V, bool HasGamma, bool HasBeta, typename T>
XFMR_INLINE void layer_norm_rows_impl(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                                      std::size_t rows, std::size_t n, const T* gamma,
                                      const T* beta, std::size_t param_stride, T eps) noexcept {
  T m = pilot_mean<V>(x, n), s, q;
  shifted_sums<V>(x, n, m, s, q);
  LayerNormStats<T> st = layer_norm_stats<V>(x, n, m, s, q, eps);
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * x_stride;
    T* yr = y + r * y_stride;
    const T* g = HasGamma ? gamma + r * param_stride : gamma;
    const T* b = HasBeta ? beta + r * param_stride : beta;
    const bool folded = std::fabs(st.m + st.delta) * st.r <= T(4);
    if (r + 1 == rows) {
      if (folded)
        normalize_impl<V, NormForm::kFolded, HasGamma, HasBeta>(xr, yr, n, st.m, st.delta, st.r,
                                                                g, b);
      else
        normalize_impl<V, NormForm::kCentred, HasGamma, HasBeta>(xr, yr, n, st.m, st.delta,
                                                                 st.r, g, b);
      break;
    }
    const T* xn = xr + x_stride;
    m = pilot_mean<V>(xn, n);
    if (folded)
      fused_pass<V>(NormalizeStep<V, NormForm::kFolded, HasGamma, HasBeta, T>(
                        xr, yr, st.m, st.delta, st.r, g, b),
                    xn, n, m, false, s, q);
    else
      fused_pass<V>(NormalizeStep<V, NormForm::kCentred, HasGamma, HasBeta, T>(
                        xr, yr, st.m, st.delta, st.r, g, b),
                    xn, n, m, false, s, q);
    st = layer_norm_stats<V>(xn, n, m, s, q, eps);
  }
}

template <class V, bool HasGamma, typename T>
XFMR_INLINE void rms_norm_rows_impl(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                                    std::size_t rows, std::size_t n, const T* gamma, T eps) noexcept {
  const T nt = static_cast<T>(n);
  T r_next = T(1) / std::sqrt(row_sum_squares<V>(x, n) / nt + eps), unused, q;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* xr = x + r * x_stride;
    T* yr = y + r * y_stride;
    if (r + 1 == rows) {
      normalize_impl<V, NormForm::kScale, HasGamma, false>(xr, yr, n, T(0), T(0), r_next, gamma,
                                                static_cast<const T*>(nullptr));
      break;
    }
    const NormalizeStep<V, NormForm::kScale, HasGamma, false, T> step(xr, yr, T(0), T(0), r_next, gamma,
                                                           nullptr);
    fused_pass<V>(step, xr + x_stride, n, T(0), true, unused, q);
    r_next = T(1) / std::sqrt(q / nt + eps);
  }
}

}  // namespace detail

/// LayerNorm of `rows` rows of n >= 1 values (SPEC §11), row i at x + i·x_stride and
/// y + i·y_stride:   μ = mean(x), σ² = mean((x − μ)²), y = γ ⊙ (x − μ)/√(σ² + ε) + β,
/// row i with γ, β at gamma/beta + i·param_stride (0: one γ, β for all rows; null: 1 and 0).
/// Two reads of a row: Σd and Σd² with d = x − m about a pilot shift m (the mean of four
/// vectors sampled across the row), fused into the pass that normalises the previous row; then
/// the normalising pass from L1. μ = m + δ with δ = Σd/n, σ² = (Σd² − δ·Σd)/n, y uses
/// (x − m) − δ. If the shift was far from the mean (Σd² would lose more than one bit to the
/// subtraction), the row is summed again about m + δ (the corrected two-pass formula): a large
/// common offset (1e4) costs no accuracy, unlike E[x²] − μ². Aliasing: y == x with
/// y_stride == x_stride (in place), or no y row overlaps an x row. noexcept.
template <class Isa, typename T>
XFMR_INLINE void layer_norm_rows(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                                 std::size_t rows, std::size_t n, const T* gamma, const T* beta,
                                 std::size_t param_stride, T eps) noexcept {
  using V = Vec<T, Isa>;
  if (rows == 0) return;
  if (gamma && beta)
    detail::layer_norm_rows_impl<V, true, true>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                                param_stride, eps);
  else if (gamma)
    detail::layer_norm_rows_impl<V, true, false>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                                 param_stride, eps);
  else if (beta)
    detail::layer_norm_rows_impl<V, false, true>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                                 param_stride, eps);
  else
    detail::layer_norm_rows_impl<V, false, false>(x, x_stride, y, y_stride, rows, n, gamma,
                                                  beta, param_stride, eps);
}

/// LayerNorm of one row of n >= 1 values: layer_norm_rows with one row. y may equal x.
template <class Isa, typename T>
XFMR_INLINE void layer_norm_row(const T* x, T* y, std::size_t n, const T* gamma, const T* beta,
                                T eps) noexcept {
  layer_norm_rows<Isa>(x, n, y, n, 1, n, gamma, beta, 0, eps);
}

/// RMSNorm of `rows` rows of n >= 1 values, y = γ ⊙ x / √(mean(x²) + ε), row i at
/// x + i·x_stride and y + i·y_stride; gamma (one for all rows) may be null. The sum of squares
/// of a row is fused into the pass that scales the previous one. Aliasing as layer_norm_rows.
template <class Isa, typename T>
XFMR_INLINE void rms_norm_rows(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                               std::size_t rows, std::size_t n, const T* gamma, T eps) noexcept {
  using V = Vec<T, Isa>;
  if (rows == 0) return;
  if (gamma)
    detail::rms_norm_rows_impl<V, true>(x, x_stride, y, y_stride, rows, n, gamma, eps);
  else
    detail::rms_norm_rows_impl<V, false>(x, x_stride, y, y_stride, rows, n, gamma, eps);
}

/// RMSNorm of one row of n >= 1 values: y = γ ⊙ x / √(mean(x²) + ε); gamma may be null.
/// y may equal x.
template <class Isa, typename T>
XFMR_INLINE void rms_norm_row(const T* x, T* y, std::size_t n, const T* gamma, T eps) noexcept {
  rms_norm_rows<Isa>(x, n, y, n, 1, n, gamma, eps);
}

/// L2 normalisation of one row of n >= 1 values: y = scale · x / max(‖x‖, eps) (KeyNorm,
/// QueryNorm, cosine attention; SPEC §8.3). A zero row stays zero. y may equal x.
template <class Isa, typename T>
XFMR_INLINE void l2_normalize_row(const T* x, T* y, std::size_t n, T eps, T scale) noexcept {
  using V = Vec<T, Isa>;
  const T norm = std::sqrt(detail::row_sum_squares<V>(x, n));
  detail::normalize_impl<V, detail::NormForm::kScale, false, false>(x, y, n, T(0), T(0), scale / std::max(norm, eps),
                                                static_cast<const T*>(nullptr),
                                                static_cast<const T*>(nullptr));
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_NORM_HPP
