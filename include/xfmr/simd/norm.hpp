// SPDX-License-Identifier: MIT
// Row kernels for LayerNorm and RMSNorm: fused statistics and affine, raw pointers, masked tails.
#ifndef XFMR_SIMD_NORM_HPP
#define XFMR_SIMD_NORM_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "../config.hpp"
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

/// Statistics of a row: shift m, μ = m + δ, r = 1/√(σ² + ε) (RMSNorm: m = δ = 0).
template <typename T>
struct LayerNormStats {
  T m, delta, r;
};

// Lambdas, not function pointers: an always_inline callee must not be called indirectly.
template <class V, typename T>
struct FullOps {
  XFMR_INLINE typename V::type operator()(const T* p) const noexcept { return V::load(p); }
  XFMR_INLINE void operator()(T* p, typename V::type v) const noexcept { V::store(p, v); }
};
template <class V, typename T>
struct PartialOps {
  std::size_t rest;
  XFMR_INLINE typename V::type operator()(const T* p) const noexcept {
    return V::load_partial(p, rest);
  }
  XFMR_INLINE void operator()(T* p, typename V::type v) const noexcept {
    V::store_partial(p, v, rest);
  }
};

/// K rows normalised together, y_k = (x_k − μ_k)·r_k·γ + β with (x − μ)·r formed as Form says
/// and γ, β present as the flags say (absent: 1 and 0). One vector column at a time: γ and β
/// are loaded once for the K rows, which is what K > 1 buys (K = 2: LayerNorm and RMSNorm
/// 1.12× on Zen 3 at 512 × 768; K = 4 runs out of the 16 ymm registers and is slower).
template <class V, NormForm Form, bool HasGamma, bool HasBeta, std::size_t K, typename T>
struct NormRows {
  typename V::type mv[K], rv[K], bv[K];
  const T* x[K];
  T* y[K];
  const T *gamma, *beta;
  NormRows(const T* x0, std::size_t x_stride, T* y0, std::size_t y_stride,
           const LayerNormStats<T>* st, const T* g, const T* b) noexcept
      : gamma(g), beta(b) {
    for (std::size_t k = 0; k < K; ++k) {
      const T m = st[k].m, delta = st[k].delta, r = st[k].r;
      mv[k] = V::set1(m);
      rv[k] = V::set1(r);
      bv[k] = V::set1(Form == NormForm::kFolded ? -(m + delta) * r : -delta * r);
      x[k] = x0 + k * x_stride;
      y[k] = y0 + k * y_stride;
    }
  }
  template <class Ops>
  XFMR_INLINE void operator()(std::size_t i, Ops ops) const noexcept {
    const auto g = HasGamma ? ops(gamma + i) : V::zero();
    const auto b = HasBeta ? ops(beta + i) : V::zero();
    for (std::size_t k = 0; k < K; ++k) {
      auto v = Form == NormForm::kCentred  ? V::fmadd(V::sub(ops(x[k] + i), mv[k]), rv[k], bv[k])
               : Form == NormForm::kFolded ? V::fmadd(ops(x[k] + i), rv[k], bv[k])
                                           : V::mul(ops(x[k] + i), rv[k]);
      if (HasGamma && HasBeta)
        v = V::fmadd(v, g, b);
      else if (HasGamma)
        v = V::mul(v, g);
      else if (HasBeta)
        v = V::add(v, b);
      ops(y[k] + i, v);
    }
  }
};

/// Σ(x_k − m_k) and Σ(x_k − m_k)² of K rows (SquaresOnly: Σx_k² alone): the statistics half of a
/// fused pass. Two vectors per step folded pairwise, so each chain advances once per two
/// vectors (the add latency, not the loads, would bound it otherwise). The tail's shift is
/// loaded with the same mask as x, so the pad lanes contribute 0 − 0.
template <class V, bool SquaresOnly, std::size_t K, typename T>
struct RowSums {
  typename V::type mv[K], s[K], q[K];
  const T* x[K];
  T m[K];
  RowSums(const T* x0, std::size_t x_stride, const T* shift) noexcept {
    for (std::size_t k = 0; k < K; ++k) {
      m[k] = SquaresOnly ? T(0) : shift[k];
      mv[k] = V::set1(m[k]);
      s[k] = q[k] = V::zero();
      x[k] = x0 + k * x_stride;
    }
  }
  XFMR_INLINE typename V::type centre(std::size_t k, typename V::type v) const noexcept {
    return SquaresOnly ? v : V::sub(v, mv[k]);
  }
  XFMR_INLINE void pair(std::size_t i) noexcept {
    for (std::size_t k = 0; k < K; ++k) {
      const auto a = centre(k, V::load(x[k] + i)), b = centre(k, V::load(x[k] + i + V::lanes));
      if (!SquaresOnly) s[k] = V::add(s[k], V::add(a, b));
      q[k] = V::add(q[k], V::fmadd(a, a, V::mul(b, b)));
    }
  }
  template <class Ops>
  XFMR_INLINE void one(std::size_t i, Ops ops) noexcept {
    for (std::size_t k = 0; k < K; ++k) {
      T shift[V::lanes];
      for (auto& v : shift) v = m[k];
      const auto d = SquaresOnly ? ops(x[k] + i) : V::sub(ops(x[k] + i), ops(&shift[0]));
      if (!SquaresOnly) s[k] = V::add(s[k], d);
      q[k] = V::fmadd(d, d, q[k]);
    }
  }
  XFMR_INLINE void finish(T* s_out, T* q_out) const noexcept {
    for (std::size_t k = 0; k < K; ++k) {
      s_out[k] = V::reduce_add(s[k]);
      q_out[k] = V::reduce_add(q[k]);
    }
  }
};

/// Norm over whole rows of n values while Sums sums others: the fused pass of the row pipeline,
/// so the latency of the sums (and of the rows' trip from L2 or L3) hides under the stores.
template <class V, typename T, class Norm, class Sums>
XFMR_INLINE void fused_pass(const Norm& norm, Sums& sums, std::size_t n) noexcept {
  constexpr std::size_t W = V::lanes;
  const FullOps<V, T> full;
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    norm(i, full), norm(i + W, full);
    sums.pair(i);
  }
  if (i + W <= n) norm(i, full), sums.one(i, full), i += W;
  if (i < n) norm(i, PartialOps<V, T>{n - i}), sums.one(i, PartialOps<V, T>{n - i});
}

/// Norm over whole rows of n values. y may equal x.
template <class V, typename T, class Norm>
XFMR_INLINE void normalize_pass(const Norm& norm, std::size_t n) noexcept {
  constexpr std::size_t W = V::lanes;
  const FullOps<V, T> full;
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) norm(i, full), norm(i + W, full);
  if (i + W <= n) norm(i, full), i += W;
  if (i < n) norm(i, PartialOps<V, T>{n - i});
}

/// One row normalised on its own, y may equal x.
template <class V, NormForm Form, bool HasGamma, bool HasBeta, typename T>
XFMR_INLINE void normalize_impl(const T* x, T* y, std::size_t n, const LayerNormStats<T>& st,
                                const T* gamma, const T* beta) noexcept {
  normalize_pass<V, T>(
      NormRows<V, Form, HasGamma, HasBeta, 1, T>(x, 0, y, 0, &st, gamma, beta), n);
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

/// The statistics of a row from its sums (Rms: q = Σx²; LayerNorm: s, q about the shift m).
template <class V, bool Rms, typename T>
XFMR_INLINE LayerNormStats<T> row_stats(const T* x, std::size_t n, T m, T s, T q,
                                        T eps) noexcept {
  if (Rms) return {T(0), T(0), T(1) / std::sqrt(q / static_cast<T>(n) + eps)};
  return layer_norm_stats<V>(x, n, m, s, q, eps);
}

/// The statistics of a row summed on its own (the first rows of the pipeline).
template <class V, bool Rms, typename T>
XFMR_INLINE LayerNormStats<T> row_stats(const T* x, std::size_t n, T eps) noexcept {
  if (Rms) return row_stats<V, true>(x, n, T(0), T(0), row_sum_squares<V>(x, n), eps);
  const T m = pilot_mean<V>(x, n);
  T s, q;
  shifted_sums<V>(x, n, m, s, q);
  return layer_norm_stats<V>(x, n, m, s, q, eps);
}

/// The form of the normalising pass of rows with statistics st[0..k): kScale for RMSNorm,
/// kFolded when every row allows it (|μ|·r <= 4), else kCentred.
template <bool Rms, typename T>
XFMR_INLINE NormForm norm_form(const LayerNormStats<T>* st, std::size_t k) noexcept {
  if (Rms) return NormForm::kScale;
  for (std::size_t j = 0; j < k; ++j)
    if (!(std::fabs(st[j].m + st[j].delta) * st[j].r <= T(4))) return NormForm::kCentred;
  return NormForm::kFolded;
}

/// One pass of the pipeline: normalises the K rows at x, y (statistics st) and sums the K rows
/// at xs (same stride as x), whose statistics it returns in next.
template <class V, bool Rms, NormForm Form, bool HasGamma, bool HasBeta, std::size_t K,
          typename T>
XFMR_INLINE void pipeline_pass(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                               std::size_t n, const LayerNormStats<T>* st, const T* gamma,
                               const T* beta, const T* xs, LayerNormStats<T>* next,
                               T eps) noexcept {
  T m[K], s[K], q[K];
  for (std::size_t k = 0; k < K; ++k) m[k] = Rms ? T(0) : pilot_mean<V>(xs + k * x_stride, n);
  RowSums<V, Rms, K, T> sums(xs, x_stride, m);
  fused_pass<V, T>(NormRows<V, Form, HasGamma, HasBeta, K, T>(x, x_stride, y, y_stride, st,
                                                                gamma, beta),
                   sums, n);
  sums.finish(s, q);
  for (std::size_t k = 0; k < K; ++k)
    next[k] = row_stats<V, Rms>(xs + k * x_stride, n, m[k], s[k], q[k], eps);
}

/// pipeline_pass with the form chosen at run time (norm_form).
template <class V, bool Rms, bool HasGamma, bool HasBeta, std::size_t K, typename T>
XFMR_INLINE void pipeline_step(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                               std::size_t n, const LayerNormStats<T>* st, const T* gamma,
                               const T* beta, const T* xs, LayerNormStats<T>* next,
                               T eps) noexcept {
  if constexpr (Rms)
    pipeline_pass<V, Rms, NormForm::kScale, HasGamma, HasBeta, K>(
        x, x_stride, y, y_stride, n, st, gamma, beta, xs, next, eps);
  else if (norm_form<Rms>(st, K) == NormForm::kFolded)
    pipeline_pass<V, Rms, NormForm::kFolded, HasGamma, HasBeta, K>(
        x, x_stride, y, y_stride, n, st, gamma, beta, xs, next, eps);
  else
    pipeline_pass<V, Rms, NormForm::kCentred, HasGamma, HasBeta, K>(
        x, x_stride, y, y_stride, n, st, gamma, beta, xs, next, eps);
}

/// The row pipeline of LayerNorm (Rms: RMSNorm), K rows per pass: st holds the statistics of
/// rows r .. r + K − 1; a pass normalises them while summing rows r + K .. r + 2K − 1, so each
/// row is read twice: summed (streamed from L3 or DRAM), then normalised out of L1. K = 2
/// shares the γ, β loads of two rows (one γ, β for all rows: param_stride = 0). On Zen 3 the
/// FP work in the store path and the loads bound these passes, not the latency of the
/// statistics (a lag of two passes, giving their scalar tail a whole pass, measured the same).
template <class V, bool Rms, bool HasGamma, bool HasBeta, std::size_t K, typename T>
XFMR_INLINE void norm_rows_impl(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                                std::size_t rows, std::size_t n, const T* gamma, const T* beta,
                                std::size_t param_stride, T eps) noexcept {
  LayerNormStats<T> st[K], next[K];
  for (std::size_t j = 0; j < std::min(K, rows); ++j)
    st[j] = row_stats<V, Rms>(x + j * x_stride, n, eps);
  const auto g = [&](std::size_t r) { return HasGamma ? gamma + r * param_stride : gamma; };
  const auto b = [&](std::size_t r) { return HasBeta ? beta + r * param_stride : beta; };
  std::size_t r = 0;
  for (; r + 2 * K <= rows; r += K) {
    pipeline_step<V, Rms, HasGamma, HasBeta, K>(x + r * x_stride, x_stride, y + r * y_stride,
                                                y_stride, n, st, g(r), b(r),
                                                x + (r + K) * x_stride, next, eps);
    std::copy(next, next + K, st);
  }
  for (; r + K < rows; ++r) {  // fewer than K rows left to sum: one row per pass
    pipeline_step<V, Rms, HasGamma, HasBeta, 1>(x + r * x_stride, x_stride, y + r * y_stride,
                                                y_stride, n, st, g(r), b(r),
                                                x + (r + K) * x_stride, next, eps);
    std::copy(st + 1, st + K, st);
    st[K - 1] = next[0];
  }
  for (std::size_t j = 0; r < rows; ++r, ++j) {
    const T* xr = x + r * x_stride;
    T* yr = y + r * y_stride;
    if constexpr (Rms)
      normalize_impl<V, NormForm::kScale, HasGamma, HasBeta>(xr, yr, n, st[j], g(r), b(r));
    else if (norm_form<Rms>(st + j, 1) == NormForm::kFolded)
      normalize_impl<V, NormForm::kFolded, HasGamma, HasBeta>(xr, yr, n, st[j], g(r), b(r));
    else
      normalize_impl<V, NormForm::kCentred, HasGamma, HasBeta>(xr, yr, n, st[j], g(r), b(r));
  }
}

template <class V, bool Rms, bool HasGamma, bool HasBeta, typename T>
XFMR_INLINE void norm_rows(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                           std::size_t rows, std::size_t n, const T* gamma, const T* beta,
                           std::size_t param_stride, T eps) noexcept {
  if (param_stride == 0)
    norm_rows_impl<V, Rms, HasGamma, HasBeta, 2>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                                 0, eps);
  else
    norm_rows_impl<V, Rms, HasGamma, HasBeta, 1>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                                 param_stride, eps);
}

}  // namespace detail

/// LayerNorm of `rows` rows of n >= 1 values (SPEC §11), row i at x + i·x_stride and
/// y + i·y_stride:   μ = mean(x), σ² = mean((x − μ)²), y = γ ⊙ (x − μ)/√(σ² + ε) + β,
/// row i with γ, β at gamma/beta + i·param_stride (0: one γ, β for all rows; null: 1 and 0).
/// Two reads of a row: Σd and Σd² with d = x − m about a pilot shift m (the mean of four
/// vectors sampled across the row), fused into the pass that normalises the rows two ahead of
/// it (two rows per pass, sharing the γ, β loads, when param_stride == 0); then the
/// normalising pass from L1. μ = m + δ with δ = Σd/n, σ² = (Σd² − δ·Σd)/n, y uses
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
    detail::norm_rows<V, false, true, true>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                            param_stride, eps);
  else if (gamma)
    detail::norm_rows<V, false, true, false>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                             param_stride, eps);
  else if (beta)
    detail::norm_rows<V, false, false, true>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                             param_stride, eps);
  else
    detail::norm_rows<V, false, false, false>(x, x_stride, y, y_stride, rows, n, gamma, beta,
                                              param_stride, eps);
}

/// LayerNorm of one row of n >= 1 values: layer_norm_rows with one row. y may equal x.
template <class Isa, typename T>
XFMR_INLINE void layer_norm_row(const T* x, T* y, std::size_t n, const T* gamma, const T* beta,
                                T eps) noexcept {
  layer_norm_rows<Isa>(x, n, y, n, 1, n, gamma, beta, 0, eps);
}

/// RMSNorm of `rows` rows of n >= 1 values, y = γ ⊙ x / √(mean(x²) + ε), row i at
/// x + i·x_stride and y + i·y_stride; gamma (one for all rows) may be null. The sums of squares
/// of two rows are fused into the pass that scales the two before them (sharing the γ loads).
/// Aliasing as layer_norm_rows.
template <class Isa, typename T>
XFMR_INLINE void rms_norm_rows(const T* x, std::size_t x_stride, T* y, std::size_t y_stride,
                               std::size_t rows, std::size_t n, const T* gamma, T eps) noexcept {
  using V = Vec<T, Isa>;
  if (rows == 0) return;
  if (gamma)
    detail::norm_rows<V, true, true, false>(x, x_stride, y, y_stride, rows, n, gamma,
                                            static_cast<const T*>(nullptr), 0, eps);
  else
    detail::norm_rows<V, true, false, false>(x, x_stride, y, y_stride, rows, n, gamma,
                                             static_cast<const T*>(nullptr), 0, eps);
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
  const detail::LayerNormStats<T> st{T(0), T(0), scale / std::max(norm, eps)};
  detail::normalize_impl<V, detail::NormForm::kScale, false, false>(
      x, y, n, st, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr));
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_NORM_HPP
