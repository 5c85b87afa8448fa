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

/// Σ (x_i − m) and Σ (x_i − m)² over i < n, four vector accumulators each (the add/FMA
/// latency, not the loads, bounds a single chain). The tail's shift is loaded with the same mask
/// as x, so the pad lanes contribute 0 − 0.
template <class V, typename T>
XFMR_INLINE void shifted_sums(const T* x, std::size_t n, T m, T& sum, T& sum_sq) noexcept {
  constexpr std::size_t W = V::lanes;
  const auto mv = V::set1(m);
  typename V::type s[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  typename V::type q[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W)
    for (std::size_t u = 0; u < 4; ++u) {
      const auto d = V::sub(V::load(x + i + u * W), mv);
      s[u] = V::add(s[u], d), q[u] = V::fmadd(d, d, q[u]);
    }
  for (; i + W <= n; i += W) {  // constant indices only: keeps s and q in registers
    const auto d = V::sub(V::load(x + i), mv);
    s[0] = V::add(s[0], d), q[0] = V::fmadd(d, d, q[0]);
  }
  if (i < n) {
    T shift[W];
    for (auto& v : shift) v = m;
    const auto d = V::sub(V::load_partial(x + i, n - i), V::load_partial(shift, n - i));
    s[3] = V::add(s[3], d), q[3] = V::fmadd(d, d, q[3]);
  }
  sum = V::reduce_add(V::add(V::add(s[0], s[1]), V::add(s[2], s[3])));
  sum_sq = V::reduce_add(V::add(V::add(q[0], q[1]), V::add(q[2], q[3])));
}

/// y_i = ((x_i − m) − δ)·r·γ_i + β_i (γ, β may be null: 1 and 0). y may equal x.
/// The mean is kept as m + δ: x_i − m is exact when m is a first mean of the row, so the
/// centred values keep their last bits even under a large common offset.
template <class V, typename T>
XFMR_INLINE void normalize_affine(const T* x, T* y, std::size_t n, T m, T delta, T r,
                                  const T* gamma, const T* beta) noexcept {
  constexpr std::size_t W = V::lanes;
  const auto mv = V::set1(m), rv = V::set1(r), bv = V::set1(-delta * r);
  const auto step = [&](std::size_t i, auto load, auto store) {
    auto v = V::fmadd(V::sub(load(x + i), mv), rv, bv);  // ((x − m) − δ)·r
    if (gamma && beta)
      v = V::fmadd(v, load(gamma + i), load(beta + i));
    else if (gamma)
      v = V::mul(v, load(gamma + i));
    else if (beta)
      v = V::add(v, load(beta + i));
    store(y + i, v);
  };
  std::size_t i = 0;
  // Lambdas, not function pointers: an always_inline callee must not be called indirectly.
  const auto load = [](const T* p) { return V::load(p); };
  const auto store = [](T* p, typename V::type v) { V::store(p, v); };
  for (; i + W <= n; i += W) step(i, load, store);
  if (i < n) {
    const std::size_t rest = n - i;
    step(
        i, [rest](const T* p) { return V::load_partial(p, rest); },
        [rest](T* p, typename V::type v) { V::store_partial(p, v, rest); });
  }
}

}  // namespace detail

/// LayerNorm of one row of n >= 1 values (SPEC §11):
///   μ = mean(x), σ² = mean((x − μ)²), y = γ ⊙ (x − μ)/√(σ² + ε) + β.
/// σ² comes from centred values with the corrected two-pass formula: with a first mean m,
/// d = x − m, μ = m + δ, δ = Σd/n and σ² = (Σd² − δ·Σd)/n, and y uses (x − m) − δ, so a large
/// common offset (1e4) costs no accuracy, unlike E[x²] − μ². gamma/beta may be null. y may equal x (in place).
template <class Isa, typename T>
XFMR_INLINE void layer_norm_row(const T* x, T* y, std::size_t n, const T* gamma, const T* beta,
                                T eps) noexcept {
  using V = Vec<T, Isa>;
  const T nt = static_cast<T>(n);
  T sum, unused, d_sum, d2_sum;
  detail::shifted_sums<V>(x, n, T(0), sum, unused);
  const T m = sum / nt;
  detail::shifted_sums<V>(x, n, m, d_sum, d2_sum);
  const T delta = d_sum / nt;
  const T var = std::max(T(0), (d2_sum - d_sum * delta) / nt);
  detail::normalize_affine<V>(x, y, n, m, delta, T(1) / std::sqrt(var + eps), gamma, beta);
}

/// RMSNorm of one row of n >= 1 values: y = γ ⊙ x / √(mean(x²) + ε); gamma may be null.
/// y may equal x.
template <class Isa, typename T>
XFMR_INLINE void rms_norm_row(const T* x, T* y, std::size_t n, const T* gamma, T eps) noexcept {
  using V = Vec<T, Isa>;
  T sum, ss;
  detail::shifted_sums<V>(x, n, T(0), sum, ss);
  const T r = T(1) / std::sqrt(ss / static_cast<T>(n) + eps);
  detail::normalize_affine<V>(x, y, n, T(0), T(0), r, gamma, static_cast<const T*>(nullptr));
}

/// L2 normalisation of one row of n >= 1 values: y = scale · x / max(‖x‖, eps) (KeyNorm,
/// QueryNorm, cosine attention; SPEC §8.3). A zero row stays zero. y may equal x.
template <class Isa, typename T>
XFMR_INLINE void l2_normalize_row(const T* x, T* y, std::size_t n, T eps, T scale) noexcept {
  using V = Vec<T, Isa>;
  T sum, ss;
  detail::shifted_sums<V>(x, n, T(0), sum, ss);
  const T norm = std::sqrt(ss);
  detail::normalize_affine<V>(x, y, n, T(0), T(0), scale / std::max(norm, eps),
                              static_cast<const T*>(nullptr), static_cast<const T*>(nullptr));
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_NORM_HPP
