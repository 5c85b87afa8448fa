// SPDX-License-Identifier: MIT
// Row kernels of the Taylor approximations of exp (attention/taylor.hpp, SPEC §7): the
// truncated series f_n element-wise and the compressed order-2 feature map.
#ifndef XFMR_SIMD_TAYLOR_HPP
#define XFMR_SIMD_TAYLOR_HPP

#include <cstddef>

#include "row.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Largest order taylor_exp_row accepts.
inline constexpr int kTaylorExpMaxOrder = 64;

/// y[i] = f_n(max(x[i], floor)) with f_n(x) = Σ_{k=0}^n x^k/k!, i < n (floor = −inf for no
/// floor); returns Σ y (0 when n == 0). Horner with the reciprocals 1/k: p ← 1 + (p·x)·(1/k),
/// k = order … 1, on four vectors at a time so their dependency chains overlap; a few ulp of
/// Σ|x^k/k!|. order in [1, kTaylorExpMaxOrder] (callers check; debug assert). y may be x;
/// partial overlap is not allowed.
template <class Isa, typename T>
T taylor_exp_row(const T* x, T* y, std::size_t n, int order, T floor) noexcept {
  XFMR_ASSERT(order >= 1 && order <= kTaylorExpMaxOrder);
  using V = Vec<T, Isa>;
  using R = typename V::type;
  constexpr std::size_t L = V::lanes;
  T inv[kTaylorExpMaxOrder + 1];
  for (int k = 1; k <= order; ++k) inv[k] = T(1) / T(k);
  const R one = V::set1(T(1)), fl = V::set1(floor);
  R sum[4] = {V::zero(), V::zero(), V::zero(), V::zero()};
  std::size_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {
    R v[4], p[4];
    for (int u = 0; u < 4; ++u) {
      v[u] = V::max(V::load(x + i + u * L), fl);
      p[u] = one;
    }
    for (int k = order; k >= 1; --k) {
      const R ik = V::set1(inv[k]);
      for (int u = 0; u < 4; ++u) p[u] = V::fmadd(V::mul(p[u], v[u]), ik, one);
    }
    for (int u = 0; u < 4; ++u) {
      V::store(y + i + u * L, p[u]);
      sum[u] = V::add(sum[u], p[u]);
    }
  }
  auto one_vector = [&](R v) {
    v = V::max(v, fl);
    R p = one;
    for (int k = order; k >= 1; --k) p = V::fmadd(V::mul(p, v), V::set1(inv[k]), one);
    return p;
  };
  for (; i + L <= n; i += L) {
    const R p = one_vector(V::load(x + i));
    V::store(y + i, p);
    sum[0] = V::add(sum[0], p);
  }
  if (i < n) {
    // The unused lanes of a partial load are 0 and f_n(0) = 1: sum the stored lanes only.
    V::store_partial(y + i, one_vector(V::load_partial(x + i, n - i)), n - i);
    sum[1] = V::add(sum[1], V::load_partial(y + i, n - i));
  }
  return V::reduce_add(V::add(V::add(sum[0], sum[1]), V::add(sum[2], sum[3])));
}

/// Compressed order-2 Taylor features of x' = s·x (SPEC §7.2), m = 1 + d + d(d+1)/2 outputs:
///   y = [1, x'_0 … x'_{d−1}, then for a = 0 … d−1: x'_a²/√2, x'_a x'_{a+1}, …, x'_a x'_{d−1}]
/// so φ(q)·φ(k) = 1 + q'·k' + (q'·k')²/2. Each block a is a broadcast product of a contiguous
/// slice, which vectorises. y must not overlap x.
template <class Isa, typename T>
void taylor2_row(const T* x, T* y, std::size_t d, T s) noexcept {
  using V = Vec<T, Isa>;
  y[0] = T(1);
  scale_row<Isa, T>(x, y + 1, d, s);
  const T* xs = y + 1;
  T* out = y + 1 + d;
  const T inv_sqrt2 = T(0.70710678118654752440);
  for (std::size_t a = 0; a < d; ++a) {
    const T xa = xs[a];
    out[0] = xa * xa * inv_sqrt2;
    const std::size_t len = d - a - 1;
    const auto b = V::set1(xa);
    std::size_t i = 0;
    for (; i + V::lanes <= len; i += V::lanes)
      V::store(out + 1 + i, V::mul(b, V::load(xs + a + 1 + i)));
    if (i < len)
      V::store_partial(out + 1 + i, V::mul(b, V::load_partial(xs + a + 1 + i, len - i)), len - i);
    out += len + 1;
  }
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_TAYLOR_HPP
