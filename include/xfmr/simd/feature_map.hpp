// SPDX-License-Identifier: MIT
// Row kernels of the linear-attention feature maps (attention/feature_map.hpp, SPEC §5.2):
// elu+1, relu+ε, shifted exponentials, 1+cosine. Raw pointers, no alignment, masked tails.
// The order-2 Taylor map is in taylor.hpp, the Performer's random features in
// random_features.hpp.
#ifndef XFMR_SIMD_FEATURE_MAP_HPP
#define XFMR_SIMD_FEATURE_MAP_HPP

#include <cmath>
#include <cstddef>

#include "exp.hpp"
#include "row.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// y[i] = elu(x[i]) + 1 = e^{min(x,0)} + max(x,0): 1 + x for x ≥ 0, e^x below (no blend), i < n.
/// e^x is exp_nonpositive: ≤ 2 ulp where e^x is normal; for x < −87.3 (float) / −708.4
/// (double) the result is below the smallest normal number or +0 (absolute error < FLT_MIN /
/// DBL_MIN); −inf gives +0, NaN gives NaN. y may be x; partial overlap is not allowed.
template <class Isa, typename T>
void elu_plus_one_row(const T* x, T* y, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  const auto zero = V::zero();
  // exp_nonpositive clamps x > 0 to 0 itself; max(v, 0) is 0 for NaN, so NaN stays NaN.
  auto body = [&](typename V::type v) {
    return V::add(exp_nonpositive<Isa, T>(v), V::max(v, zero));
  };
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) V::store(y + i, body(V::load(x + i)));
  if (i < n) V::store_partial(y + i, body(V::load_partial(x + i, n - i)), n - i);
}

/// y[i] = max(x[i], 0) + eps, i < n; NaN stays NaN (max(0, x) returns its second operand when
/// either is NaN, on every ISA). y may be x; partial overlap is not allowed.
template <class Isa, typename T>
void relu_row(const T* x, T* y, std::size_t n, T eps) noexcept {
  using V = Vec<T, Isa>;
  const auto zero = V::zero(), e = V::set1(eps);
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) V::store(y + i, V::add(V::max(zero, V::load(x + i)), e));
  if (i < n) V::store_partial(y + i, V::add(V::max(zero, V::load_partial(x + i, n - i)), e), n - i);
}

/// y[i] = e^{x[i] − shift} (simd::exp, ≤ 2 ulp of the rounded difference), i < n; returns Σ y,
/// accumulated lane-wise in T then reduced (0 when n == 0). y may be x; partial overlap is not
/// allowed.
template <class Isa, typename T>
T exp_shift_row(const T* x, T* y, std::size_t n, T shift) noexcept {
  using V = Vec<T, Isa>;
  const auto s = V::set1(shift);
  auto acc = V::zero();
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) {
    const auto e = exp<Isa, T>(V::sub(V::load(x + i), s));
    V::store(y + i, e);
    acc = V::add(acc, e);
  }
  if (i < n) {
    // Masked-off lanes load 0, whose e^{−shift} must not enter the sum: store, then re-load.
    V::store_partial(y + i, exp<Isa, T>(V::sub(V::load_partial(x + i, n - i), s)), n - i);
    acc = V::add(acc, V::load_partial(y + i, n - i));
  }
  return V::reduce_add(acc);
}

/// y[i] = e^{x[i] − shift[i]} (a per-feature shift) and col_sum[i] += y[i], i < n. y may be x;
/// col_sum must not overlap x, shift or y.
template <class Isa, typename T>
void exp_sub_accumulate_row(const T* x, const T* shift, T* y, T* col_sum, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes) {
    const auto e = exp<Isa, T>(V::sub(V::load(x + i), V::load(shift + i)));
    V::store(y + i, e);
    V::store(col_sum + i, V::add(V::load(col_sum + i), e));
  }
  if (i < n) {
    const std::size_t r = n - i;
    const auto e = exp<Isa, T>(V::sub(V::load_partial(x + i, r), V::load_partial(shift + i, r)));
    V::store_partial(y + i, e, r);
    V::store_partial(col_sum + i, V::add(V::load_partial(col_sum + i, r), e), r);
  }
}

/// y[0] = 1, y[1 + i] = x[i]/‖x‖ for i < d (d + 1 outputs); x = 0 gives [1, 0, …, 0]. The norm
/// is taken as M·‖x/M‖ with M = max|x_i|, so huge or tiny inputs neither overflow nor underflow.
/// y must not overlap x.
template <class Isa, typename T>
void one_plus_cosine_row(const T* x, T* y, std::size_t d) noexcept {
  T big = 0;
  for (std::size_t i = 0; i < d; ++i) big = std::fmax(big, std::abs(x[i]));
  y[0] = T(1);
  if (big == T(0)) {
    zero_row<Isa, T>(y + 1, d);
    return;
  }
  scale_row<Isa, T>(x, y + 1, d, T(1) / big);
  const T norm = std::sqrt(dot_row<Isa, T>(y + 1, y + 1, d));
  scale_row<Isa, T>(y + 1, y + 1, d, T(1) / norm);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_FEATURE_MAP_HPP
